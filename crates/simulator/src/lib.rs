//! Deterministic simulation of the incident protocol (docs/design.md, testing layer 2): the
//! real alarm-handler, relaunch and operator code in an in-memory AWS world, under a seeded
//! scheduler with virtual time. A failing seed prints its trace and the command that
//! replays it.

mod invariants;
pub mod run;
pub mod scenario;
pub mod template;
pub mod world;

pub use run::{backup_race, run, Outcome};
pub use scenario::{Action, Scenario};

/// Runs `count` random schedules from `first`; the failures, with their traces.
pub fn sweep(first: u64, count: u64) -> (Vec<Outcome>, Vec<Outcome>) {
    let (mut passed, mut failed) = (Vec::new(), Vec::new());
    for seed in first..first + count {
        let outcome = run(&Scenario::random(seed));
        if outcome.passed() {
            passed.push(outcome);
        } else {
            failed.push(outcome);
        }
    }
    (passed, failed)
}

/// What a person needs to see a failing schedule: what broke, how it happened, and how
/// to run it again.
pub fn report(o: &Outcome) -> String {
    let mut text = format!("schedule {} (seed {}) broke the promise:\n", o.name, o.seed);
    for v in &o.violations {
        text.push_str(&format!("  {v}\n"));
    }
    text.push_str("trace:\n");
    for line in &o.trace {
        text.push_str(&format!("  {line}\n"));
    }
    text.push_str(&format!("replay: make simulate SEED={}\n", o.seed));
    text
}

/// The mass-outage benchmark as a BENCHMARKS.md section: alarm-to-launch times in virtual
/// time, calls per incident and throttled calls, and whether the promise held.
pub fn mass_outage_report(servers: usize, workloads: usize) -> (String, Outcome) {
    let outcome = run(&Scenario::mass_outage(7, servers, workloads));
    let mut times = outcome.alarm_to_launch_ms.clone();
    times.sort_unstable();
    let pct = |p: f64| {
        times.get(((times.len() as f64 * p).ceil() as usize).saturating_sub(1)).map_or(0.0, |ms| *ms as f64 / 1000.0)
    };
    let incidents = outcome.incidents.max(1);
    let text = format!(
        "## Mass outage (simulated)\n\n\
Reproduce with `make bench` (or `target/debug/simulate --mass-outage`). {servers} servers with {workloads} \
workloads each go down within one minute in the simulator's world (crates/simulator): the real \
handlers, EC2's documented token buckets (RunInstances 5 requests refilled at 2/s and 1,000 \
instances at 2/s; Describe* 100 at 20/s; mutating calls 50 at 5/s), Lambda's retries and the \
template's five-minute reconcile pass; no other fault. Times are virtual: from each alarm's \
state change to each accepted RunInstances.\n\n\
| measure | value |\n|---|---|\n\
| launches | {} |\n| alarm → launch p50 | {:.0} s |\n| alarm → launch p99 | {:.0} s |\n\
| alarm → launch max | {:.0} s |\n| AWS calls | {} ({:.0} per incident) |\n\
| throttled calls | {} |\n| invocations | {} |\n| events to the failed-events queue | {} |\n\
| invariants I1–I7 | {} |\n",
        times.len(),
        pct(0.5),
        pct(0.99),
        times.last().map_or(0.0, |ms| *ms as f64 / 1000.0),
        outcome.calls,
        outcome.calls as f64 / incidents as f64,
        outcome.throttled,
        outcome.invocations,
        outcome.dead_letters,
        if outcome.passed() { "held".to_string() } else { format!("broken: {}", outcome.violations.join("; ")) },
    );
    (text, outcome)
}
