//! The vocabulary of docs/design.md as types: protected server, workload, instance, replacement.

use crate::partition::{parse_probe_target, OnPartition, PolicyError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use thiserror::Error;

/// Tag keys. Workloads are declared on launch templates; replacements carry the rest.
pub mod tag {
    /// On a launch template: the protected server (`op-…`) whose instance it recreates.
    pub const PROTECTED_SERVER: &str = "outposts-ha:protected-server";
    /// On a launch template: ordered, comma-separated standby subnets (first = preferred);
    /// `subnet-…+subnet-…` names a destination's subnet and the subnet of its local network
    /// interface (LNI, the template's second network interface), when they differ.
    pub const SUBNETS: &str = "outposts-ha:subnets";
    /// On a launch template: lower starts first when the launch bound bites (default 100).
    pub const PRIORITY: &str = "outposts-ha:priority";
    /// On a launch template (optional; default: its name) and on every instance it owns.
    pub const WORKLOAD: &str = "outposts-ha:workload";
    /// On a launch template (optional): version to launch (default `$Default`).
    pub const LAUNCH_TEMPLATE_VERSION: &str = "outposts-ha:launch-template-version";
    /// On a replacement: the incident that launched it.
    pub const INCIDENT: &str = "outposts-ha:incident";
    /// On a replacement: the protected server whose instance it replaces.
    pub const SOURCE_SERVER: &str = "outposts-ha:source-server";
    /// On a replacement: `replacement`.
    pub const ROLE: &str = "outposts-ha:role";
    pub const ROLE_REPLACEMENT: &str = "replacement";
    /// On a warm workload's standby: `standby` (running, not serving, promoted on failure).
    pub const ROLE_STANDBY: &str = "standby";
    /// On a standby whose promotion hook failed: kept, out of service, for a person.
    pub const ROLE_PROMOTION_FAILED: &str = "promotion-failed";
    /// On a launch template (optional): `cold` (default: launched on failure) or `warm`
    /// (a standby instance runs on a destination and is promoted on failure).
    pub const MODE: &str = "outposts-ha:mode";
    /// On a warm workload's launch template (optional): the SSM Command document run on
    /// the standby when it is promoted (its name starts with the stack's promotion prefix).
    pub const PROMOTION_DOCUMENT: &str = "outposts-ha:promotion-document";
    /// On a standby: the launch template version it was launched from.
    pub const STANDBY_VERSION: &str = "outposts-ha:standby-version";
    /// On a promoted standby: when it was promoted.
    pub const PROMOTED_AT: &str = "outposts-ha:promoted-at";
    /// On a promoted standby with a hook: `succeeded` or `failed`, once it ended.
    pub const PROMOTION_HOOK: &str = "outposts-ha:promotion-hook";
    pub const HOOK_SUCCEEDED: &str = "succeeded";
    pub const HOOK_FAILED: &str = "failed";

    /// On a stateful workload's launch template and on the instance to back up: the SSM
    /// parameter (under `/outposts-ha/<stack>/`) that names its newest good backup AMI.
    pub const BACKUP_PARAMETER: &str = "outposts-ha:backup-parameter";
    /// On an instance to back up (optional): back up at most this often (`4h`, `30m`, `1d`);
    /// default: every schedule tick.
    pub const BACKUP_INTERVAL: &str = "outposts-ha:backup-interval";
    /// On a backup AMI and its snapshots: the instance it is a backup of.
    pub const BACKUP_OF: &str = "outposts-ha:backup-of";
    /// On a backup AMI and its snapshots: the automation execution that made it.
    pub const BACKUP_EXECUTION: &str = "outposts-ha:backup-execution";
    /// On a backup AMI, its snapshots and a replacement restored from it: when the backup
    /// was taken (the execution's start, RFC 3339).
    pub const BACKUP_TAKEN_AT: &str = "outposts-ha:backup-taken-at";
    /// On a backup AMI and its snapshots: the stack that manages (and prunes) it.
    pub const STACK: &str = "outposts-ha:stack";
    /// On a replacement of a stateful workload: the backup AMI it was launched from.
    pub const RESTORED_FROM: &str = "outposts-ha:restored-from";

    /// On a launch template (optional) and its replacements: the workload's target groups,
    /// by name, comma-separated; replacements are registered, originals deregistered.
    pub const TARGET_GROUPS: &str = "outposts-ha:target-groups";
    /// On a launch template (optional): what happens to the workload's originals when
    /// their server comes back (`isolate`, `terminate`, `notify`); default: the stack's.
    pub const FENCING: &str = "outposts-ha:fencing";
    /// On a fenced original: the incident whose replacement it was fenced for.
    pub const FENCED: &str = "outposts-ha:fenced";
    /// On an isolated original, suffixed `:<interface id>` (one per network interface): that
    /// interface's security groups before the quarantine, comma-separated. Unsuffixed (from
    /// versions that isolated the instance as a whole): its primary interface's.
    pub const FENCED_GROUPS: &str = "outposts-ha:fenced-groups";
    /// On an original put back in service (`make unfence`): when. Its backups taken before
    /// then hold the data it had while the workload ran elsewhere.
    pub const UNFENCED_AT: &str = "outposts-ha:unfenced-at";
    /// On a replacement that fail-back is taking out (`make failback`): when. A new
    /// incident does not adopt it.
    pub const RETIRING: &str = "outposts-ha:retiring";
    /// On the quarantine security group of a VPC.
    pub const QUARANTINE: &str = "outposts-ha:quarantine";
    /// On a subnet of the Region (any value): the backup runbook's helper instance runs
    /// there for instances of that subnet's VPC.
    pub const BACKUP_HELPER: &str = "outposts-ha:backup-helper";

    /// Every tag key and value above by a stable name: what the Python tooling may use
    /// (exported to `infra/contract-names.json`, checked by a test).
    /// On a launch template (optional): what the workload does while its server is
    /// partitioned, `relaunch` or `hold` (default: `hold` if stateful, else `relaunch`).
    pub const ON_PARTITION: &str = "outposts-ha:on-partition";
    /// On a launch template: where a witness probes the original on the store network,
    /// `address:port` (a TCP connect) or `address` (a ping): its local network interface's
    /// address, which the store's DHCP gives it (EC2 does not know it), so reserve it there.
    pub const PROBE: &str = "outposts-ha:probe";
    /// On a witness instance: the protected server (`op-…`) whose originals it probes.
    pub const WITNESS_FOR: &str = "outposts-ha:witness-for";
    /// On a witness instance (optional): the store-network address it must reach for its
    /// silence to count (default: the gateway on its way to the first original).
    pub const WITNESS_CONTROL: &str = "outposts-ha:witness-control";
    /// On a server's alarm: the site's name people know it by (`make protect NAME=…`).
    pub const SITE_NAME: &str = "outposts-ha:site-name";

    pub const ALL: &[(&str, &str)] = &[
        ("protected_server", PROTECTED_SERVER),
        ("subnets", SUBNETS),
        ("priority", PRIORITY),
        ("workload", WORKLOAD),
        ("launch_template_version", LAUNCH_TEMPLATE_VERSION),
        ("incident", INCIDENT),
        ("source_server", SOURCE_SERVER),
        ("role", ROLE),
        ("role_replacement", ROLE_REPLACEMENT),
        ("role_standby", ROLE_STANDBY),
        ("role_promotion_failed", ROLE_PROMOTION_FAILED),
        ("mode", MODE),
        ("promotion_document", PROMOTION_DOCUMENT),
        ("standby_version", STANDBY_VERSION),
        ("promoted_at", PROMOTED_AT),
        ("promotion_hook", PROMOTION_HOOK),
        ("hook_succeeded", HOOK_SUCCEEDED),
        ("hook_failed", HOOK_FAILED),
        ("backup_parameter", BACKUP_PARAMETER),
        ("backup_interval", BACKUP_INTERVAL),
        ("backup_of", BACKUP_OF),
        ("backup_execution", BACKUP_EXECUTION),
        ("backup_taken_at", BACKUP_TAKEN_AT),
        ("stack", STACK),
        ("restored_from", RESTORED_FROM),
        ("target_groups", TARGET_GROUPS),
        ("fencing", FENCING),
        ("fenced", FENCED),
        ("fenced_groups", FENCED_GROUPS),
        ("unfenced_at", UNFENCED_AT),
        ("quarantine", QUARANTINE),
        ("retiring", RETIRING),
        ("backup_helper", BACKUP_HELPER),
        ("on_partition", ON_PARTITION),
        ("probe", PROBE),
        ("witness_for", WITNESS_FOR),
        ("witness_control", WITNESS_CONTROL),
        ("site_name", SITE_NAME),
    ];
}

/// An instance's lifecycle state, as EC2 names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceState {
    Pending,
    Running,
    ShuttingDown,
    Terminated,
    Stopping,
    Stopped,
    /// A name this version does not know.
    Other(String),
}

