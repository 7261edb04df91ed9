//! Warm standby: pure decisions. A warm workload keeps one standby instance running on a
//! destination (launched like a replacement, tagged `standby`, not serving); on failure it
//! is promoted instead of launching. The reconciler keeps it present, running, on the
//! template's current version and on the right destination.

use crate::launch::{ExistingReplacement, ExistingRole};
use crate::model::{InstanceState, Workload};
use serde::{Deserialize, Serialize};

/// Pure: the standby to promote for `server`'s failure, if one is ready: running (a pending
/// one has not booted the workload), standing in for this server, not on the failed server
/// itself, on a destination the workload lists; the earliest listed destination first.
pub fn promotable<'a>(found: &'a [ExistingReplacement], w: &Workload, server: &str) -> Option<&'a ExistingReplacement> {
    found
        .iter()
        .filter(|s| s.role == ExistingRole::Standby && s.state == InstanceState::Running)
        .filter(|s| s.source_server.as_deref() == Some(server) && s.server_id.as_deref() != Some(server))
        .filter_map(|s| w.subnets.iter().position(|d| *d == s.subnet_id).map(|at| (at, s)))
        .min_by(|(a, x), (b, y)| a.cmp(b).then_with(|| x.instance_id.cmp(&y.instance_id)))
        .map(|(_, s)| s)
}

/// Why a warm workload's standby is not as it should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StandbyDrift {
    /// No standby runs.
    Missing,
    /// A standby is stopped or stopping: no copy that can take over.
    Stopped,
    /// A standby runs an older (or other) template version than the current one.
    Outdated,
    /// A standby runs on a destination other than the one it belongs on.
    WrongServer,
    /// More than one good standby runs.
    Extra,
    /// No destination can hold a standby (every one is the failed server or holds the
    /// workload's replacement).
    NoDestination,
}

impl StandbyDrift {
    pub fn as_str(&self) -> &'static str {
        match self {
            StandbyDrift::Missing => "missing",
            StandbyDrift::Stopped => "stopped",
            StandbyDrift::Outdated => "outdated",
            StandbyDrift::WrongServer => "wrong_server",
            StandbyDrift::Extra => "extra",
            StandbyDrift::NoDestination => "no_destination",
        }
    }
}

/// One destination as the reconciler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub subnet_id: String,
    /// The Outposts server it is on, when known.
    pub server_id: Option<String>,
}

/// What the reconciler knows of one warm workload.
#[derive(Debug, Clone)]
pub struct StandbyFacts<'a> {
    pub workload: &'a Workload,
    /// The template version its `$Default`/`$Latest`/number resolves to now.
    pub current_version: &'a str,
    /// Its standbys and replacements EC2 describes (pending, running, stopping, stopped).
    pub instances: &'a [ExistingReplacement],
    /// Its destinations, in the workload's order.
    pub destinations: &'a [Destination],
    /// Its server's alarm says down.
    pub server_down: bool,
}

/// What the reconciler does for one warm workload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StandbyPlan {
    /// Launch a standby at this destination.
    pub launch: Option<String>,
    /// Terminate these standbys (each with why).
    pub retire: Vec<(String, StandbyDrift)>,
    /// Every drift found (with the standby it concerns), acted on or not.
    pub drift: Vec<(StandbyDrift, Option<String>)>,
    /// Nothing was decided: its server is down and no replacement runs yet (the incident
    /// promotes the standby; nothing of it is touched meanwhile).
    pub left_for_incident: bool,
}

