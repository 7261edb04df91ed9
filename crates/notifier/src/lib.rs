//! notifier: an incident reaches people as a few messages (its opening, one failover
//! summary, one message per item that needs a person, its closing), each an SNS message
//! with the event JSON and message attributes (event_type, severity, server_id,
//! instance_id, incident_id) for filter policies; optionally a chat card on a second topic
//! and a page (`OnCallAlert`) on the project bus.

pub mod page;
pub mod presentation;
pub mod render;

mod channel;
mod chat;
mod severity;
mod text;

use ha_aws::bus::EventBridgeBus;
use ha_aws::invocation::HandlerError;
use ha_aws::topic::Topic;
use ha_domain::config::{ConfigError, EnvReader};
use ha_domain::contract::ProjectEvent;
use ha_domain::timefmt::{format_timestamp, now};
use ha_ports::Bus;
use presentation::Presentation;
use serde::Serialize;
use serde_json::Value;
use tracing::{info, warn};

#[derive(Debug, Clone)]
pub struct Config {
    pub topic_arn: String,
    /// The chat topic (Amazon Q Developer in chat applications), if any.
    pub chat_topic_arn: Option<String>,
    /// The project bus pages go to, if any.
    pub event_bus_name: Option<String>,
    pub presentation: Presentation,
}

impl Config {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &EnvReader<F>) -> Result<Self, ConfigError> {
        let zone = env.optional("TIME_ZONE", "UTC");
        let (runbook, dashboard) = (env.optional("RUNBOOK_URL", ""), env.optional("DASHBOARD_URL", ""));
        // A mistyped zone must not silence every message: times fall back to UTC.
        let presentation = Presentation::new(&zone, &runbook, &dashboard).unwrap_or_else(|e| {
            tracing::error!(error = %e, "TIME_ZONE is not a zone this build knows; messages show UTC");
            Presentation::new("UTC", &runbook, &dashboard).expect("UTC is a zone")
        });
        let chat = env.optional("CHAT_TOPIC_ARN", "");
        Ok(Config {
            topic_arn: env.arn("TOPIC_ARN", "sns")?,
            chat_topic_arn: if chat.is_empty() { None } else { Some(env.arn("CHAT_TOPIC_ARN", "sns")?) },
            event_bus_name: Some(env.optional("EVENT_BUS_NAME", "")).filter(|b| !b.is_empty()),
            presentation,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum NotifyOutcome {
    Published { event_type: String, subject: String, message_id: String, paged: bool },
    Skipped { reason: String },
}

pub struct Notifier {
    topic: Topic,
    chat: Option<Topic>,
    bus: Option<EventBridgeBus>,
    presentation: Presentation,
}

impl Notifier {
    pub fn new(config: Config, sdk: &aws_config::SdkConfig) -> Self {
        let sns = aws_sdk_sns::Client::new(sdk);
        Notifier {
            topic: Topic::new(sns.clone(), config.topic_arn),
            chat: config.chat_topic_arn.map(|arn| Topic::new(sns, arn)),
            bus: config.event_bus_name.map(|bus| EventBridgeBus::new(aws_sdk_eventbridge::Client::new(sdk), bus)),
            presentation: config.presentation,
        }
    }

    pub async fn handle(&self, event: Value) -> Result<NotifyOutcome, HandlerError> {
        let event: ProjectEvent = match serde_json::from_value(event) {
            Ok(e) => e,
            Err(e) => {
                warn!(reason = %e, "not a project event this notifier knows; nothing sent");
                return Ok(NotifyOutcome::Skipped { reason: format!("unknown or malformed event: {e}") });
            }
        };
        let Some((severity, text)) = render::render_text(&event, &self.presentation) else {
            return Ok(NotifyOutcome::Skipped {
                reason: format!("{} is not a message for people", event.detail_type()),
            });
        };
        let incident_id = text::incident_of(&event).unwrap_or("-").to_string();
        let alert = page::alert_for(&event, severity, &text, &self.presentation, &format_timestamp(now()));
        let card = self.chat.as_ref().map(|_| chat::card(&event, severity, &text));
        let n = channel::notification(&event, severity, text);
        // The page first: its dedup key makes a repeat harmless, and a failure of a later
        // channel must not keep it from on-call. A retried delivery may mail twice.
        let mut paged = false;
        if let (Some(bus), Some(alert)) = (&self.bus, alert) {
            bus.publish(&[ProjectEvent::OnCallAlert(alert)]).await?;
            paged = true;
        }
        let message_id = self.topic.publish(&n.subject, &n.body, &n.attributes).await?;
        if let (Some(chat), Some(card)) = (&self.chat, card) {
            chat.publish_raw(&card.to_string(), &n.attributes).await?;
        }
        info!(event_type = event.detail_type(), server_id = event.server_id().unwrap_or("-"), %incident_id, severity = n.severity.as_str(), %message_id, paged, "notification published");
        Ok(NotifyOutcome::Published { event_type: event.detail_type().into(), subject: n.subject, message_id, paged })
    }
}
