//! `make simulate SEEDS=N [FIRST=K]` runs N random schedules; `make simulate SEED=S`
//! replays one and prints its trace; `--mass-outage`, `--dispatch` and `--recovery` [--out FILE] write
//! their BENCHMARKS.md sections. Results go to stderr (the handlers' metric lines
//! go to stdout, as they do in Lambda).

use simulator::{dispatch_report, mass_outage_report, recovery_report, report, run, sweep, Scenario};
use std::time::Instant;

fn arg(name: &str) -> Option<u64> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok())
}

/// Replaces (or appends) the section of a markdown file that starts with `heading`.
fn write_section(path: &str, heading: &str, section: &str) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.find(heading);
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
            write_section(&args[i + 1], "## Mass outage (simulated)", &section);
        }
        std::process::exit(if outcome.passed() { 0 } else { 1 });
    }
    if args.iter().any(|a| a == "--recovery") {
        let (section, outcomes) = recovery_report();
        eprintln!("{section}");
        if let Some(i) = args.iter().position(|a| a == "--out") {
            write_section(&args[i + 1], "## Recovery time by mode (simulated)", &section);
        }
        let broken: Vec<&String> = outcomes.iter().flat_map(|o| o.violations.iter()).collect();
        for v in &broken {
            eprintln!("broken: {v}");
        }
        std::process::exit(if broken.is_empty() { 0 } else { 1 });
    }
    if args.iter().any(|a| a == "--dispatch") {
        let started = Instant::now();
        let (section, rows) = dispatch_report();
        eprintln!("{section}\n(simulated in {:.1} s)", started.elapsed().as_secs_f64());
        if let Some(i) = args.iter().position(|a| a == "--out") {
            write_section(&args[i + 1], "## Dispatch against the sequential loop (simulated)", &section);
        }
        // The rows without any SDK retry show the simulator's other schedules, not the deployed
        // functions: their broken invariants are reported in the section, not a failure here.
        let deployed = rows.iter().filter(|d| d.sdk == simulator::dispatch::PRODUCT_SDK);
        let broken: Vec<String> = deployed.flat_map(|d| d.product.outcome.violations.clone()).collect();
        for v in &broken {
            eprintln!("invariant broken: {v}");
        }
        std::process::exit(if broken.is_empty() { 0 } else { 1 });
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
