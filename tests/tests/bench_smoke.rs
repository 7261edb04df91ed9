//! The benchmark's measuring code runs (small, no timing asserted: speed lives in
//! `make bench`, not in tests) and counts what an incident costs.

use outposts_ha_tests::bench;
use std::time::Duration;

#[tokio::test]
async fn a_small_dispatch_is_measured_and_its_calls_counted() {
    let d = bench::dispatch(3, 10, Duration::from_millis(1)).await.unwrap();
    assert_eq!(d.calls.get("RunInstances"), Some(&3), "{:?}", d.calls);
    assert_eq!(d.calls.get("DescribeLaunchTemplates"), Some(&1), "{:?}", d.calls);
    // The opening is mailed (and the witness's verdict); the three relaunches are not.
    let published = d.calls.get("Publish").copied().unwrap_or(0);
    assert!((1..=2).contains(&published), "{:?}", d.calls);
    assert_eq!(d.calls.get("ListTagsForResource"), Some(&1), "the site name read once: {:?}", d.calls);
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

#[tokio::test]
async fn a_cold_start_is_measured_under_the_local_lambda_runner() {
    // The notifier's debug binary (the workspace build `cargo test` shares), on an event it
    // answers without calling AWS.
    let debug = std::env::current_exe().unwrap().parent().and_then(|deps| deps.parent()).unwrap().to_path_buf();
    let binary = debug.join("notifier");
    assert!(binary.is_file(), "{} is missing: build the workspace first (make functions-debug)", binary.display());
    let env: Vec<(String, String)> = [
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("TOPIC_ARN", "arn:aws:sns:eu-west-1:123456789012:outposts-ha"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let event = serde_json::json!({"detail-type": "DrillRequested", "source": "outposts-ha",
        "detail": {"server_id": "op-0123456789abcdef0", "requested_at": "2026-11-22T09:00:00.000Z"}});
    let measured = bench::cold_start("notifier", &binary, None, &env, &event, 2).await.unwrap();
    assert_eq!(measured.ready.len(), 2, "{measured:?}");
    assert!(measured.ready.iter().all(|d| *d > Duration::ZERO), "{measured:?}");
    assert!(measured.peak_rss_kib > 0, "{measured:?}");
}
