//! EC2 (and SSM's parameters, and the capacity metric) as the ports see them. RunInstances
//! honours ClientToken (same token and parameters: the same instance; other parameters:
//! IdempotentParameterMismatch), a new instance may be invisible to Describe for a while,
//! and it moves pending → running, or pending → terminated, on EC2's own schedule.

use super::{failure, Group, Outgoing, Sim, SimInstance, World};
use async_trait::async_trait;
use ha_domain::error::{classify, AwsFailure, FailureKind, Retry};
use ha_domain::fencing::quarantine_group_name;
use ha_domain::incident::IncidentId;
use ha_domain::ledger::{incident_key, IncidentStatus, META};
use ha_domain::model::{tag, workload_from_tags, Instance, InstanceState, RejectedWorkload, ServerId, Workload};
use ha_ports::capacity::{CapacityProbe, DestinationCapacity};
use ha_ports::fleet::{
    ExistingReplacement, ExistingRole, FencedSelector, Fleet, InterfaceSpec, LaunchFor, LaunchRequest, Launched,
};
use ha_ports::table::Value;
use rand::Rng;
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct SimFleet(pub Arc<Sim>);

/// An EC2 error as the service answers it, classified as the product classifies it.
fn refused(operation: &'static str, code: &str) -> AwsFailure {
    let retry = classify(FailureKind::Service, Some(code), Some(400));
    AwsFailure { operation, code: code.to_string(), message: format!("simulated {code}"), retry }
}

fn is_replacement_of(i: &SimInstance, workload: &str, server: &str) -> bool {
    i.tags.get(tag::ROLE).map(String::as_str) == Some(tag::ROLE_REPLACEMENT)
        && i.tags.get(tag::WORKLOAD).map(String::as_str) == Some(workload)
        && i.tags.get(tag::SOURCE_SERVER).map(String::as_str) == Some(server)
}

impl World {
    /// A dead server is back: each original whose workload has a running copy off the server
    /// (a replacement or a promoted standby) is lost with probability
    /// `original_lost_on_return` (terminated).
    pub fn lose_originals_on_return(&mut self, server: &ServerId) {
        let p = self.faults.original_lost_on_return;
        if p <= 0.0 {
            return;
        }
        let copied = |workload: &str| {
            self.instances.values().any(|r| {
                r.state == InstanceState::Running
                    && r.server.as_ref() != Some(server)
                    && is_replacement_of(r, workload, server.as_str())
            })
        };
        let originals: Vec<String> = self
            .instances
            .values()
            .filter(|i| i.server.as_ref() == Some(server) && !ha_domain::model::is_replacement(&i.tags))
            .filter(|i| i.state == InstanceState::Running)
            .filter(|i| i.tags.get(tag::WORKLOAD).is_some_and(|w| copied(w)))
            .map(|i| i.id.clone())
            .collect();
        for id in originals {
            if self.rng.gen_bool(p) {
                if let Some(i) = self.instances.get_mut(&id) {
                    i.state = InstanceState::Terminated;
                }
                self.note(format!("{id} did not come back with its server: terminated"));
            }
        }
    }

    /// (I3) An original is fenced only while a running replacement of the same workload
    /// from the same server exists.
    fn check_fencing(&mut self, id: &str, what: &str) {
        let Some(original) = self.instances.get(id) else { return };
        // Replacements, standbys and standbys whose promotion failed all carry a role.
        if original.tags.contains_key(tag::ROLE) {
            return;
        }
        let workload = original.tags.get(tag::WORKLOAD).cloned().unwrap_or_default();
        let server = original.server.as_ref().map(ToString::to_string).unwrap_or_default();
        let covered = self
            .instances
            .values()
            .any(|r| r.state == InstanceState::Running && is_replacement_of(r, &workload, &server));
        if !covered {
            self.violation(format!("I3: {what} original {id} of {workload} on {server} with no running replacement"));
        }
    }

