//! The dispatch benchmark: the product against the reference loop in the same simulated
//! world, under the latency model (`world::LATENCIES`): virtual time from the alarm's state
//! change to the last accepted RunInstances, and the product's critical path, traced from the
//! world's timed calls.

use crate::run::{run, Outcome};
use crate::scenario::Scenario;
use crate::world::{LatencyModel, SdkRetry, Span};
use std::collections::BTreeMap;

/// The RunInstances request bucket an account might be granted on request (the documented
/// one holds 5 tokens refilled at 2 per second): an assumption, to separate the bucket's
/// effect from the rest.
pub const RAISED_RUN_INSTANCES: (f64, f64) = (100.0, 20.0);

/// The EC2 reads the product makes on its way to a launch.
pub const PRODUCT_DESCRIBES: [&str; 4] =
    ["DescribeLaunchTemplates", "DescribeLaunchTemplateVersions", "DescribeInstances", "DescribeSubnets"];

/// Which EC2 request buckets the account has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limits {
    /// As EC2 documents them.
    Documented,
    /// RunInstances raised to `RAISED_RUN_INSTANCES`.
    RunInstancesRaised,
    /// RunInstances raised, and the Describe* calls the product makes never throttled (a
    /// hypothetical: what the round trips alone cost).
    NoDescribeThrottling,
}

impl Limits {
    fn buckets(self) -> Vec<(&'static str, f64, f64)> {
        let run = ("RunInstances", RAISED_RUN_INSTANCES.0, RAISED_RUN_INSTANCES.1);
        match self {
            Limits::Documented => Vec::new(),
            Limits::RunInstancesRaised => vec![run],
            Limits::NoDescribeThrottling => {
                std::iter::once(run).chain(PRODUCT_DESCRIBES.map(|api| (api, 1e9, 1e9))).collect()
            }
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Limits::Documented => "documented",
            Limits::RunInstancesRaised => "RunInstances raised",
            Limits::NoDescribeThrottling => "RunInstances raised, no Describe* throttling (hypothetical)",
        }
    }
}

/// The product's LAUNCH_CONCURRENCY default.
pub const DEFAULT_CONCURRENCY: usize = 10;

/// The functions' SDK as deployed (ha-aws `runtime::retry_config`).
pub const PRODUCT_SDK: SdkRetry = SdkRetry::RustStandard { max_attempts: 6 };

/// One side's run.
#[derive(Debug, Clone)]
pub struct Side {
    /// Alarm state change → the last accepted RunInstances (virtual ms); `None`: no launch.
    pub last_launch_ms: Option<i64>,
    /// Alarm state change → the first accepted RunInstances.
    pub first_launch_ms: Option<i64>,
    pub launches: usize,
    pub throttled: u64,
    pub calls: u64,
    pub outcome: Outcome,
}

impl Side {
    fn of(outcome: Outcome) -> Side {
        Side {
            last_launch_ms: outcome.alarm_to_launch_ms.iter().max().copied(),
            first_launch_ms: outcome.alarm_to_launch_ms.iter().min().copied(),
            launches: outcome.alarm_to_launch_ms.len(),
            throttled: outcome.throttled,
            calls: outcome.calls,
            outcome,
        }
    }

    /// Until the last launch (epoch ms), or the whole run.
    fn horizon(&self) -> i64 {
        match (self.outcome.first_alarm_ms, self.last_launch_ms) {
            (Some(alarm), Some(last)) => alarm + last,
            _ => i64::MAX,
        }
    }

    /// Trace lines up to the last launch.
    fn trace_until_last_launch(&self) -> impl Iterator<Item = &String> {
        let until = self.horizon() - crate::world::BASE_EPOCH_MS;
        self.outcome.trace.iter().filter(move |l| {
            let at = l.split_whitespace().next().and_then(|t| t.trim_end_matches('s').parse::<f64>().ok());
            at.is_some_and(|s| (s * 1000.0).round() as i64 <= until)
        })
    }

