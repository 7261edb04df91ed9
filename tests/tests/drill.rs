//! Drills against moto: every workload of a server goes through a dry-run relaunch
//! (destinations, backup resolution, EC2's own DryRun check) and nothing is launched.

use ha_domain::contract::{DrillRequested, ProjectEvent};
use outposts_ha_tests::emulator::Emulator;
use outposts_ha_tests::site::Site;
use outposts_ha_tests::stack::{Stack, STACK_NAME};

const SERVER_A: &str = "op-0000000000000000a";
const MISSING: &str = "subnet-0123456789abcdef0";

async fn instance_count(site: &Site) -> usize {
    let out = site.ec2.describe_instances().send().await.unwrap();
    out.reservations().iter().map(|r| r.instances().len()).sum()
}

/// An operator's drill of server A, as the bus delivers it to relaunch.
fn drill_request() -> serde_json::Value {
    serde_json::to_value(ProjectEvent::DrillRequested(DrillRequested {
        server_id: SERVER_A.into(),
        requested_at: "2026-11-22T09:00:00.000Z".into(),
    }))
    .unwrap()
}

#[tokio::test]
async fn a_drill_gives_every_workload_a_verdict_and_launches_nothing() {
    let moto = Emulator::start().await;
    let sdk = moto.sdk_config().await;
    let stack = Stack::deploy(&sdk, 8).await;
    let site = Site::create(&sdk).await;
    let standby = site.subnet("10.0.2.0/24").await;
    site.declare(SERVER_A, "pos", &[&standby], 10).await;
    site.declare(SERVER_A, "falls-back", &[MISSING, &standby], 20).await;
    site.declare(SERVER_A, "lost", &[MISSING], 30).await;
    let no_backup = format!("/outposts-ha/{STACK_NAME}/backup/ledger");
    site.declare_with(SERVER_A, "ledger", &[&standby], 40, Some(&no_backup), &[]).await;
    let with_backup = format!("/outposts-ha/{STACK_NAME}/backup/db");
    site.declare_with(SERVER_A, "db", &[&standby], 50, Some(&with_backup), &[]).await;
    site.name_backup(&with_backup).await;
    let before = instance_count(&site).await;

    let request = drill_request();
    let response = stack.relaunch.handle(request, "drill-1").await.unwrap();
    let report = response.as_drill().expect("a drill report");
    assert_eq!(instance_count(&site).await, before, "a drill launches nothing");

    let verdict = |name: &str| report.verdicts.iter().find(|v| v.workload == name).unwrap_or_else(|| panic!("{name}"));
    assert_eq!(report.verdicts.len(), 5);
    assert!(verdict("pos").ready && verdict("pos").destination.as_deref() == Some(standby.as_str()));
    let falls_back = verdict("falls-back");
    assert!(falls_back.ready && falls_back.destination.as_deref() == Some(standby.as_str()));
    assert_eq!(falls_back.problems, vec![format!("{MISSING}: does not exist")]);
    assert!(!verdict("lost").ready && verdict("lost").destination.is_none());
    assert!(
        !verdict("ledger").ready && verdict("ledger").problems[0].starts_with("NoBackup:"),
        "{:?}",
        verdict("ledger")
    );
    let db = verdict("db");
    assert!(db.ready && db.restored_from.as_ref().map(|r| r.image_id.as_str()) == Some(site.image_id.as_str()));

    stack.deliver().await;
    let notes = stack.notifications().await;
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert_eq!(notes[0].event_type, "DrillCompleted");
    assert_eq!(notes[0].subject, format!("[WARNING] {SERVER_A}: drill, 3 of 5 workloads ready"));
    assert!(notes[0].body.contains("NOT READY lost: subnet-0123456789abcdef0: does not exist"), "{}", notes[0].body);
    assert!(notes[0].body.contains(&format!("READY    pos -> {standby}")), "{}", notes[0].body);
}

