//! Pure decisions of the relaunch: order, claims, and where to go after a failure.

use crate::error::Retry;
use crate::model::{InstanceState, Workload};
use serde::{Deserialize, Serialize};

/// Workloads in the order they start when the concurrency bound bites: priority, then name.
pub fn launch_order(mut workloads: Vec<Workload>) -> Vec<Workload> {
    workloads.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.name.cmp(&b.name)));
    let mut seen = std::collections::HashSet::new();
    workloads.retain(|w| seen.insert(w.name.clone()));
    workloads
}

/// What an instance the system launched for a workload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExistingRole {
    /// Launched (or promoted) for an incident.
    Replacement,
    /// A warm workload's standby: running, not serving.
    Standby,
}

/// A replacement (or a warm workload's standby) that EC2 still describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingReplacement {
    pub instance_id: String,
    pub subnet_id: String,
    pub state: InstanceState,
    /// The server whose failure it replaces (its source-server tag).
    pub source_server: Option<String>,
    /// The backup AMI it was launched from, by its tag.
    pub restored_from: Option<String>,
    /// The incident that launched it.
    pub incident: Option<String>,
    /// When fail-back marked it for taking out (its `outposts-ha:retiring` tag, epoch
    /// seconds): not adopted while the mark is fresh.
    pub retiring_since: Option<i64>,
    pub role: ExistingRole,
    /// The Outposts server it runs on, when EC2 says.
    pub server_id: Option<String>,
    /// Standbys: the launch template version it was launched from.
    pub standby_version: Option<String>,
    /// A standby promoted to be this replacement (its `outposts-ha:promoted-at` tag).
    pub promoted: bool,
}

/// How long fail-back's mark keeps a replacement from being adopted: far longer than one
/// pass (seconds), so a new incident never adopts what is being terminated; a mark left by
/// a pass that died lapses, and the replacement (still registered) is adopted again.
pub const RETIRING_LEASE_SECONDS: i64 = 600;

/// Pure: the replacement a workload of `server` already has, if any: one replacing this
/// server (every store may call its workload `pos`), pending or running (a stopped or dying
/// one is no copy that serves), the one launched for `incident` first.
pub fn adoptable<'a>(
    found: &'a [ExistingReplacement],
    incident: &str,
    server: &str,
    now_epoch: i64,
) -> Option<&'a ExistingReplacement> {
    let retiring = |r: &ExistingReplacement| r.retiring_since.is_some_and(|at| now_epoch - at < RETIRING_LEASE_SECONDS);
    found
        .iter()
        .filter(|r| r.role == ExistingRole::Replacement)
        .filter(|r| r.source_server.as_deref() == Some(server) && !retiring(r))
        .filter(|r| matches!(r.state, InstanceState::Pending | InstanceState::Running))
        .min_by(|a, b| {
            let other = |r: &ExistingReplacement| r.incident.as_deref() != Some(incident);
            other(a).cmp(&other(b)).then_with(|| a.instance_id.cmp(&b.instance_id))
        })
}