/// Pure: the reconciler's plan for one warm workload. A standby belongs on the first listed
/// destination that is neither the protected server nor where the workload's replacement
/// runs (after a promotion, that restores N+1 elsewhere). A good standby (pending or
/// running, current version, right destination) is launched before a drifted running one
/// is retired, so a failure in between still finds a copy to promote; stopped ones are
/// retired at once.
pub fn plan_standby(f: &StandbyFacts<'_>) -> StandbyPlan {
    let w = f.workload;
    let server = w.protected_server.as_str();
    let live = |s: &&ExistingReplacement| matches!(s.state, InstanceState::Pending | InstanceState::Running);
    let replacements: Vec<&ExistingReplacement> = f
        .instances
        .iter()
        .filter(|i| i.role == ExistingRole::Replacement && i.source_server.as_deref() == Some(server))
        .filter(live)
        .collect();
    let mut plan = StandbyPlan::default();
    if f.server_down && replacements.is_empty() {
        plan.left_for_incident = true;
        return plan;
    }
    let standbys: Vec<&ExistingReplacement> = f
        .instances
        .iter()
        .filter(|i| i.role == ExistingRole::Standby && i.source_server.as_deref() == Some(server))
        .collect();
    let taken = |d: &Destination| {
        d.server_id.as_deref() == Some(server)
            || replacements
                .iter()
                .any(|r| r.subnet_id == d.subnet_id || (r.server_id.is_some() && r.server_id == d.server_id))
    };
    let desired = f.destinations.iter().find(|d| !taken(d)).map(|d| d.subnet_id.clone());

    let mut good: Vec<&ExistingReplacement> = Vec::new();
    let mut drifted: Vec<(&ExistingReplacement, StandbyDrift)> = Vec::new();
    for s in &standbys {
        if matches!(s.state, InstanceState::Stopping | InstanceState::Stopped) {
            plan.retire.push((s.instance_id.clone(), StandbyDrift::Stopped));
            plan.drift.push((StandbyDrift::Stopped, Some(s.instance_id.clone())));
        } else if !live(s) {
            continue;
        } else if desired.as_deref() != Some(s.subnet_id.as_str()) {
            drifted.push((s, StandbyDrift::WrongServer));
        } else if s.standby_version.as_deref() != Some(f.current_version) {
            drifted.push((s, StandbyDrift::Outdated));
        } else {
            good.push(s);
        }
    }
    // Running before pending, then by id: the same one is kept by every pass.
    good.sort_by(|a, b| {
        (a.state != InstanceState::Running)
            .cmp(&(b.state != InstanceState::Running))
            .then(a.instance_id.cmp(&b.instance_id))
    });
    for extra in good.iter().skip(1) {
        plan.retire.push((extra.instance_id.clone(), StandbyDrift::Extra));
        plan.drift.push((StandbyDrift::Extra, Some(extra.instance_id.clone())));
    }
    let ready = good.first().is_some_and(|s| s.state == InstanceState::Running);
    for (s, drift) in &drifted {
        plan.drift.push((*drift, Some(s.instance_id.clone())));
        // Kept until a good one runs: the only copy that could be promoted is not retired.
        if ready || desired.is_none() {
            plan.retire.push((s.instance_id.clone(), *drift));
        }
    }
    if good.is_empty() {
        match &desired {
            Some(subnet) => {
                plan.launch = Some(subnet.clone());
                if drifted.is_empty() && !plan.drift.iter().any(|(d, _)| *d == StandbyDrift::Stopped) {
                    plan.drift.push((StandbyDrift::Missing, None));
                }
            }
            None => plan.drift.push((StandbyDrift::NoDestination, None)),
        }
    }
    plan.retire.sort();
    plan.retire.dedup();
    plan
}

