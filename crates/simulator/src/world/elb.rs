//! Elastic Load Balancing: target groups by name (an unknown name fails the whole
//! DescribeTargetGroups call with TargetGroupNotFound, so the port asks name by name), and
//! health: a target is `initial` until its instance has run for the health check's
//! threshold, then `healthy`; `unhealthy` once its instance stops running.

use super::{Sim, World};
use async_trait::async_trait;
use ha_domain::error::AwsFailure;
use ha_domain::model::{tag, InstanceState, TargetHealth};
use ha_ports::serving::{LoadBalancing, TargetGroup};
use std::sync::Arc;

/// Healthy threshold × interval of the simulated health check.
const HEALTHY_AFTER_MS: i64 = 20_000;

pub struct SimLoadBalancing(pub Arc<Sim>);

impl World {
    /// (I12) Never two serving copies of a workload from one server: a standby (or one whose
    /// promotion failed) is never registered, and a replacement is not registered beside
    /// another running replacement of the same workload and server.
    fn check_serving(&mut self, group: &str, target: &str) {
        let Some(i) = self.instances.get(target) else { return };
        let role = i.tags.get(tag::ROLE).cloned();
        let key = (i.tags.get(tag::WORKLOAD).cloned(), i.tags.get(tag::SOURCE_SERVER).cloned());
        match role.as_deref() {
            Some(tag::ROLE_REPLACEMENT) => {}
            Some(other) => {
                return self.violation(format!("I12: {target} ({other}) registered in {group}: it must not serve"))
            }
            None => return,
        }
        let registered: Vec<String> =
            self.target_groups.get(group).map(|g| g.targets.keys().cloned().collect()).unwrap_or_default();
        let twin = registered.iter().find(|other| {
            *other != target
                && self.instances.get(*other).is_some_and(|o| {
                    o.state == InstanceState::Running
                        && o.tags.get(tag::ROLE).map(String::as_str) == Some(tag::ROLE_REPLACEMENT)
                        && (o.tags.get(tag::WORKLOAD).cloned(), o.tags.get(tag::SOURCE_SERVER).cloned()) == key
                })
        });
        if let Some(twin) = twin.cloned() {
            self.violation(format!("I12: {target} registered in {group} beside {twin}, another running replacement"));
        }
    }
}

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
            w.check_serving(&group.name, target);
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
