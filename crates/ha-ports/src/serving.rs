//! Load balancing: a workload's target groups, by name.

use async_trait::async_trait;
use ha_domain::error::AwsFailure;
use ha_domain::model::{Instance, TargetHealth};

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

impl TargetGroup {
    /// How the group addresses an instance: by id, or by its private address.
    pub fn target_of(&self, instance: &Instance) -> Option<String> {
        if self.by_ip {
            instance.private_ip.clone()
        } else {
            Some(instance.instance_id.clone())
        }
    }
}

/// Registers `instance` (named `what` in the answer: the replacement, the original) in
/// each group; the groups it is not healthy in yet, each with its state.
pub async fn register_in(
    lb: &dyn LoadBalancing,
    groups: &[TargetGroup],
    instance: &Instance,
    what: &str,
) -> Result<Vec<String>, AwsFailure> {
    let mut unhealthy = Vec::new();
    for group in groups {
        let Some(target) = group.target_of(instance) else {
            unhealthy.push(format!("{}: the {what} has no private address", group.name));
            continue;
        };
        lb.register(group, &target).await?;
        let state = lb.targets(group).await?.into_iter().find(|(id, _)| *id == target).map(|(_, s)| s);
        match state {
            Some(TargetHealth::Healthy) => {}
            Some(other) => unhealthy.push(format!("{}: {}", group.name, other.as_str())),
            None => unhealthy.push(format!("{}: not listed", group.name)),
        }
    }
    Ok(unhealthy)
}
