//! Backups as EC2 and SSM hold them: the backup runbook's executions (ClientToken
//! idempotent; an execution fails when its instance's server is down at any point of it,
//! or its instance is not running at the end), the AMIs and snapshots they make, and the
//! parameters, whose `aws:ec2:image` writes SSM applies a few seconds after PutParameter
//! answers (it validates them asynchronously), in the order they are applied. I6 is
//! checked as each write applies: the parameter only moves forward, and never to a backup
//! of an original that is fenced or whose replacement lives.

use super::{Outgoing, Sim, World};
use async_trait::async_trait;
use ha_domain::backup::{
    stateful_instance_from_tags, BackupImage, ExecutionFacts, HelperSubnet, Host, ImageState, MisdeclaredInstance,
    StatefulInstance,
};
use ha_domain::error::AwsFailure;
use ha_domain::model::{tag, Instance, InstanceState};
use ha_domain::timefmt::format_timestamp;
use ha_ports::backups::{BackupCatalog, Backups, ImageFacts, InFlight, Runbook};
use rand::Rng;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The runbook the template names by default.
pub const DOCUMENT: &str = "BackupOutpostsServerLinuxInstanceToEBS";
/// The runbook's output naming the AMI it made.
pub const IMAGE_OUTPUT: &str = "createAMIFromSnapshot.ImageId";

/// One execution of the backup runbook.
#[derive(Debug, Clone)]
pub struct Execution {
    pub instance_id: String,
    pub parameters: BTreeMap<String, Vec<String>>,
    pub started_ms: i64,
    /// `InProgress`, then `Success` or `Failed`.
    pub status: String,
    pub ended_ms: Option<i64>,
    pub image_id: Option<String>,
    /// Its instance's server went down while it ran.
    pub interrupted: bool,
}

/// Where an AMI's data came from: the instance and when the backup started (virtual ms).
#[derive(Debug, Clone)]
pub struct ImageSource {
    pub instance_id: String,
    pub taken_ms: i64,
}

pub fn time_of(ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).expect("in range")
}

impl World {
    /// A server goes down: every backup of its instances under way fails.
    pub fn interrupt_backups(&mut self, server: &str) {
        let on_server: Vec<String> = self
            .instances
            .values()
            .filter(|i| i.server.as_ref().is_some_and(|s| s.as_str() == server))
            .map(|i| i.id.clone())
            .collect();
        for x in self.executions.values_mut().filter(|x| x.status == "InProgress") {
            if on_server.contains(&x.instance_id) {
                x.interrupted = true;
            }
        }
    }

    /// The execution ends; the status change EventBridge puts on the default bus.
    pub fn end_execution(&mut self, id: &str) -> Option<Value> {
        let x = self.executions.get(id).filter(|x| x.status == "InProgress")?.clone();
        let now = self.now_ms();
        let instance = self.instances.get(&x.instance_id);
        let reachable = instance.is_some_and(|i| {
            i.state == InstanceState::Running && i.server.as_ref().is_none_or(|s| !self.servers_down.contains(s))
        });
        let (status, image_id) = if reachable && !x.interrupted {
            let image = self.next_id("ami");
            let snapshot = self.next_id("snap");
            self.images.insert(
                image.clone(),
                ImageFacts {
                    image_id: image.clone(),
                    state: ImageState::Available,
                    snapshot_ids: vec![snapshot.clone()],
                    creation_date: Some(format_timestamp(time_of(x.started_ms))),
                    tags: BTreeMap::new(),
                },
            );
            self.snapshots.insert(snapshot, BTreeMap::new());
            self.image_sources
                .insert(image.clone(), ImageSource { instance_id: x.instance_id.clone(), taken_ms: x.started_ms });
            ("Success", Some(image))
        } else {
            ("Failed", None)
        };
        self.note(format!("backup {id} of {} ends {status} {}", x.instance_id, image_id.as_deref().unwrap_or("")));
        let x = self.executions.get_mut(id).expect("just read");
        x.status = status.into();
        x.ended_ms = Some(now);
        x.image_id = image_id;
        Some(json!({
            "version": "0",
            "detail-type": "EC2 Automation Execution Status-change Notification",
            "source": "aws.ssm",
            "time": format_timestamp(time_of(now)),
            "detail": {"ExecutionId": id, "Definition": DOCUMENT, "Status": status}
        }))
    }

