//! EC2: workloads declared on launch templates, replacements found and launched.

use crate::{ec2_filter as filter, ec2_tags, failure, instance_from};
use async_trait::async_trait;
use aws_sdk_ec2::types::{
    InstanceNetworkInterfaceSpecification, LaunchTemplateSpecification, ResourceType, Tag, TagSpecification,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use ha_domain::error::AwsFailure;
use ha_domain::fencing::quarantine_group_name;
use ha_domain::model::InstanceState;
use ha_domain::model::{tag, workload_from_tags, Instance, RejectedWorkload, ServerId, Workload, WorkloadMode};
use ha_ports::fleet::InterfaceSpec;
use ha_ports::fleet::{ExistingReplacement, ExistingRole, FencedSelector, Fleet, LaunchFor, LaunchRequest, Launched};
use std::collections::BTreeMap;

/// Instance states in which an instance may still run.
const LIVE_STATES: &[&str] = &["pending", "running", "stopping", "stopped"];

#[derive(Clone)]
pub struct Ec2Fleet {
    client: aws_sdk_ec2::Client,
}

impl Ec2Fleet {
    pub fn new(client: aws_sdk_ec2::Client) -> Self {
        Ec2Fleet { client }
    }
}

#[async_trait]
impl Fleet for Ec2Fleet {
    /// The workloads declared for `server`: launch templates carrying its tag.
    async fn workloads_of(&self, server: &ServerId) -> Result<(Vec<Workload>, Vec<RejectedWorkload>), AwsFailure> {
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
                let tags: BTreeMap<String, String> = ec2_tags(lt.tags());
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

    async fn copies_of(&self, workload: &str) -> Result<Vec<ExistingReplacement>, AwsFailure> {
        let mut pages = self
            .client
            .describe_instances()
            .filters(filter(&format!("tag:{}", tag::WORKLOAD), &[workload]))
            .filters(filter(&format!("tag:{}", tag::ROLE), &[tag::ROLE_REPLACEMENT, tag::ROLE_STANDBY]))
            .filters(filter("instance-state-name", LIVE_STATES))
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| failure("DescribeInstances", &e))?;
            found.extend(page.reservations().iter().flat_map(|r| r.instances()).filter_map(|i| {
                let mut tags = ec2_tags(i.tags());
                let role = match tags.get(tag::ROLE).map(String::as_str) {
                    Some(tag::ROLE_STANDBY) => ExistingRole::Standby,
                    _ => ExistingRole::Replacement,
                };
                Some(ExistingReplacement {
                    instance_id: i.instance_id()?.to_string(),
                    subnet_id: i.subnet_id().unwrap_or_default().to_string(),
                    state: InstanceState::parse(
                        i.state().and_then(|s| s.name()).map(|n| n.as_str()).unwrap_or_default(),
                    ),
                    source_server: tags.remove(tag::SOURCE_SERVER),
                    restored_from: tags.remove(tag::RESTORED_FROM),
                    incident: tags.remove(tag::INCIDENT),
                    retiring_since: tags
                        .get(tag::RETIRING)
                        .and_then(|t| ha_domain::timefmt::parse_timestamp(t))
                        .map(|t| t.unix_timestamp()),
                    role,
                    server_id: i.outpost_arn().and_then(ha_domain::fencing::server_of_outpost_arn),
                    standby_version: tags.remove(tag::STANDBY_VERSION),
                    promoted: tags.contains_key(tag::PROMOTED_AT),
                })
            }));
        }
        Ok(found)
    }

    /// Launch templates tagged warm, with the version each resolves to now
    /// (DescribeLaunchTemplates answers the default and latest version numbers).
    async fn warm_workloads(&self) -> Result<(Vec<(Workload, String)>, Vec<RejectedWorkload>), AwsFailure> {
        let mut pages = self
            .client
            .describe_launch_templates()
            .max_results(200)
            .filters(filter(&format!("tag:{}", tag::MODE), &[WorkloadMode::Warm.as_str()]))
            .into_paginator()
            .send();
        let (mut warm, mut rejected) = (Vec::new(), Vec::new());
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| failure("DescribeLaunchTemplates", &e))?;
            for lt in page.launch_templates() {
                let id = lt.launch_template_id().unwrap_or_default();
                let name = lt.launch_template_name().unwrap_or_default();
                match workload_from_tags(id, name, &ec2_tags(lt.tags())) {
                    Ok(w) => {
                        let version = match w.launch_template_version.as_str() {
                            "$Latest" => lt.latest_version_number().map(|v| v.to_string()),
                            "$Default" => lt.default_version_number().map(|v| v.to_string()),
                            number => Some(number.to_string()),
                        };
                        warm.push((w, version.unwrap_or_default()));
                    }
                    Err(e) => rejected.push(RejectedWorkload {
                        launch_template_id: id.to_string(),
                        launch_template_name: name.to_string(),
                        reason: e.to_string(),
                    }),
                }
            }
        }
        Ok((warm, rejected))
    }

    /// The network interfaces of one version of a launch template.
    async fn template_interfaces(&self, template_id: &str, version: &str) -> Result<Vec<InterfaceSpec>, AwsFailure> {
        let out = self
            .client
            .describe_launch_template_versions()
            .launch_template_id(template_id)
            .versions(version)
            .send()
            .await
            .map_err(|e| failure("DescribeLaunchTemplateVersions", &e))?;
        let data = out.launch_template_versions().first().and_then(|v| v.launch_template_data());
        let interfaces = data.map(|d| d.network_interfaces()).unwrap_or_default();
        Ok(interfaces
            .iter()
            .map(|i| InterfaceSpec {
                device_index: i.device_index().unwrap_or(0),
                subnet_id: i.subnet_id().map(str::to_string),
                groups: i.groups().to_vec(),
                delete_on_termination: i.delete_on_termination(),
                description: i.description().map(str::to_string),
                associate_public_ip_address: i.associate_public_ip_address(),
                interface_type: i.interface_type().map(str::to_string),
                network_card_index: i.network_card_index(),
                secondary_private_ip_address_count: i.secondary_private_ip_address_count(),
                ipv6_address_count: i.ipv6_address_count(),
            })
            .collect())
    }

    /// One RunInstances at one destination. The destination is explicit (the template's own
    /// network settings are not the destination): `SubnetId`, or, when the template declares
    /// network interfaces, each of them placed there (EC2 refuses both on one request). The
    /// ClientToken makes a retry by a later claimant return the same instance, not a second.
    async fn launch(&self, r: &LaunchRequest<'_>) -> Result<Launched, AwsFailure> {
        let mut tags =
            vec![(tag::WORKLOAD, r.workload.name.as_str()), (tag::SOURCE_SERVER, r.workload.protected_server.as_str())];
        match r.purpose {
            LaunchFor::Incident(incident) => {
                tags.extend([(tag::INCIDENT, incident.as_str()), (tag::ROLE, tag::ROLE_REPLACEMENT)])
            }
            LaunchFor::Standby { version } => {
                tags.extend([(tag::ROLE, tag::ROLE_STANDBY), (tag::STANDBY_VERSION, version)])
            }
        }
        let target_groups = r.workload.target_groups.join(",");
        if !target_groups.is_empty() {
            tags.push((tag::TARGET_GROUPS, target_groups.as_str()));
        }
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
            .set_subnet_id(r.interfaces.is_empty().then(|| r.subnet_id.to_string()))
            .set_network_interfaces((!r.interfaces.is_empty()).then(|| r.interfaces.iter().map(interface_of).collect()))
            .set_image_id(r.restored_from.map(|b| b.image_id.clone()))
            .min_count(1)
            .max_count(1)
            .set_client_token((!r.dry_run).then(|| r.client_token.to_string()))
            .dry_run(r.dry_run)
            .tag_specifications(spec)
            .send()
            .await
            .map_err(|e| failure("RunInstances", &e))?;
        let first = out.instances().first();
        let state = first.and_then(|i| i.state()).and_then(|s| s.name()).map(|n| InstanceState::parse(n.as_str()));
        first
            .and_then(|i| i.instance_id())
            .map(|id| Launched { instance_id: id.to_string(), state: state.unwrap_or(InstanceState::Pending) })
            .ok_or_else(|| AwsFailure {
                operation: "RunInstances",
                code: "NoInstanceReturned".into(),
                message: "RunInstances succeeded but returned no instance".into(),
                retry: ha_domain::error::Retry::CanHelp,
            })
    }

    /// One instance: its state, private address and tags; `None` when EC2 does not know it.
    async fn instance(&self, instance_id: &str) -> Result<Option<Instance>, AwsFailure> {
        let out = match self.client.describe_instances().instance_ids(instance_id).send().await {
            Ok(out) => out,
            Err(e) if e.code() == Some("InvalidInstanceID.NotFound") => return Ok(None),
            Err(e) => return Err(failure("DescribeInstances", &e)),
        };
        Ok(out.reservations().iter().flat_map(|r| r.instances()).next().map(instance_from))
    }

    /// Whether the subnet exists (a drill names a missing destination plainly).
    async fn subnet_exists(&self, subnet_id: &str) -> Result<bool, AwsFailure> {
        match self.client.describe_subnets().subnet_ids(subnet_id).send().await {
            Ok(out) => Ok(!out.subnets().is_empty()),
            Err(e) if e.code() == Some("InvalidSubnetID.NotFound") => Ok(false),
            Err(e) => Err(failure("DescribeSubnets", &e)),
        }
    }

    /// Tags of the launch templates, by id; a template that no longer exists is left out.
    async fn template_tags(&self, ids: &[String]) -> Result<BTreeMap<String, BTreeMap<String, String>>, AwsFailure> {
        let mut tags = BTreeMap::new();
        let mut chunks: Vec<Vec<String>> = ids.chunks(200).map(<[String]>::to_vec).collect();
        while let Some(chunk) = chunks.pop() {
            let out =
                match self.client.describe_launch_templates().set_launch_template_ids(Some(chunk.clone())).send().await
                {
                    Ok(out) => out,
                    // One deleted template fails the whole call: ask for each, and leave it out.
                    Err(e) if e.code().is_some_and(|c| c.starts_with("InvalidLaunchTemplateId")) => {
                        if chunk.len() > 1 {
                            chunks.extend(chunk.into_iter().map(|id| vec![id]));
                        }
                        continue;
                    }
                    Err(e) => return Err(failure("DescribeLaunchTemplates", &e)),
                };
            for lt in out.launch_templates() {
                let map = ec2_tags(lt.tags());
                tags.insert(lt.launch_template_id().unwrap_or_default().to_string(), map);
            }
        }
        Ok(tags)
    }

    /// Live instances tagged with one of the workloads, with what fencing needs to know.
    async fn instances_of(&self, workloads: &[String]) -> Result<Vec<Instance>, AwsFailure> {
        let mut found = Vec::new();
        for chunk in workloads.chunks(200) {
            let names: Vec<&str> = chunk.iter().map(String::as_str).collect();
            let mut pages = self
                .client
                .describe_instances()
                .filters(filter(&format!("tag:{}", tag::WORKLOAD), &names))
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| failure("DescribeInstances", &e))?;
                for i in page.reservations().iter().flat_map(|r| r.instances()) {
                    found.push(instance_from(i));
                }
            }
        }
        Ok(found)
    }

    async fn find_quarantine_group(&self, vpc_id: &str, stack: &str) -> Result<Option<String>, AwsFailure> {
        Ok(self.existing_quarantine_group(vpc_id, stack).await?.map(|(id, _)| id))
    }

    /// The VPC's quarantine group (no rules in or out), created on first use.
    async fn quarantine_group(&self, vpc_id: &str, stack: &str) -> Result<String, AwsFailure> {
        let name = quarantine_group_name(stack);
        let existing = || self.existing_quarantine_group(vpc_id, stack);
        let (id, egress) = match existing().await? {
            Some(found) => found,
            None => {
                let created = self
                    .client
                    .create_security_group()
                    .group_name(&name)
                    .description("Outposts HA quarantine: fenced originals, no traffic in or out")
                    .vpc_id(vpc_id)
                    .tag_specifications(
                        TagSpecification::builder()
                            .resource_type(ResourceType::SecurityGroup)
                            .tags(Tag::builder().key(tag::QUARANTINE).value(stack).build())
                            .build(),
                    )
                    .send()
                    .await;
                match created {
                    // A new group allows all egress (IPv4, and IPv6 in a dual-stack VPC).
                    Ok(out) => (out.group_id().unwrap_or_default().to_string(), true),
                    // Another delivery created it meanwhile.
                    Err(e) if e.code() == Some("InvalidGroup.Duplicate") => {
                        existing().await?.ok_or_else(|| failure("DescribeSecurityGroups", &e))?
                    }
                    Err(e) => return Err(failure("CreateSecurityGroup", &e)),
                }
            }
        };
        if !egress {
            return Ok(id);
        }
        // Found with egress left: a pass that created it died before this revoke, or the
        // revoke failed. A quarantine group is never used while it allows egress.
        for range in [("0.0.0.0/0", false), ("::/0", true)] {
            let permission = aws_sdk_ec2::types::IpPermission::builder().ip_protocol("-1");
            let permission = if range.1 {
                permission.ipv6_ranges(aws_sdk_ec2::types::Ipv6Range::builder().cidr_ipv6(range.0).build())
            } else {
                permission.ip_ranges(aws_sdk_ec2::types::IpRange::builder().cidr_ip(range.0).build())
            };
            let revoke = self
                .client
                .revoke_security_group_egress()
                .group_id(&id)
                .ip_permissions(permission.build())
                .send()
                .await;
            match revoke {
                Ok(_) => {}
                // Already gone, or never there (no IPv6 in the VPC).
                Err(e) if e.code() == Some("InvalidPermission.NotFound") => {}
                Err(e) => return Err(failure("RevokeSecurityGroupEgress", &e)),
            }
        }
        Ok(id)
    }

    async fn tag_instance(&self, instance_id: &str, tags: &[(&str, &str)]) -> Result<(), AwsFailure> {
        self.client
            .create_tags()
            .resources(instance_id)
            .set_tags(Some(tags.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build()).collect()))
            .send()
            .await
            .map_err(|e| failure("CreateTags", &e))?;
        Ok(())
    }

    /// Removes the tags (by key) from an instance. No keys removes nothing (EC2 would
    /// remove every tag).
    async fn untag_instance(&self, instance_id: &str, keys: &[&str]) -> Result<(), AwsFailure> {
        if keys.is_empty() {
            return Ok(());
        }
        self.client
            .delete_tags()
            .resources(instance_id)
            .set_tags(Some(keys.iter().map(|k| Tag::builder().key(*k).build()).collect()))
            .send()
            .await
            .map_err(|e| failure("DeleteTags", &e))?;
        Ok(())
    }

    /// Live instances fenced for the incident, or the one instance if it is fenced.
    async fn fenced_instances(&self, selector: &FencedSelector<'_>) -> Result<Vec<Instance>, AwsFailure> {
        let live = filter("instance-state-name", LIVE_STATES);
        let request = match selector {
            FencedSelector::Incident(incident) => self
                .client
                .describe_instances()
                .filters(filter(&format!("tag:{}", tag::FENCED), &[incident]))
                .filters(live),
            FencedSelector::Instance(id) => self
                .client
                .describe_instances()
                .instance_ids(*id)
                .filters(filter("tag-key", &[tag::FENCED]))
                .filters(live),
        };
        let mut pages = request.into_paginator().send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            match page {
                Ok(page) => found.extend(page.reservations().iter().flat_map(|r| r.instances()).map(instance_from)),
                Err(e) if e.code() == Some("InvalidInstanceID.NotFound") => break,
                Err(e) => return Err(failure("DescribeInstances", &e)),
            }
        }
        Ok(found)
    }

    async fn set_interface_groups(&self, interface_id: &str, groups: &[String]) -> Result<(), AwsFailure> {
        self.client
            .modify_network_interface_attribute()
            .network_interface_id(interface_id)
            .set_groups(Some(groups.to_vec()))
            .send()
            .await
            .map_err(|e| failure("ModifyNetworkInterfaceAttribute", &e))?;
        Ok(())
    }

    async fn terminate(&self, instance_id: &str) -> Result<(), AwsFailure> {
        match self.client.terminate_instances().instance_ids(instance_id).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("InvalidInstanceID.NotFound") => Ok(()),
            Err(e) => Err(failure("TerminateInstances", &e)),
        }
    }
}

