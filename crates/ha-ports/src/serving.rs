//! Load balancing: a workload's target groups, by name.

use async_trait::async_trait;
use ha_domain::error::AwsFailure;
use ha_domain::model::TargetHealth;

/// A target group, as registration needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroup {
    pub name: String,
    pub arn: String,
    /// Instance targets are registered by instance id, IP targets by private address.
    pub by_ip: bool,
}

#[async_trait]
pub trait LoadBalancing: Send + Sync {
    /// The groups that exist among `names`, and the names that do not.
    async fn target_groups(&self, names: &[String]) -> Result<(Vec<TargetGroup>, Vec<String>), AwsFailure>;
    async fn register(&self, group: &TargetGroup, target: &str) -> Result<(), AwsFailure>;
    async fn targets(&self, group: &TargetGroup) -> Result<Vec<(String, TargetHealth)>, AwsFailure>;
    async fn deregister(&self, group: &TargetGroup, targets: &[String]) -> Result<(), AwsFailure>;
}
