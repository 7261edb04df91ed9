//! Elastic Load Balancing: target groups by name (an unknown name fails the whole
//! DescribeTargetGroups call with TargetGroupNotFound, so the port asks name by name), and
//! health: a target is `initial` until its instance has run for the health check's
//! threshold, then `healthy`; `unhealthy` once its instance stops running.

use super::Sim;
use async_trait::async_trait;
use ha_domain::error::AwsFailure;
use ha_domain::model::{InstanceState, TargetHealth};
use ha_ports::serving::{LoadBalancing, TargetGroup};
use std::sync::Arc;

/// Healthy threshold × interval of the simulated health check.
const HEALTHY_AFTER_MS: i64 = 20_000;

pub struct SimLoadBalancing(pub Arc<Sim>);

#[async_trait]
impl LoadBalancing for SimLoadBalancing {
    async fn target_groups(&self, names: &[String]) -> Result<(Vec<TargetGroup>, Vec<String>), AwsFailure> {
        self.0.enter("DescribeTargetGroups").await?;
        let w = self.0.world();
        let (mut found, mut missing) = (Vec::new(), Vec::new());
        for name in names {
            match w.target_groups.get(name) {
                Some(g) => found.push(TargetGroup { name: name.clone(), arn: g.arn.clone(), by_ip: false }),
                None => missing.push(name.clone()),
            }
        }
        Ok((found, missing))
    }

    async fn register(&self, group: &TargetGroup, target: &str) -> Result<(), AwsFailure> {
        self.0.enter("RegisterTargets").await?;
        {
            let mut w = self.0.world();
            let now = w.now_ms();
            if let Some(g) = w.target_groups.get_mut(&group.name) {
                g.targets.entry(target.to_string()).or_insert(now);
            }
        }
        self.0.leave("RegisterTargets").await
    }

    async fn targets(&self, group: &TargetGroup) -> Result<Vec<(String, TargetHealth)>, AwsFailure> {
        self.0.enter("DescribeTargetHealth").await?;
        let w = self.0.world();
        let now = w.now_ms();
        let Some(g) = w.target_groups.get(&group.name) else {
            return Ok(Vec::new());
        };
        Ok(g.targets
            .iter()
            .map(|(id, since)| {
                let health = match w.instances.get(id).map(|i| &i.state) {
                    Some(InstanceState::Running) if now - since >= HEALTHY_AFTER_MS => TargetHealth::Healthy,
                    Some(InstanceState::Running) | Some(InstanceState::Pending) => {
                        TargetHealth::NotHealthy("initial".into())
                    }
                    _ => TargetHealth::NotHealthy("unhealthy".into()),
                };
                (id.clone(), health)
            })
            .collect())
    }

    async fn deregister(&self, group: &TargetGroup, targets: &[String]) -> Result<(), AwsFailure> {
        self.0.enter("DeregisterTargets").await?;
        {
            let mut w = self.0.world();
            if let Some(g) = w.target_groups.get_mut(&group.name) {
                for t in targets {
                    g.targets.remove(t);
                }
            }
        }
        self.0.leave("DeregisterTargets").await
    }
}
