//! EC2: workloads declared on launch templates, replacements found and launched.

use super::failure;
use crate::contract::RestoredFrom;
use crate::error::AwsFailure;
use crate::incident::IncidentId;
use crate::model::{tag, workload_from_tags, RejectedWorkload, ServerId, Workload};
use aws_sdk_ec2::types::{Filter, LaunchTemplateSpecification, ResourceType, Tag, TagSpecification};
use std::collections::BTreeMap;

#[derive(Clone)]
pub struct Fleet {
    client: aws_sdk_ec2::Client,
}

/// A replacement instance that already exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingReplacement {
    pub instance_id: String,
    pub subnet_id: String,
    /// The backup AMI it was launched from, by its tag.
    pub restored_from: Option<String>,
}

/// Everything RunInstances needs for one attempt at one destination.
pub struct LaunchRequest<'a> {
    pub workload: &'a Workload,
    pub incident: &'a IncidentId,
    pub subnet_id: &'a str,
    pub client_token: &'a str,
    /// Stateful workloads: launch from this backup instead of the template's image.
    pub restored_from: Option<&'a RestoredFrom>,
}

fn filter(name: &str, values: &[&str]) -> Filter {
    Filter::builder().name(name).set_values(Some(values.iter().map(|v| v.to_string()).collect())).build()
}

impl Fleet {
    pub fn new(client: aws_sdk_ec2::Client) -> Self {
        Fleet { client }
    }

    /// The workloads declared for `server`: launch templates carrying its tag.
    pub async fn workloads_of(&self, server: &ServerId) -> Result<(Vec<Workload>, Vec<RejectedWorkload>), AwsFailure> {
        let mut pages = self
            .client
            .describe_launch_templates()
            .max_results(200)
            .filters(filter(&format!("tag:{}", tag::PROTECTED_SERVER), &[server.as_str()]))
            .into_paginator()
            .send();
        let mut workloads = Vec::new();
        let mut rejected = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| failure("DescribeLaunchTemplates", &e))?;
            for lt in page.launch_templates() {
                let id = lt.launch_template_id().unwrap_or_default();
                let name = lt.launch_template_name().unwrap_or_default();
                let tags: BTreeMap<String, String> =
                    lt.tags().iter().filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string()))).collect();
                match workload_from_tags(id, name, &tags) {
                    Ok(w) if &w.protected_server == server => workloads.push(w),
                    Ok(_) => {}
                    Err(e) => rejected.push(RejectedWorkload {
                        launch_template_id: id.to_string(),
                        launch_template_name: name.to_string(),
                        reason: e.to_string(),
                    }),
                }
            }
        }
        Ok((workloads, rejected))
    }

    /// A live replacement already launched for (incident, workload), if any: the truth in
    /// EC2 when a claimant died between RunInstances and writing the ledger.
    pub async fn replacement_of(
        &self,
        incident: &IncidentId,
        workload: &str,
    ) -> Result<Option<ExistingReplacement>, AwsFailure> {
        let out = self
            .client
            .describe_instances()
            .filters(filter(&format!("tag:{}", tag::INCIDENT), &[incident.as_str()]))
            .filters(filter(&format!("tag:{}", tag::WORKLOAD), &[workload]))
            .filters(filter("instance-state-name", &["pending", "running", "stopping", "stopped"]))
            .send()
            .await
            .map_err(|e| failure("DescribeInstances", &e))?;
        Ok(out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter_map(|i| {
                Some(ExistingReplacement {
                    instance_id: i.instance_id()?.to_string(),
                    subnet_id: i.subnet_id().unwrap_or_default().to_string(),
                    restored_from: i
                        .tags()
                        .iter()
                        .find(|t| t.key() == Some(tag::RESTORED_FROM))
                        .and_then(|t| t.value())
                        .map(str::to_string),
                })
            })
            .min_by(|a, b| a.instance_id.cmp(&b.instance_id)))
    }

    /// One RunInstances at one destination. `SubnetId` is explicit (the template's own
    /// network settings are not the destination), and the ClientToken makes a retry by a
    /// later claimant return the same instance instead of a second one.
    pub async fn launch(&self, r: &LaunchRequest<'_>) -> Result<String, AwsFailure> {
        let mut tags = vec![
            (tag::WORKLOAD, r.workload.name.as_str()),
            (tag::INCIDENT, r.incident.as_str()),
            (tag::SOURCE_SERVER, r.workload.protected_server.as_str()),
            (tag::ROLE, tag::ROLE_REPLACEMENT),
        ];
        if let Some(backup) = r.restored_from {
            tags.push((tag::RESTORED_FROM, backup.image_id.as_str()));
            if let Some(taken_at) = &backup.taken_at {
                tags.push((tag::BACKUP_TAKEN_AT, taken_at.as_str()));
            }
        }
        let spec = TagSpecification::builder()
            .resource_type(ResourceType::Instance)
            .set_tags(Some(tags.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build()).collect()))
            .build();
        let out = self
            .client
            .run_instances()
            .launch_template(
                LaunchTemplateSpecification::builder()
                    .launch_template_id(&r.workload.launch_template_id)
                    .version(&r.workload.launch_template_version)
                    .build(),
            )
            .subnet_id(r.subnet_id)
            .set_image_id(r.restored_from.map(|b| b.image_id.clone()))
            .min_count(1)
            .max_count(1)
            .client_token(r.client_token)
            .tag_specifications(spec)
            .send()
            .await
            .map_err(|e| failure("RunInstances", &e))?;
        out.instances().first().and_then(|i| i.instance_id()).map(str::to_string).ok_or_else(|| AwsFailure {
            operation: "RunInstances",
            code: "NoInstanceReturned".into(),
            message: "RunInstances succeeded but returned no instance".into(),
            retry: crate::error::Retry::CanHelp,
        })
    }
}
