//! The server came back: its originals are fenced and the incident closes; an operator
//! may put an original back.

use super::EventText;
use ha_domain::contract::{FenceOutcome, IncidentClosed, OriginalFenced, OriginalUnfenced, ServerRecovered};

pub(super) fn server_recovered(e: &ServerRecovered) -> EventText {
    let incident = e.incident_id.as_deref().unwrap_or("none open");
    EventText {
        headline: format!("Outposts server {} is back (incident {})", e.server_id, incident),
        what_happened: vec![
            format!(
                "The alarm {} returned to OK at {}: server {} is connected again.",
                e.alarm_name, e.recovered_at, e.server_id
            ),
            format!("Open incident: {incident}."),
        ],
        what_to_do_next: vec![
            "The original instances may be running again beside their replacements.".into(),
            "Make sure only one copy of each replaced workload serves before returning traffic.".into(),
        ],
    }
}

pub(super) fn original_fenced(e: &OriginalFenced) -> EventText {
    let mut what = vec![
        format!(
            "Original {} of workload {} on Outposts server {} was {} (policy {}).",
            e.instance_id,
            e.workload,
            e.server_id,
            e.action.as_str(),
            e.policy.as_str()
        ),
        format!("Its replacement {} keeps serving. Incident {}.", e.replacement_instance_id, e.incident_id),
    ];
    if let (FenceOutcome::PartlyIsolatedFenceFailed, Some(q)) = (e.action, &e.quarantine_security_group) {
        what.push(format!(
            "Isolating it failed for good after some of its network interfaces were moved to the quarantine group {q}; the others still carry traffic. The previous groups ({}) are kept in its tags outposts-ha:fenced-groups:<interface id>.",
            interface_groups_text(&e.previous_interface_groups)
        ));
    } else if let Some(q) = &e.quarantine_security_group {
        what.push(if e.previous_interface_groups.len() > 1 {
            format!(
                "The security groups of its {} network interfaces ({}) were swapped for the quarantine group {q} (no traffic in or out); the previous ones are kept in its tags outposts-ha:fenced-groups:<interface>.",
                e.previous_interface_groups.len(),
                interface_groups_text(&e.previous_interface_groups)
            )
        } else if e.previous_security_groups.is_empty() {
            format!("It had no security groups; it now has only the quarantine group {q} (no traffic in or out).")
        } else {
            format!(
                "Security groups {} were swapped for the quarantine group {q} (no traffic in or out); the previous ones are kept in its tag outposts-ha:fenced-groups:<interface id>.",
                e.previous_security_groups.join(", ")
            )
        });
    }
    let next = match e.action {
        FenceOutcome::Isolated => vec![
            "Copy any data you need from the isolated original, then terminate it.".to_string(),
            format!("To put it back in service instead: make unfence INSTANCE={}", e.instance_id),
        ],
        FenceOutcome::Terminated => vec!["Nothing: only the replacement runs now.".to_string()],
        FenceOutcome::PartlyIsolatedFenceFailed => vec![
            format!(
                "MANUAL ACTION NEEDED: the original {} may still serve beside replacement {}; isolate its remaining interfaces or stop it.",
                e.instance_id, e.replacement_instance_id
            ),
            format!("To put it back in service instead: make unfence INSTANCE={} FORCE=1", e.instance_id),
        ],
        FenceOutcome::LeftRunning | FenceOutcome::LeftRunningNoVpc | FenceOutcome::LeftRunningFenceFailed => {
            vec![format!(
                "MANUAL ACTION NEEDED: two copies of {} are running; stop one before they diverge.",
                e.workload
            )]
        }
        FenceOutcome::StillIsolatedReplacementNotRunning => vec![
            format!(
                "MANUAL ACTION NEEDED: no copy of {} serves: replacement {} is not running and the original {} is still isolated from an earlier incident.",
                e.workload, e.replacement_instance_id, e.instance_id
            ),
            format!("To put the original back in service: make unfence INSTANCE={} FORCE=1", e.instance_id),
        ],
        FenceOutcome::KeptBothCopies => vec![
            format!(
                "MANUAL ACTION NEEDED: {} was relaunched while its original {} still answered on the store network (or nobody could tell): both copies may have taken writes since. Nothing was isolated or terminated.",
                e.workload, e.instance_id
            ),
            format!(
                "Reconcile the data, keep one copy and stop the other: the original {} or the replacement {}.",
                e.instance_id, e.replacement_instance_id
            ),
        ],
        FenceOutcome::KeptReplacementNotRunning => vec![format!(
            "MANUAL ACTION NEEDED: replacement {} is not running, so the original {} stays the only copy of {}; check why the replacement stopped.",
            e.replacement_instance_id, e.instance_id, e.workload
        )],
    };
    EventText {
        headline: format!("Original {} of {} {}", e.instance_id, e.workload, e.action.as_str()),
        what_happened: what,
        what_to_do_next: next,
    }
}

pub(super) fn incident_closed(e: &IncidentClosed) -> EventText {
    EventText {
        headline: format!("Incident {} on {} closed", e.incident_id, e.server_id),
        what_happened: vec![
            format!(
                "Outposts server {} is back (at {}); incident {} is closed.",
                e.server_id, e.recovered_at, e.incident_id
            ),
            e.summary.clone(),
        ],
        what_to_do_next: vec![
            "Plan the fail-back: the replacements keep serving until you move the workloads home.".into()
        ],
    }
}

pub(super) fn original_unfenced(e: &OriginalUnfenced) -> EventText {
    let workload = e.workload.as_deref().unwrap_or("(no workload tag)");
    let server = e.server_id.as_deref().unwrap_or("an unknown server");
    let mut what = vec![format!(
        "Original {} of workload {} on {} is back in service on an operator's word (make unfence), at {}.",
        e.instance_id, workload, server, e.unfenced_at
    )];
    what.push(if e.interface_groups.len() > 1 || (e.security_groups.is_empty() && !e.interface_groups.is_empty()) {
        format!(
            "The security groups of {} of its network interfaces were restored ({}).",
            e.interface_groups.len(),
            interface_groups_text(&e.interface_groups)
        )
    } else if e.security_groups.is_empty() {
        "It had not been isolated: only its fencing marks were removed.".to_string()
    } else {
        format!("Security groups {} were restored.", e.security_groups.join(", "))
    });
    what.push(format!("It had been fenced for incident {}.", e.incident_id));
    let next = if e.forced {
        let replacement = e.replacement_instance_id.as_deref().unwrap_or("its replacement");
        what.push(format!("It was put back by force while {replacement} may still run."));
        vec![format!("MANUAL ACTION NEEDED: two copies of {workload} may be running; stop one before they diverge.")]
    } else {
        vec!["Nothing: no replacement of the workload runs.".to_string()]
    };
    EventText {
        headline: format!("Original {} of {} back in service", e.instance_id, workload),
        what_happened: what,
        what_to_do_next: next,
    }
}

/// `eni-a: sg-1, sg-2; eni-b: sg-3`.
fn interface_groups_text(interfaces: &[ha_domain::fencing::InterfaceGroups]) -> String {
    let groups = |i: &ha_domain::fencing::InterfaceGroups| {
        if i.groups.is_empty() {
            "groups unknown".to_string()
        } else {
            i.groups.join(", ")
        }
    };
    interfaces.iter().map(|i| format!("{}: {}", i.interface_id, groups(i))).collect::<Vec<_>>().join("; ")
}
