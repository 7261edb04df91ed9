//! Faults between the functions and AWS: the work still completes, exactly once.

use futures::future::join_all;
use ha_domain::model::tag;
use outposts_ha_tests::emulator::Emulator;
use outposts_ha_tests::faults::{FaultCounts, FaultyClient, Throttling};
use outposts_ha_tests::site::{tag_of, Site};
use outposts_ha_tests::stack::{alarm_event, Stack};
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

const SERVER: &str = "op-0000000000000000f";

#[tokio::test]
async fn thirty_percent_of_aws_calls_throttled_delays_but_never_loses_or_duplicates_work() {
    let moto = Emulator::start().await;
    let sdk = moto.sdk_config().await;
    let counts = Arc::new(FaultCounts::default());
    let flaky = FaultyClient::new(Throttling::thirty_percent(counts.clone())).into_sdk_config(&sdk);
    let stack = Stack::deploy_with_handler_sdk(&sdk, &flaky, 8).await;
    let site = Site::create(&sdk).await;
    let standby = site.subnet("10.0.7.0/24").await;
    for i in 0..10 {
        site.declare(SERVER, &format!("w-{i}"), &[&standby], i).await;
    }

    // Three concurrent deliveries of the alarm, each retried the way Lambda retries a
    // failed asynchronous invocation (two more attempts).
    let event = alarm_event("outposts-ha-flaky", SERVER, "OK", "ALARM", "2026-11-22T10:00:00.000+0000");
    let deliveries = join_all((0..3).map(|_| async {
        let mut last = None;
        for _ in 0..3 {
            match stack.alarm(&event).await {
                Ok(o) => return Ok(o),
                Err(e) => last = Some(e.to_string()),
            }
        }
        Err(last.unwrap_or_default())
    }))
    .await;
    assert!(deliveries.iter().all(Result::is_ok), "{deliveries:?}");

    let delivered = stack.deliver().await;
    assert!(delivered.handler_errors.is_empty(), "{:?}", delivered.handler_errors);

    let replacements = site.replacements().await;
    let workloads: BTreeSet<&str> = replacements.iter().filter_map(|r| tag_of(r, tag::WORKLOAD)).collect();
    assert_eq!(replacements.len(), 10, "exactly one replacement per workload");
    assert_eq!(workloads.len(), 10);

    let notes = stack.told().await;
    let count = |t: &str| notes.iter().filter(|n| n.event_type == t).count();
    assert_eq!((count("IncidentOpened"), count("WorkloadRelaunched")), (1, 10), "every fact told once");

    let (requests, throttled) = (counts.requests.load(Ordering::SeqCst), counts.throttled.load(Ordering::SeqCst));
    eprintln!("throttled {throttled} of {requests} AWS calls");
    assert!(requests > 50 && throttled * 10 >= requests * 3 - 10, "{throttled} of {requests} throttled");
}
