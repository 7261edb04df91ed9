//! The promotion hook on SSM Run Command: the operator's document sent to the promoted
//! standby; its completion comes back as EventBridge's command status-change event.

use crate::failure;
use async_trait::async_trait;
use ha_domain::error::{AwsFailure, Retry};
use ha_ports::{Asked, PromotionHooks};

/// How long SSM may take to deliver the hook before it gives up (SendCommand's
/// TimeoutSeconds, at least 30); the document's own execution timeout bounds the run.
const DELIVERY_TIMEOUT_SECONDS: i32 = 60;

#[derive(Clone)]
pub struct SsmPromotionHooks {
    ssm: aws_sdk_ssm::Client,
}

impl SsmPromotionHooks {
    pub fn new(ssm: aws_sdk_ssm::Client) -> Self {
        SsmPromotionHooks { ssm }
    }
}

#[async_trait]
impl PromotionHooks for SsmPromotionHooks {
    async fn run(&self, document: &str, instance_id: &str) -> Result<Asked, AwsFailure> {
        let sent = self
            .ssm
            .send_command()
            .document_name(document)
            .instance_ids(instance_id)
            .comment("outposts-ha promotion hook")
            .timeout_seconds(DELIVERY_TIMEOUT_SECONDS)
            .send()
            .await;
        match sent {
            Ok(out) => {
                out.command().and_then(|c| c.command_id()).map(|id| Asked::Sent(id.to_string())).ok_or_else(|| {
                    AwsFailure {
                        operation: "SendCommand",
                        code: "NoCommandId".into(),
                        message: "the command was accepted but no id came back".into(),
                        retry: Retry::CanHelp,
                    }
                })
            }
            // "The ID isn't valid…; the instance isn't in a valid state…; SSM Agent isn't
            // running…" (SendCommand, InvalidInstanceId): the hook cannot run there.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_invalid_instance_id()) => {
                Ok(Asked::Offline(failure("SendCommand", &e).message))
            }
            // A missing document, parameters it refuses, a withheld permission: no retry helps.
            Err(e) => match failure("SendCommand", &e) {
                f if f.retry == Retry::CanHelp => Err(f),
                f => Ok(Asked::Refused(format!("{}: {}", f.code, f.message))),
            },
        }
    }
}
