//! Pure rendering of a project event into what a person reads and a machine filters on:
//! the severity policy decides whether and how urgently, the text says what happened, what
//! was done and what is left, the channel fits both to SNS, the page and the chat card
//! carry the same words to on-call tooling.

use crate::presentation::Presentation;
use crate::{channel, severity, text};
use ha_domain::contract::ProjectEvent;

pub use crate::channel::{subject_line, Notification, MAX_SUBJECT};
pub use crate::severity::Severity;
pub use crate::text::Text;

/// `None` for events that are not a message for people.
pub fn render(event: &ProjectEvent, p: &Presentation) -> Option<Notification> {
    let (severity, text) = render_text(event, p)?;
    Some(channel::notification(event, severity, text))
}

/// The severity and the words, before any channel shapes them.
pub fn render_text(event: &ProjectEvent, p: &Presentation) -> Option<(Severity, Text)> {
    let severity = severity::severity_of(event)?;
    let text = text::describe(event, severity, p)?;
    Some((severity, text))
}
