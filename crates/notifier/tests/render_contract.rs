//! Every message an on-call person can receive, rendered from the contract's examples:
//! within SNS's limits, with the incident in the subject, and word for word as the golden
//! files in `docs/messages/` hold them (docs/reference.md shows them). Regenerate them with
//! `UPDATE_GOLDEN=1 cargo test -p notifier --test render_contract`.

use ha_domain::contract::{FenceOutcome, ProjectEvent};
use notifier::presentation::Presentation;
use notifier::render::{render, Severity, MAX_SUBJECT};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo")).join("../..")
}

fn contract(name: &str) -> ProjectEvent {
    let path = root().join("events/contract").join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn presentation() -> Presentation {
    Presentation::new(
        "UTC",
        "https://github.com/outposts-ha/outposts-ha/blob/main/docs/runbook.md",
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#dashboards/dashboard/outposts-ha",
    )
    .unwrap()
}

fn attribute<'a>(n: &'a notifier::render::Notification, key: &str) -> Option<&'a str> {
    n.attributes.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
}

fn kept_both_copies() -> ProjectEvent {
    let ProjectEvent::OriginalFenced(mut e) = contract("OriginalFenced") else { unreachable!() };
    e.action = FenceOutcome::KeptBothCopies;
    e.quarantine_security_group = None;
    e.previous_interface_groups.clear();
    e.previous_security_groups.clear();
    ProjectEvent::OriginalFenced(e)
}

fn failover_all_serving() -> ProjectEvent {
    let ProjectEvent::FailoverCompleted(mut e) = contract("FailoverCompleted") else { unreachable!() };
    e.serving = vec!["pos-app".into(), "kiosk".into(), "pos-db".into(), "inventory-db".into()];
    (e.failed, e.held, e.unusable) = (vec![], vec![], vec![]);
    ProjectEvent::FailoverCompleted(e)
}

/// Every message kind: (golden file, event, severity).
fn messages() -> Vec<(&'static str, ProjectEvent, Severity)> {
    vec![
        ("incident-opened", contract("IncidentOpened"), Severity::Critical),
        ("failover-needs-you", contract("FailoverCompleted"), Severity::Critical),
        ("failover-complete", failover_all_serving(), Severity::Info),
        ("workload-not-relaunched", contract("WorkloadRelaunchFailed"), Severity::Critical),
        ("witness-held", contract("WitnessVerdict"), Severity::Critical),
        ("mass-outage", contract("MassOutage"), Severity::Critical),
        ("original-kept-beside-replacement", kept_both_copies(), Severity::Critical),
        ("incident-closed", contract("IncidentClosed"), Severity::Info),
        ("server-flapping", contract("IncidentContinued"), Severity::Warning),
        ("down-during-maintenance", contract("RelaunchSuppressed"), Severity::Warning),
        ("original-put-back", contract("OriginalUnfenced"), Severity::Info),
        ("backup-failed", contract("BackupFailed"), Severity::Warning),
        ("backup-stale", contract("BackupStale"), Severity::Warning),
        ("drill", contract("DrillCompleted"), Severity::Warning),
        ("fleet-drill", contract("FleetDrillCompleted"), Severity::Warning),
        ("promotion-failed", contract("PromotionFailed"), Severity::Warning),
        ("standby-drifted", contract("StandbyDrifted"), Severity::Info),
    ]
}

