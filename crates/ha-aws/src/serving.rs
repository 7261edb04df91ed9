//! Elastic Load Balancing: a workload's target groups, by name; registering a replacement
//! and deregistering originals.

use crate::failure;
use aws_sdk_elasticloadbalancingv2::types::{TargetDescription, TargetTypeEnum};
use ha_domain::error::AwsFailure;
use ha_domain::model::TargetHealth;

#[derive(Clone)]
pub struct LoadBalancing {
    client: aws_sdk_elasticloadbalancingv2::Client,
}

/// A target group, as registration needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroup {
    pub name: String,
    pub arn: String,
    /// Instance targets are registered by instance id, IP targets by private address.
    pub by_ip: bool,
}

impl LoadBalancing {
    pub fn new(client: aws_sdk_elasticloadbalancingv2::Client) -> Self {
        LoadBalancing { client }
    }

    pub async fn target_groups(&self, names: &[String]) -> Result<Vec<TargetGroup>, AwsFailure> {
        let out = self
            .client
            .describe_target_groups()
            .set_names(Some(names.to_vec()))
            .send()
            .await
            .map_err(|e| failure("DescribeTargetGroups", &e))?;
        Ok(out
            .target_groups()
            .iter()
            .map(|g| TargetGroup {
                name: g.target_group_name().unwrap_or_default().to_string(),
                arn: g.target_group_arn().unwrap_or_default().to_string(),
                by_ip: g.target_type() == Some(&TargetTypeEnum::Ip),
            })
            .collect())
    }

    /// Registers the target (again: registering twice changes nothing).
    pub async fn register(&self, group: &TargetGroup, target: &str) -> Result<(), AwsFailure> {
        self.client
            .register_targets()
            .target_group_arn(&group.arn)
            .targets(TargetDescription::builder().id(target).build())
            .send()
            .await
            .map_err(|e| failure("RegisterTargets", &e))?;
        Ok(())
    }

    /// Every registered target's id and health state.
    pub async fn targets(&self, group: &TargetGroup) -> Result<Vec<(String, TargetHealth)>, AwsFailure> {
        let out = self
            .client
            .describe_target_health()
            .target_group_arn(&group.arn)
            .send()
            .await
            .map_err(|e| failure("DescribeTargetHealth", &e))?;
        Ok(out
            .target_health_descriptions()
            .iter()
            .filter_map(|d| {
                let id = d.target()?.id()?.to_string();
                let state = TargetHealth::parse(
                    d.target_health().and_then(|h| h.state()).map(|s| s.as_str()).unwrap_or_default(),
                );
                Some((id, state))
            })
            .collect())
    }

    pub async fn deregister(&self, group: &TargetGroup, targets: &[String]) -> Result<(), AwsFailure> {
        let descriptions = targets.iter().map(|t| TargetDescription::builder().id(t).build()).collect();
        self.client
            .deregister_targets()
            .target_group_arn(&group.arn)
            .set_targets(Some(descriptions))
            .send()
            .await
            .map_err(|e| failure("DeregisterTargets", &e))?;
        Ok(())
    }
}