    /// Invocations of a function for one kind of event up to the last launch, from the trace
    /// ("relaunch-3 starts (RelaunchRequested, attempt 0)"); `retries`: only Lambda's retries.
    pub fn invocations_of(&self, function: &str, detail_type: &str, retries: bool) -> usize {
        let prefix = format!("{function}-");
        let kind = format!(" starts ({detail_type}, attempt ");
        self.trace_until_last_launch()
            .filter(|l| l.split_whitespace().nth(1).is_some_and(|w| w.starts_with(&prefix)))
            .filter(|l| l.contains(&kind) && (!retries || !l.contains(&format!("{kind}0)"))))
            .count()
    }

    /// Throttled attempts by operation, up to the last launch.
    pub fn throttled_by_operation(&self) -> BTreeMap<String, usize> {
        let until = self.horizon();
        let mut by = BTreeMap::new();
        for s in self.outcome.spans.iter().filter(|s| s.throttled && s.end_ms <= until) {
            let op = s.what.split(' ').next().unwrap_or_default().to_string();
            *by.entry(op).or_default() += 1;
        }
        by
    }

    /// Throttled attempts up to the last launch.
    pub fn throttled_until_last_launch(&self) -> usize {
        self.throttled_by_operation().values().sum()
    }

    /// Calls given up (after the SDK's retries, or at once without them), up to the last
    /// launch: each reached its handler as a failure.
    pub fn throttles_surfaced(&self) -> BTreeMap<String, usize> {
        let mut by = BTreeMap::new();
        for l in self.trace_until_last_launch().filter(|l| l.contains(" throttled and not retried")) {
            let op = l.split_whitespace().nth(1).unwrap_or_default().to_string();
            *by.entry(op).or_default() += 1;
        }
        by
    }
}

/// One measurement: the product and the loop at the same N in the same world.
#[derive(Debug, Clone)]
pub struct Dispatch {
    pub workloads: usize,
    pub launch_concurrency: usize,
    pub limits: Limits,
    pub sdk: SdkRetry,
    pub product: Side,
    pub reference: Side,
}

impl Dispatch {
    /// Loop time over product time (both alarm → last accepted launch).
    pub fn speed_up(&self) -> Option<f64> {
        match (self.product.last_launch_ms, self.reference.last_launch_ms) {
            (Some(p), Some(r)) if p > 0 => Some(r as f64 / p as f64),
            _ => None,
        }
    }
}

/// The dispatch world: `workloads` stateless workloads on one server, one destination.
pub fn scenario(workloads: usize, launch_concurrency: usize, limits: Limits, sdk: SdkRetry) -> Scenario {
    let mut s = Scenario::dispatch(workloads);
    s.launch_concurrency = launch_concurrency;
    s.latency = Some(LatencyModel::documented(sdk));
    s.buckets = limits.buckets();
    // Its operator tells relaunch the bucket the account was granted.
    if limits != Limits::Documented {
        s.run_instances_rate = (RAISED_RUN_INSTANCES.0 as usize, RAISED_RUN_INSTANCES.1 as usize);
    }
    s
}

/// The product, then the loop, in two runs of the same scenario: each its own copy of the
/// world (the same templates, latencies and fresh token buckets), so the loop's launches
/// neither take the product's tokens nor count as its launches.
pub fn measure(workloads: usize, launch_concurrency: usize, limits: Limits, sdk: SdkRetry) -> Dispatch {
    let s = scenario(workloads, launch_concurrency, limits, sdk);
    let product = Side::of(run(&s));
    let reference = Side::of(run(&s.answered_by_the_loop()));
    Dispatch { workloads, launch_concurrency, limits, sdk, product, reference }
}

/// One step of a critical path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The call (or delivery) waited for; calls of one join that began and ended together
    /// are named together, joined by " ∥ ".
    pub what: String,
    /// From the alarm's state change.
    pub starts_ms: i64,
    pub ms: i64,
    /// Calls that ran beside it and ended no later (a join's shorter branches): free.
    pub beside: Vec<String>,
}

fn is_delivery(s: &Span) -> bool {
    s.what.contains('→')
}

