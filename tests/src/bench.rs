//! `make bench`: dispatch latency against the sequential reference, AWS calls per
//! incident, and each function's cold start and peak memory under the project's local
//! Lambda runner. Measures only; BENCHMARKS.md records the results and the machine.

use crate::emulator::Emulator;
use crate::faults::{CallLog, Delay, FaultyClient};
use crate::roles;
use crate::site::Site;
use crate::stack::{alarm_event, scheduled_event, Function, Stack, STACK_NAME};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// One function's release binary under the local Lambda runner.
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

/// The project's one local Lambda runner (`tests/emulator/local_lambda.py`), which the
/// demo and the operator-command tests use too. It needs only Python's standard library.
fn runner_script() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo")).join("emulator/local_lambda.py")
}

/// What the runner's `cold-start` mode prints.
#[derive(serde::Deserialize)]
struct RunnerColdStarts {
    ready_ms: Vec<f64>,
    peak_rss_kib: u64,
}

/// Starts `binary` `runs` times under the local Lambda runner, each time handing it `event`.
pub async fn cold_start(
    function: &str,
    binary: &Path,
    zip: Option<&Path>,
    env: &[(String, String)],
    event: &Value,
    runs: usize,
) -> Result<ColdStart, String> {
    let work = std::env::temp_dir().join(format!("outposts-ha-bench-{function}-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let event_file = work.join("event.json");
    std::fs::write(&event_file, event.to_string()).map_err(|e| e.to_string())?;
    let python = std::env::var("BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut command = tokio::process::Command::new(&python);
    command
        .arg(runner_script())
        .arg("cold-start")
        .arg("--logs")
        .arg(work.join("logs"))
        .arg("--function")
        .arg(format!("bench-{function}={}", binary.display()))
        .arg("--event")
        .arg(&event_file)
        .arg("--runs")
        .arg(runs.to_string());
    for (k, v) in env {
        command.arg("--env").arg(format!("{k}={v}"));
    }
    let out = tokio::time::timeout(Duration::from_secs(60 * runs as u64 + 30), command.kill_on_drop(true).output())
        .await
        .map_err(|_| format!("{function}: the runner did not finish"))?
        .map_err(|e| format!("starting {python}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{function}: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let measured: RunnerColdStarts = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("{function}: unreadable runner output ({e}): {}", String::from_utf8_lossy(&out.stdout)))?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(ColdStart {
        function: function.to_string(),
        ready: measured.ready_ms.iter().map(|ms| Duration::from_secs_f64(ms / 1000.0)).collect(),
        peak_rss_kib: measured.peak_rss_kib,
        zip_bytes: zip.and_then(|z| std::fs::metadata(z).ok()).map(|m| m.len()),
    })
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
        ("LEDGER_TABLE", stack.table.as_str()),
        ("EVENT_BUS_NAME", stack.bus_name.as_str()),
        ("STACK_NAME", STACK_NAME),
        ("TOPIC_ARN", stack.topic_arn.as_str()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.push(("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into()));

    // Each function with its own role's credentials, as Lambda runs it.
    let env_of = |role: &str| -> Vec<(String, String)> {
        env.iter().cloned().chain(stack.role_environment(role).iter().cloned()).collect()
    };
    let binary = |name: &str| binaries.join(name);
    let zip = |name: &str| -> PathBuf { zips.join(name).join("bootstrap.zip") };
    let mut results = Vec::new();

    let alarm = alarm_event(ALARM, SERVER, "OK", "ALARM", "2026-11-22T10:00:00.000+0000");
    let name = "alarm-handler";
    results.push(cold_start(name, &binary(name), Some(&zip(name)), &env_of(roles::ALARM_HANDLER), &alarm, runs).await?);

    let relaunch_request =
        stack.take_queued(Function::Relaunch).await.into_iter().next().ok_or("alarm-handler requested no relaunch")?;
    let name = "relaunch";
    results.push(
        cold_start(name, &binary(name), Some(&zip(name)), &env_of(roles::RELAUNCH), &relaunch_request, runs).await?,
    );

    let news = stack.take_queued(Function::Notifier).await.into_iter().next().ok_or("nothing to notify")?;
    let name = "notifier";
    results.push(cold_start(name, &binary(name), Some(&zip(name)), &env_of(roles::NOTIFIER), &news, runs).await?);

    let name = "backup-scheduler";
    let tick = scheduled_event("2026-11-22T10:00:00Z");
    results
        .push(cold_start(name, &binary(name), Some(&zip(name)), &env_of(roles::BACKUP_SCHEDULER), &tick, runs).await?);
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
        "\n### Cold start and memory (release binaries under the local Lambda runner)\n\n\
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
