//! `make bench`: dispatch latency against the sequential reference, AWS calls per
//! incident, and each function's cold start and peak memory under a local Lambda
//! runtime API. Measures only; BENCHMARKS.md records the results and the machine.

use crate::emulator::Emulator;
use crate::faults::{CallLog, Delay, FaultyClient};
use crate::site::Site;
use crate::stack::{alarm_event, scheduled_event, Function, Stack, STACK_NAME};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const SERVER: &str = "op-0000000000000000a";
const ALARM: &str = "outposts-ha-store-a";

/// One failover of `n` workloads with `latency` added to every AWS call.
#[derive(Debug, Clone)]
pub struct Dispatch {
    pub workloads: usize,
    pub launch_concurrency: usize,
    /// Alarm handed to alarm-handler → every RunInstances accepted.
    pub product: Duration,
    /// One RunInstances after another, nothing else.
    pub sequential: Duration,
    /// AWS calls of the whole incident (alarm-handler, relaunch, notifier), by operation.
    pub calls: BTreeMap<String, usize>,
}

pub async fn dispatch(workloads: usize, launch_concurrency: usize, latency: Duration) -> Result<Dispatch, String> {
    let moto = Emulator::start().await;
    let sdk = moto.sdk_config().await;
    let log = Arc::new(CallLog::default());
    let delayed = FaultyClient::new(Delay::new(latency, log.clone())).into_sdk_config(&sdk);
    let stack = Stack::deploy_with_handler_sdk(&sdk, &delayed, launch_concurrency).await;
    let site = Site::create(&sdk).await;
    let standby = site.subnet("10.0.1.0/24").await;
    let mut declared = Vec::new();
    for i in 0..workloads {
        declared.push(site.declare(SERVER, &format!("w-{i:03}"), &[&standby], 100).await);
    }

    let start = Instant::now();
    stack
        .alarm(&alarm_event(ALARM, SERVER, "OK", "ALARM", "2026-11-22T10:00:00.000+0000"))
        .await
        .map_err(|e| e.to_string())?;
    let delivered = stack.deliver().await;
    if !delivered.handler_errors.is_empty() {
        return Err(format!("handler errors: {:?}", delivered.handler_errors));
    }
    let accepted = log.launches_accepted.lock().unwrap().clone();
    if accepted.len() != workloads {
        return Err(format!("{} of {workloads} launches accepted", accepted.len()));
    }
    let product = accepted.iter().max().map(|t| *t - start).unwrap_or_default();
    let calls = log.calls.lock().unwrap().clone();

    // The reference: one RunInstances after another through the same slow link.
    let baseline_log = Arc::new(CallLog::default());
    let slow = FaultyClient::new(Delay::new(latency, baseline_log.clone())).into_sdk_config(&sdk);
    let ec2 = aws_sdk_ec2::Client::new(&slow);
    let start = Instant::now();
    for w in &declared {
        ec2.run_instances()
            .launch_template(
                aws_sdk_ec2::types::LaunchTemplateSpecification::builder()
                    .launch_template_id(&w.launch_template_id)
                    .build(),
            )
            .subnet_id(&standby)
            .min_count(1)
            .max_count(1)
            .send()
            .await
            .map_err(|e| format!("baseline RunInstances: {e}"))?;
    }
    let sequential = start.elapsed();
    Ok(Dispatch { workloads, launch_concurrency, product, sequential, calls })
}