    /// (I11) A standby is promoted only for a server the system knows is down: never for a
    /// closed incident, never once the ledger has seen the server come back. (Its alarm may
    /// have gone OK a moment before, unseen yet, as for any launch; fencing covers that.)
    fn check_promotion(&mut self, id: &str, incident: Option<&str>) {
        let Some(i) = self.instances.get(id) else { return };
        let (Some(incident), Some(tag::ROLE_STANDBY)) = (incident, i.tags.get(tag::ROLE).map(String::as_str)) else {
            return;
        };
        let workload = i.tags.get(tag::WORKLOAD).cloned().unwrap_or_default();
        let server = i.tags.get(tag::SOURCE_SERVER).cloned().unwrap_or_default();
        // Known up when the claim was taken: a claim reads the server after its write, so a
        // return the ledger sees between that read and the promotion is fencing's to cover.
        let claimed = self
            .claimed_ms
            .get(&(incident_key(&IncidentId::from_stored(incident)), ha_domain::ledger::workload_key(&workload)));
        let known_up = self
            .seen_up_ms
            .get(&format!("SERVER#{server}"))
            .is_some_and(|up| claimed.is_none_or(|claimed| up <= claimed));
        let meta = self.table.get(&(incident_key(&IncidentId::from_stored(incident)), META.to_string()));
        let closed = meta.and_then(|m| m.get("status")) == Some(&Value::S(IncidentStatus::Closed.as_str().into()));
        if known_up || closed {
            self.violation(format!(
                "I11: standby {id} of {workload} promoted for {incident} though {server} is known up or the incident closed"
            ));
        }
        self.note(format!("standby {id} promoted"));
    }

    /// (I2) No launch for an incident that is closed.
    fn check_launch(&mut self, incident: &IncidentId, workload: &str) {
        let status = self.table.get(&(incident_key(incident), META.to_string())).and_then(|i| i.get("status"));
        if status == Some(&Value::S(IncidentStatus::Closed.as_str().into())) {
            self.violation(format!("I2: {workload} launched for closed incident {incident}"));
        }
    }
}

#[async_trait]
impl Fleet for SimFleet {
    async fn workloads_of(&self, server: &ServerId) -> Result<(Vec<Workload>, Vec<RejectedWorkload>), AwsFailure> {
        self.0.enter_labelled("DescribeLaunchTemplates", Some("(the server's workloads)".into())).await?;
        let w = self.0.world();
        let (mut workloads, mut rejected) = (Vec::new(), Vec::new());
        for (id, t) in &w.templates {
            if t.tags.get(tag::PROTECTED_SERVER).map(String::as_str) != Some(server.as_str()) {
                continue;
            }
            match workload_from_tags(id, &t.name, &t.tags) {
                Ok(wl) if &wl.protected_server == server => workloads.push(wl),
                Ok(_) => {}
                Err(e) => rejected.push(RejectedWorkload {
                    launch_template_id: id.clone(),
                    launch_template_name: t.name.clone(),
                    reason: e.to_string(),
                }),
            }
        }
        Ok((workloads, rejected))
    }