/// The ledger's record of one (incident, workload), as far as claiming is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimRecord {
    /// Someone is launching; their lease runs until `lease_until` (epoch seconds).
    Launching { lease_until: i64 },
    /// Settled (launched or failed on every destination); `reported` once its event is
    /// out. Until `report_until` its settler (or whoever took the report over) reports it.
    Settled { reported: bool, report_until: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimDecision {
    /// Our conditional create won: launch.
    Launch,
    /// The previous claimant's lease ran out (it died mid-launch): take over and launch
    /// again with the same client tokens, after looking for what it may have launched.
    TakeOver,
    /// Someone else is on it right now.
    LeaveToOther,
    /// Done long enough ago that its unreported event was lost: emit it again.
    ReEmit,
    /// Done and reported: nothing to do.
    Done,
}

/// Pure: what to do when our claim lost to an existing record.
pub fn decide_on_existing_claim(existing: &ClaimRecord, now_epoch: i64) -> ClaimDecision {
    match existing {
        ClaimRecord::Launching { lease_until } if *lease_until <= now_epoch => ClaimDecision::TakeOver,
        ClaimRecord::Launching { .. } => ClaimDecision::LeaveToOther,
        ClaimRecord::Settled { reported: false, report_until } if *report_until <= now_epoch => ClaimDecision::ReEmit,
        // Being reported: this delivery comes back (NotYet) in case the reporter died.
        ClaimRecord::Settled { reported: false, .. } => ClaimDecision::LeaveToOther,
        ClaimRecord::Settled { reported: true, .. } => ClaimDecision::Done,
    }
}

/// One destination tried and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationAttempt {
    pub subnet_id: String,
    /// `None` when the launch was accepted.
    pub error_code: Option<crate::contract::RelaunchFailure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterFailure {
    /// Try this destination index next.
    NextDestination(usize),
    /// Every destination refused: escalate, manual action needed.
    Exhausted,
    /// Transient: stop here, release the claim, and let the event be retried.
    RetryLater,
}

/// Pure: after destination `index` of `destinations` failed in the given way.
pub fn after_launch_failure(index: usize, destinations: usize, retry: Retry) -> AfterFailure {
    match retry {
        Retry::CanHelp => AfterFailure::RetryLater,
        Retry::WontHelp if index + 1 < destinations => AfterFailure::NextDestination(index + 1),
        Retry::WontHelp => AfterFailure::Exhausted,
    }
}

/// One network interface a launch template declares, with what a replacement keeps of it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InterfaceSpec {
    pub device_index: i32,
    /// Its subnet: the template's own, or, once placed, the destination's.
    pub subnet_id: Option<String>,
    pub groups: Vec<String>,
    pub delete_on_termination: Option<bool>,
    pub description: Option<String>,
    pub associate_public_ip_address: Option<bool>,
    pub interface_type: Option<String>,
    pub network_card_index: Option<i32>,
    pub secondary_private_ip_address_count: Option<i32>,
    pub ipv6_address_count: Option<i32>,
}