impl InstanceState {
    pub fn parse(name: &str) -> InstanceState {
        match name {
            "pending" => InstanceState::Pending,
            "running" => InstanceState::Running,
            "shutting-down" => InstanceState::ShuttingDown,
            "terminated" => InstanceState::Terminated,
            "stopping" => InstanceState::Stopping,
            "stopped" => InstanceState::Stopped,
            other => InstanceState::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Running => "running",
            InstanceState::ShuttingDown => "shutting-down",
            InstanceState::Terminated => "terminated",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
            InstanceState::Other(name) => name,
        }
    }

    /// Being or already terminated: it will never run again.
    pub fn is_gone(&self) -> bool {
        matches!(self, InstanceState::ShuttingDown | InstanceState::Terminated)
    }
}

/// One EC2 instance, as far as this project needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub instance_id: String,
    pub state: InstanceState,
    /// The Outposts server it runs on, when EC2 says (`OutpostArn`).
    pub server_id: Option<String>,
    pub vpc_id: Option<String>,
    pub private_ip: Option<String>,
    /// Its network interfaces, by device index.
    pub interfaces: Vec<AttachedInterface>,
    pub tags: BTreeMap<String, String>,
}

/// A network interface attached to an instance, with its security groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedInterface {
    pub interface_id: String,
    /// 0: the primary interface; an Outposts server's local network interface is at 1.
    pub device_index: i32,
    pub groups: Vec<String>,
}

