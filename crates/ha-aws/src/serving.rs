//! Elastic Load Balancing: a workload's target groups, by name; registering a replacement
//! and deregistering originals.

use crate::failure;
use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::operation::describe_target_groups::DescribeTargetGroupsError;
use aws_sdk_elasticloadbalancingv2::types::{TargetDescription, TargetTypeEnum};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use ha_domain::error::AwsFailure;
use ha_domain::model::TargetHealth;
use ha_ports::serving::{LoadBalancing, TargetGroup};

#[derive(Clone)]
pub struct ElbLoadBalancing {
    client: aws_sdk_elasticloadbalancingv2::Client,
}

impl ElbLoadBalancing {
    pub fn new(client: aws_sdk_elasticloadbalancingv2::Client) -> Self {
        ElbLoadBalancing { client }
    }

    async fn describe(
        &self,
        names: &[String],
    ) -> Result<Vec<TargetGroup>, SdkError<DescribeTargetGroupsError, HttpResponse>> {
        let out = self.client.describe_target_groups().set_names(Some(names.to_vec())).send().await?;
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
}

#[async_trait]
impl LoadBalancing for ElbLoadBalancing {
    /// DescribeTargetGroups fails whole when one name is unknown (TargetGroupNotFound):
    /// then each name is asked for alone, so one typo does not keep the rest from serving.
    async fn target_groups(&self, names: &[String]) -> Result<(Vec<TargetGroup>, Vec<String>), AwsFailure> {
        match self.describe(names).await {
            Ok(found) => Ok((found, Vec::new())),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_target_group_not_found_exception()) => {
                let (mut found, mut missing) = (Vec::new(), Vec::new());
                for name in names {
                    match self.describe(std::slice::from_ref(name)).await {
                        Ok(groups) => found.extend(groups),
                        Err(e) if e.as_service_error().is_some_and(|e| e.is_target_group_not_found_exception()) => {
                            missing.push(name.clone())
                        }
                        Err(e) => return Err(failure("DescribeTargetGroups", &e)),
                    }
                }
                Ok((found, missing))
            }
            Err(e) => Err(failure("DescribeTargetGroups", &e)),
        }
    }
    /// Registers the target (again: registering twice changes nothing).
    async fn register(&self, group: &TargetGroup, target: &str) -> Result<(), AwsFailure> {
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
    async fn targets(&self, group: &TargetGroup) -> Result<Vec<(String, TargetHealth)>, AwsFailure> {
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

    async fn deregister(&self, group: &TargetGroup, targets: &[String]) -> Result<(), AwsFailure> {
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
