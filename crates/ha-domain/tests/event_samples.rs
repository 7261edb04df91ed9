//! Every sample under `events/` parses, and means what its name says.

use ha_domain::alarm::{classify_transition, parse_alarm_notification, AlarmVerdict, PayloadShape};
use ha_domain::contract::ProjectEvent;
use ha_domain::incident::IncidentId;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;

fn events_dir() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo")).join("../../events")
}

fn load(rel: &str) -> Value {
    let path = events_dir().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn files_in(sub: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(events_dir().join(sub))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

const PREFIX: &str = "outposts-ha-";

#[test]
fn every_alarm_sample_is_classified_as_its_name_says() {
    let expected: &[(&str, &str, PayloadShape)] = &[
        ("eventbridge-server-down.json", "down", PayloadShape::EventBridge),
        ("eventbridge-server-back.json", "back", PayloadShape::EventBridge),
        ("eventbridge-insufficient-data.json", "ignore", PayloadShape::EventBridge),
        ("eventbridge-unrelated-alarm.json", "ignore", PayloadShape::EventBridge),
        ("eventbridge-our-alarm-without-outpost-id.json", "suspicious", PayloadShape::EventBridge),
        ("sns-single-metric-server-down.json", "down", PayloadShape::Sns),
        ("sns-metric-math-server-down.json", "down", PayloadShape::Sns),
        ("lambda-action-server-down.json", "down", PayloadShape::AlarmAction),
    ];
    let listed: BTreeSet<&str> = expected.iter().map(|e| e.0).collect();
    let present: BTreeSet<String> = files_in("alarm").into_iter().collect();
    assert_eq!(present, listed.iter().map(|s| s.to_string()).collect(), "every sample must be in this table");

    for (file, want, shape) in expected {
        let transitions =
            parse_alarm_notification(&load(&format!("alarm/{file}"))).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(transitions.len(), 1, "{file}");
        assert_eq!(transitions[0].shape, *shape, "{file}");
        let verdict = classify_transition(&transitions[0], PREFIX);
        let got = match &verdict {
            AlarmVerdict::ServerDown(s) => {
                assert_eq!(s.as_str(), "op-0123456789abcdef0", "{file}");
                "down"
            }
            AlarmVerdict::ServerBack(_) => "back",
            AlarmVerdict::Ignore(r) if r.is_suspicious() => "suspicious",
            AlarmVerdict::Ignore(_) => "ignore",
        };
        assert_eq!(got, *want, "{file}: {verdict:?}");
    }
}

#[test]
fn the_three_shapes_of_one_transition_name_one_incident() {
    let ids: BTreeSet<IncidentId> = [
        "alarm/eventbridge-server-down.json",
        "alarm/sns-single-metric-server-down.json",
        "alarm/sns-metric-math-server-down.json",
        "alarm/lambda-action-server-down.json",
    ]
    .iter()
    .map(|f| {
        let t = parse_alarm_notification(&load(f)).unwrap().remove(0);
        IncidentId::derive(&t.alarm_arn, t.state_change_time)
    })
    .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
}

#[test]
fn every_contract_example_round_trips_and_every_event_type_has_one() {
    let mut seen = BTreeSet::new();
    for file in files_in("contract") {
        let envelope = load(&format!("contract/{file}"));
        assert_eq!(envelope["source"], "outposts-ha", "{file}");
        let event: ProjectEvent = serde_json::from_value(envelope.clone()).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(format!("{}.json", event.detail_type()), file);
        let detail: Value = serde_json::from_str(&event.detail_json()).unwrap();
        assert_eq!(detail, envelope["detail"], "{file}: a field was lost or added in the round trip");
        seen.insert(event.detail_type());
    }
    let all = [
        "IncidentOpened",
        "IncidentContinued",
        "RelaunchRequested",
        "WorkloadRelaunched",
        "WorkloadRelaunchFailed",
        "ServerRecovered",
        "FenceRequested",
        "BackupCompleted",
        "BackupFailed",
        "BackupStale",
        "OriginalFenced",
        "IncidentClosed",
        "RelaunchSuppressed",
        "DrillRequested",
        "DrillCompleted",
        "WorkloadServing",
        "MaintenanceRequested",
        "UnfenceRequested",
        "IncidentStatusRequested",
        "OriginalUnfenced",
        "WitnessVerdict",
        "MassOutage",
        "ReleaseRequested",
        "FailoverCompleted",
        "OnCallAlert",
        "FleetDrillRequested",
        "FleetDrillCompleted",
        "FleetStatusRequested",
        "FailbackRequested",
        "StandbyReconcileRequested",
        "StandbyPromoted",
        "PromotionFailed",
        "StandbyDrifted",
    ];
    assert_eq!(seen, all.into_iter().collect::<BTreeSet<_>>());
}

#[test]
fn backup_triggers_are_read_from_the_samples() {
    use ha_domain::backup::{parse_trigger, BackupTrigger};
    assert_eq!(
        parse_trigger(&load("backup/scheduled-tick.json")),
        Ok(BackupTrigger::Tick { tick: "2026-11-22T09:00:00Z".into() })
    );
    assert_eq!(
        parse_trigger(&load("backup/execution-status-change.json")),
        Ok(BackupTrigger::ExecutionChanged {
            execution_id: "333ba70b-2333-48db-b17e-a5e69c6f4d1c".into(),
            document: "BackupOutpostsServerLinuxInstanceToEBS".into(),
            status: "Success".into(),
        })
    );
}