    async fn copies_of(&self, workload: &str) -> Result<Vec<ExistingReplacement>, AwsFailure> {
        self.0.enter_labelled("DescribeInstances", Some("(an orphaned replacement or a standby?)".into())).await?;
        let w = self.0.world();
        let role = |i: &SimInstance| match i.tags.get(tag::ROLE).map(String::as_str) {
            Some(tag::ROLE_REPLACEMENT) => Some(ExistingRole::Replacement),
            Some(tag::ROLE_STANDBY) => Some(ExistingRole::Standby),
            _ => None,
        };
        Ok(w.described()
            .filter(|i| !i.state.is_gone())
            .filter(|i| i.tags.get(tag::WORKLOAD).map(String::as_str) == Some(workload))
            .filter_map(|i| {
                Some(ExistingReplacement {
                    instance_id: i.id.clone(),
                    subnet_id: i.subnet.clone(),
                    state: i.state.clone(),
                    source_server: i.tags.get(tag::SOURCE_SERVER).cloned(),
                    restored_from: i.tags.get(tag::RESTORED_FROM).cloned(),
                    incident: i.tags.get(tag::INCIDENT).cloned(),
                    retiring_since: i
                        .tags
                        .get(tag::RETIRING)
                        .and_then(|t| ha_domain::timefmt::parse_timestamp(t))
                        .map(|t| t.unix_timestamp()),
                    role: role(i)?,
                    server_id: i.server.as_ref().map(ToString::to_string),
                    standby_version: i.tags.get(tag::STANDBY_VERSION).cloned(),
                    promoted: i.tags.contains_key(tag::PROMOTED_AT),
                })
            })
            .collect())
    }

    async fn warm_workloads(&self) -> Result<(Vec<(Workload, String)>, Vec<RejectedWorkload>), AwsFailure> {
        self.0.enter("DescribeLaunchTemplates").await?;
        let w = self.0.world();
        let (mut warm, mut rejected) = (Vec::new(), Vec::new());
        for (id, t) in w.templates.iter().filter(|(_, t)| t.tags.get(tag::MODE).map(String::as_str) == Some("warm")) {
            match workload_from_tags(id, &t.name, &t.tags) {
                Ok(wl) => warm.push((wl, t.version.to_string())),
                Err(e) => rejected.push(RejectedWorkload {
                    launch_template_id: id.clone(),
                    launch_template_name: t.name.clone(),
                    reason: e.to_string(),
                }),
            }
        }
        Ok((warm, rejected))
    }

    async fn template_interfaces(&self, template_id: &str, _version: &str) -> Result<Vec<InterfaceSpec>, AwsFailure> {
        self.0.enter_labelled("DescribeLaunchTemplateVersions", Some("(the template's interfaces)".into())).await?;
        let w = self.0.world();
        match w.templates.get(template_id) {
            Some(t) => Ok(t.interfaces.clone()),
            None => Err(refused("DescribeLaunchTemplateVersions", "InvalidLaunchTemplateId.NotFound")),
        }
    }