impl Instance {
    /// An instance known only by id, state and tags (the rest empty).
    pub fn new(instance_id: &str, state: InstanceState, tags: BTreeMap<String, String>) -> Instance {
        Instance {
            instance_id: instance_id.to_string(),
            state,
            server_id: None,
            vpc_id: None,
            private_ip: None,
            interfaces: Vec::new(),
            tags,
        }
    }
}

/// A target's health in a target group, as Elastic Load Balancing names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetHealth {
    Healthy,
    /// Any other state (`initial`, `unhealthy`, `draining`, …), by its name.
    NotHealthy(String),
}

impl TargetHealth {
    pub fn parse(name: &str) -> TargetHealth {
        match name {
            "healthy" => TargetHealth::Healthy,
            other => TargetHealth::NotHealthy(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            TargetHealth::Healthy => "healthy",
            TargetHealth::NotHealthy(name) => name,
        }
    }
}

pub const DEFAULT_PRIORITY: u32 = 100;
pub const DEFAULT_TEMPLATE_VERSION: &str = "$Default";
/// Tag values are at most 256 characters; a subnet id is 24, so ten fit with room to spare.
pub const MAX_DESTINATIONS: usize = 10;

/// An Outposts server whose workloads we keep alive, by its `op-…` id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ServerId(String);

impl ServerId {
    /// Accepts `op-` followed by 17 lowercase hex digits, as Outposts ids are.
    pub fn parse(text: &str) -> Result<Self, WorkloadTagError> {
        let text = text.trim();
        let ok = text.len() == 20
            && text.starts_with("op-")
            && text[3..].chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
        if ok {
            Ok(ServerId(text.to_string()))
        } else {
            Err(WorkloadTagError::BadServerId(text.to_string()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ServerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One launch template that recreates one protected instance on a standby server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workload {
    pub name: String,
    pub launch_template_id: String,
    pub launch_template_version: String,
    pub protected_server: ServerId,
    /// Ordered destinations (their primary subnets): the first is preferred, the rest are
    /// fallbacks.
    pub subnets: Vec<String>,
    /// A destination's local network interface subnet, by its primary subnet.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lni_subnets: BTreeMap<String, String>,
    pub priority: u32,
    /// Stateful workloads only: the SSM parameter naming the backup AMI to launch from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_parameter: Option<String>,
    /// Target groups (names) its replacement serves behind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_groups: Vec<String>,
    /// Its `outposts-ha:on-partition` tag as written; [`Workload::partition_policy`] reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_partition: Option<String>,
    /// Where a witness probes its original on the store network (`address[:port]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<String>,
    /// Cold (launched on failure) or warm (a standby is kept running and promoted).
    #[serde(default, skip_serializing_if = "WorkloadMode::is_cold")]
    pub mode: WorkloadMode,
    /// Warm workloads: the SSM Command document run on the standby when it is promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion_document: Option<String>,
}

/// How a workload recovers: a fresh launch, or the promotion of a running standby.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadMode {
    #[default]
    Cold,
    Warm,
}

impl WorkloadMode {
    pub fn is_cold(&self) -> bool {
        *self == WorkloadMode::Cold
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            WorkloadMode::Cold => "cold",
            WorkloadMode::Warm => "warm",
        }
    }
}

impl Workload {
    pub fn is_stateful(&self) -> bool {
        self.backup_parameter.is_some()
    }

    pub fn is_warm(&self) -> bool {
        self.mode == WorkloadMode::Warm
    }

    /// The same workload recovered cold (a promotion that failed falls back to this).
    pub fn cold(&self) -> Workload {
        Workload { mode: WorkloadMode::Cold, ..self.clone() }
    }

    /// What it does while its server is partitioned, and the tag's error if it failed closed.
    pub fn partition_policy(&self) -> (OnPartition, Option<PolicyError>) {
        OnPartition::or_hold(OnPartition::from_tag(self.on_partition.as_deref(), self.is_stateful()))
    }
}

/// A launch template tagged for a server whose tags do not describe a usable workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedWorkload {
    pub launch_template_id: String,
    pub launch_template_name: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WorkloadTagError {
    #[error("tag {0} is missing")]
    Missing(&'static str),
    #[error("'{0}' is not an Outposts server id (op- and 17 hex digits)")]
    BadServerId(String),
    #[error("'{0}' is not a subnet id (subnet-…)")]
    BadSubnet(String),
    #[error("{0} destinations listed; at most {MAX_DESTINATIONS}")]
    TooManySubnets(usize),
    #[error("priority '{0}' is not a whole number from 0 to 1000000")]
    BadPriority(String),
    #[error("workload name '{0}' must be 1-128 characters of letters, digits and ._-:/")]
    BadName(String),
    #[error("backup parameter '{0}' is not an SSM parameter path (/…, letters, digits and _.-/)")]
    BadBackupParameter(String),
    #[error("'{0}' is not a target group name (1-32 letters, digits and hyphens)")]
    BadTargetGroup(String),
    #[error("probe '{0}' is not an IPv4 address, or address:port (port 1-65535)")]
    BadProbe(String),
    #[error("mode '{0}' is neither cold nor warm")]
    BadMode(String),
    #[error("promotion document '{0}' is not an SSM document name (3-128 letters, digits and _-.)")]
    BadPromotionDocument(String),
    #[error("a promotion document is set but the workload is not warm (outposts-ha:mode=warm)")]
    PromotionDocumentWithoutWarm,
}

/// Builds a workload from its launch template's tags (pure: the adapter fetches them).
pub fn workload_from_tags(
    launch_template_id: &str,
    launch_template_name: &str,
    tags: &BTreeMap<String, String>,
) -> Result<Workload, WorkloadTagError> {
    let server = tags.get(tag::PROTECTED_SERVER).ok_or(WorkloadTagError::Missing(tag::PROTECTED_SERVER))?;
    let protected_server = ServerId::parse(server)?;

    let subnets_text = tags.get(tag::SUBNETS).ok_or(WorkloadTagError::Missing(tag::SUBNETS))?;
    let destinations = comma_list(subnets_text);
    if destinations.is_empty() {
        return Err(WorkloadTagError::Missing(tag::SUBNETS));
    }
    if destinations.len() > MAX_DESTINATIONS {
        return Err(WorkloadTagError::TooManySubnets(destinations.len()));
    }
    let (mut subnets, mut lni_subnets) = (Vec::new(), BTreeMap::new());
    for destination in destinations {
        let (primary, lni) = match destination.split_once('+') {
            Some((primary, lni)) => (primary.trim().to_string(), Some(lni.trim().to_string())),
            None => (destination.clone(), None),
        };
        if let Some(bad) = [Some(&primary), lni.as_ref()].into_iter().flatten().find(|s| !is_subnet_id(s)) {
            return Err(WorkloadTagError::BadSubnet(bad.clone()));
        }
        if let Some(lni) = lni {
            lni_subnets.insert(primary.clone(), lni);
        }
        subnets.push(primary);
    }

    let priority = match tags.get(tag::PRIORITY) {
        None => DEFAULT_PRIORITY,
        Some(p) => p
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|p| *p <= 1_000_000)
            .ok_or_else(|| WorkloadTagError::BadPriority(p.clone()))?,
    };

    let name =
        tags.get(tag::WORKLOAD).map(|n| n.trim().to_string()).unwrap_or_else(|| launch_template_name.to_string());
    let name_ok =
        !name.is_empty() && name.len() <= 128 && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-:/".contains(c));
    if !name_ok {
        return Err(WorkloadTagError::BadName(name));
    }

    let launch_template_version = tags
        .get(tag::LAUNCH_TEMPLATE_VERSION)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_TEMPLATE_VERSION.to_string());

    let backup_parameter = match tags.get(tag::BACKUP_PARAMETER).map(|p| p.trim()) {
        None | Some("") => None,
        Some(p) if is_parameter_name(p) => Some(p.to_string()),
        Some(p) => return Err(WorkloadTagError::BadBackupParameter(p.to_string())),
    };

    let target_groups = tags.get(tag::TARGET_GROUPS).map(|v| comma_list(v)).unwrap_or_default();
    if let Some(bad) = target_groups.iter().find(|g| !is_target_group_name(g)) {
        return Err(WorkloadTagError::BadTargetGroup(bad.clone()));
    }

    let probe = match tags.get(tag::PROBE).map(|p| p.trim()) {
        None | Some("") => None,
        Some(p) => Some(parse_probe_target(p).ok_or_else(|| WorkloadTagError::BadProbe(p.to_string()))?),
    };

    let mode = match tags.get(tag::MODE).map(|m| m.trim()) {
        None | Some("") | Some("cold") => WorkloadMode::Cold,
        Some("warm") => WorkloadMode::Warm,
        Some(other) => return Err(WorkloadTagError::BadMode(other.to_string())),
    };
    let promotion_document = match tags.get(tag::PROMOTION_DOCUMENT).map(|d| d.trim()) {
        None | Some("") => None,
        Some(d) if !is_document_name(d) => return Err(WorkloadTagError::BadPromotionDocument(d.to_string())),
        Some(_) if mode.is_cold() => return Err(WorkloadTagError::PromotionDocumentWithoutWarm),
        Some(d) => Some(d.to_string()),
    };

    Ok(Workload {
        name,
        launch_template_id: launch_template_id.to_string(),
        launch_template_version,
        protected_server,
        subnets,
        lni_subnets,
        priority,
        backup_parameter,
        target_groups,
        on_partition: tags.get(tag::ON_PARTITION).cloned(),
        probe,
        mode,
        promotion_document,
    })
}

/// An SSM document name as SSM accepts it: 3-128 of letters, digits, `_`, `-` and `.`.
fn is_document_name(name: &str) -> bool {
    (3..=128).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

/// A target group name as ELB accepts it: 1-32 letters, digits and hyphens.
fn is_target_group_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// A comma-separated tag value as its items, trimmed, empty ones dropped.
pub fn comma_list(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_string).collect()
}

/// Whether an instance's tags say it is a replacement this project launched.
pub fn is_replacement(tags: &BTreeMap<String, String>) -> bool {
    tags.contains_key(tag::INCIDENT) || tags.get(tag::ROLE).map(String::as_str) == Some(tag::ROLE_REPLACEMENT)
}

/// An SSM parameter name as the API accepts it: a `/`-rooted path of letters, digits and `_.-`.
pub fn is_parameter_name(name: &str) -> bool {
    name.len() <= 1011
        && name.starts_with('/')
        && !name.ends_with('/')
        && !name.contains("//")
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c))
}

/// An EC2 instance id as the API accepts it: `i-` and 8 or 17 lowercase hex digits.
pub fn is_instance_id(s: &str) -> bool {
    s.strip_prefix("i-").is_some_and(|hex| {
        matches!(hex.len(), 8 | 17) && hex.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

fn is_subnet_id(s: &str) -> bool {
    s.strip_prefix("subnet-")
        .is_some_and(|hex| (8..=17).contains(&hex.len()) && hex.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const OP: &str = "op-0123456789abcdef0";

    #[test]
    fn instance_ids() {
        assert!(is_instance_id("i-0123456789abcdef0") && is_instance_id("i-12345678"));
        for bad in ["", "i-", "i-*", "i-0123456789ABCDEF0", "i-123456789", "sg-12345678"] {
            assert!(!is_instance_id(bad), "{bad}");
        }
    }

    #[test]
    fn server_ids() {
        assert!(ServerId::parse(OP).is_ok());
        for bad in ["", "op-", "op-0123456789ABCDEF0", "op-0123456789abcdef", "i-0123456789abcdef0"] {
            assert!(ServerId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn full_declaration() {
        let w = workload_from_tags(
            "lt-0abc",
            "pos-db",
            &tags(&[
                (tag::PROTECTED_SERVER, OP),
                (tag::SUBNETS, " subnet-0aaaaaaaaaaaaaaa1 + subnet-0ccccccccccccccc3 , subnet-0bbbbbbbbbbbbbbb2"),
                (tag::PRIORITY, "5"),
                (tag::WORKLOAD, "store-17/pos-db"),
                (tag::LAUNCH_TEMPLATE_VERSION, "3"),
                (tag::BACKUP_PARAMETER, "/outposts-ha/prod/backup/pos-db"),
                (tag::TARGET_GROUPS, "pos-web, pos-api"),
            ]),
        )
        .unwrap();
        assert_eq!(w.name, "store-17/pos-db");
        assert_eq!(w.subnets, vec!["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"]);
        let lni: BTreeMap<String, String> =
            [("subnet-0aaaaaaaaaaaaaaa1".to_string(), "subnet-0ccccccccccccccc3".to_string())].into();
        assert_eq!(w.lni_subnets, lni, "the first destination's LNI subnet; the second has none");
        assert_eq!(w.priority, 5);
        assert_eq!(w.launch_template_version, "3");
        assert_eq!(w.protected_server.as_str(), OP);
        assert_eq!(w.backup_parameter.as_deref(), Some("/outposts-ha/prod/backup/pos-db"));
        assert_eq!(w.target_groups, vec!["pos-web", "pos-api"]);
    }

    #[test]
    fn defaults() {
        let w = workload_from_tags(
            "lt-1",
            "kiosk",
            &tags(&[(tag::PROTECTED_SERVER, OP), (tag::SUBNETS, "subnet-12345678")]),
        )
        .unwrap();
        assert_eq!((w.name.as_str(), w.priority), ("kiosk", DEFAULT_PRIORITY));
        assert_eq!(w.launch_template_version, DEFAULT_TEMPLATE_VERSION);
        assert_eq!(w.backup_parameter, None);
    }

    #[test]
    fn rejections_name_the_problem() {
        let eleven = ["subnet-12345678"; 11].join(",");
        let cases: Vec<(Vec<(&str, &str)>, WorkloadTagError)> = vec![
            (vec![(tag::SUBNETS, "subnet-12345678")], WorkloadTagError::Missing(tag::PROTECTED_SERVER)),
            (vec![(tag::PROTECTED_SERVER, OP)], WorkloadTagError::Missing(tag::SUBNETS)),
            (vec![(tag::PROTECTED_SERVER, OP), (tag::SUBNETS, " , ")], WorkloadTagError::Missing(tag::SUBNETS)),
            (vec![(tag::PROTECTED_SERVER, OP), (tag::SUBNETS, "sn-1")], WorkloadTagError::BadSubnet("sn-1".into())),
            (vec![(tag::PROTECTED_SERVER, OP), (tag::SUBNETS, eleven.as_str())], WorkloadTagError::TooManySubnets(11)),
            (
                vec![(tag::PROTECTED_SERVER, OP), (tag::SUBNETS, "subnet-12345678+lni-1")],
                WorkloadTagError::BadSubnet("lni-1".into()),
            ),
            (
                vec![(tag::PROTECTED_SERVER, OP), (tag::SUBNETS, "subnet-12345678"), (tag::PRIORITY, "-1")],
                WorkloadTagError::BadPriority("-1".into()),
            ),
            (
                vec![(tag::PROTECTED_SERVER, OP), (tag::SUBNETS, "subnet-12345678"), (tag::WORKLOAD, "a b")],
                WorkloadTagError::BadName("a b".into()),
            ),
            (
                vec![
                    (tag::PROTECTED_SERVER, OP),
                    (tag::SUBNETS, "subnet-12345678"),
                    (tag::TARGET_GROUPS, "a,arn:aws:x"),
                ],
                WorkloadTagError::BadTargetGroup("arn:aws:x".into()),
            ),
            (
                vec![(tag::PROTECTED_SERVER, OP), (tag::SUBNETS, "subnet-12345678"), (tag::BACKUP_PARAMETER, "pos")],
                WorkloadTagError::BadBackupParameter("pos".into()),
            ),
            (
                vec![(tag::PROTECTED_SERVER, "store-17"), (tag::SUBNETS, "subnet-12345678")],
                WorkloadTagError::BadServerId("store-17".into()),
            ),
        ];
        for (pairs, want) in cases {
            assert_eq!(workload_from_tags("lt-1", "x", &tags(&pairs)), Err(want.clone()), "{want}");
        }
    }
}
