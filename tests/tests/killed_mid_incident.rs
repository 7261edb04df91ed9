//! A relaunch killed mid-incident (Lambda timeout) right after EC2 accepted a launch, and
//! the event redelivered: every workload ends with exactly one replacement.

use ha_domain::model::tag;
use outposts_ha_tests::emulator::Emulator;
use outposts_ha_tests::faults::{FaultyClient, StallAfterLaunch};
use outposts_ha_tests::roles;
use outposts_ha_tests::site::{tag_of, Site};
use outposts_ha_tests::stack::{alarm_event, Stack};
use relaunch::Relaunch;
use std::collections::BTreeMap;
use std::time::Duration;

const SERVER: &str = "op-0000000000000000e";

#[tokio::test]
async fn a_relaunch_killed_after_ec2_accepted_a_launch_completes_on_redelivery_without_duplicates() {
    let moto = Emulator::start().await;
    let sdk = moto.sdk_config().await;
    let stack = Stack::deploy(&sdk, 1).await;
    let site = Site::create(&sdk).await;
    let standby = site.subnet("10.0.8.0/24").await;
    for i in 0..4 {
        site.declare(SERVER, &format!("k-{i}"), &[&standby], i).await;
    }
    stack
        .alarm(&alarm_event("outposts-ha-killed", SERVER, "OK", "ALARM", "2026-11-22T10:00:00.000+0000"))
        .await
        .unwrap();

    // The RelaunchRequested event the rule would deliver, taken off its queue by hand.
    let relaunch_requests = stack.take_queued(outposts_ha_tests::stack::Function::Relaunch).await;
    assert_eq!(relaunch_requests.len(), 1);
    let request = relaunch_requests[0].clone();

    // First attempt: one workload at a time; the second launch reaches EC2, then the
    // function "dies" (its future is dropped at the timeout). Short lease, so the
    // redelivery may take over at once.
    let config =
        relaunch::Config { claim_lease_seconds: 1, ..outposts_ha_tests::stack::relaunch_config(&stack.store, 1) };
    let doomed = Relaunch::new(
        config.clone(),
        &FaultyClient::new(StallAfterLaunch::new(1)).into_sdk_config(stack.role_sdk(roles::RELAUNCH)),
    );
    let killed = tokio::time::timeout(Duration::from_secs(3), doomed.handle(request.clone(), "req-killed")).await;
    assert!(killed.is_err(), "the first attempt must have been cut off, got {killed:?}");
    assert_eq!(site.replacements().await.len(), 2, "one settled launch and one EC2 accepted before the kill");

    tokio::time::sleep(Duration::from_millis(1_100)).await; // the dead claimant's lease runs out
    let report = Relaunch::new(config, stack.role_sdk(roles::RELAUNCH))
        .handle(request, "req-redelivered")
        .await
        .unwrap()
        .as_launch()
        .cloned()
        .expect("a launch report");
    // The adopted one, the two never started, and the one settled before the kill, whose
    // report died with the first attempt: told now, not lost.
    assert_eq!(report.launched.len(), 4, "{report:?}");
    assert!(report.already_handled.is_empty(), "{report:?}");

    let mut per_workload: BTreeMap<String, usize> = BTreeMap::new();
    for r in site.replacements().await {
        *per_workload.entry(tag_of(&r, tag::WORKLOAD).unwrap().to_string()).or_default() += 1;
    }
    assert_eq!(per_workload, (0..4).map(|i| (format!("k-{i}"), 1)).collect::<BTreeMap<_, _>>());
}