    async fn launch(&self, r: &LaunchRequest<'_>) -> Result<Launched, AwsFailure> {
        self.0.enter_labelled("RunInstances", Some(r.workload.name.clone())).await?;
        let id = {
            let mut w = self.0.world();
            let declares = w.templates.get(&r.workload.launch_template_id).is_some_and(|t| !t.interfaces.is_empty());
            // "Network interfaces and an instance-level subnet ID may not be specified on the
            // same request": a template's interfaces count as the request's.
            if declares && r.interfaces.is_empty() {
                return Err(refused("RunInstances", "InvalidParameterCombination"));
            }
            // RunInstances needs a primary interface; every interface's subnet must exist
            // and be on the primary's server.
            if !r.interfaces.is_empty() {
                let server_of = |s: &str| w.subnets.get(s).map(|(server, _)| server.clone());
                let primary = r.interfaces.iter().find(|i| i.device_index == 0).and_then(|i| i.subnet_id.as_deref());
                let home = primary.and_then(server_of);
                let misplaced = r.interfaces.iter().any(|i| i.subnet_id.as_deref().and_then(server_of) != home);
                if home.is_none() || misplaced {
                    return Err(refused("RunInstances", "InvalidParameterValue"));
                }
            }
            if r.dry_run {
                return Err(refused("RunInstances", "DryRunOperation"));
            }
            let subnets: Vec<&str> = r.interfaces.iter().filter_map(|i| i.subnet_id.as_deref()).collect();
            let params = format!(
                "{}|{}|{}|{:?}|{subnets:?}",
                r.workload.launch_template_id,
                r.workload.launch_template_version,
                r.subnet_id,
                r.restored_from.map(|b| &b.image_id)
            );
            if let Some((used, id)) = w.tokens.get(r.client_token).cloned() {
                if used != params {
                    return Err(refused("RunInstances", "IdempotentParameterMismatch"));
                }
                w.note(format!("RunInstances with a used token returns {id}"));
                id
            } else {
                if !w.templates.contains_key(&r.workload.launch_template_id) {
                    return Err(refused("RunInstances", "InvalidLaunchTemplateId.NotFound"));
                }
                let Some((server, vpc)) = w.subnets.get(r.subnet_id).cloned() else {
                    return Err(refused("RunInstances", "InvalidSubnetID.NotFound"));
                };
                if w.servers_down.contains(&server) {
                    return Err(refused("RunInstances", "InsufficientInstanceCapacity"));
                }
                if !w.take_token("RunInstances.resource") {
                    w.throttled += 1;
                    return Err(failure("RunInstances", "RequestResourceCountExceeded", Retry::CanHelp));
                }
                if let LaunchFor::Incident(incident) = r.purpose {
                    w.check_launch(incident, &r.workload.name);
                }
                let id = w.next_id("i");
                let inherited = w.templates[&r.workload.launch_template_id].instance_tags.clone();
                let mut tags: BTreeMap<String, String> = [
                    (tag::WORKLOAD, r.workload.name.as_str()),
                    (tag::SOURCE_SERVER, r.workload.protected_server.as_str()),
                ]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
                match r.purpose {
                    LaunchFor::Incident(incident) => {
                        tags.insert(tag::INCIDENT.into(), incident.to_string());
                        tags.insert(tag::ROLE.into(), tag::ROLE_REPLACEMENT.into());
                    }
                    LaunchFor::Standby { version } => {
                        tags.insert(tag::ROLE.into(), tag::ROLE_STANDBY.into());
                        tags.insert(tag::STANDBY_VERSION.into(), version.into());
                    }
                }
                for (k, v) in inherited {
                    tags.entry(k).or_insert(v);
                }
                if !r.workload.target_groups.is_empty() {
                    tags.insert(tag::TARGET_GROUPS.into(), r.workload.target_groups.join(","));
                }
                if let Some(b) = r.restored_from {
                    tags.insert(tag::RESTORED_FROM.into(), b.image_id.clone());
                }
                let now = w.now_ms();
                let lag = w.faults.visibility_lag_ms;
                let visible_at_ms = now + if lag > 0 { w.rng.gen_range(0..lag) as i64 } else { 0 };
                w.instances.insert(
                    id.clone(),
                    SimInstance {
                        id: id.clone(),
                        state: InstanceState::Pending,
                        server: Some(server),
                        subnet: r.subnet_id.to_string(),
                        vpc,
                        interfaces: World::new_interfaces(&id, r.interfaces.len() > 1, &["sg-workload".into()]),
                        tags,
                        visible_at_ms,
                        protected: false,
                    },
                );
                w.tokens.insert(r.client_token.to_string(), (params, id.clone()));
                match r.purpose {
                    LaunchFor::Incident(incident) => {
                        w.launches.push((incident.to_string(), r.workload.name.clone(), now));
                        w.note(format!("RunInstances {} for {incident} at {} -> {id}", r.workload.name, r.subnet_id));
                    }
                    LaunchFor::Standby { version } => w.note(format!(
                        "RunInstances standby of {} (v{version}) at {} -> {id}",
                        r.workload.name, r.subnet_id
                    )),
                }
                let (dies, stops) = (w.faults.replacement_dies, w.faults.replacement_stops);
                if dies > 0.0 && w.rng.gen_bool(dies) {
                    let after_ms = w.rng.gen_range(5_000..60_000);
                    w.outbox.push(Outgoing::Transition {
                        instance_id: id.clone(),
                        to: InstanceState::Terminated,
                        after_ms,
                    });
                } else {
                    let after_ms = w.rng.gen_range(10_000..60_000);
                    w.outbox.push(Outgoing::Transition {
                        instance_id: id.clone(),
                        to: InstanceState::Running,
                        after_ms,
                    });
                    if stops > 0.0 && w.rng.gen_bool(stops) {
                        let after_ms = after_ms + w.rng.gen_range(30_000..900_000);
                        w.outbox.push(Outgoing::Transition {
                            instance_id: id.clone(),
                            to: InstanceState::Stopped,
                            after_ms,
                        });
                    }
                }
                id
            }
        };
        self.0.leave("RunInstances").await?;
        let state = self.0.world().instances.get(&id).map_or(InstanceState::Pending, |i| i.state.clone());
        Ok(Launched { instance_id: id, state })
    }