/// The chain of timed things that ends at the first accepted RunInstances: from it, back
/// through whatever ended exactly when the next began (virtual time: handlers take none, so
/// a call starts when the last thing it waited for ends; of calls that end together, the
/// longest is the one waited for), to the alarm. A wait no span covers (an SDK backoff, a
/// Lambda retry) is a step of its own.
pub fn critical_path(o: &Outcome) -> Vec<Step> {
    let Some(alarm) = o.first_alarm_ms else { return Vec::new() };
    let Some(first) = o.alarm_to_launch_ms.iter().min().map(|ms| alarm + ms) else { return Vec::new() };
    let is_launch = |s: &Span| s.what.starts_with("RunInstances") && !s.throttled && s.end_ms == first;
    let Some(mut current) = o.spans.iter().find(|s| is_launch(s)) else { return Vec::new() };
    let mut path = vec![current];
    let mut waits = Vec::new();
    while current.start_ms > alarm {
        let before = o
            .spans
            .iter()
            .filter(|s| s.end_ms == current.start_ms && s.start_ms < s.end_ms)
            .min_by_key(|s| (s.start_ms, s.what.clone()));
        match before {
            Some(s) => current = s,
            None => {
                // Nothing ended then: a wait (backoff, retry) since the last thing that did.
                let Some(s) = o.spans.iter().filter(|s| s.end_ms < current.start_ms).max_by_key(|s| s.end_ms) else {
                    break;
                };
                waits.push(Step {
                    what: "wait (no call in flight: a backoff or a retry)".into(),
                    starts_ms: s.end_ms - alarm,
                    ms: current.start_ms - s.end_ms,
                    beside: Vec::new(),
                });
                current = s;
            }
        }
        path.push(current);
    }
    let mut steps: Vec<Step> = path
        .into_iter()
        .map(|s| {
            let together: Vec<&Span> = o
                .spans
                .iter()
                .filter(|t| t.start_ms == s.start_ms && t.end_ms == s.end_ms && is_delivery(t) == is_delivery(s))
                .collect();
            let mut names: Vec<String> = together.iter().map(|t| t.what.clone()).collect();
            names.sort();
            names.dedup();
            let beside = o
                .spans
                .iter()
                .filter(|t| t.start_ms >= s.start_ms && t.end_ms <= s.end_ms && t.end_ms > t.start_ms)
                .filter(|t| !is_delivery(t) && !together.contains(t))
                .map(|t| format!("{} {} ms", t.what, t.end_ms - t.start_ms))
                .collect();
            Step { what: names.join(" ∥ "), starts_ms: s.start_ms - alarm, ms: s.end_ms - s.start_ms, beside }
        })
        .chain(waits)
        .collect();
    steps.sort_by_key(|s| s.starts_ms);
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_workload_is_measured_on_both_sides() {
        let d = measure(1, DEFAULT_CONCURRENCY, Limits::Documented, PRODUCT_SDK);
        assert!(d.product.outcome.passed(), "{:?}", d.product.outcome.violations);
        assert_eq!((d.product.launches, d.reference.launches), (1, 1));
        assert!(d.product.last_launch_ms.is_some_and(|ms| ms > 0));
        assert!(d.reference.last_launch_ms.is_some_and(|ms| ms > 0));
        assert_eq!(d.product.outcome.first_alarm_ms, d.reference.outcome.first_alarm_ms, "the same alarm");
        let path = critical_path(&d.product.outcome);
        assert!(path.first().is_some_and(|s| s.starts_ms == 0), "the path starts at the alarm: {path:?}");
        assert!(path.last().is_some_and(|s| s.what.starts_with("RunInstances")), "and ends at the launch: {path:?}");
    }

    #[test]
    fn a_throttled_launch_is_retried_by_each_side_s_sdk() {
        // A bucket the loop's one launch every 1.5 s outruns, and the product's burst too.
        let mut s = scenario(6, DEFAULT_CONCURRENCY, Limits::Documented, PRODUCT_SDK);
        s.buckets = vec![("RunInstances", 1.0, 0.5)];
        let product = run(&s);
        let reference = run(&s.answered_by_the_loop());
        for o in [&product, &reference] {
            assert!(o.throttled > 0, "{} was throttled", o.name);
            assert!(o.spans.iter().any(|s| s.what.starts_with("RunInstances") && s.what.contains("(attempt 2)")));
        }
        assert_eq!(product.alarm_to_launch_ms.len(), 6, "the product launches every workload in the end");
        assert!(product.passed(), "{:?}", product.violations);
    }
}
