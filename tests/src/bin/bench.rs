//! `make bench`: writes BENCHMARKS.md. Settings come from the environment (the Makefile
//! sets them): BENCH_BINARIES (release binaries), BENCH_ZIPS (cargo-lambda's zips),
//! BENCH_OUT, BENCH_LATENCY_MS (50), BENCH_WORKLOADS (1,10,50,100), BENCH_RUNS (5).

use outposts_ha_tests::bench;
use std::path::PathBuf;
use std::time::Duration;

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|k| k.parse::<u64>().ok()))
        .map(|kib| format!("{:.1} GiB", kib as f64 / 1_048_576.0))
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpu}, {cores} cores, {memory} RAM, Linux {}, {}", kernel.trim(), std::env::consts::ARCH)
}

#[tokio::main]
async fn main() {
    let latency =
        Duration::from_millis(setting("BENCH_LATENCY_MS", "50").parse().expect("BENCH_LATENCY_MS: milliseconds"));
    let workloads: Vec<usize> = setting("BENCH_WORKLOADS", "1,10,50,100")
        .split(',')
        .map(|n| n.trim().parse().expect("BENCH_WORKLOADS: comma-separated counts"))
        .collect();
    let runs: usize = setting("BENCH_RUNS", "5").parse().expect("BENCH_RUNS: a count");
    let out = PathBuf::from(setting("BENCH_OUT", "BENCHMARKS.md"));

    let mut dispatches = Vec::new();
    for &n in &workloads {
        for concurrency in [10, 100] {
            eprintln!("==> dispatch: {n} workloads, LAUNCH_CONCURRENCY {concurrency}");
            match bench::dispatch(n, concurrency, latency).await {
                Ok(d) => dispatches.push(d),
                Err(e) => fail(&format!("dispatch of {n} workloads: {e}")),
            }
        }
    }
    let mut with_groups = Vec::new();
    for (n, t) in [(10, 0), (10, 1), (10, 2), (50, 2)] {
        eprintln!("==> calls with target groups: {n} workloads, {t} groups each");
        match bench::calls_with_target_groups(n, t).await {
            Ok(calls) => with_groups.push((n, t, calls)),
            Err(e) => fail(&format!("calls with {t} target groups: {e}")),
        }
    }
    let cold = match (std::env::var("BENCH_BINARIES"), std::env::var("BENCH_ZIPS")) {
        (Ok(binaries), Ok(zips)) => {
            eprintln!("==> cold starts: {runs} runs per function");
            bench::cold_starts(&PathBuf::from(binaries), &PathBuf::from(zips), runs)
                .await
                .unwrap_or_else(|e| fail(&format!("cold start: {e}")))
        }
        _ => {
            eprintln!("==> cold starts skipped: set BENCH_BINARIES and BENCH_ZIPS (make bench does)");
            Vec::new()
        }
    };
    let tables = bench::report(latency, &dispatches, &with_groups, &cold);
    let intro = std::fs::read_to_string(&out)
        .ok()
        .and_then(|text| text.split("<!-- results -->").next().map(str::to_string))
        .unwrap_or_else(|| "# Benchmarks\n\n".into());
    let text = format!(
        "{intro}<!-- results -->\n\nMachine: {}. Run: {}.\n\n{tables}",
        machine(),
        time::OffsetDateTime::now_utc().date()
    );
    std::fs::write(&out, text).unwrap_or_else(|e| fail(&format!("writing {}: {e}", out.display())));
    println!("{tables}");
    eprintln!("==> written to {}", out.display());
}

fn fail(message: &str) -> ! {
    eprintln!("bench failed: {message}");
    std::process::exit(1);
}