    /// SSM applies the parameter writes whose validation has finished, in that order.
    pub fn apply_parameters(&mut self, all: bool) {
        let now = self.now_ms();
        self.pending_parameters.sort_by_key(|(at, _, _)| *at);
        while let Some((at, _, _)) = self.pending_parameters.first() {
            if *at > now && !all {
                break;
            }
            let (_, name, value) = self.pending_parameters.remove(0);
            self.check_parameter_move(&name, &value);
            self.note(format!("{name} = {value} (applied)"));
            self.parameters.insert(name, value);
        }
    }

    /// (I6) The parameter only moves forward, and never to the backup of an original that
    /// is fenced, whose replacement (from its server) lives, or that was put back in
    /// service after the backup began (it began as a superseded copy's).
    fn check_parameter_move(&mut self, name: &str, image_id: &str) {
        // Writing the value it names moves nothing (a retried completion rewrites it).
        if self.parameters.get(name).map(String::as_str) == Some(image_id) {
            return;
        }
        let Some(source) = self.image_sources.get(image_id).cloned() else { return };
        let current_taken =
            self.parameters.get(name).and_then(|c| self.image_sources.get(c)).map_or(i64::MIN, |s| s.taken_ms);
        if source.taken_ms < current_taken {
            self.violation(format!("I6: {name} moved back to {image_id}, older than what it named"));
        }
        let Some(original) = self.instances.get(&source.instance_id) else { return };
        if original.tags.get(tag::ROLE).map(String::as_str) == Some(tag::ROLE_REPLACEMENT) {
            return;
        }
        let fenced = original.tags.contains_key(tag::FENCED);
        let workload = original.tags.get(tag::WORKLOAD).cloned();
        let server = original.server.as_ref().map(ToString::to_string);
        let replaced = self.instances.values().any(|r| {
            !r.state.is_gone()
                && r.tags.get(tag::ROLE).map(String::as_str) == Some(tag::ROLE_REPLACEMENT)
                && r.tags.get(tag::WORKLOAD) == workload.as_ref()
                && r.tags.get(tag::SOURCE_SERVER) == server.as_ref()
        });
        let put_back = self.unfenced_at.get(&source.instance_id).is_some_and(|at| *at > source.taken_ms);
        if fenced || replaced || put_back {
            let original = &source.instance_id;
            let whose = if fenced {
                format!("fenced original {original}")
            } else if replaced {
                format!("replaced original {original}")
            } else {
                format!("original {original} taken before it was put back")
            };
            self.violation(format!("I6: {name} moved to {image_id}, a backup of {whose}"));
        }
    }
}

pub struct SimBackups(pub Arc<Sim>);

#[async_trait]
impl BackupCatalog for SimBackups {
    async fn parameter(&self, name: &str) -> Result<Option<String>, AwsFailure> {
        self.0.enter("GetParameter").await?;
        let mut w = self.0.world();
        w.apply_parameters(false);
        Ok(w.parameters.get(name).cloned())
    }

    async fn image(&self, image_id: &str) -> Result<Option<ImageFacts>, AwsFailure> {
        self.0.enter("DescribeImages").await?;
        Ok(self.0.world().images.get(image_id).cloned())
    }
}

