//! The failover path end to end against moto: alarm → incident → concurrent,
//! exactly-once relaunch → notification, with events routed as the template's rules do.

use futures::future::join_all;
use futures::StreamExt;
use ha_aws::invocation::{HandlerError, NotYet};
use ha_domain::model::tag;
use outposts_ha_tests::emulator::Emulator;
use outposts_ha_tests::site::{tag_of, DeclaredWorkload, Site};
use outposts_ha_tests::stack::{alarm_event, instance_running_event, Stack};
use std::collections::{BTreeMap, BTreeSet};

const SERVER_A: &str = "op-0000000000000000a";
const SERVER_B: &str = "op-0000000000000000b";
const ALARM_A: &str = "outposts-ha-store-a";
const ALARM_B: &str = "outposts-ha-store-b";
const T1: &str = "2026-11-22T10:00:00.000+0000";
const T2: &str = "2026-11-22T10:03:00.000+0000";
const T3: &str = "2026-11-22T10:06:00.000+0000";

struct World {
    _moto: Emulator,
    stack: Stack,
    site: Site,
    a: Vec<DeclaredWorkload>,
    b: Vec<DeclaredWorkload>,
    standby: BTreeMap<&'static str, String>,
}

/// Two protected servers: A with 3 workloads, B with 20, each with a standby subnet.
async fn world() -> World {
    let moto = Emulator::start().await;
    let sdk = moto.sdk_config().await;
    let stack = Stack::deploy(&sdk, 8).await;
    let site = Site::create(&sdk).await;
    let standby_a = site.subnet("10.0.1.0/24").await;
    let standby_b = site.subnet("10.0.2.0/24").await;
    let mut a = Vec::new();
    for i in 0..3 {
        a.push(site.declare(SERVER_A, &format!("a-{i}"), &[&standby_a], 10 + i).await);
    }
    let mut b = Vec::new();
    for i in 0..20 {
        b.push(site.declare(SERVER_B, &format!("b-{i:02}"), &[&standby_b], 100 - i).await);
    }
    let standby = BTreeMap::from([(SERVER_A, standby_a), (SERVER_B, standby_b)]);
    World { _moto: moto, stack, site, a, b, standby }
}

fn names(ws: &[DeclaredWorkload]) -> BTreeSet<String> {
    ws.iter().map(|w| w.name.clone()).collect()
}