    async fn instance(&self, instance_id: &str) -> Result<Option<Instance>, AwsFailure> {
        self.0.enter("DescribeInstances").await?;
        Ok(self.0.world().visible(instance_id).map(World::instance_view))
    }

    async fn subnet_exists(&self, subnet_id: &str) -> Result<bool, AwsFailure> {
        self.0.enter("DescribeSubnets").await?;
        Ok(self.0.world().subnets.contains_key(subnet_id))
    }

    async fn template_tags(&self, ids: &[String]) -> Result<BTreeMap<String, BTreeMap<String, String>>, AwsFailure> {
        self.0.enter("DescribeLaunchTemplates").await?;
        let w = self.0.world();
        Ok(ids.iter().filter_map(|id| w.templates.get(id).map(|t| (id.clone(), t.tags.clone()))).collect())
    }

    async fn instances_of(&self, workloads: &[String]) -> Result<Vec<Instance>, AwsFailure> {
        self.0.enter("DescribeInstances").await?;
        let w = self.0.world();
        Ok(w.described()
            .filter(|i| i.tags.get(tag::WORKLOAD).is_some_and(|n| workloads.contains(n)))
            .map(World::instance_view)
            .collect())
    }

    async fn find_quarantine_group(&self, vpc_id: &str, stack: &str) -> Result<Option<String>, AwsFailure> {
        self.0.enter("DescribeSecurityGroups").await?;
        let w = self.0.world();
        Ok(w.group_named(&quarantine_group_name(stack), vpc_id).map(|(id, _)| id.to_string()))
    }

    async fn quarantine_group(&self, vpc_id: &str, stack: &str) -> Result<String, AwsFailure> {
        let name = quarantine_group_name(stack);
        self.0.enter("DescribeSecurityGroups").await?;
        let existing = self.0.world().group_named(&name, vpc_id).map(|(id, g)| (id.to_string(), g.egress_open));
        let id = match existing {
            Some((id, false)) => return Ok(id),
            Some((id, true)) => id,
            None => {
                self.0.enter("CreateSecurityGroup").await?;
                let id = {
                    let mut w = self.0.world();
                    // A name is unique in its VPC: another pass created it meanwhile
                    // (InvalidGroup.Duplicate), and the adapter reads that one.
                    let created = w.group_named(&name, vpc_id).map(|(id, _)| id.to_string());
                    created.unwrap_or_else(|| {
                        let id = w.next_id("sg");
                        w.groups.insert(id.clone(), Group { name, vpc: vpc_id.to_string(), egress_open: true });
                        id
                    })
                };
                self.0.leave("CreateSecurityGroup").await?;
                id
            }
        };
        // A group created by a pass that died before its revoke still allows all egress.
        self.0.enter("RevokeSecurityGroupEgress").await?;
        if let Some(g) = self.0.world().groups.get_mut(&id) {
            g.egress_open = false;
        }
        self.0.leave("RevokeSecurityGroupEgress").await?;
        Ok(id)
    }