#[async_trait]
impl Backups for SimBackups {
    async fn stateful_instances(&self) -> Result<(Vec<StatefulInstance>, Vec<MisdeclaredInstance>), AwsFailure> {
        self.0.enter("DescribeInstances").await?;
        let w = self.0.world();
        let (mut ok, mut misdeclared) = (Vec::new(), Vec::new());
        for i in w.described().filter(|i| i.state == InstanceState::Running) {
            if !i.tags.contains_key(tag::BACKUP_PARAMETER) || i.tags.contains_key(tag::FENCED) {
                continue;
            }
            let host = Host { vpc_id: Some(&i.vpc), architecture: Some("x86_64") };
            match stateful_instance_from_tags(&i.id, &host, &i.tags, super::STACK) {
                Ok(s) => ok.push(s),
                Err(m) => misdeclared.push(m),
            }
        }
        Ok((ok, misdeclared))
    }

    async fn instance(&self, instance_id: &str) -> Result<Option<Instance>, AwsFailure> {
        self.0.enter("DescribeInstances").await?;
        Ok(self.0.world().visible(instance_id).map(World::instance_view))
    }

    async fn helper_subnets(&self, vpc_ids: &[String]) -> Result<Vec<HelperSubnet>, AwsFailure> {
        self.0.enter("DescribeSubnets").await?;
        let w = self.0.world();
        Ok(w.helper_subnets.iter().filter(|s| vpc_ids.contains(&s.vpc_id)).cloned().collect())
    }

    async fn backups(&self, instance_id: Option<&str>) -> Result<Vec<BackupImage>, AwsFailure> {
        self.0.enter("DescribeImages").await?;
        let w = self.0.world();
        Ok(w.images
            .values()
            .filter(|i| i.tags.get(tag::STACK).map(String::as_str) == Some(super::STACK))
            .filter_map(|i| {
                let of = i.tags.get(tag::BACKUP_OF)?;
                if instance_id.is_some_and(|id| id != of) {
                    return None;
                }
                Some(BackupImage {
                    image_id: i.image_id.clone(),
                    instance_id: of.clone(),
                    taken_at: i.taken_at()?,
                    snapshot_ids: i.snapshot_ids.clone(),
                })
            })
            .collect())
    }

    async fn tag(&self, resources: &[String], tags: &[(&str, &str)]) -> Result<(), AwsFailure> {
        self.0.enter("CreateTags").await?;
        {
            let mut w = self.0.world();
            for r in resources {
                let target = match w.images.get_mut(r) {
                    Some(image) => Some(&mut image.tags),
                    None => w.snapshots.get_mut(r),
                };
                if let Some(target) = target {
                    target.extend(tags.iter().map(|(k, v)| (k.to_string(), v.to_string())));
                }
            }
        }
        self.0.leave("CreateTags").await
    }

    async fn tagged_snapshots(&self, instance_id: &str) -> Result<Vec<String>, AwsFailure> {
        self.0.enter("DescribeSnapshots").await?;
        let w = self.0.world();
        Ok(w.snapshots
            .iter()
            .filter(|(_, t)| t.get(tag::BACKUP_OF).map(String::as_str) == Some(instance_id))
            .map(|(id, _)| id.clone())
            .collect())
    }

    async fn deregister(&self, image_id: &str) -> Result<(), AwsFailure> {
        self.0.enter("DeregisterImage").await?;
        {
            let mut w = self.0.world();
            w.apply_parameters(false);
            let pending = w.pending_parameters.iter().map(|(_, n, v)| (n, v));
            if let Some((name, _)) = w.parameters.iter().chain(pending).find(|(_, v)| v.as_str() == image_id) {
                let what = format!("I6: pruned {image_id}, the backup {name} names");
                w.violation(what);
            }
            w.images.remove(image_id);
        }
        self.0.leave("DeregisterImage").await
    }

    async fn delete_snapshot(&self, snapshot_id: &str) -> Result<(), AwsFailure> {
        self.0.enter("DeleteSnapshot").await?;
        self.0.world().snapshots.remove(snapshot_id);
        self.0.leave("DeleteSnapshot").await
    }

    async fn put_parameter(&self, name: &str, image_id: &str, _description: &str) -> Result<(), AwsFailure> {
        self.0.enter("PutParameter").await?;
        {
            let mut w = self.0.world();
            let applies_at = w.now_ms() + w.rng.gen_range(0..3_000);
            w.note(format!("PutParameter {name} = {image_id}"));
            w.pending_parameters.push((applies_at, name.to_string(), image_id.to_string()));
        }
        self.0.leave("PutParameter").await
    }
}