impl Ec2Fleet {
    /// The quarantine group and whether any egress rule is left on it.
    async fn existing_quarantine_group(&self, vpc_id: &str, stack: &str) -> Result<Option<(String, bool)>, AwsFailure> {
        let out = self
            .client
            .describe_security_groups()
            .filters(filter("vpc-id", &[vpc_id]))
            .filters(filter("group-name", &[&quarantine_group_name(stack)]))
            .send()
            .await
            .map_err(|e| failure("DescribeSecurityGroups", &e))?;
        Ok(out
            .security_groups()
            .first()
            .and_then(|g| Some((g.group_id()?.to_string(), !g.ip_permissions_egress().is_empty()))))
    }
}

fn interface_of(i: &InterfaceSpec) -> InstanceNetworkInterfaceSpecification {
    InstanceNetworkInterfaceSpecification::builder()
        .device_index(i.device_index)
        .set_subnet_id(i.subnet_id.clone())
        .set_groups((!i.groups.is_empty()).then(|| i.groups.clone()))
        .set_delete_on_termination(i.delete_on_termination)
        .set_description(i.description.clone())
        .set_associate_public_ip_address(i.associate_public_ip_address)
        .set_interface_type(i.interface_type.clone())
        .set_network_card_index(i.network_card_index)
        .set_secondary_private_ip_address_count(i.secondary_private_ip_address_count)
        .set_ipv6_address_count(i.ipv6_address_count)
        .build()
}