#[test]
fn every_message_renders_within_sns_limits_as_its_golden_file_says() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut stale = Vec::new();
    for (file, event, severity) in messages() {
        let n = render(&event, &presentation()).unwrap_or_else(|| panic!("{file} must notify"));
        assert!(n.subject.len() <= MAX_SUBJECT && n.subject.is_ascii(), "{file}: {}", n.subject);
        assert_eq!(n.severity, severity, "{file}");
        assert_eq!(attribute(&n, "event_type"), Some(event.detail_type()));
        assert_eq!(attribute(&n, "severity"), Some(severity.as_str()));
        if let Some(incident) = attribute(&n, "incident_id") {
            assert!(n.subject.contains(incident), "{file}: the incident in the subject: {}", n.subject);
        }
        for section in ["Done by Outposts HA:", "Left to you:", "Runbook: https://"] {
            assert!(n.body.contains(section), "{file} lacks {section}");
        }
        let json_start =
            n.body.find("--- event (JSON) ---\n").expect("event JSON in body") + "--- event (JSON) ---\n".len();
        let words = &n.body[..json_start];
        assert!(!words.contains(".000Z") && !words.contains(".123Z"), "{file}: times people read:\n{words}");
        let embedded: ProjectEvent = serde_json::from_str(&n.body[json_start..]).expect("embedded JSON parses");
        assert_eq!(embedded, event, "{file}");
        let text = format!(
            "Subject: {}\n\n{}\n",
            n.subject,
            n.body[..json_start - "\n\n--- event (JSON) ---\n".len()].trim_end()
        );
        let path = root().join("docs/messages").join(format!("{file}.txt"));
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(format!("{file}:\n{text}"));
        }
    }
    assert!(stale.is_empty(), "golden messages differ (UPDATE_GOLDEN=1 to accept):\n{}", stale.join("\n"));
}

#[test]
fn per_workload_facts_and_commands_are_not_mailed() {
    for name in ["RelaunchRequested", "WorkloadRelaunched", "WorkloadServing", "ServerRecovered", "BackupCompleted"] {
        assert!(render(&contract(name), &presentation()).is_none(), "{name}");
    }
    let ProjectEvent::OriginalFenced(isolated) = contract("OriginalFenced") else { unreachable!() };
    assert_eq!(isolated.action, FenceOutcome::Isolated);
    assert!(render(&ProjectEvent::OriginalFenced(isolated), &presentation()).is_none(), "told in the closing");
}

#[test]
fn subjects_name_the_incident_and_the_site_within_limits() {
    let n = render(&contract("IncidentOpened"), &presentation()).unwrap();
    assert_eq!(
        n.subject,
        "[CRITICAL] inc-5d0f3b7e9a1c2e4f6a8b0c1d Store 17, Main St: server down, relaunching 3 workload(s)"
    );
    let ProjectEvent::IncidentOpened(mut long) = contract("IncidentOpened") else { unreachable!() };
    long.site_name = Some("The Very Long Name Of A Store In A Far Away Town".into());
    long.workloads = (0..100).map(|i| format!("w{i}")).collect();
    let n = render(&ProjectEvent::IncidentOpened(long), &presentation()).unwrap();
    assert!(n.subject.len() <= MAX_SUBJECT, "{}", n.subject);
    assert!(n.subject.contains("inc-5d0f3b7e9a1c2e4f6a8b0c1d The Very Long Name Of...:"), "{}", n.subject);
    let ProjectEvent::IncidentOpened(mut unnamed) = contract("IncidentOpened") else { unreachable!() };
    unnamed.site_name = None;
    let n = render(&ProjectEvent::IncidentOpened(unnamed), &presentation()).unwrap();
    assert!(n.subject.contains("inc-5d0f3b7e9a1c2e4f6a8b0c1d op-0123456789abcdef0:"), "{}", n.subject);
}

#[test]
fn a_partly_isolated_original_says_which_groups_it_lost() {
    let ProjectEvent::OriginalFenced(mut fenced) = contract("OriginalFenced") else { unreachable!() };
    let interface = |id: &str, device_index: i32, groups: &[&str]| ha_domain::fencing::InterfaceGroups {
        interface_id: id.into(),
        device_index,
        groups: groups.iter().map(|g| g.to_string()).collect(),
    };
    fenced.previous_interface_groups =
        vec![interface("eni-0main", 0, &["sg-0aaa", "sg-0bbb"]), interface("eni-0lni", 1, &["sg-0ccc"])];
    fenced.action = FenceOutcome::PartlyIsolatedFenceFailed;
    let text = render(&ProjectEvent::OriginalFenced(fenced), &presentation()).unwrap().body;
    assert!(text.contains("failed for good after some of its network interfaces were moved"), "{text}");
    assert!(text.contains("eni-0main: sg-0aaa, sg-0bbb; eni-0lni: sg-0ccc"), "{text}");
    assert!(text.contains("may still serve beside replacement"), "{text}");
}
