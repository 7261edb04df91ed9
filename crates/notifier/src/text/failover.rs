//! The failover summary: every workload's state once they settled (or at the deadline).

use super::{place, EventText};
use crate::presentation::Presentation;
use ha_domain::contract::FailoverCompleted;
use ha_domain::timefmt::human_duration;

pub(super) fn completed(e: &FailoverCompleted, p: &Presentation) -> EventText {
    let mut what = vec![
        format!(
            "Failover of {} (incident {}), detected {}:",
            place(e.site_name.as_deref(), &e.server_id),
            e.incident_id,
            p.when(&e.detected_at)
        ),
        format!(
            "  {} of {} workload(s) serving, {} launched, {} failed, {} held, {} not launched yet.",
            e.serving.len(),
            e.workloads,
            e.launched(),
            e.failed.len(),
            e.held.len(),
            e.pending.len()
        ),
    ];
    if let Some(s) = &e.slowest {
        what.push(format!(
            "  Slowest from detection to serving: {} ({}).",
            s.workload,
            human_duration(s.detection_to_serving_seconds.round() as i64)
        ));
    }
    if !e.backups.is_empty() {
        what.push(String::new());
        what.push("Stateful workloads restored from backups:".into());
        what.extend(e.backups.iter().map(|b| {
            let age = b.age_seconds.map(|a| format!(", {} old", human_duration(a))).unwrap_or_default();
            format!("  - {}: {}{age}", b.workload, b.image_id)
        }));
    }
    let mut left = Vec::new();
    if !e.failed.is_empty() {
        what.push(String::new());
        what.push(format!("NOT relaunched ({}):", e.failed.len()));
        what.extend(e.failed.iter().map(|f| format!("  - {}: {}: {}", f.workload, f.error_code, f.error_message)));
        left.push(
            "Fix the reason above and launch each failed workload by hand from its launch template; stop that copy when its server is back and its original runs again."
                .into(),
        );
    }
    if !e.not_serving.is_empty() {
        what.push(String::new());
        what.push(format!("Launched but NOT serving yet ({}):", e.not_serving.len()));
        what.extend(e.not_serving.iter().map(|n| {
            let id = n.replacement_instance_id.as_deref().unwrap_or("(no instance)");
            let waiting = n.waiting_for.as_deref().map(|w| format!(", waiting for {w}")).unwrap_or_default();
            format!("  - {}: {id}{waiting}", n.workload)
        }));
        left.push(
            "Check the health checks of the replacements not serving (target group, security groups, the application)."
                .into(),
        );
    }
    if !e.held.is_empty() {
        what.push(String::new());
        what.push(format!("HELD ({}): {}.", e.held.len(), e.held.join(", ")));
        left.push(format!(
            "Decide on the held workloads: restore the site's uplink, or make release SERVER={} to relaunch them.",
            e.server_id
        ));
    }
    if !e.unusable.is_empty() {
        what.push(String::new());
        what.push(format!("Launch templates tagged for the server that are NOT usable ({}):", e.unusable.len()));
        what.extend(e.unusable.iter().map(|u| format!("  - {u}")));
        left.push(
            "Fix the unusable templates' tags (docs/reference.md, tag table), or launch those workloads by hand."
                .into(),
        );
    }
    if !e.pending.is_empty() {
        what.push(String::new());
        what.push(format!("Not launched yet ({}): {}.", e.pending.len(), e.pending.join(", ")));
        left.push("Watch the workloads not launched yet: make status shows where each stands.".into());
    }
    let mut done = vec![format!(
        "{} replacement(s) running from this or an earlier incident; each registered in its target groups, and the originals taken out of them once it was healthy.",
        e.launched()
    )];
    if !e.complete {
        done.push(format!("Reported at the deadline ({}), before every workload settled.", p.when(&e.reported_at)));
    }
    done.push("The originals are fenced when the server comes back; the closing message says how.".into());
    // Short: the subject also carries the severity, the incident and the place.
    let headline = if !e.needs_person() {
        format!("failover complete: {}/{} up", e.serving.len(), e.workloads)
    } else {
        let need = e.failed.len() + e.not_serving.len() + e.held.len() + e.pending.len();
        let late = if e.complete { "" } else { " late" };
        format!("failover{late}: {}/{} up, {need} need you", e.serving.len(), e.workloads)
    };
    EventText { headline, what_happened: what, done, left_to_you: left }
}