/// AWS calls of a whole incident with `target_groups` groups per workload: alarm,
/// relaunch, each replacement's running event (registration, health, originals out) and
/// the notifications. Counted at the same seam, no latency added.
pub async fn calls_with_target_groups(
    workloads: usize,
    target_groups: usize,
) -> Result<BTreeMap<String, usize>, String> {
    use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, TargetDescription, TargetTypeEnum};
    let moto = Emulator::start().await;
    let sdk = moto.sdk_config().await;
    let log = Arc::new(CallLog::default());
    let counted = FaultyClient::new(Delay::new(Duration::ZERO, log.clone())).into_sdk_config(&sdk);
    let stack = Stack::deploy_with_handler_sdk(&sdk, &counted, 10).await;
    let site = Site::create(&sdk).await;
    let home = site.subnet("10.0.1.0/24").await;
    let standby = site.subnet("10.0.2.0/24").await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
    let mut groups = Vec::new();
    for g in 0..target_groups {
        let out = elb
            .create_target_group()
            .name(format!("tg-{g}"))
            .protocol(ProtocolEnum::Http)
            .port(80)
            .vpc_id(&site.vpc_id)
            .target_type(TargetTypeEnum::Instance)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        groups.push((format!("tg-{g}"), out.target_groups()[0].target_group_arn().unwrap_or_default().to_string()));
    }
    let names: Vec<&str> = groups.iter().map(|(n, _)| n.as_str()).collect();
    let joined = names.join(",");
    for i in 0..workloads {
        let name = format!("w-{i:03}");
        let extra: Vec<(&'static str, &str)> =
            if joined.is_empty() { Vec::new() } else { vec![(crate::site::TARGET_GROUPS_TAG, joined.as_str())] };
        let w = site.declare_with(SERVER, &name, &[&standby], 100, None, &extra).await;
        let original = site.original(&w, &home, &[(ha_domain::model::tag::WORKLOAD, name.as_str())]).await;
        for (_, arn) in &groups {
            elb.register_targets()
                .target_group_arn(arn)
                .targets(TargetDescription::builder().id(&original).build())
                .send()
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    stack
        .alarm(&alarm_event(ALARM, SERVER, "OK", "ALARM", "2026-11-22T10:00:00.000+0000"))
        .await
        .map_err(|e| e.to_string())?;
    stack.deliver().await;
    for r in site.replacements().await {
        let id = r.instance_id().unwrap_or_default();
        stack.relaunch.handle(crate::stack::instance_running_event(id), "bench").await.map_err(|e| e.to_string())?;
    }
    let delivered = stack.deliver().await;
    if !delivered.handler_errors.is_empty() {
        return Err(format!("handler errors: {:?}", delivered.handler_errors));
    }
    let calls = log.calls.lock().unwrap().clone();
    Ok(calls)
}

/// One function's release binary under a local Lambda runtime API.
#[derive(Debug, Clone)]
pub struct ColdStart {
    pub function: String,
    /// Process start → first request for an event, per run.
    pub ready: Vec<Duration>,
    /// Peak resident memory (VmHWM) after handling one real event, largest over the runs.
    pub peak_rss_kib: u64,
    pub zip_bytes: Option<u64>,
}

impl ColdStart {
    pub fn median_ready(&self) -> Duration {
        let mut v = self.ready.clone();
        v.sort();
        v.get(v.len() / 2).copied().unwrap_or_default()
    }
}

/// What the fake runtime API saw.
enum RuntimeCall {
    AskedForEvent(Instant),
    Responded,
    Failed(String),
}

/// Serves the Lambda runtime API on one connection: the first `next` gets `event`,
/// later ones are held (the function waits, as it would between invocations).
async fn runtime_connection(stream: TcpStream, event: Arc<String>, calls: mpsc::UnboundedSender<RuntimeCall>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut served = false;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).await.unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let body = String::from_utf8_lossy(&body).to_string();
        let path = request_line.split_whitespace().nth(1).unwrap_or_default().to_string();
        if path.ends_with("/invocation/next") {
            let _ = calls.send(RuntimeCall::AskedForEvent(Instant::now()));
            if served {
                std::future::pending::<()>().await;
            }
            served = true;
            let deadline =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() + 300_000;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 lambda-runtime-aws-request-id: bench-1\r\nlambda-runtime-deadline-ms: {deadline}\r\n\
                 lambda-runtime-invoked-function-arn: arn:aws:lambda:eu-west-1:123456789012:function:bench\r\n\
                 lambda-runtime-trace-id: Root=1-00000000-000000000000000000000000\r\n\r\n",
                event.len()
            );
            let _ = write.write_all(head.as_bytes()).await;
            let _ = write.write_all(event.as_bytes()).await;
        } else {
            let call = if path.ends_with("/response") { RuntimeCall::Responded } else { RuntimeCall::Failed(body) };
            let _ = calls.send(call);
            let _ = write.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}").await;
        }
    }
}

