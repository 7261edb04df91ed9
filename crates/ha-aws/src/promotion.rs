//! The promotion hook on SSM Run Command: the operator's document sent to the promoted
//! standby; its completion comes back as EventBridge's command status-change event.

use crate::run_command;
use async_trait::async_trait;
use ha_domain::error::AwsFailure;
use ha_ports::{Asked, PromotionHooks};

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
        let command = self
            .ssm
            .send_command()
            .document_name(document)
            .instance_ids(instance_id)
            .comment("outposts-ha promotion hook");
        run_command::send(command).await
    }
}
