//! A server went down: an incident opened, the alarm flapped, or a maintenance window
//! suppressed the relaunch.

use super::{place, EventText};
use crate::presentation::Presentation;
use ha_domain::contract::{IncidentContinued, IncidentOpened, RelaunchSuppressed};

pub(super) fn opened(e: &IncidentOpened, p: &Presentation) -> EventText {
    let mut what = vec![
        format!("{} lost its connection to AWS (alarm {}).", place(e.site_name.as_deref(), &e.server_id), e.alarm_name),
        format!("Detected {}. Incident {}.", p.when(&e.detected_at), e.incident_id),
        String::new(),
    ];
    let mut done = Vec::new();
    let mut left = vec!["Check the site: power, network uplink and the server's service link.".to_string()];
    if e.workloads.is_empty() {
        what.push("No workloads are declared for this server, so nothing is being relaunched.".into());
        done.push("Opened the incident; nothing to relaunch.".into());
    } else {
        what.push(format!("Relaunching {} workload(s) on their standby servers:", e.workloads.len()));
        what.extend(e.workloads.iter().map(|w| format!("  - {w}")));
        done.push(format!("Started relaunching {} workload(s) on their standby servers.", e.workloads.len()));
        done.push(
            "One summary follows once every workload serves, fails or is held (or after the deadline), and one message per item that needs you."
                .into(),
        );
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
        left.push(
            "Fix the tags of the unusable launch templates (docs/reference.md, tag table), or launch those workloads by hand."
                .into(),
        );
    }
    let headline = if e.workloads.is_empty() {
        "server down, no workloads to relaunch".to_string()
    } else {
        format!("server down, relaunching {} workload(s)", e.workloads.len())
    };
    EventText { headline, what_happened: what, done, left_to_you: left }
}

pub(super) fn continued(e: &IncidentContinued, p: &Presentation) -> EventText {
    EventText {
        headline: "server down again (flapping)".into(),
        what_happened: vec![
            format!(
                "The alarm {} went into ALARM again {} while incident {} is still open.",
                e.alarm_name,
                p.when(&e.realarmed_at),
                e.incident_id
            ),
            "The server is flapping.".into(),
        ],
        done: vec!["Continued the open incident: workloads already replaced are not launched a second time.".into()],
        left_to_you: vec!["Check the server's service link; a flapping link often precedes a longer outage.".into()],
    }
}

pub(super) fn suppressed(e: &RelaunchSuppressed, p: &Presentation) -> EventText {
    EventText {
        headline: "down in maintenance window".into(),
        what_happened: vec![
            format!(
                "{} went into ALARM {} (alarm {}), inside its maintenance window until {} ({}).",
                place(e.site_name.as_deref(), &e.server_id),
                p.when(&e.detected_at),
                e.alarm_name,
                p.when(&e.maintenance_until),
                e.maintenance_reason
            ),
            format!("Workloads that would have been relaunched ({}): {}.", e.workloads.len(), e.workloads.join(", ")),
        ],
        done: vec!["Recorded the outage and relaunched nothing, as the maintenance window asks.".into()],
        left_to_you: vec![
            format!(
                "If the outage is not the planned work, end the window (make maintenance SERVER={} UNTIL=now); the next alarm relaunches.",
                e.server_id
            ),
            "A server still down when the window ends is not relaunched by itself (its alarm does not change state again): check it then.".into(),
        ],
    }
}