/// Peak resident set of a live process, from /proc.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// Starts `binary` `runs` times against a fresh runtime API, each time handing it `event`.
pub async fn cold_start(
    function: &str,
    binary: &Path,
    zip: Option<&Path>,
    env: &[(String, String)],
    event: &Value,
    runs: usize,
) -> Result<ColdStart, String> {
    let mut result = ColdStart {
        function: function.to_string(),
        ready: Vec::new(),
        peak_rss_kib: 0,
        zip_bytes: zip.and_then(|z| std::fs::metadata(z).ok()).map(|m| m.len()),
    };
    for _ in 0..runs {
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
        let api = listener.local_addr().map_err(|e| e.to_string())?;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let event_text = Arc::new(event.to_string());
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(runtime_connection(stream, event_text.clone(), tx.clone()));
            }
        });
        let started = Instant::now();
        let mut child = tokio::process::Command::new(binary)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", api.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", format!("bench-{function}"))
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/bench-{function}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        let pid = child.id().unwrap_or(0);
        let outcome = tokio::time::timeout(Duration::from_secs(60), async {
            let mut ready = None;
            while let Some(call) = rx.recv().await {
                match call {
                    RuntimeCall::AskedForEvent(at) => {
                        ready.get_or_insert(at - started);
                    }
                    RuntimeCall::Responded => return Ok(ready),
                    RuntimeCall::Failed(body) => return Err(format!("{function} failed the invocation: {body}")),
                }
            }
            Err(format!("{function} exited before answering"))
        })
        .await
        .map_err(|_| format!("{function} did not answer within 60 s"))??;
        result.peak_rss_kib = result.peak_rss_kib.max(peak_rss_kib(pid));
        result.ready.push(outcome.ok_or("no request for an event was seen")?);
        let _ = child.kill().await;
        server.abort();
    }
    Ok(result)
}

