//! The server came back: an original that needs a person, the incident's closing; an
//! operator put an original back.

use super::{place, EventText};
use crate::presentation::Presentation;
use ha_domain::contract::{FenceOutcome, IncidentClosed, OriginalFenced, OriginalUnfenced};

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
    let unfence =
        |force: &str| format!("To put it back in service instead: make unfence INSTANCE={}{force}", e.instance_id);
    let (done, left): (Vec<String>, Vec<String>) = match e.action {
        FenceOutcome::Isolated => (
            vec!["Isolated the original (quarantine security group); its replacement serves.".into()],
            vec!["Copy any data you need from the isolated original, then terminate it.".into(), unfence("")],
        ),
        FenceOutcome::Terminated => (vec!["Terminated the original; only the replacement runs.".into()], Vec::new()),
        FenceOutcome::PartlyIsolatedFenceFailed => (
            vec!["Quarantined some of the original's network interfaces; isolating the rest failed for good.".into()],
            vec![
                format!(
                    "The original {} may still serve beside replacement {}: isolate its remaining interfaces or stop it.",
                    e.instance_id, e.replacement_instance_id
                ),
                unfence(" FORCE=1"),
            ],
        ),
        FenceOutcome::LeftRunning | FenceOutcome::LeftRunningNoVpc | FenceOutcome::LeftRunningFenceFailed => (
            vec![format!("Left the original running ({}).", e.action.as_str())],
            vec![format!("Two copies of {} are running: stop one before they diverge.", e.workload)],
        ),
        FenceOutcome::StillIsolatedReplacementNotRunning => (
            vec!["Touched nothing: the replacement is not running and the original is still isolated from an earlier incident.".into()],
            vec![
                format!(
                    "No copy of {} serves: replacement {} is not running and the original {} is isolated.",
                    e.workload, e.replacement_instance_id, e.instance_id
                ),
                format!("To put the original back in service: make unfence INSTANCE={} FORCE=1", e.instance_id),
            ],
        ),
        FenceOutcome::KeptBothCopies => (
            vec![format!(
                "Touched neither copy: {} was relaunched while its original {} still answered on the store network (or nobody could tell), so both may have taken writes.",
                e.workload, e.instance_id
            )],
            vec![format!(
                "Reconcile the data, keep one copy and stop the other: the original {} or the replacement {}.",
                e.instance_id, e.replacement_instance_id
            )],
        ),
        FenceOutcome::KeptReplacementNotRunning => (
            vec![format!("Kept the original {}: its replacement is not running, so it is the only copy.", e.instance_id)],
            vec![format!(
                "Check why replacement {} of {} stopped; the original keeps serving meanwhile.",
                e.replacement_instance_id, e.workload
            )],
        ),
    };
    EventText {
        headline: format!("{}: {}", e.workload, short_outcome(e.action)),
        what_happened: what,
        done,
        left_to_you: left,
    }
}

pub(super) fn incident_closed(e: &IncidentClosed, p: &Presentation) -> EventText {
    let mut what = vec![format!(
        "{} is back ({}); incident {} is closed.",
        place(e.site_name.as_deref(), &e.server_id),
        p.when(&e.recovered_at),
        e.incident_id
    )];
    let mut left = Vec::new();
    if e.originals.is_empty() {
        what.push(format!("{} workload(s) had been replaced; no original needed fencing.", e.replaced.len()));
    } else {
        what.push(String::new());
        what.push(format!("Originals of the {} replaced workload(s):", e.replaced.len()));
        what.extend(e.originals.iter().map(|o| format!("  - {} {}: {}", o.workload, o.instance_id, o.action.as_str())));
        let needs: Vec<&str> = e
            .originals
            .iter()
            .filter(|o| o.action.leaves_original_running() || o.action.replacement_not_running())
            .map(|o| o.workload.as_str())
            .collect();
        if !needs.is_empty() {
            left.push(format!(
                "Resolve the originals sent to you on their own ({}): two copies may run, or one is the only copy.",
                needs.join(", ")
            ));
        }
    }
    if !e.not_replaced.is_empty() {
        what.push(String::new());
        what.push(format!(
            "Not replaced by this incident ({}): {}. Their originals run again now.",
            e.not_replaced.len(),
            e.not_replaced.join(", ")
        ));
        left.push("If you launched any of those by hand during the outage, stop one of the two copies now.".into());
    }
    if !e.timeline.is_empty() {
        what.push(String::new());
        what.push("Timeline:".into());
        what.extend(e.timeline.iter().map(|m| format!("  {}  {}", p.when(&m.at), m.what)));
    }
    left.push("Plan the fail-back: the replacements keep serving until you move the workloads home.".into());
    EventText {
        headline: "server back, incident closed".into(),
        what_happened: what,
        done: vec!["Handled each original of a replaced workload as listed (its fencing policy, or kept where fencing it could leave no copy or lose writes) and closed the incident.".into()],
        left_to_you: left,
    }
}

pub(super) fn original_unfenced(e: &OriginalUnfenced, p: &Presentation) -> EventText {
    let workload = e.workload.as_deref().unwrap_or("(no workload tag)");
    let server = e.server_id.as_deref().unwrap_or("an unknown server");
    let mut what = vec![format!(
        "Original {} of workload {} on {} is back in service on an operator's word ({}), {}.",
        e.instance_id,
        workload,
        server,
        if e.moving_home { "make failback" } else { "make unfence" },
        p.when(&e.unfenced_at)
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
    let left = if e.moving_home {
        let replacement = e.replacement_instance_id.as_deref().unwrap_or("its replacement");
        what.push(format!(
            "It is moving home (make failback): {replacement} is taken out of the target groups and terminated once the original is healthy in them."
        ));
        Vec::new()
    } else if e.forced {
        let replacement = e.replacement_instance_id.as_deref().unwrap_or("its replacement");
        what.push(format!("It was put back by force while {replacement} may still run."));
        vec![format!("Two copies of {workload} may be running: stop one before they diverge.")]
    } else {
        Vec::new()
    };
    EventText {
        headline: format!("{workload} original back in service"),
        what_happened: what,
        done: vec!["Restored the original's security groups and removed its fencing marks.".into()],
        left_to_you: left,
    }
}

/// What an original's fate means, short enough for a subject (the body says it whole).
fn short_outcome(outcome: FenceOutcome) -> &'static str {
    match outcome {
        FenceOutcome::Isolated => "original isolated",
        FenceOutcome::Terminated => "original terminated",
        FenceOutcome::LeftRunning | FenceOutcome::LeftRunningNoVpc | FenceOutcome::LeftRunningFenceFailed => {
            "two copies running"
        }
        FenceOutcome::PartlyIsolatedFenceFailed => "original partly isolated",
        FenceOutcome::KeptReplacementNotRunning => "only the original runs",
        FenceOutcome::StillIsolatedReplacementNotRunning => "no copy serves",
        FenceOutcome::KeptBothCopies => "both copies kept",
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
