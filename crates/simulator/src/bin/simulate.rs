//! `make simulate SEEDS=N [FIRST=K]` runs N random schedules; `make simulate SEED=S`
//! replays one and prints its trace. Results go to stderr (the handlers' metric lines
//! go to stdout, as they do in Lambda).

use simulator::{mass_outage_report, report, run, sweep, Scenario};
use std::time::Instant;

fn arg(name: &str) -> Option<u64> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok())
}

/// Replaces (or appends) the mass-outage section of a markdown file.
fn write_section(path: &str, section: &str) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.find("## Mass outage (simulated)");
    let kept = match start {
        Some(at) => {
            let rest = &text[at + 1..];
            let end = rest.find("\n## ").map(|e| at + 1 + e + 1);
            format!("{}{}", &text[..at], end.map_or("", |e| &text[e..]))
        }
        None => text,
    };
    let joined = format!("{}\n{section}", kept.trim_end());
    std::fs::write(path, joined).unwrap_or_else(|e| panic!("writing {path}: {e}"));
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--mass-outage") {
        let servers = arg("--servers").unwrap_or(50) as usize;
        let workloads = arg("--workloads").unwrap_or(10) as usize;
        let started = Instant::now();
        let (section, outcome) = mass_outage_report(servers, workloads);
        eprintln!("{section}\n(simulated in {:.1} s)", started.elapsed().as_secs_f64());
        if let Some(i) = args.iter().position(|a| a == "--out") {
            write_section(&args[i + 1], &section);
        }
        std::process::exit(if outcome.passed() { 0 } else { 1 });
    }
    if let Some(seed) = arg("--seed") {
        let outcome = run(&Scenario::random(seed));
        eprintln!(
            "{}",
            report(&outcome)
                .replace("broke the promise", if outcome.passed() { "kept the promise" } else { "broke the promise" })
        );
        std::process::exit(if outcome.passed() { 0 } else { 1 });
    }
    let seeds = arg("--seeds").unwrap_or(2_000);
    let first = arg("--first").unwrap_or(0);
    let started = Instant::now();
    let (passed, failed) = sweep(first, seeds);
    let seconds = started.elapsed().as_secs_f64();
    for f in failed.iter().take(3) {
        eprintln!("{}", report(f));
    }
    for f in &failed {
        for v in &f.violations {
            eprintln!("seed {}: {v}", f.seed);
        }
    }
    let invocations: u64 = passed.iter().chain(&failed).map(|o| o.invocations).sum();
    eprintln!(
        "{seeds} schedules from seed {first} in {seconds:.1} s ({:.0} per second, {invocations} invocations): {} failed",
        seeds as f64 / seconds,
        failed.len()
    );
    if !failed.is_empty() {
        let seeds: Vec<String> = failed.iter().map(|o| o.seed.to_string()).collect();
        eprintln!("failing seeds: {}", seeds.join(" "));
        std::process::exit(1);
    }
}