    async fn tag_instance(&self, instance_id: &str, tags: &[(&str, &str)]) -> Result<(), AwsFailure> {
        self.0.enter("CreateTags").await?;
        {
            let mut w = self.0.world();
            if w.visible(instance_id).is_none() {
                return Err(refused("CreateTags", "InvalidInstanceID.NotFound"));
            }
            let promoting = tags.contains(&(tag::ROLE, tag::ROLE_REPLACEMENT));
            let incident = tags.iter().find(|(k, _)| *k == tag::INCIDENT).map(|(_, v)| v.to_string());
            if promoting {
                w.check_promotion(instance_id, incident.as_deref());
            }
            let i = w.instances.get_mut(instance_id).expect("visible");
            for (k, v) in tags {
                i.tags.insert(k.to_string(), v.to_string());
            }
        }
        self.0.leave("CreateTags").await
    }

    async fn untag_instance(&self, instance_id: &str, keys: &[&str]) -> Result<(), AwsFailure> {
        if keys.is_empty() {
            return Ok(());
        }
        self.0.enter("DeleteTags").await?;
        {
            let mut w = self.0.world();
            let now = w.now_ms();
            let unfenced = w.instances.get_mut(instance_id).is_some_and(|i| {
                let was_fenced = i.tags.contains_key(tag::FENCED);
                for k in keys {
                    i.tags.remove(*k);
                }
                was_fenced && !i.tags.contains_key(tag::FENCED)
            });
            if unfenced {
                w.unfenced_at.insert(instance_id.to_string(), now);
            }
        }
        self.0.leave("DeleteTags").await
    }

    async fn fenced_instances(&self, selector: &FencedSelector<'_>) -> Result<Vec<Instance>, AwsFailure> {
        self.0.enter("DescribeInstances").await?;
        let w = self.0.world();
        Ok(w.described()
            .filter(|i| !i.state.is_gone())
            .filter(|i| match selector {
                FencedSelector::Incident(incident) => i.tags.get(tag::FENCED).map(String::as_str) == Some(*incident),
                FencedSelector::Instance(id) => i.id == *id && i.tags.contains_key(tag::FENCED),
            })
            .map(World::instance_view)
            .collect())
    }

    async fn set_interface_groups(&self, interface_id: &str, groups: &[String]) -> Result<(), AwsFailure> {
        self.0.enter("ModifyNetworkInterfaceAttribute").await?;
        {
            let mut w = self.0.world();
            // "You must specify at least one group, even if it's just the default security
            // group in the VPC."
            if groups.is_empty() {
                return Err(refused("ModifyNetworkInterfaceAttribute", "InvalidParameterValue"));
            }
            let Some(instance_id) = w
                .instances
                .values()
                .find(|i| i.interfaces.iter().any(|n| n.interface_id == interface_id))
                .map(|i| i.id.clone())
            else {
                return Err(refused("ModifyNetworkInterfaceAttribute", "InvalidNetworkInterfaceID.NotFound"));
            };
            let quarantine: Vec<String> = groups.iter().filter(|g| w.is_quarantine(g)).cloned().collect();
            if !quarantine.is_empty() {
                w.check_fencing(&instance_id, "isolated");
                if quarantine.iter().any(|g| w.groups.get(g).is_some_and(|g| g.egress_open)) {
                    w.violation(format!("{instance_id} isolated in a quarantine group that still allows egress"));
                }
            }
            if let Some(n) = w
                .instances
                .get_mut(&instance_id)
                .and_then(|i| i.interfaces.iter_mut().find(|n| n.interface_id == interface_id))
            {
                n.groups = groups.to_vec();
            }
            w.note(format!("{instance_id} {interface_id} groups {groups:?}"));
        }
        self.0.leave("ModifyNetworkInterfaceAttribute").await
    }

