//! Pure rendering of a project event into what a person reads and a machine filters on:
//! the severity policy decides whether and how urgently, the text says what happened and
//! what to do next, and the channel fits both to SNS.

use crate::{channel, severity, text};
use ha_domain::contract::ProjectEvent;

pub use crate::channel::{subject_line, Notification, MAX_SUBJECT};
pub use crate::severity::Severity;

/// `None` for events that are commands between functions, not news for people.
pub fn render(event: &ProjectEvent) -> Option<Notification> {
    let severity = severity::severity_of(event)?;
    let text = text::describe(event, severity)?;
    Some(channel::notification(event, severity, text))
}
