//! SNS as the delivery channel: the subject fitted to SNS's limits, the event JSON appended
//! to the body, and the message attributes subscription filter policies match on.

use crate::severity::Severity;
use crate::text::Text;
use ha_domain::contract::ProjectEvent;

/// SNS limits subjects to 100 printable ASCII characters without line breaks.
pub const MAX_SUBJECT: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub subject: String,
    pub body: String,
    pub severity: Severity,
    /// SNS message attributes for subscription filter policies.
    pub attributes: Vec<(&'static str, String)>,
}

/// The message SNS publishes for `event`.
pub fn notification(event: &ProjectEvent, severity: Severity, text: Text) -> Notification {
    let mut body = text.body;
    body.push_str("\n\n--- event (JSON) ---\n");
    let json = serde_json::to_value(event).unwrap_or_default();
    body.push_str(&serde_json::to_string_pretty(&json).unwrap_or_default());
    Notification { subject: subject_line(&text.subject), body, severity, attributes: attributes(event, severity) }
}

/// Printable ASCII only, single line, at most [`MAX_SUBJECT`] characters.
pub fn subject_line(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if clean.len() <= MAX_SUBJECT {
        clean
    } else {
        format!("{}...", &clean[..MAX_SUBJECT - 3])
    }
}

/// `event_type` and `severity` always; `server_id`, `instance_id` and `incident_id` when
/// the event has them.
fn attributes(event: &ProjectEvent, severity: Severity) -> Vec<(&'static str, String)> {
    let mut attributes =
        vec![("event_type", event.detail_type().to_string()), ("severity", severity.as_str().to_string())];
    if let Some(server) = event.server_id() {
        attributes.push(("server_id", server.to_string()));
    }
    if let Some(instance) = instance_of(event) {
        attributes.push(("instance_id", instance.to_string()));
    }
    if let Some(incident) = incident_of(event) {
        attributes.push(("incident_id", incident.to_string()));
    }
    attributes
}

fn incident_of(event: &ProjectEvent) -> Option<&str> {
    match event {
        ProjectEvent::IncidentOpened(e) => Some(&e.incident_id),
        ProjectEvent::IncidentContinued(e) => Some(&e.incident_id),
        ProjectEvent::RelaunchRequested(e) => Some(&e.incident_id),
        ProjectEvent::WorkloadRelaunched(e) => Some(&e.incident_id),
        ProjectEvent::WorkloadRelaunchFailed(e) => Some(&e.incident_id),
        ProjectEvent::ServerRecovered(e) => e.incident_id.as_deref(),
        ProjectEvent::FenceRequested(e) => Some(&e.incident_id),
        ProjectEvent::OriginalFenced(e) => Some(&e.incident_id),
        ProjectEvent::OriginalUnfenced(e) => Some(&e.incident_id),
        ProjectEvent::IncidentClosed(e) => Some(&e.incident_id),
        ProjectEvent::RelaunchSuppressed(e) => Some(&e.incident_id),
        ProjectEvent::WorkloadServing(e) => Some(&e.incident_id),
        ProjectEvent::UnfenceRequested(e) => e.incident_id.as_deref(),
        ProjectEvent::IncidentStatusRequested(e) => e.incident_id.as_deref(),
        ProjectEvent::DrillRequested(_) | ProjectEvent::DrillCompleted(_) | ProjectEvent::MaintenanceRequested(_) => {
            None
        }
        ProjectEvent::BackupCompleted(_) | ProjectEvent::BackupFailed(_) | ProjectEvent::BackupStale(_) => None,
    }
}

fn instance_of(event: &ProjectEvent) -> Option<&str> {
    match event {
        ProjectEvent::BackupCompleted(e) => Some(&e.instance_id),
        ProjectEvent::BackupFailed(e) => Some(&e.instance_id),
        ProjectEvent::BackupStale(e) => Some(&e.instance_id),
        ProjectEvent::OriginalFenced(e) => Some(&e.instance_id),
        ProjectEvent::OriginalUnfenced(e) => Some(&e.instance_id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_short_single_line_ascii() {
        assert_eq!(subject_line("a\nb\tc  d"), "a b c d");
        assert_eq!(subject_line("caf\u{e9} ok"), "caf ok");
        let long = subject_line(&"x".repeat(300));
        assert_eq!(long.len(), MAX_SUBJECT);
        assert!(long.ends_with("..."));
    }
}
