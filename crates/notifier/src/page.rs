//! Paging: which messages open, update or resolve the on-call incident, as an
//! `OnCallAlert` on the project bus that the stack's optional rule forwards to PagerDuty
//! Events v2 (or any webhook). One alert per incident, keyed by the incident id:
//! the opening and every critical item trigger it, a failover with nothing left for a
//! person or a closing that leaves no original to a person resolves it.

use crate::presentation::Presentation;
use crate::severity::Severity;
use crate::text::{incident_of, site_of, Text};
use ha_domain::contract::{AlertAction, OnCallAlert, ProjectEvent};

/// PagerDuty: "summary … maximum length of 1024 characters".
pub const MAX_SUMMARY: usize = 1024;

/// `now` (RFC 3339) stands in for events that carry no time of their own.
pub fn alert_for(
    event: &ProjectEvent,
    severity: Severity,
    text: &Text,
    p: &Presentation,
    now: &str,
) -> Option<OnCallAlert> {
    let action = match (event, severity) {
        // An operator's own action is a record for the thread, not a page.
        (ProjectEvent::OriginalUnfenced(_), _) => return None,
        (ProjectEvent::FailoverCompleted(e), _) if !e.needs_person() => AlertAction::Resolve,
        (ProjectEvent::IncidentClosed(_), Severity::Info) => AlertAction::Resolve,
        (_, Severity::Critical) => AlertAction::Trigger,
        _ => return None,
    };
    let (dedup_key, occurred_at) = match event {
        ProjectEvent::MassOutage(e) => (format!("wave-{}", e.started_at), e.started_at.clone()),
        _ => (incident_of(event)?.to_string(), occurred_at(event).unwrap_or_else(|| now.to_string())),
    };
    let server = event.server_id();
    // The same source on every alert of an incident; the site's name is in the summary.
    let source = server.unwrap_or("outposts-ha").to_string();
    let summary = match site_of(event) {
        Some(site) => format!("{site} ({source}): {}", text.headline),
        None => format!("{source}: {}", text.headline),
    };
    Some(OnCallAlert {
        dedup_key,
        action,
        severity: severity.as_str().to_string(),
        summary: summary.chars().take(MAX_SUMMARY).collect(),
        source,
        event_type: event.detail_type().to_string(),
        incident_id: incident_of(event).map(str::to_string),
        server_id: server.map(str::to_string),
        occurred_at,
        runbook_url: p.runbook_url.clone(),
        dashboard_url: p.dashboard_url.clone(),
    })
}

/// When the fact happened, for the alert's timestamp.
fn occurred_at(event: &ProjectEvent) -> Option<String> {
    let at = match event {
        ProjectEvent::IncidentOpened(e) => &e.detected_at,
        ProjectEvent::FailoverCompleted(e) => &e.reported_at,
        ProjectEvent::IncidentClosed(e) => &e.recovered_at,
        ProjectEvent::OriginalUnfenced(e) => &e.unfenced_at,
        _ => return None,
    };
    Some(at.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::render_text;
    use std::path::Path;

    fn sample(name: &str) -> ProjectEvent {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/contract").join(format!("{name}.json"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    fn alert(event: &ProjectEvent) -> Option<OnCallAlert> {
        let p = Presentation::new("", "https://runbook", "https://dashboard").unwrap();
        let (severity, text) = render_text(event, &p)?;
        alert_for(event, severity, &text, &p, "2026-12-01T10:00:00Z")
    }

    #[test]
    fn an_incident_triggers_once_keyed_by_its_id_and_resolves_when_nothing_is_left() {
        let opened = alert(&sample("IncidentOpened")).expect("an opening pages");
        let ProjectEvent::IncidentOpened(o) = sample("IncidentOpened") else { unreachable!() };
        assert_eq!((opened.action, opened.dedup_key.as_str()), (AlertAction::Trigger, o.incident_id.as_str()));
        assert_eq!(opened.severity, "critical");
        assert!(opened.summary.len() <= MAX_SUMMARY && opened.summary.contains("server down"));
        let failed = alert(&sample("WorkloadRelaunchFailed")).expect("a critical item pages");
        assert_eq!(failed.action, AlertAction::Trigger);
        let closed = alert(&sample("IncidentClosed")).expect("a clean closing resolves");
        assert_eq!(closed.action, AlertAction::Resolve);
        let ProjectEvent::FailoverCompleted(mut done) = sample("FailoverCompleted") else { unreachable!() };
        assert_eq!(alert(&ProjectEvent::FailoverCompleted(done.clone())).unwrap().action, AlertAction::Trigger);
        (done.failed, done.held, done.not_serving, done.pending, done.unusable) =
            (vec![], vec![], vec![], vec![], vec![]);
        let resolved = alert(&ProjectEvent::FailoverCompleted(done.clone())).unwrap();
        assert_eq!((resolved.action, resolved.dedup_key), (AlertAction::Resolve, done.incident_id));
    }

    #[test]
    fn warnings_and_per_workload_facts_do_not_page() {
        for name in ["BackupFailed", "BackupStale", "IncidentContinued", "WorkloadRelaunched", "WorkloadServing"] {
            assert_eq!(alert(&sample(name)), None, "{name}");
        }
    }
}
