//! SNS as the delivery channel: the subject fitted to SNS's limits, the event JSON appended
//! to the body, and the message attributes subscription filter policies match on.

use crate::severity::Severity;
use crate::text::{incident_of, Text};
use ha_domain::contract::ProjectEvent;

/// SNS limits subjects to 100 printable ASCII characters without line breaks.
pub const MAX_SUBJECT: usize = 100;

/// SNS Publish: "Messages can include up to 256 KB of text", message attributes included;
/// the body stays this far below so the subject and attributes always fit.
pub const MAX_BODY_BYTES: usize = 256 * 1024 - 8 * 1024;

const CUT_NOTE: &str = "\n\n[cut to fit SNS's 256 KB limit; the whole event is on the project bus and in the ledger]";

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
    let json = serde_json::to_value(event).unwrap_or_default();
    let body = fit_body(&text.body, &json);
    Notification { subject: subject_line(&text.subject), body, severity, attributes: attributes(event, severity) }
}

/// The text and the event's JSON, pretty when it fits, compact when only that fits, else
/// the text alone, cut at a character boundary with a note where it was cut.
fn fit_body(text: &str, json: &serde_json::Value) -> String {
    const APPENDIX: &str = "\n\n--- event (JSON) ---\n";
    for rendered in [serde_json::to_string_pretty(json), serde_json::to_string(json)].into_iter().flatten() {
        if text.len() + APPENDIX.len() + rendered.len() <= MAX_BODY_BYTES {
            return format!("{text}{APPENDIX}{rendered}");
        }
    }
    if text.len() <= MAX_BODY_BYTES {
        return text.to_string();
    }
    let mut end = MAX_BODY_BYTES - CUT_NOTE.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{CUT_NOTE}", &text[..end])
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
    fn bodies_fit_sns_and_keep_what_fits() {
        let json = serde_json::json!({"workloads": vec!["a"; 10]});
        let small = fit_body("text", &json);
        assert!(small.starts_with("text") && small.contains("\"workloads\": ["), "pretty JSON when it fits");
        // Pretty JSON does not fit, compact does.
        let wide = serde_json::json!({"w": vec!["x".repeat(9); 20_000]});
        let compact = fit_body("text", &wide);
        assert!(compact.len() <= MAX_BODY_BYTES && compact.contains("[\"xxxxxxxxx\",\"xxxxxxxxx\""));
        // Text alone too large: cut on a character boundary, with the note.
        let long = "\u{e9}".repeat(200_000);
        let cut = fit_body(&long, &json);
        assert!(cut.len() <= MAX_BODY_BYTES, "{}", cut.len());
        assert!(cut.ends_with(CUT_NOTE) && !cut.contains("event (JSON)"));
    }

    #[test]
    fn subjects_are_short_single_line_ascii() {
        assert_eq!(subject_line("a\nb\tc  d"), "a b c d");
        assert_eq!(subject_line("caf\u{e9} ok"), "caf ok");
        let long = subject_line(&"x".repeat(300));
        assert_eq!(long.len(), MAX_SUBJECT);
        assert!(long.ends_with("..."));
    }
}