/// Pure: the template's network interfaces placed at one destination, every other setting
/// kept: the second (device index 1, the local network interface on an Outposts server)
/// in the destination's LNI subnet when it names one, else, like every other interface,
/// in the destination's subnet (an LNI-enabled subnet takes both). A primary interface is
/// added when the template declares only secondary ones (RunInstances needs one). Empty
/// when the template declares none: the launch names the subnet instead (EC2 refuses
/// both on one request).
pub fn interfaces_at(declared: &[InterfaceSpec], subnet: &str, lni_subnet: Option<&str>) -> Vec<InterfaceSpec> {
    if declared.is_empty() {
        return Vec::new();
    }
    let mut placed: Vec<InterfaceSpec> = declared
        .iter()
        .map(|interface| {
            let at = match (interface.device_index, lni_subnet) {
                (1, Some(lni)) => lni,
                _ => subnet,
            };
            InterfaceSpec { subnet_id: Some(at.to_string()), ..interface.clone() }
        })
        .collect();
    if !placed.iter().any(|i| i.device_index == 0) {
        placed.push(InterfaceSpec { device_index: 0, subnet_id: Some(subnet.to_string()), ..Default::default() });
    }
    placed.sort_by_key(|i| i.device_index);
    placed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interfaces_are_placed_at_the_destination_keeping_their_settings() {
        let primary = InterfaceSpec {
            device_index: 0,
            subnet_id: Some("subnet-template".into()),
            groups: vec!["sg-app".into()],
            delete_on_termination: Some(true),
            ..Default::default()
        };
        let lni = InterfaceSpec { device_index: 1, subnet_id: Some("subnet-template".into()), ..Default::default() };
        let at = |subnet: &str| Some(subnet.to_string());
        assert_eq!(interfaces_at(&[], "subnet-a", None), vec![], "none declared: the launch names the subnet");
        let placed = interfaces_at(&[lni.clone(), primary.clone()], "subnet-a", Some("subnet-a-lni"));
        assert_eq!(placed[0], InterfaceSpec { subnet_id: at("subnet-a"), ..primary.clone() });
        assert_eq!(placed[1], InterfaceSpec { subnet_id: at("subnet-a-lni"), ..lni.clone() });
        let same_subnet = interfaces_at(&[primary.clone(), lni.clone()], "subnet-b", None);
        assert_eq!(same_subnet[1].subnet_id, at("subnet-b"), "an LNI-enabled subnet takes both interfaces");
        let only_secondary = interfaces_at(std::slice::from_ref(&lni), "subnet-c", None);
        assert_eq!(only_secondary.len(), 2, "a primary interface is added");
        assert_eq!((only_secondary[0].device_index, only_secondary[0].subnet_id.clone()), (0, at("subnet-c")));
    }
    use crate::model::ServerId;

    fn w(name: &str, priority: u32) -> Workload {
        Workload {
            name: name.into(),
            launch_template_id: format!("lt-{name}"),
            launch_template_version: "$Default".into(),
            protected_server: ServerId::parse("op-0123456789abcdef0").unwrap(),
            subnets: vec!["subnet-12345678".into()],
            lni_subnets: Default::default(),
            priority,
            backup_parameter: None,
            target_groups: Vec::new(),
            on_partition: None,
            probe: None,
            mode: Default::default(),
            promotion_document: None,
        }
    }

    #[test]
    fn only_a_live_replacement_of_the_same_server_is_adopted() {
        let r = |id: &str, server: &str, state: InstanceState, incident: &str| ExistingReplacement {
            instance_id: id.into(),
            subnet_id: "subnet-1".into(),
            state,
            source_server: Some(server.into()),
            restored_from: None,
            incident: Some(incident.into()),
            retiring_since: None,
            role: crate::launch::ExistingRole::Replacement,
            server_id: None,
            standby_version: None,
            promoted: false,
        };
        let (here, there) = ("op-0000000000000000a", "op-0000000000000000b");
        let found = [
            r("i-1", there, InstanceState::Running, "inc-1"),
            r("i-2", here, InstanceState::Stopped, "inc-1"),
            r("i-3", here, InstanceState::Running, "inc-0"),
            r("i-4", here, InstanceState::Pending, "inc-1"),
        ];
        assert_eq!(adoptable(&found, "inc-1", here, 0).map(|r| r.instance_id.as_str()), Some("i-4"));
        assert_eq!(adoptable(&found[..3], "inc-1", here, 0).map(|r| r.instance_id.as_str()), Some("i-3"));
        assert_eq!(adoptable(&found[..2], "inc-1", here, 0), None, "another store's, or a stopped one");
        let retiring =
            [ExistingReplacement { retiring_since: Some(1_000), ..r("i-3", here, InstanceState::Running, "inc-0") }];
        assert_eq!(
            adoptable(&retiring, "inc-1", here, 1_010),
            None,
            "fail-back is taking it out: a new one is launched"
        );
        let lapsed =
            adoptable(&retiring, "inc-1", here, 1_000 + RETIRING_LEASE_SECONDS).map(|r| r.instance_id.as_str());
        assert_eq!(lapsed, Some("i-3"), "a mark left by a fail-back that died lapses");
    }

    #[test]
    fn order_is_priority_then_name_without_duplicates() {
        let got: Vec<(String, u32)> =
            launch_order(vec![w("c", 100), w("a", 100), w("db", 1), w("b", 50), w("a", 100), w("c", 2)])
                .into_iter()
                .map(|w| (w.name, w.priority))
                .collect();
        // A name listed twice keeps its most urgent entry, wherever the duplicates sit.
        let want = [("db", 1), ("c", 2), ("b", 50), ("a", 100)].map(|(n, p)| (n.to_string(), p));
        assert_eq!(got, want);
    }

    #[test]
    fn existing_claim_table() {
        let now = 1_000;
        let table = [
            (ClaimRecord::Launching { lease_until: 999 }, ClaimDecision::TakeOver),
            (ClaimRecord::Launching { lease_until: 1_000 }, ClaimDecision::TakeOver),
            (ClaimRecord::Launching { lease_until: 1_001 }, ClaimDecision::LeaveToOther),
            (ClaimRecord::Settled { reported: false, report_until: now }, ClaimDecision::ReEmit),
            (ClaimRecord::Settled { reported: false, report_until: now + 1 }, ClaimDecision::LeaveToOther),
            (ClaimRecord::Settled { reported: true, report_until: now + 3600 }, ClaimDecision::Done),
        ];
        for (record, want) in table {
            assert_eq!(decide_on_existing_claim(&record, now), want, "{record:?}");
        }
    }

    #[test]
    fn failure_table() {
        let table = [
            (0, 3, Retry::WontHelp, AfterFailure::NextDestination(1)),
            (1, 3, Retry::WontHelp, AfterFailure::NextDestination(2)),
            (2, 3, Retry::WontHelp, AfterFailure::Exhausted),
            (0, 1, Retry::WontHelp, AfterFailure::Exhausted),
            (0, 3, Retry::CanHelp, AfterFailure::RetryLater),
            (2, 3, Retry::CanHelp, AfterFailure::RetryLater),
        ];
        for (index, n, retry, want) in table {
            assert_eq!(after_launch_failure(index, n, retry), want, "{index}/{n} {retry:?}");
        }
    }
}
