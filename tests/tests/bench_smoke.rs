//! The benchmark's measuring code runs (small, no timing asserted: speed lives in
//! `make bench`, not in tests) and counts what an incident costs.

use outposts_ha_tests::bench;
use std::time::Duration;

#[tokio::test]
async fn a_small_dispatch_is_measured_and_its_calls_counted() {
    let d = bench::dispatch(3, 10, Duration::from_millis(1)).await.unwrap();
    assert_eq!(d.calls.get("RunInstances"), Some(&3), "{:?}", d.calls);
    assert_eq!(d.calls.get("DescribeLaunchTemplates"), Some(&1), "{:?}", d.calls);
    assert!(d.calls.get("Publish").copied().unwrap_or(0) >= 4, "IncidentOpened + 3 WorkloadRelaunched: {:?}", d.calls);
    assert!(d.product > Duration::ZERO && d.sequential > Duration::ZERO);
    let table = bench::report(Duration::from_millis(1), &[d], &[], &[]);
    assert!(table.contains("| 3 | 10 |"), "{table}");
}

#[tokio::test]
async fn serving_calls_are_counted_per_target_group() {
    let calls = bench::calls_with_target_groups(2, 2).await.unwrap();
    assert_eq!(calls.get("RegisterTargets"), Some(&4), "{calls:?}");
    assert_eq!(calls.get("DeregisterTargets"), Some(&4), "each original leaves both groups: {calls:?}");
    let table = bench::report(Duration::from_millis(1), &[], &[(2, 2, calls)], &[]);
    assert!(table.contains("| 2 | 2 |"), "{table}");
}
