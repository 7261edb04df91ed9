//! notifier: one readable SNS message per project event, with the event JSON and message
//! attributes (event_type, severity, server_id, instance_id, incident_id) for filter policies.

pub mod render;

mod channel;
mod severity;
mod text;

use ha_aws::invocation::HandlerError;
use ha_aws::topic::Topic;
use ha_domain::config::{ConfigError, EnvReader};
use ha_domain::contract::ProjectEvent;
use serde::Serialize;
use serde_json::Value;
use tracing::{info, warn};

#[derive(Debug, Clone)]
pub struct Config {
    pub topic_arn: String,
}

impl Config {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &EnvReader<F>) -> Result<Self, ConfigError> {
        Ok(Config { topic_arn: env.arn("TOPIC_ARN", "sns")? })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum NotifyOutcome {
    Published { event_type: String, subject: String, message_id: String },
    Skipped { reason: String },
}

pub struct Notifier {
    topic: Topic,
}

impl Notifier {
    pub fn new(config: Config, sdk: &aws_config::SdkConfig) -> Self {
        Notifier { topic: Topic::new(aws_sdk_sns::Client::new(sdk), config.topic_arn) }
    }

    pub async fn handle(&self, event: Value) -> Result<NotifyOutcome, HandlerError> {
        let event: ProjectEvent = match serde_json::from_value(event) {
            Ok(e) => e,
            Err(e) => {
                warn!(reason = %e, "not a project event this notifier knows; nothing sent");
                return Ok(NotifyOutcome::Skipped { reason: format!("unknown or malformed event: {e}") });
            }
        };
        let Some(n) = render::render(&event) else {
            return Ok(NotifyOutcome::Skipped { reason: format!("{} is not for people", event.detail_type()) });
        };
        let message_id = self.topic.publish(&n.subject, &n.body, &n.attributes).await?;
        info!(event_type = event.detail_type(), server_id = event.server_id().unwrap_or("-"), severity = n.severity.as_str(), %message_id, "notification published");
        Ok(NotifyOutcome::Published { event_type: event.detail_type().into(), subject: n.subject, message_id })
    }
}