#[tokio::test]
async fn drill_results_too_large_for_one_put_are_split_and_the_emulator_refuses_an_oversized_put() {
    use aws_sdk_eventbridge::types::PutEventsRequestEntry;
    use aws_smithy_types::error::metadata::ProvideErrorMetadata;
    use ha_domain::contract::{DrillCompleted, DrillVerdict};
    use ha_ports::Bus;

    let moto = Emulator::start().await;
    let sdk = moto.sdk_config().await;
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    events.create_event_bus().name("drills").send().await.unwrap();

    // What EventBridge refuses, the emulator refuses: one 300 KB entry.
    let oversized = PutEventsRequestEntry::builder()
        .event_bus_name("drills")
        .source("outposts-ha")
        .detail_type("DrillCompleted")
        .detail(format!("{{\"x\": \"{}\"}}", "y".repeat(300 * 1024)))
        .build();
    let refused = events.put_events().entries(oversized).send().await.unwrap_err();
    assert_eq!(refused.code(), Some("ValidationException"), "{refused:?}");

    // A drill of 1,000 workloads with long problems (about 700 KB) still reaches the bus.
    let verdicts = (0..1_000)
        .map(|i| DrillVerdict {
            witness: None,
            workload: format!("app-{i:04}"),
            launch_template_id: format!("lt-{i:017x}"),
            ready: false,
            destination: None,
            restored_from: None,
            problems: vec![format!("subnet-{i:017x}: {}", "InsufficientInstanceCapacity ".repeat(20))],
        })
        .collect();
    let drill = ProjectEvent::DrillCompleted(DrillCompleted {
        server_id: SERVER_A.into(),
        requested_at: "2026-11-22T09:00:00.000Z".into(),
        verdicts,
    });
    assert!(drill.entry_bytes() > 256 * 1024);
    ha_aws::bus::EventBridgeBus::new(events, "drills").publish(&[drill]).await.unwrap();
}

/// The capacity probe reads `AWS/Outposts` `AvailableInstanceType_Count` for the standby
/// Outpost (CloudWatch in RPC v2 CBOR, through the emulator's bridge) under relaunch's
/// role: a known 0 makes that destination not ready, another with capacity is chosen.
#[tokio::test]
async fn a_standby_outpost_without_capacity_is_reported_and_skipped() {
    const FULL: &str = "op-0000000000000000b";
    const ROOMY: &str = "op-0000000000000000c";
    let moto = Emulator::start().await;
    let sdk = moto.sdk_config().await;
    let stack = Stack::deploy(&sdk, 8).await;
    let site = Site::create(&sdk).await;
    let full = site.outpost_subnet("10.0.3.0/24", FULL).await;
    let roomy = site.outpost_subnet("10.0.4.0/24", ROOMY).await;
    site.declare(SERVER_A, "pos", &[&full, &roomy], 10).await;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&sdk);
    for (outpost, available) in [(FULL, 0.0), (ROOMY, 3.0)] {
        cloudwatch
            .put_metric_data()
            .namespace("AWS/Outposts")
            .metric_data(
                aws_sdk_cloudwatch::types::MetricDatum::builder()
                    .metric_name("AvailableInstanceType_Count")
                    .dimensions(
                        aws_sdk_cloudwatch::types::Dimension::builder().name("OutpostId").value(outpost).build(),
                    )
                    .dimensions(
                        aws_sdk_cloudwatch::types::Dimension::builder().name("InstanceType").value("m5.large").build(),
                    )
                    .value(available)
                    // A datapoint of the last full period (Outposts publishes every 5 minutes).
                    .timestamp(aws_smithy_types::DateTime::from(
                        std::time::SystemTime::now() - std::time::Duration::from_secs(120),
                    ))
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }

    let request = drill_request();
    let response = stack.relaunch.handle(request, "drill-capacity").await.unwrap();
    let report = response.as_drill().expect("a drill report");
    let pos = &report.verdicts[0];
    assert!(pos.ready && pos.destination.as_deref() == Some(roomy.as_str()), "{pos:?}");
    assert_eq!(
        pos.problems,
        vec![format!("{full}: AvailableInstanceType_Count for m5.large on {FULL} is 0: no capacity")],
        "{pos:?}"
    );
}
