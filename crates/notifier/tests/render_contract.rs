//! Every contract example renders into a valid, readable notification.

use ha_domain::contract::ProjectEvent;
use notifier::render::{render, Severity, MAX_SUBJECT};
use std::path::PathBuf;

fn contract(name: &str) -> ProjectEvent {
    let path = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"))
        .join("../../events/contract")
        .join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn attribute<'a>(n: &'a notifier::render::Notification, key: &str) -> Option<&'a str> {
    n.attributes.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
}

#[test]
fn every_event_for_people_renders_within_sns_limits() {
    let cases = [
        (
            "IncidentOpened",
            Severity::Critical,
            "[CRITICAL] Outposts server op-0123456789abcdef0 down: relaunching 3 workload(s)",
        ),
        (
            "IncidentContinued",
            Severity::Warning,
            "[WARNING] Outposts server op-0123456789abcdef0 down again (incident inc-5d0f3b7e9a1c2e4f6a8b0c1d)",
        ),
        (
            "WorkloadRelaunched",
            Severity::Info,
            "[INFO] Relaunched pos-db from op-0123456789abcdef0 as i-0fedcba9876543210",
        ),
        (
            "WorkloadRelaunchFailed",
            Severity::Critical,
            "[CRITICAL] MANUAL ACTION NEEDED: kiosk from op-0123456789abcdef0 not relaunched",
        ),
        (
            "ServerRecovered",
            Severity::Warning,
            "[WARNING] Outposts server op-0123456789abcdef0 is back (incident inc-5d0f3b7e9a1c2e4f6a8b0c1d)",
        ),
        ("OriginalUnfenced", Severity::Info, "[INFO] Original i-0aaaaaaaaaaaaaaa1 of pos-app back in service"),
    ];
    for (name, severity, subject) in cases {
        let event = contract(name);
        let n = render(&event).unwrap_or_else(|| panic!("{name} must notify"));
        assert_eq!(n.subject, subject, "{name}");
        assert!(n.subject.len() <= MAX_SUBJECT && n.subject.is_ascii(), "{name}");
        assert_eq!(n.severity, severity, "{name}");
        assert_eq!(attribute(&n, "event_type"), Some(name));
        assert_eq!(attribute(&n, "severity"), Some(severity.as_str()));
        assert_eq!(attribute(&n, "server_id"), Some("op-0123456789abcdef0"));
        assert!(n.body.contains("What to do next:"), "{name}");
        let json_start =
            n.body.find("--- event (JSON) ---\n").expect("event JSON in body") + "--- event (JSON) ---\n".len();
        let embedded: ProjectEvent = serde_json::from_str(&n.body[json_start..]).expect("embedded JSON parses");
        assert_eq!(embedded, event, "{name}");
    }
}

#[test]
fn relaunch_requests_are_not_news_for_people() {
    assert!(render(&contract("RelaunchRequested")).is_none());
}

#[test]
fn bodies_say_what_happened() {
    let opened = render(&contract("IncidentOpened")).unwrap().body;
    for expected in ["pos-db", "pos-app", "kiosk", "NOT usable", "signage", "outposts-ha:subnets is missing"] {
        assert!(opened.contains(expected), "IncidentOpened body lacks {expected}:\n{opened}");
    }
    let relaunched = render(&contract("WorkloadRelaunched")).unwrap().body;
    for expected in ["i-0fedcba9876543210", "subnet-0f9e8d7c6b5a40312", "refused first", "InsufficientInstanceCapacity"]
    {
        assert!(relaunched.contains(expected), "WorkloadRelaunched body lacks {expected}:\n{relaunched}");
    }
    let failed = render(&contract("WorkloadRelaunchFailed")).unwrap().body;
    for expected in ["could NOT be relaunched", "MANUAL ACTION NEEDED", "lt-0aaaaaaaaaaaaaaa2", "standby server"] {
        assert!(failed.contains(expected), "WorkloadRelaunchFailed body lacks {expected}:\n{failed}");
    }
}

#[test]
fn long_workload_names_keep_the_subject_within_limits() {
    let ProjectEvent::WorkloadRelaunched(mut e) = contract("WorkloadRelaunched") else { unreachable!() };
    e.workload = "w".repeat(128);
    let n = render(&ProjectEvent::WorkloadRelaunched(e)).unwrap();
    assert_eq!(n.subject.len(), MAX_SUBJECT);
    assert!(n.subject.starts_with("[INFO] Relaunched www") && n.subject.ends_with("..."));
}

#[test]
fn an_isolated_original_says_which_groups_it_lost() {
    let ProjectEvent::OriginalFenced(mut fenced) = contract("OriginalFenced") else {
        panic!("an OriginalFenced sample")
    };
    let body = |e: &ha_domain::contract::OriginalFenced| render(&ProjectEvent::OriginalFenced(e.clone())).unwrap().body;
    fenced.previous_interface_groups.clear();
    fenced.previous_security_groups = vec!["sg-0aaa".into(), "sg-0bbb".into()];
    assert!(body(&fenced).contains("Security groups sg-0aaa, sg-0bbb were swapped for the quarantine group"));
    fenced.previous_security_groups.clear();
    let text = body(&fenced);
    assert!(text.contains("It had no security groups; it now has only the quarantine group"), "{text}");
    assert!(!text.contains("groups  were"), "{text}");
    // An original with a local network interface: each interface's groups are told.
    let interface = |id: &str, device_index: i32, groups: &[&str]| ha_domain::fencing::InterfaceGroups {
        interface_id: id.into(),
        device_index,
        groups: groups.iter().map(|g| g.to_string()).collect(),
    };
    fenced.previous_interface_groups =
        vec![interface("eni-0main", 0, &["sg-0aaa", "sg-0bbb"]), interface("eni-0lni", 1, &["sg-0ccc"])];
    let text = body(&fenced);
    assert!(
        text.contains("its 2 network interfaces (eni-0main: sg-0aaa, sg-0bbb; eni-0lni: sg-0ccc) were swapped"),
        "{text}"
    );
    // Isolating the second interface failed for good: never told as isolated.
    fenced.action = ha_domain::contract::FenceOutcome::PartlyIsolatedFenceFailed;
    let text = body(&fenced);
    assert!(text.contains("failed for good after some of its network interfaces were moved"), "{text}");
    assert!(text.contains("MANUAL ACTION NEEDED") && !text.contains("were swapped"), "{text}");
}