pub struct SimRunbook(pub Arc<Sim>);

#[async_trait]
impl Runbook for SimRunbook {
    async fn in_flight(&self, instance_parameter: &str) -> Result<InFlight, AwsFailure> {
        self.0.enter("DescribeAutomationExecutions").await?;
        let w = self.0.world();
        let running: Vec<&Execution> = w.executions.values().filter(|x| x.status == "InProgress").collect();
        Ok(InFlight {
            executions: running.len(),
            instances: running
                .iter()
                .filter_map(|x| x.parameters.get(instance_parameter).and_then(|v| v.first()).cloned())
                .collect(),
        })
    }

    async fn start(
        &self,
        parameters: &BTreeMap<String, Vec<String>>,
        client_token: &str,
        _tags: &[(&str, &str)],
    ) -> Result<String, AwsFailure> {
        self.0.enter("StartAutomationExecution").await?;
        let id = {
            let mut w = self.0.world();
            let request = format!("{parameters:?}");
            match w.runbook_tokens.get(client_token).cloned() {
                Some((used, _)) if used != request => {
                    return Err(super::failure(
                        "StartAutomationExecution",
                        "IdempotentParameterMismatch",
                        ha_domain::error::Retry::WontHelp,
                    ))
                }
                Some((_, id)) => id,
                None => {
                    let id = w.next_id("exec");
                    let instance_id = parameters.get("InstanceId").and_then(|v| v.first()).cloned().unwrap_or_default();
                    // SubnetId: "The subnet ID in Region to create the helper instance", in
                    // the instance's VPC (its private CIDR must reach the helper).
                    let helper = parameters.get("SubnetId").and_then(|v| v.first()).cloned().unwrap_or_default();
                    let vpc = w.instances.get(&instance_id).map(|i| i.vpc.clone()).unwrap_or_default();
                    if !w.helper_subnets.iter().any(|s| s.subnet_id == helper && s.vpc_id == vpc && !s.on_outpost) {
                        w.violation(format!("backup of {instance_id} started with helper subnet '{helper}', not a Region subnet of {vpc}"));
                    }
                    let now = w.now_ms();
                    let down = w
                        .instances
                        .get(&instance_id)
                        .and_then(|i| i.server.clone())
                        .is_some_and(|s| w.servers_down.contains(&s));
                    w.executions.insert(
                        id.clone(),
                        Execution {
                            instance_id: instance_id.clone(),
                            parameters: parameters.clone(),
                            started_ms: now,
                            status: "InProgress".into(),
                            ended_ms: None,
                            image_id: None,
                            interrupted: down,
                        },
                    );
                    w.runbook_tokens.insert(client_token.to_string(), (request, id.clone()));
                    let after_ms = w.rng.gen_range(60_000..20 * 60_000);
                    w.outbox.push(Outgoing::ExecutionEnds { execution_id: id.clone(), after_ms });
                    w.note(format!("backup {id} of {instance_id} starts"));
                    id
                }
            }
        };
        self.0.leave("StartAutomationExecution").await?;
        Ok(id)
    }

    async fn execution(&self, execution_id: &str) -> Result<Option<ExecutionFacts>, AwsFailure> {
        self.0.enter("GetAutomationExecution").await?;
        let w = self.0.world();
        Ok(w.executions.get(execution_id).map(|x| ExecutionFacts {
            execution_id: execution_id.to_string(),
            status: x.status.clone(),
            parameters: x.parameters.clone(),
            outputs: x.image_id.iter().map(|i| (IMAGE_OUTPUT.to_string(), vec![i.clone()])).collect(),
            failure_message: (x.status == "Failed").then(|| "the instance could not be reached".to_string()),
            failed_step: None,
            started_at: Some(time_of(x.started_ms)),
            ended_at: x.ended_ms.map(time_of),
        }))
    }
}