/// Runs every function's release binary from `binaries` on real events from a stack in
/// the emulator; `zips` holds `<function>/bootstrap.zip` for the sizes.
pub async fn cold_starts(binaries: &Path, zips: &Path, runs: usize) -> Result<Vec<ColdStart>, String> {
    let moto = Emulator::start().await;
    let sdk = moto.sdk_config().await;
    let stack = Stack::deploy(&sdk, 10).await;
    let site = Site::create(&sdk).await;
    let standby = site.subnet("10.0.1.0/24").await;
    for i in 0..10 {
        site.declare(SERVER, &format!("w-{i:03}"), &[&standby], 100).await;
    }
    let mut env: Vec<(String, String)> = [
        ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("LEDGER_TABLE", stack.table.as_str()),
        ("EVENT_BUS_NAME", stack.bus_name.as_str()),
        ("STACK_NAME", STACK_NAME),
        ("TOPIC_ARN", stack.topic_arn.as_str()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.push(("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into()));

    let binary = |name: &str| binaries.join(name);
    let zip = |name: &str| -> PathBuf { zips.join(name).join("bootstrap.zip") };
    let mut results = Vec::new();

    let alarm = alarm_event(ALARM, SERVER, "OK", "ALARM", "2026-11-22T10:00:00.000+0000");
    let name = "alarm-handler";
    results.push(cold_start(name, &binary(name), Some(&zip(name)), &env, &alarm, runs).await?);

    let relaunch_request =
        stack.take_queued(Function::Relaunch).await.into_iter().next().ok_or("alarm-handler requested no relaunch")?;
    let name = "relaunch";
    results.push(cold_start(name, &binary(name), Some(&zip(name)), &env, &relaunch_request, runs).await?);

    let news = stack.take_queued(Function::Notifier).await.into_iter().next().ok_or("nothing to notify")?;
    let name = "notifier";
    results.push(cold_start(name, &binary(name), Some(&zip(name)), &env, &news, runs).await?);

    let name = "backup-scheduler";
    let tick = scheduled_event("2026-11-22T10:00:00Z");
    results.push(cold_start(name, &binary(name), Some(&zip(name)), &env, &tick, runs).await?);
    Ok(results)
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1000.0)
}

/// BENCHMARKS.md's tables.
pub fn report(
    latency: Duration,
    dispatches: &[Dispatch],
    with_groups: &[(usize, usize, BTreeMap<String, usize>)],
    cold: &[ColdStart],
) -> String {
    let mut out = String::new();
    let rtt = latency.as_secs_f64();
    out.push_str(&format!(
        "### Dispatch latency ({} ms added to every AWS call)\n\n\
         Alarm handed to alarm-handler until every RunInstances is accepted, against one\n\
         RunInstances after another (the reference tool's loop) through the same link.\n\n\
         | workloads | LAUNCH_CONCURRENCY | Outposts HA (ms) | round trips | sequential (ms) | speed-up |\n\
         |---:|---:|---:|---:|---:|---:|\n",
        latency.as_millis()
    ));
    for d in dispatches {
        out.push_str(&format!(
            "| {} | {} | {} | {:.1} | {} | {:.1}x |\n",
            d.workloads,
            d.launch_concurrency,
            ms(d.product),
            d.product.as_secs_f64() / rtt,
            ms(d.sequential),
            d.sequential.as_secs_f64() / d.product.as_secs_f64()
        ));
    }
    out.push_str("\n### AWS calls per incident, up to the launches (T = 0)\n\n| workloads | total | by operation |\n|---:|---:|---|\n");
    let mut seen = std::collections::BTreeSet::new();
    for d in dispatches.iter().filter(|d| seen.insert(d.workloads)) {
        let by: Vec<String> = d.calls.iter().map(|(op, n)| format!("{op} {n}")).collect();
        out.push_str(&format!("| {} | {} | {} |\n", d.workloads, d.calls.values().sum::<usize>(), by.join(", ")));
    }
    out.push_str(
        "\n### AWS calls per incident, serving included (N workloads, T target groups each)\n\n\
         | N | T | total | per workload | by operation |\n|---:|---:|---:|---:|---|\n",
    );
    for (n, t, calls) in with_groups {
        let total: usize = calls.values().sum();
        let by: Vec<String> = calls.iter().map(|(op, c)| format!("{op} {c}")).collect();
        out.push_str(&format!("| {n} | {t} | {total} | {:.1} | {} |\n", total as f64 / *n as f64, by.join(", ")));
    }
    out.push_str(
        "\n### Cold start and memory (release binaries under a local Lambda runtime API)\n\n\
         | function | ready after start, median (ms) | runs (ms) | peak RSS (MiB) | zip (MiB) |\n\
         |---|---:|---|---:|---:|\n",
    );
    for c in cold {
        let runs: Vec<String> = c.ready.iter().map(|d| format!("{:.1}", d.as_secs_f64() * 1000.0)).collect();
        out.push_str(&format!(
            "| {} | {:.1} | {} | {:.1} | {} |\n",
            c.function,
            c.median_ready().as_secs_f64() * 1000.0,
            runs.join(", "),
            c.peak_rss_kib as f64 / 1024.0,
            c.zip_bytes.map(|b| format!("{:.2}", b as f64 / 1_048_576.0)).unwrap_or_else(|| "-".into())
        ));
    }
    out
}
