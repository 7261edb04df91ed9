//! Backups as EC2 and SSM hold them: instances declared for backup, backup AMIs and their
//! snapshots, and the SSM parameter that names the newest good one.

use crate::{ec2_filter as filter, ec2_tags as tag_map, failure, instance_from};
use async_trait::async_trait;
use aws_sdk_ec2::types::Tag;
use aws_sdk_ssm::types::ParameterType;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use ha_domain::backup::{
    stateful_instance_from_tags, BackupImage, HelperSubnet, Host, ImageState, MisdeclaredInstance, StatefulInstance,
};
use ha_domain::error::AwsFailure;
use ha_domain::model::tag;
use ha_domain::model::Instance;
use ha_ports::backups::{BackupCatalog, Backups, ImageFacts};

#[derive(Clone)]
pub struct BackupStore {
    ec2: aws_sdk_ec2::Client,
    ssm: aws_sdk_ssm::Client,
    stack: String,
}

fn is_code<E: ProvideErrorMetadata>(e: &E, codes: &[&str]) -> bool {
    e.code().is_some_and(|c| codes.contains(&c))
}

impl BackupStore {
    pub fn new(ec2: aws_sdk_ec2::Client, ssm: aws_sdk_ssm::Client, stack: impl Into<String>) -> Self {
        BackupStore { ec2, ssm, stack: stack.into() }
    }
}

#[async_trait]
impl BackupCatalog for BackupStore {
    /// The parameter's value, or `None` when it does not exist.
    async fn parameter(&self, name: &str) -> Result<Option<String>, AwsFailure> {
        match self.ssm.get_parameter().name(name).send().await {
            Ok(out) => Ok(out.parameter().and_then(|p| p.value()).map(str::to_string)),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_parameter_not_found()) => Ok(None),
            Err(e) => Err(failure("GetParameter", &e)),
        }
    }

    /// The image, or `None` when EC2 does not know it (deregistered, never existed).
    async fn image(&self, image_id: &str) -> Result<Option<ImageFacts>, AwsFailure> {
        match self.ec2.describe_images().image_ids(image_id).send().await {
            Ok(out) => Ok(out.images().first().map(image_facts)),
            Err(e) if is_code(&e, &["InvalidAMIID.NotFound", "InvalidAMIID.Unavailable", "InvalidAMIID.Malformed"]) => {
                Ok(None)
            }
            Err(e) => Err(failure("DescribeImages", &e)),
        }
    }
}

