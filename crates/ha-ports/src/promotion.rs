//! A warm workload's promotion hook: an SSM Command document the operator names, run on the
//! promoted standby (e.g. to promote a database replica). Its completion arrives as an event.

use crate::witness::Asked;
use async_trait::async_trait;
use ha_domain::error::AwsFailure;

#[async_trait]
pub trait PromotionHooks: Send + Sync {
    /// Sends `document` to run on `instance_id`; how sending went.
    async fn run(&self, document: &str, instance_id: &str) -> Result<Asked, AwsFailure>;
}
