//! `make demo`'s scenario, asserted, so the demo cannot rot.

#[tokio::test]
async fn the_demo_story_relaunches_server_a_and_tells_the_operator() {
    let mut out = Vec::new();
    let summary = outposts_ha_tests::demo::run(&mut out).await.expect("demo runs");
    let text = String::from_utf8(out).unwrap();
    let workloads: Vec<&str> = summary.rows.iter().map(|r| r.workload.as_str()).collect();
    assert_eq!(workloads, ["kiosk", "pos-app", "pos-db"], "{text}");
    assert!(summary.rows.iter().all(|r| r.replacement.starts_with("i-")));
    assert!(
        summary.notifications.iter().any(|s| s.starts_with("[CRITICAL] Outposts server op-0a1b2c3d4e5f60718 down")),
        "{text}"
    );
    assert!(
        summary.notifications.iter().any(|s| s.starts_with("[WARNING] Outposts server op-0a1b2c3d4e5f60718 is back")),
        "{text}"
    );
    assert!(summary.notifications.iter().any(|s| s.starts_with("[INFO] Incident ") && s.ends_with("closed")), "{text}");
    assert_eq!(summary.notifications.len(), 6, "{:#?}", summary.notifications);
    assert!(text.contains("Summary") && text.contains("InvalidSubnetID.NotFound"), "{text}");
}