/// Pure: a standby launch's ClientToken: the same for every delivery of one pass (and any
/// pass in the same reconcile period that sees the same standbys), new in the next period
/// or once a standby it saw is replaced, so a standby terminated since is replaced rather
/// than answered with the dead one (EC2 answers a used token with its first instance).
pub fn standby_token(workload: &str, version: &str, subnet: &str, period: i64, seen: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut seen = seen.to_vec();
    seen.sort_unstable();
    let text = format!("standby\n{workload}\n{version}\n{subnet}\n{period}\n{}", seen.join(","));
    let digest = Sha256::digest(text.as_bytes());
    format!("sb-{}", &hex::encode(digest)[..32])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ServerId, WorkloadMode};

    const SERVER: &str = "op-0123456789abcdef0";
    const STANDBY_SERVER: &str = "op-0fedcba9876543210";
    const OTHER_SERVER: &str = "op-0aaaaaaaaaaaaaaaa";

    fn warm() -> Workload {
        Workload {
            name: "pos-db".into(),
            launch_template_id: "lt-1".into(),
            launch_template_version: "$Default".into(),
            protected_server: ServerId::parse(SERVER).unwrap(),
            subnets: vec!["subnet-a".into(), "subnet-b".into()],
            lni_subnets: Default::default(),
            priority: 100,
            backup_parameter: None,
            target_groups: vec![],
            on_partition: None,
            probe: None,
            mode: WorkloadMode::Warm,
            promotion_document: None,
        }
    }

    fn destinations() -> Vec<Destination> {
        vec![
            Destination { subnet_id: "subnet-a".into(), server_id: Some(STANDBY_SERVER.into()) },
            Destination { subnet_id: "subnet-b".into(), server_id: Some(OTHER_SERVER.into()) },
        ]
    }

    fn standby(id: &str, subnet: &str, state: InstanceState, version: &str) -> ExistingReplacement {
        let server = if subnet == "subnet-a" { STANDBY_SERVER } else { OTHER_SERVER };
        ExistingReplacement {
            instance_id: id.into(),
            subnet_id: subnet.into(),
            state,
            source_server: Some(SERVER.into()),
            restored_from: None,
            incident: None,
            retiring_since: None,
            role: ExistingRole::Standby,
            server_id: Some(server.into()),
            standby_version: Some(version.into()),
            promoted: false,
        }
    }

    fn replacement(id: &str, subnet: &str) -> ExistingReplacement {
        ExistingReplacement {
            role: ExistingRole::Replacement,
            incident: Some("inc-1".into()),
            standby_version: None,
            ..standby(id, subnet, InstanceState::Running, "")
        }
    }

    fn plan(instances: &[ExistingReplacement], server_down: bool) -> StandbyPlan {
        let (w, d) = (warm(), destinations());
        plan_standby(&StandbyFacts { workload: &w, current_version: "3", instances, destinations: &d, server_down })
    }

    #[test]
    fn a_missing_standby_is_launched_on_the_first_destination() {
        let p = plan(&[], false);
        assert_eq!(p.launch.as_deref(), Some("subnet-a"));
        assert_eq!(p.drift, vec![(StandbyDrift::Missing, None)]);
        assert!(p.retire.is_empty());
    }

    #[test]
    fn a_good_standby_is_left_alone() {
        let p = plan(&[standby("i-1", "subnet-a", InstanceState::Running, "3")], false);
        assert_eq!(p, StandbyPlan::default());
    }

    #[test]
    fn a_stopped_standby_is_retired_and_replaced_at_once() {
        let p = plan(&[standby("i-1", "subnet-a", InstanceState::Stopped, "3")], false);
        assert_eq!(p.launch.as_deref(), Some("subnet-a"));
        assert_eq!(p.retire, vec![("i-1".to_string(), StandbyDrift::Stopped)]);
        assert_eq!(p.drift, vec![(StandbyDrift::Stopped, Some("i-1".into()))]);
    }

    #[test]
    fn an_outdated_or_misplaced_standby_is_replaced_before_it_is_retired() {
        for (s, drift) in [
            (standby("i-1", "subnet-a", InstanceState::Running, "2"), StandbyDrift::Outdated),
            (standby("i-1", "subnet-b", InstanceState::Running, "3"), StandbyDrift::WrongServer),
        ] {
            let first = plan(std::slice::from_ref(&s), false);
            assert_eq!(first.launch.as_deref(), Some("subnet-a"), "{drift:?}");
            assert!(first.retire.is_empty(), "{drift:?}: the only copy stays until its successor runs");
            assert_eq!(first.drift, vec![(drift, Some("i-1".into()))]);
            let pending = plan(&[s.clone(), standby("i-2", "subnet-a", InstanceState::Pending, "3")], false);
            assert_eq!(
                (pending.launch.clone(), pending.retire.clone()),
                (None, vec![]),
                "{drift:?}: successor pending"
            );
            let ready = plan(&[s, standby("i-2", "subnet-a", InstanceState::Running, "3")], false);
            assert_eq!(ready.retire, vec![("i-1".to_string(), drift)]);
            assert_eq!(ready.launch, None);
        }
    }

    #[test]
    fn extra_standbys_are_retired_keeping_the_running_one() {
        let p = plan(
            &[
                standby("i-1", "subnet-a", InstanceState::Pending, "3"),
                standby("i-2", "subnet-a", InstanceState::Running, "3"),
            ],
            false,
        );
        assert_eq!(p.retire, vec![("i-1".to_string(), StandbyDrift::Extra)]);
    }

    #[test]
    fn while_the_server_is_down_and_unreplaced_nothing_is_touched() {
        let p = plan(&[standby("i-1", "subnet-a", InstanceState::Running, "2")], true);
        assert!(p.left_for_incident);
        assert_eq!((p.launch, p.retire), (None, vec![]));
    }

    #[test]
    fn after_a_promotion_n_plus_one_is_restored_on_the_next_destination() {
        let p = plan(&[replacement("i-1", "subnet-a")], true);
        assert_eq!(p.launch.as_deref(), Some("subnet-b"));
        assert_eq!(p.drift, vec![(StandbyDrift::Missing, None)]);
        let (w, only_a) = (warm(), vec![destinations().remove(0)]);
        let none = plan_standby(&StandbyFacts {
            workload: &w,
            current_version: "3",
            instances: &[replacement("i-1", "subnet-a")],
            destinations: &only_a,
            server_down: true,
        });
        assert_eq!((none.launch, none.drift), (None, vec![(StandbyDrift::NoDestination, None)]));
    }

    #[test]
    fn a_destination_on_the_protected_server_never_holds_its_standby() {
        let (w, d) = (warm(), vec![Destination { subnet_id: "subnet-a".into(), server_id: Some(SERVER.into()) }]);
        let p = plan_standby(&StandbyFacts {
            workload: &w,
            current_version: "3",
            instances: &[],
            destinations: &d,
            server_down: false,
        });
        assert_eq!((p.launch, p.drift), (None, vec![(StandbyDrift::NoDestination, None)]));
    }

    #[test]
    fn only_a_running_standby_for_this_server_off_the_failed_server_is_promoted() {
        let w = warm();
        let mut on_failed = standby("i-0", "subnet-a", InstanceState::Running, "3");
        on_failed.server_id = Some(SERVER.into());
        let mut other_server = standby("i-9", "subnet-a", InstanceState::Running, "3");
        other_server.source_server = Some(OTHER_SERVER.into());
        let found = vec![
            on_failed,
            other_server,
            standby("i-1", "subnet-a", InstanceState::Pending, "3"),
            standby("i-3", "subnet-b", InstanceState::Running, "2"),
            standby("i-2", "subnet-a", InstanceState::Running, "3"),
        ];
        assert_eq!(promotable(&found, &w, SERVER).map(|s| s.instance_id.as_str()), Some("i-2"));
        assert_eq!(promotable(&found[..3], &w, SERVER), None);
        assert_eq!(promotable(&[replacement("i-5", "subnet-a")], &w, SERVER), None);
    }

    #[test]
    fn standby_tokens_differ_by_period_and_fit_ec2() {
        let a = standby_token("pos-db", "3", "subnet-a", 100, &["i-2", "i-1"]);
        assert_eq!(a, standby_token("pos-db", "3", "subnet-a", 100, &["i-1", "i-2"]));
        assert_ne!(a, standby_token("pos-db", "3", "subnet-a", 101, &["i-1", "i-2"]));
        assert_ne!(a, standby_token("pos-db", "3", "subnet-a", 100, &["i-1"]), "a standby replaced since");
        assert!(a.len() <= 64, "EC2 ClientToken is at most 64 ASCII characters");
    }
}
