//! EC2: workloads declared on launch templates, originals and replacements, fencing.

use async_trait::async_trait;
use ha_domain::contract::RestoredFrom;
use ha_domain::error::AwsFailure;
use ha_domain::incident::IncidentId;
use ha_domain::model::{Instance, InstanceState, RejectedWorkload, ServerId, Workload};
use std::collections::BTreeMap;

pub use ha_domain::launch::{ExistingReplacement, ExistingRole, InterfaceSpec};

/// Which fenced originals an operator means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FencedSelector<'a> {
    Incident(&'a str),
    Instance(&'a str),
}

/// What an instance is launched as.
#[derive(Debug, Clone, Copy)]
pub enum LaunchFor<'a> {
    /// A replacement for this incident.
    Incident(&'a IncidentId),
    /// A warm workload's standby, of this launch template version (a number).
    Standby { version: &'a str },
}

/// Everything RunInstances needs for one attempt at one destination.
pub struct LaunchRequest<'a> {
    pub workload: &'a Workload,
    pub purpose: LaunchFor<'a>,
    pub subnet_id: &'a str,
    /// The template's network interfaces placed at this destination
    /// ([`ha_domain::launch::interfaces_at`]); empty: the template declares none, and the
    /// launch names `subnet_id` instead.
    pub interfaces: &'a [InterfaceSpec],
    pub client_token: &'a str,
    /// Stateful workloads: launch from this backup instead of the template's image.
    pub restored_from: Option<&'a RestoredFrom>,
    /// Ask EC2 whether the launch would succeed (permissions, parameters), launching nothing:
    /// the answer is the error `DryRunOperation`.
    pub dry_run: bool,
}

/// The instance RunInstances answered with. A repeated ClientToken answers with the
/// instance the first call launched, which may have died since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launched {
    pub instance_id: String,
    pub state: InstanceState,
}

#[async_trait]
pub trait Fleet: Send + Sync {
    /// The workloads declared for `server`: launch templates carrying its tag.
    async fn workloads_of(&self, server: &ServerId) -> Result<(Vec<Workload>, Vec<RejectedWorkload>), AwsFailure>;

    /// Every replacement of the workload EC2 still describes as pending, running, stopping
    /// or stopped, whatever server it replaces ([`ha_domain::launch::adoptable`] chooses).
    async fn replacements_of(&self, workload: &str) -> Result<Vec<ExistingReplacement>, AwsFailure> {
        let copies = self.copies_of(workload).await?;
        Ok(copies.into_iter().filter(|c| c.role == ExistingRole::Replacement).collect())
    }

    /// Its replacements and its standbys (a warm workload's), in one read.
    async fn copies_of(&self, workload: &str) -> Result<Vec<ExistingReplacement>, AwsFailure>;

    /// Every warm workload (launch templates tagged `outposts-ha:mode=warm`), each with the
    /// template version its declared version resolves to now; and the templates refused.
    async fn warm_workloads(&self) -> Result<(Vec<(Workload, String)>, Vec<RejectedWorkload>), AwsFailure>;

    /// The network interfaces a launch template version declares (none: an empty list).
    async fn template_interfaces(&self, template_id: &str, version: &str) -> Result<Vec<InterfaceSpec>, AwsFailure>;

    /// One RunInstances at one destination; the instance EC2 accepted.
    async fn launch(&self, r: &LaunchRequest<'_>) -> Result<Launched, AwsFailure>;

    /// One instance: its state, private address and tags; `None` when EC2 does not know it.
    async fn instance(&self, instance_id: &str) -> Result<Option<Instance>, AwsFailure>;

    /// Whether the subnet exists.
    async fn subnet_exists(&self, subnet_id: &str) -> Result<bool, AwsFailure>;

    /// Tags of the launch templates, by id.
    async fn template_tags(&self, ids: &[String]) -> Result<BTreeMap<String, BTreeMap<String, String>>, AwsFailure>;

    /// Instances tagged with one of the workloads, in any state EC2 still describes
    /// (terminated ones stay visible for about an hour).
    async fn instances_of(&self, workloads: &[String]) -> Result<Vec<Instance>, AwsFailure>;

    /// The VPC's quarantine group (no rules in or out), created on first use.
    async fn quarantine_group(&self, vpc_id: &str, stack: &str) -> Result<String, AwsFailure>;

    /// The VPC's quarantine group if it exists; never creates one.
    async fn find_quarantine_group(&self, vpc_id: &str, stack: &str) -> Result<Option<String>, AwsFailure>;

    async fn tag_instance(&self, instance_id: &str, tags: &[(&str, &str)]) -> Result<(), AwsFailure>;

    /// Removes the tags (by key). No keys removes nothing.
    async fn untag_instance(&self, instance_id: &str, keys: &[&str]) -> Result<(), AwsFailure>;

    /// Live instances fenced for the incident, or the one instance if it is fenced.
    async fn fenced_instances(&self, selector: &FencedSelector<'_>) -> Result<Vec<Instance>, AwsFailure>;

    /// Replaces one network interface's security groups (EC2 refuses instance-wide groups
    /// on an instance with more than one interface).
    async fn set_interface_groups(&self, interface_id: &str, groups: &[String]) -> Result<(), AwsFailure>;

    async fn terminate(&self, instance_id: &str) -> Result<(), AwsFailure>;
}