#[async_trait]
impl Backups for BackupStore {
    /// Running instances carrying the backup tag, read into declarations.
    async fn stateful_instances(&self) -> Result<(Vec<StatefulInstance>, Vec<MisdeclaredInstance>), AwsFailure> {
        let mut pages = self
            .ec2
            .describe_instances()
            .filters(filter("tag-key", &[tag::BACKUP_PARAMETER]))
            .filters(filter("instance-state-name", &["running"]))
            .max_results(1000)
            .into_paginator()
            .send();
        let (mut ok, mut misdeclared) = (Vec::new(), Vec::new());
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| failure("DescribeInstances", &e))?;
            for i in page.reservations().iter().flat_map(|r| r.instances()) {
                let Some(id) = i.instance_id() else { continue };
                let tags = tag_map(i.tags());
                // A fenced original holds stale data: backing it up would move the parameter
                // away from the replacement's backups.
                if tags.contains_key(tag::FENCED) {
                    continue;
                }
                let host = Host { vpc_id: i.vpc_id(), architecture: i.architecture().map(|a| a.as_str()) };
                match stateful_instance_from_tags(id, &host, &tags, &self.stack) {
                    Ok(s) => ok.push(s),
                    Err(m) => misdeclared.push(m),
                }
            }
        }
        Ok((ok, misdeclared))
    }

    /// The instance, or `None` when EC2 no longer knows it.
    async fn instance(&self, instance_id: &str) -> Result<Option<Instance>, AwsFailure> {
        let out = match self.ec2.describe_instances().instance_ids(instance_id).send().await {
            Ok(out) => out,
            Err(e) if is_code(&e, &["InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"]) => return Ok(None),
            Err(e) => return Err(failure("DescribeInstances", &e)),
        };
        Ok(out.reservations().iter().flat_map(|r| r.instances()).next().map(instance_from))
    }

    async fn helper_subnets(&self, vpc_ids: &[String]) -> Result<Vec<HelperSubnet>, AwsFailure> {
        if vpc_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pages = self
            .ec2
            .describe_subnets()
            .filters(filter("tag-key", &[tag::BACKUP_HELPER]))
            .filters(filter("vpc-id", &vpc_ids.iter().map(String::as_str).collect::<Vec<_>>()))
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| failure("DescribeSubnets", &e))?;
            found.extend(page.subnets().iter().filter_map(|s| {
                Some(HelperSubnet {
                    subnet_id: s.subnet_id()?.to_string(),
                    vpc_id: s.vpc_id()?.to_string(),
                    on_outpost: s.outpost_arn().is_some_and(|a| !a.is_empty()),
                })
            }));
        }
        Ok(found)
    }

    /// Good backups this stack made: of one instance, or of all.
    async fn backups(&self, instance_id: Option<&str>) -> Result<Vec<BackupImage>, AwsFailure> {
        let mut request = self
            .ec2
            .describe_images()
            .owners("self")
            .filters(filter(&format!("tag:{}", tag::STACK), &[&self.stack]))
            .filters(filter("tag-key", &[tag::BACKUP_OF]));
        if let Some(id) = instance_id {
            request = request.filters(filter(&format!("tag:{}", tag::BACKUP_OF), &[id]));
        }
        let mut pages = request.max_results(1000).into_paginator().send();
        let mut backups = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| failure("DescribeImages", &e))?;
            for image in page.images() {
                let facts = image_facts(image);
                let (Some(instance), Some(taken_at)) = (facts.tags.get(tag::BACKUP_OF), facts.taken_at()) else {
                    continue;
                };
                backups.push(BackupImage {
                    image_id: facts.image_id.clone(),
                    instance_id: instance.clone(),
                    taken_at,
                    snapshot_ids: facts.snapshot_ids.clone(),
                });
            }
        }
        Ok(backups)
    }

    /// Tags the resources (an AMI and its snapshots); repeating it changes nothing.
    async fn tag(&self, resources: &[String], tags: &[(&str, &str)]) -> Result<(), AwsFailure> {
        self.ec2
            .create_tags()
            .set_resources(Some(resources.to_vec()))
            .set_tags(Some(tags.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build()).collect()))
            .send()
            .await
            .map_err(|e| failure("CreateTags", &e))?;
        Ok(())
    }

    /// Snapshots this stack tagged as backups of the instance.
    async fn tagged_snapshots(&self, instance_id: &str) -> Result<Vec<String>, AwsFailure> {
        let mut pages = self
            .ec2
            .describe_snapshots()
            .owner_ids("self")
            .filters(filter(&format!("tag:{}", tag::STACK), &[&self.stack]))
            .filters(filter(&format!("tag:{}", tag::BACKUP_OF), &[instance_id]))
            .max_results(1000)
            .into_paginator()
            .send();
        let mut ids = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| failure("DescribeSnapshots", &e))?;
            ids.extend(page.snapshots().iter().filter_map(|s| s.snapshot_id().map(str::to_string)));
        }
        Ok(ids)
    }

    /// Deregisters the image; one already gone counts as done.
    async fn deregister(&self, image_id: &str) -> Result<(), AwsFailure> {
        match self.ec2.deregister_image().image_id(image_id).send().await {
            Ok(_) => Ok(()),
            Err(e) if is_code(&e, &["InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"]) => Ok(()),
            Err(e) => Err(failure("DeregisterImage", &e)),
        }
    }

    /// Deletes the snapshot; one already gone counts as done, one in use (by an image a
    /// concurrent completion just registered) is left.
    async fn delete_snapshot(&self, snapshot_id: &str) -> Result<(), AwsFailure> {
        match self.ec2.delete_snapshot().snapshot_id(snapshot_id).send().await {
            Ok(_) => Ok(()),
            Err(e) if is_code(&e, &["InvalidSnapshot.NotFound", "InvalidSnapshot.InUse"]) => Ok(()),
            Err(e) => Err(failure("DeleteSnapshot", &e)),
        }
    }

    /// Points the parameter at the AMI, as an `aws:ec2:image` parameter launch templates
    /// can resolve.
    async fn put_parameter(&self, name: &str, image_id: &str, description: &str) -> Result<(), AwsFailure> {
        self.ssm
            .put_parameter()
            .name(name)
            .value(image_id)
            .r#type(ParameterType::String)
            .data_type("aws:ec2:image")
            .description(description)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| failure("PutParameter", &e))?;
        Ok(())
    }
}

fn image_facts(image: &aws_sdk_ec2::types::Image) -> ImageFacts {
    ImageFacts {
        image_id: image.image_id().unwrap_or_default().to_string(),
        state: ImageState::parse(image.state().map(|s| s.as_str()).unwrap_or_default()),
        snapshot_ids: image
            .block_device_mappings()
            .iter()
            .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_string))
            .collect(),
        creation_date: image.creation_date().map(str::to_string),
        tags: tag_map(image.tags()),
    }
}
