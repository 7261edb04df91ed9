//! Slack and Microsoft Teams through Amazon Q Developer in chat applications: its custom
//! notification format (version 1.0, source `custom`), published to the optional chat
//! topic. Messages of one incident share a thread (`threadId` = the incident id).

use crate::severity::Severity;
use crate::text::{incident_of, Text};
use ha_domain::contract::ProjectEvent;
use serde_json::{json, Value};

/// The description is cut to this many bytes: the card must fit SNS's 256 KB, and chat
/// clients show far less (the whole event is on the bus and in the ledger).
pub const MAX_DESCRIPTION: usize = 32 * 1024;

fn cut(text: &str) -> String {
    if text.len() <= MAX_DESCRIPTION {
        return text.to_string();
    }
    let mut end = MAX_DESCRIPTION;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n[cut: the whole message is in the email]", &text[..end])
}

pub fn card(event: &ProjectEvent, severity: Severity, text: &Text) -> Value {
    let icon = match severity {
        Severity::Critical => ":rotating_light:",
        Severity::Warning => ":warning:",
        Severity::Info => ":information_source:",
    };
    let mut metadata = json!({
        "summary": text.headline,
        "eventType": event.detail_type(),
        "additionalContext": {"severity": severity.as_str()},
    });
    if let Some(incident) = incident_of(event) {
        metadata["threadId"] = json!(incident);
    }
    if let Some(server) = event.server_id() {
        metadata["relatedResources"] = json!([server]);
    }
    json!({
        "version": "1.0",
        "source": "custom",
        "content": {
            "textType": "client-markdown",
            "title": format!("{icon} {}", text.subject),
            "description": cut(&text.body),
        },
        "metadata": metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presentation::Presentation;
    use crate::render::render_text;

    #[test]
    fn a_card_threads_by_incident_in_the_custom_notification_format() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/contract/IncidentOpened.json");
        let event: ProjectEvent = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let (severity, text) = render_text(&event, &Presentation::default()).unwrap();
        let card = card(&event, severity, &text);
        assert_eq!((card["version"].as_str(), card["source"].as_str()), (Some("1.0"), Some("custom")));
        assert_eq!(card["content"]["textType"], "client-markdown");
        assert!(card["content"]["title"].as_str().unwrap().starts_with(":rotating_light: [CRITICAL] inc-"));
        assert_eq!(card["metadata"]["threadId"].as_str(), crate::text::incident_of(&event));
    }

    #[test]
    fn a_huge_description_is_cut_on_a_character_boundary() {
        let long = "\u{e9}".repeat(MAX_DESCRIPTION);
        let text = cut(&long);
        assert!(text.len() < MAX_DESCRIPTION + 64 && text.ends_with("in the email]"));
    }
}