async fn replaced_workloads(site: &Site) -> Vec<String> {
    let mut v: Vec<String> =
        site.replacements().await.iter().map(|i| tag_of(i, tag::WORKLOAD).unwrap_or_default().to_string()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn alarm_on_server_a_relaunches_exactly_its_workloads_with_tags_and_notifications() {
    let w = world().await;
    let outcomes = w.stack.alarm(&alarm_event(ALARM_A, SERVER_A, "OK", "ALARM", T1)).await.unwrap();
    assert!(
        matches!(
            &outcomes[0],
            alarm_handler::Outcome::Relaunching { workloads: 3, new_incident: true, flap: false, .. }
        ),
        "{outcomes:?}"
    );
    let delivered = w.stack.deliver().await;
    assert!(delivered.handler_errors.is_empty(), "{:?}", delivered.handler_errors);

    let replacements = w.site.replacements().await;
    assert_eq!(replacements.len(), 3);
    let declared: BTreeMap<String, &DeclaredWorkload> = w.a.iter().map(|d| (d.name.clone(), d)).collect();
    let mut incidents = BTreeSet::new();
    for r in &replacements {
        let workload = tag_of(r, tag::WORKLOAD).expect("workload tag");
        assert!(declared.contains_key(workload), "{workload} is not one of A's workloads");
        assert_eq!(r.subnet_id(), Some(w.standby[SERVER_A].as_str()), "{workload} not in A's standby subnet");
        assert_eq!(tag_of(r, tag::SOURCE_SERVER), Some(SERVER_A));
        assert_eq!(tag_of(r, tag::ROLE), Some(tag::ROLE_REPLACEMENT));
        incidents.insert(tag_of(r, tag::INCIDENT).expect("incident tag").to_string());
    }
    assert_eq!(incidents.len(), 1, "one incident for one transition");
    assert_eq!(replaced_workloads(&w.site).await, names(&w.a).into_iter().collect::<Vec<_>>());

    // One message, the opening, with its incident; per-workload facts stay on the bus.
    let notes = w.stack.notifications().await;
    let incident = incidents.iter().next().unwrap();
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert_eq!(notes[0].subject, format!("[CRITICAL] {incident} {SERVER_A}: server down, relaunching 3 workload(s)"));
    assert_eq!(notes[0].server_id, SERVER_A);
    assert!(notes[0].body.contains("Done by Outposts HA:") && notes[0].body.contains("Left to you:"));
    let facts = w.stack.told().await;
    for d in &w.a {
        let instance = replacements.iter().find(|r| tag_of(r, tag::WORKLOAD) == Some(d.name.as_str())).unwrap();
        let told = facts
            .iter()
            .filter(|f| f.event_type == "WorkloadRelaunched" && f.body.contains(instance.instance_id().unwrap()))
            .count();
        assert_eq!(told, 1, "{} told relaunched once: {facts:#?}", d.name);
    }
}

#[tokio::test]
async fn five_concurrent_deliveries_of_one_event_launch_each_workload_once() {
    let w = world().await;
    let event = alarm_event(ALARM_B, SERVER_B, "OK", "ALARM", T1);
    let results = join_all((0..5).map(|_| w.stack.alarm(&event))).await;
    let new_incidents = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter(|o| matches!(o[0], alarm_handler::Outcome::Relaunching { new_incident: true, .. }))
        .count();
    assert_eq!(new_incidents, 1, "exactly one delivery opens the incident: {results:?}");
    // A delivery that found the opening being told by another fails as NotYet; Lambda
    // retries it a minute later, when it goes through.
    for r in &results {
        if let Err(e) = r {
            assert!(matches!(e, HandlerError::NotYet { reason: NotYet::BeingTold, .. }), "{e}");
            w.stack.alarm(&event).await.unwrap();
        }
    }

    // Five RelaunchRequested events now wait on the relaunch rule; they run concurrently.
    let delivered = w.stack.deliver().await;
    assert!(delivered.handler_errors.is_empty(), "{:?}", delivered.handler_errors);
    assert_eq!(delivered.relaunch_reports.len(), 5);
    // Deliveries that found a workload being launched by another answered NotYet and were
    // retried; by the end every pass accounts for all 20, each launched once (below).
    for r in delivered.relaunch_reports.iter().filter_map(|r| r.as_launch()) {
        assert_eq!(r.launched.len() + r.already_handled.len(), 20, "{r:?}");
    }

    let replaced = replaced_workloads(&w.site).await;
    assert_eq!(replaced, names(&w.b).into_iter().collect::<Vec<_>>(), "one replacement per workload of B, none of A");

    // The same event again, after everything finished: nothing new.
    w.stack.alarm(&event).await.unwrap();
    let again = w.stack.deliver().await;
    assert_eq!(again.relaunch_reports.len(), 1);
    assert_eq!(again.relaunch_reports[0].as_launch().expect("a launch").already_handled.len(), 20);
    assert_eq!(w.site.replacements().await.len(), 20);

    let opened = w.stack.notifications().await.iter().filter(|n| n.event_type == "IncidentOpened").count();
    let relaunched = w.stack.told().await.iter().filter(|n| n.event_type == "WorkloadRelaunched").count();
    assert_eq!((opened, relaunched), (1, 20), "each fact told once, no duplicates");
}

#[tokio::test]
async fn a_flapping_alarm_does_not_launch_a_second_wave() {
    let w = world().await;
    w.stack.alarm(&alarm_event(ALARM_A, SERVER_A, "OK", "ALARM", T1)).await.unwrap();
    w.stack.deliver().await;
    assert_eq!(w.site.replacements().await.len(), 3);

    // Back for a moment: the incident is fenced and closed...
    let back = w.stack.alarm(&alarm_event(ALARM_A, SERVER_A, "ALARM", "OK", T2)).await.unwrap();
    assert!(matches!(&back[0], alarm_handler::Outcome::ServerRecovered { incident_id: Some(_), .. }), "{back:?}");
    w.stack.deliver().await;

    // ...so the next ALARM is a new incident, but every workload already runs on its standby.
    let again = w.stack.alarm(&alarm_event(ALARM_A, SERVER_A, "OK", "ALARM", T3)).await.unwrap();
    assert!(matches!(&again[0], alarm_handler::Outcome::Relaunching { new_incident: true, .. }), "{again:?}");
    w.stack.alarm(&alarm_event(ALARM_A, SERVER_A, "OK", "ALARM", T3)).await.unwrap();
    let delivered = w.stack.deliver().await;
    assert!(delivered.handler_errors.is_empty(), "{:?}", delivered.handler_errors);

    let replacements = w.site.replacements().await;
    assert_eq!(replacements.len(), 3, "no second wave");
    let incidents: BTreeSet<&str> = replacements.iter().filter_map(|r| tag_of(r, tag::INCIDENT)).collect();
    assert_eq!(incidents.len(), 1);

    let notes = w.stack.notifications().await;
    let count = |t: &str| notes.iter().filter(|n| n.event_type == t).count();
    // The second incident's failover is complete at once: its workloads already serve.
    assert_eq!((count("IncidentOpened"), count("IncidentClosed"), count("FailoverCompleted")), (2, 1, 1), "{notes:#?}");
    let summary = notes.iter().find(|n| n.event_type == "FailoverCompleted").unwrap();
    assert!(summary.subject.ends_with("failover complete: 3/3 up"), "{}", summary.subject);
    assert_eq!(notes.len(), 4, "{notes:#?}");
    let facts = w.stack.told().await;
    let told = |t: &str| facts.iter().filter(|n| n.event_type == t).count();
    assert_eq!((told("ServerRecovered"), told("WorkloadRelaunched")), (1, 6), "{facts:#?}");
    let already = facts.iter().filter(|n| n.body.contains("\"already_replaced_in\"")).count();
    assert_eq!(already, 3, "the second incident says each workload already runs on its standby");
}

#[tokio::test]
async fn a_refused_destination_falls_back_and_an_exhausted_workload_escalates() {
    let moto = Emulator::start().await;
    let sdk = moto.sdk_config().await;
    let stack = Stack::deploy(&sdk, 4).await;
    let site = Site::create(&sdk).await;
    let good = site.subnet("10.0.1.0/24").await;
    // Destinations that do not exist: EC2 refuses them with InvalidSubnetID.NotFound.
    let gone_1 = "subnet-0deadbeefdeadbee1";
    let gone_2 = "subnet-0deadbeefdeadbee2";
    site.declare(SERVER_A, "fallback", &[gone_1, &good], 1).await;
    site.declare(SERVER_A, "stranded", &[gone_1, gone_2], 2).await;
    site.declare(SERVER_A, "healthy", &[&good], 3).await;

    stack.alarm(&alarm_event(ALARM_A, SERVER_A, "OK", "ALARM", T1)).await.unwrap();
    let delivered = stack.deliver().await;
    assert!(delivered.handler_errors.is_empty(), "{:?}", delivered.handler_errors);
    let report = delivered.relaunch_reports[0].as_launch().expect("a launch report");
    assert_eq!(
        report.launched.iter().collect::<BTreeSet<_>>(),
        ["fallback", "healthy"].iter().map(|s| s.to_string()).collect::<BTreeSet<_>>().iter().collect()
    );
    assert_eq!(report.failed, vec!["stranded".to_string()]);

    let replacements = site.replacements().await;
    assert_eq!(replacements.len(), 2, "one failed launch never stops the others");
    let fallback = replacements.iter().find(|r| tag_of(r, tag::WORKLOAD) == Some("fallback")).unwrap();
    assert_eq!(fallback.subnet_id(), Some(good.as_str()));

    let notes = stack.notifications().await;
    let relaunched = stack
        .told()
        .await
        .into_iter()
        .find(|n| n.event_type == "WorkloadRelaunched" && n.body.contains("\"workload\":\"fallback\""))
        .expect("fallback told");
    assert!(
        relaunched.body.contains(gone_1) && relaunched.body.contains("InvalidSubnetID.NotFound"),
        "{}",
        relaunched.body
    );
    let escalation = notes
        .iter()
        .find(|n| n.event_type == "WorkloadRelaunchFailed")
        .expect("an escalation for the stranded workload");
    assert!(escalation.subject.starts_with("[CRITICAL] inc-"), "{}", escalation.subject);
    assert!(escalation.subject.ends_with(&format!("{SERVER_A}: stranded not relaunched")), "{}", escalation.subject);
    assert_eq!(escalation.severity, "critical");
    assert!(escalation.body.contains(gone_1) && escalation.body.contains(gone_2), "{}", escalation.body);

    // Redelivery does not start a launch loop for the stranded workload.
    stack.alarm(&alarm_event(ALARM_A, SERVER_A, "OK", "ALARM", T1)).await.unwrap();
    let again = stack.deliver().await;
    assert_eq!(again.relaunch_reports[0].as_launch().expect("a launch").already_handled.len(), 3);
    assert!(stack.notifications().await.iter().all(|n| n.event_type != "WorkloadRelaunchFailed"));
}

#[tokio::test]
async fn every_payload_shape_of_one_transition_opens_one_incident() {
    let w = world().await;
    let dir =
        std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo")).join("../events/alarm");
    // The documented samples all describe op-0123456789abcdef0; declare one workload for it.
    let sample_server = "op-0123456789abcdef0";
    w.site.declare(sample_server, "sample", &[&w.standby[SERVER_A]], 1).await;
    for file in [
        "eventbridge-server-down.json",
        "sns-single-metric-server-down.json",
        "sns-metric-math-server-down.json",
        "lambda-action-server-down.json",
    ] {
        let event: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap();
        let outcome = w.stack.alarm(&event).await.unwrap();
        assert!(matches!(&outcome[0], alarm_handler::Outcome::Relaunching { workloads: 1, .. }), "{file}: {outcome:?}");
    }
    w.stack.deliver().await;
    assert_eq!(replaced_workloads(&w.site).await, vec!["sample".to_string()]);
    let opened = w.stack.notifications().await.into_iter().filter(|n| n.event_type == "IncidentOpened").count();
    assert_eq!(opened, 1);
}

#[tokio::test]
async fn ignored_and_malformed_input_launches_nothing() {
    let w = world().await;
    let dir =
        std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo")).join("../events/alarm");
    for file in [
        "eventbridge-insufficient-data.json",
        "eventbridge-unrelated-alarm.json",
        "eventbridge-our-alarm-without-outpost-id.json",
    ] {
        let event: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap();
        let outcome = w.stack.alarm(&event).await.unwrap();
        assert!(matches!(&outcome[0], alarm_handler::Outcome::Ignored { .. }), "{file}: {outcome:?}");
    }
    for junk in
        [serde_json::json!({}), serde_json::json!("text"), serde_json::json!({"Records": [{"Sns": {"Message": "{"}}]})]
    {
        let outcome = w.stack.alarm(&junk).await.unwrap();
        assert!(matches!(&outcome[0], alarm_handler::Outcome::Rejected { .. }), "{junk}: {outcome:?}");
    }
    let report = w
        .stack
        .relaunch
        .handle(serde_json::json!({"detail-type": "RelaunchRequested", "detail": {"incident_id": 7}}), "req-x")
        .await
        .unwrap();
    assert!(report.ignored().is_some());
    assert_eq!(w.stack.deliver().await.relaunch_reports.len(), 0);
    assert!(w.site.replacements().await.is_empty());
    // B's workloads are untouched by all of the above.
    assert!(!w.b.is_empty());
}

#[tokio::test]
async fn a_hundred_workload_outage_and_its_return_mail_a_handful_of_messages() {
    let moto = Emulator::start().await;
    let sdk = moto.sdk_config().await;
    let stack = Stack::deploy(&sdk, 10).await;
    let site = Site::create(&sdk).await;
    let standby = site.subnet("10.0.1.0/24").await;
    for i in 0..100 {
        site.declare(SERVER_A, &format!("app-{i:03}"), &[&standby], 100).await;
    }
    // Two whose only destination is gone: each needs a person.
    for name in ["broken-1", "broken-2"] {
        site.declare(SERVER_A, name, &["subnet-0deadbeef00000000"], 1).await;
    }
    stack.alarm(&alarm_event(ALARM_A, SERVER_A, "OK", "ALARM", T1)).await.unwrap();
    assert!(stack.deliver().await.handler_errors.is_empty());
    let replacements = site.replacements().await;
    assert_eq!(replacements.len(), 100);
    // Each replacement reaches running (no target groups: running is serving).
    let ids: Vec<(String, String)> = replacements
        .iter()
        .enumerate()
        .map(|(n, r)| (r.instance_id().unwrap().to_string(), format!("run-{n}")))
        .collect();
    // Twenty at a time: the emulator answers one request after another, and a hundred at once
    // keep a PutEvents waiting longer than the 50 s telling lease, which AWS never does.
    let served: Vec<_> = futures::stream::iter(ids.iter())
        .map(|(id, request)| stack.relaunch.handle(instance_running_event(id), request))
        .buffer_unordered(20)
        .collect()
        .await;
    assert!(served.iter().all(Result::is_ok), "{:?}", served.iter().find(|r| r.is_err()));
    stack.deliver().await;
    stack.alarm(&alarm_event(ALARM_A, SERVER_A, "ALARM", "OK", T3)).await.unwrap();
    assert!(stack.deliver().await.handler_errors.is_empty());

    // The inbox: the opening, one message per workload that needs a person, the failover
    // summary, the closing. Per-workload facts stay on the bus.
    let inbox = stack.inbox().await;
    let kinds: Vec<&str> = inbox.iter().map(|n| n.event_type.as_str()).collect();
    assert_eq!(
        kinds,
        ["IncidentOpened", "WorkloadRelaunchFailed", "WorkloadRelaunchFailed", "FailoverCompleted", "IncidentClosed"],
        "{:#?}",
        inbox.iter().map(|n| &n.subject).collect::<Vec<_>>()
    );
    let incident = tag_of(&replacements[0], tag::INCIDENT).unwrap();
    assert!(inbox.iter().all(|n| n.subject.contains(incident)), "the incident in every subject");
    let summary = &inbox[3];
    assert!(summary.subject.ends_with("failover: 100/102 up, 2 need you"), "{}", summary.subject);
    assert!(summary.body.contains("broken-1: InvalidSubnetID.NotFound"), "{}", summary.body);
    let closing = &inbox[4];
    assert!(closing.body.contains("100 workload(s) had been replaced"), "{}", closing.body);
    assert!(closing.body.contains("Timeline:"), "{}", closing.body);
    assert_eq!(closing.severity, "info", "no original needed a person; it arrives as the thread: {}", closing.body);

    // On the bus, every fact once; the pages: one trigger per critical message.
    let facts = stack.told().await;
    let count = |t: &str| facts.iter().filter(|f| f.event_type == t).count();
    assert_eq!((count("WorkloadRelaunched"), count("WorkloadServing"), count("FailoverCompleted")), (100, 100, 1));
    let pages: Vec<serde_json::Value> = facts
        .iter()
        .filter(|f| f.event_type == "OnCallAlert")
        .map(|f| serde_json::from_str(&f.body).unwrap())
        .collect();
    let actions: Vec<&str> = pages.iter().map(|p| p["action"].as_str().unwrap()).collect();
    assert_eq!(actions.iter().filter(|a| **a == "trigger").count(), 4, "{actions:?}");
    assert!(pages.iter().all(|p| p["dedup_key"] == incident), "one on-call incident: {pages:#?}");
}