    async fn terminate(&self, instance_id: &str) -> Result<(), AwsFailure> {
        self.0.enter("TerminateInstances").await?;
        {
            let mut w = self.0.world();
            let Some((protected, gone)) = w.instances.get(instance_id).map(|i| (i.protected, i.state.is_gone())) else {
                return Ok(());
            };
            if protected {
                return Err(refused("TerminateInstances", "OperationNotPermitted"));
            }
            if !w.take_token("TerminateInstances.resource") {
                w.throttled += 1;
                return Err(failure("TerminateInstances", "RequestResourceCountExceeded", Retry::CanHelp));
            }
            if !gone {
                w.check_fencing(instance_id, "terminated");
                w.transition(instance_id, InstanceState::ShuttingDown);
                w.outbox.push(Outgoing::Transition {
                    instance_id: instance_id.to_string(),
                    to: InstanceState::Terminated,
                    after_ms: 5_000,
                });
            }
        }
        self.0.leave("TerminateInstances").await
    }
}

/// The capacity metric: the destination's Outpost is known, the count is not published.
pub struct SimCapacity(pub Arc<Sim>);

#[async_trait]
impl CapacityProbe for SimCapacity {
    async fn of(&self, w: &Workload, metric: bool) -> BTreeMap<String, DestinationCapacity> {
        if self.0.world().latency.is_some() {
            return self.as_the_adapter_calls(w, metric).await;
        }
        if self.0.enter("DescribeSubnets").await.is_err() {
            return BTreeMap::new();
        }
        let world = self.0.world();
        w.subnets
            .iter()
            .map(|s| {
                let outpost = world.subnets.get(s).map(|(server, _)| server.to_string());
                (s.clone(), DestinationCapacity { outpost, instance_type: Some("m5.large".into()), available: None })
            })
            .collect()
    }
}

impl SimCapacity {
    /// Under a latency model, where round trips are what is measured: the calls the AWS
    /// adapter (ha-aws `Ec2CapacityProbe`) makes, in its order. The template's instance type
    /// and each destination's Outpost together (DescribeLaunchTemplateVersions, DescribeSubnets),
    /// then the capacity metric of each destination (GetMetricData). The metric's count is not
    /// simulated (unknown: it never blocks a launch, as before).
    async fn as_the_adapter_calls(&self, w: &Workload, metric: bool) -> BTreeMap<String, DestinationCapacity> {
        let sim = &self.0;
        let instance_type = async {
            match metric {
                true => {
                    sim.enter_labelled("DescribeLaunchTemplateVersions", Some("(capacity: instance type)".into())).await
                }
                false => Err(failure("DescribeLaunchTemplateVersions", "NotRead", Retry::WontHelp)),
            }
        };
        let (instance_type, outposts) = tokio::join!(
            instance_type,
            futures::future::join_all(
                w.subnets.iter().map(|_| sim.enter_labelled("DescribeSubnets", Some("(capacity: Outpost)".into())))
            )
        );
        // A subnet that could not be read has no entry (its Outpost unknown, not absent).
        let known: Vec<Option<Option<String>>> = {
            let world = sim.world();
            w.subnets
                .iter()
                .zip(&outposts)
                .map(|(s, read)| {
                    read.as_ref().ok().map(|()| world.subnets.get(s).map(|(server, _)| server.to_string()))
                })
                .collect()
        };
        let instance_type = instance_type.ok().map(|()| "m5.large".to_string());
        let typed = instance_type.is_some();
        futures::future::join_all(known.iter().map(|outpost| async move {
            if outpost.as_ref().is_some_and(Option::is_some) && typed {
                let _ = sim.enter_labelled("GetMetricData", Some("(capacity: free slots)".into())).await;
            }
        }))
        .await;
        w.subnets
            .iter()
            .zip(known)
            .filter_map(|(s, outpost)| {
                let outpost = outpost?;
                Some((
                    s.clone(),
                    DestinationCapacity { outpost, instance_type: instance_type.clone(), available: None },
                ))
            })
            .collect()
    }
}
