//! A server went down: a new incident, a flap, or an outage during maintenance.

use super::EventText;
use ha_domain::contract::{IncidentContinued, IncidentOpened, RelaunchSuppressed};

pub(super) fn opened(e: &IncidentOpened) -> EventText {
    let mut what = vec![
        format!("Outposts server {} lost its connection to AWS (alarm {}).", e.server_id, e.alarm_name),
        format!("Detected at {}. Incident {}.", e.detected_at, e.incident_id),
        String::new(),
    ];
    if e.workloads.is_empty() {
        what.push("No workloads are declared for this server, so nothing is being relaunched.".into());
    } else {
        what.push(format!("Relaunching {} workload(s) on their standby servers:", e.workloads.len()));
        what.extend(e.workloads.iter().map(|w| format!("  - {w}")));
    }
    if !e.rejected_workloads.is_empty() {
        what.push(String::new());
        what.push(format!(
            "{} launch template(s) tagged for this server are NOT usable and will not be relaunched:",
            e.rejected_workloads.len()
        ));
        what.extend(
            e.rejected_workloads
                .iter()
                .map(|r| format!("  - {} ({}): {}", r.launch_template_name, r.launch_template_id, r.reason)),
        );
    }
    let mut next = vec![
        "Check the site: power, network uplink and the server's service link.".to_string(),
        "Watch for one WorkloadRelaunched or WorkloadRelaunchFailed message per workload.".to_string(),
    ];
    if !e.rejected_workloads.is_empty() {
        next.push("Fix the tags of the unusable launch templates (see the README's tag table).".into());
    }
    EventText {
        headline: format!("Outposts server {} down: relaunching {} workload(s)", e.server_id, e.workloads.len()),
        what_happened: what,
        what_to_do_next: next,
    }
}

pub(super) fn continued(e: &IncidentContinued) -> EventText {
    EventText {
        headline: format!("Outposts server {} down again (incident {})", e.server_id, e.incident_id),
        what_happened: vec![
            format!(
                "The alarm {} went into ALARM again at {} while incident {} is still open.",
                e.alarm_name, e.realarmed_at, e.incident_id
            ),
            "The server is flapping. Workloads already replaced are not launched a second time.".into(),
        ],
        what_to_do_next: vec!["Check the server's service link; a flapping link often precedes a longer outage.".into()],
    }
}

pub(super) fn suppressed(e: &RelaunchSuppressed) -> EventText {
    EventText {
        headline: format!("Outposts server {} down during maintenance: nothing relaunched", e.server_id),
        what_happened: vec![
            format!(
                "Outposts server {} went into ALARM at {} (alarm {}), inside its maintenance window until {} ({}).",
                e.server_id, e.detected_at, e.alarm_name, e.maintenance_until, e.maintenance_reason
            ),
            format!("Relaunch was suppressed for {} workload(s): {}.", e.workloads.len(), e.workloads.join(", ")),
        ],
        what_to_do_next: vec![
            "If the outage is not the planned work, end the window and the next alarm relaunches:".into(),
            format!("make maintenance SERVER={} UNTIL=now", e.server_id),
            "A server still down when the window ends is not relaunched by itself (its alarm does not change state again): check it then.".into(),
        ],
    }
}
