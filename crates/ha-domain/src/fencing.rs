//! Fencing, as pure decisions: when a failed server comes back, which of its instances
//! are originals of workloads replaced in the open incident, and what happens to each.

use crate::model::{comma_list, is_replacement, tag, AttachedInterface, Instance};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// What happens to an original whose workload was replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FencingPolicy {
    /// Swap each network interface's security groups for the quarantine group; the
    /// previous ones are kept in a tag per interface.
    Isolate,
    Terminate,
    /// Touch nothing; tell people.
    Notify,
}

impl FencingPolicy {
    pub fn parse(text: &str) -> Option<FencingPolicy> {
        match text.trim() {
            "isolate" => Some(FencingPolicy::Isolate),
            "terminate" => Some(FencingPolicy::Terminate),
            "notify" => Some(FencingPolicy::Notify),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FencingPolicy::Isolate => "isolate",
            FencingPolicy::Terminate => "terminate",
            FencingPolicy::Notify => "notify",
        }
    }
}

/// A workload the incident replaced, with the policy that applies to its originals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplacedWorkload {
    pub workload: String,
    pub replacement_instance_id: String,
    pub policy: FencingPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceAction {
    pub instance_id: String,
    pub workload: String,
    pub replacement_instance_id: String,
    pub policy: FencingPolicy,
    /// Already fenced for this incident (tagged) by an earlier pass that may have died
    /// before telling it: told again, acted on again only if still live.
    pub already: bool,
}

/// The originals to fence: instances of replaced workloads that are not replacements,
/// are not known to run elsewhere, and still exist or were fenced (tagged) for this incident
/// (a terminated one is told even if the pass that terminated it died).
/// Instances of workloads that were not replaced are never selected.
pub fn choose_originals(
    incident_id: &str,
    server_id: &str,
    replaced: &[ReplacedWorkload],
    candidates: &[Instance],
) -> Vec<FenceAction> {
    let by_workload: BTreeMap<&str, &ReplacedWorkload> = replaced.iter().map(|r| (r.workload.as_str(), r)).collect();
    let replacements: BTreeSet<&str> = replaced.iter().map(|r| r.replacement_instance_id.as_str()).collect();
    let mut actions: Vec<FenceAction> = candidates
        .iter()
        .filter_map(|c| {
            let workload = c.tags.get(tag::WORKLOAD)?;
            let r = by_workload.get(workload.as_str())?;
            let is_replacement = is_replacement(&c.tags) || replacements.contains(c.instance_id.as_str());
            let gone = c.state.is_gone();
            let elsewhere = c.server_id.as_deref().is_some_and(|s| s != server_id);
            let done = c.tags.get(tag::FENCED).map(String::as_str) == Some(incident_id);
            (!is_replacement && !elsewhere && (done || !gone)).then(|| FenceAction {
                instance_id: c.instance_id.clone(),
                workload: workload.clone(),
                replacement_instance_id: r.replacement_instance_id.clone(),
                policy: r.policy,
                already: done,
            })
        })
        .collect();
    actions.sort_by(|a, b| a.workload.cmp(&b.workload).then_with(|| a.instance_id.cmp(&b.instance_id)));
    actions
}

/// The policy for a workload: its launch template's `outposts-ha:fencing` tag, else the default.
pub fn policy_for(template_tags: &BTreeMap<String, String>, default: FencingPolicy) -> FencingPolicy {
    template_tags.get(tag::FENCING).and_then(|p| FencingPolicy::parse(p)).unwrap_or(default)
}

/// The server id in an Outposts ARN (`arn:aws:outposts:…:outpost/op-…`).
pub fn server_of_outpost_arn(arn: &str) -> Option<String> {
    arn.rsplit('/').next().filter(|id| id.starts_with("op-")).map(str::to_string)
}

/// The name of a VPC's quarantine group for `stack` (unique in the VPC).
pub fn quarantine_group_name(stack: &str) -> String {
    format!("outposts-ha-{stack}-quarantine")
}

/// Security groups as kept in the fenced instance's tag, and back.
pub fn groups_tag_value(groups: &[String]) -> String {
    groups.join(",")
}

pub fn groups_from_tag(value: &str) -> Vec<String> {
    comma_list(value)
}

/// The tag keeping one interface's groups while it is isolated.
pub fn fenced_groups_key(interface_id: &str) -> String {
    format!("{}:{interface_id}", tag::FENCED_GROUPS)
}

fn is_fenced_groups_key(key: &str) -> bool {
    key.strip_prefix(tag::FENCED_GROUPS).is_some_and(|rest| rest.is_empty() || rest.starts_with(":eni-"))
}

/// Whether any interface of the instance is in the quarantine group.
pub fn is_partly_isolated(instance: &Instance, quarantine: &str) -> bool {
    instance.interfaces.iter().any(|i| i.groups.iter().any(|g| g == quarantine))
}

/// Whether the interface is in the quarantine group and nothing else.
fn quarantined_only(interface: &AttachedInterface, quarantine: &str) -> bool {
    interface.groups.len() == 1 && interface.groups[0] == quarantine
}

/// The interfaces by device index.
fn by_device_index(interfaces: &[AttachedInterface]) -> Vec<&AttachedInterface> {
    let mut sorted: Vec<&AttachedInterface> = interfaces.iter().collect();
    sorted.sort_by_key(|i| i.device_index);
    sorted
}

/// The tag keeping the interface's groups: its own, or for the primary interface the
/// unsuffixed one of older versions.
fn kept_tag<'a>(tags: &'a BTreeMap<String, String>, interface: &AttachedInterface) -> Option<&'a String> {
    tags.get(&fenced_groups_key(&interface.interface_id)).or(if interface.device_index == 0 {
        tags.get(tag::FENCED_GROUPS)
    } else {
        None
    })
}

/// Every fencing tag on the instance (its mark and the kept groups): what unfencing removes.
pub fn fencing_tag_keys(tags: &BTreeMap<String, String>) -> Vec<String> {
    tags.keys().filter(|k| k.as_str() == tag::FENCED || is_fenced_groups_key(k)).cloned().collect()
}

/// One interface's security groups, as they were before it was isolated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceGroups {
    pub interface_id: String,
    pub device_index: i32,
    pub groups: Vec<String>,
}

/// Isolating one original: the tags to write before any group is swapped (each interface
/// not yet in quarantine, its groups now), every interface's groups as they were (empty
/// when unknown), and the interfaces to swap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Isolation {
    pub keep: Vec<(String, String)>,
    pub previous: Vec<InterfaceGroups>,
    pub swap: Vec<String>,
}

/// Pure: what isolating `instance` in `quarantine` keeps and swaps. An interface already in
/// quarantine only (an earlier pass swapped it) is reported from its kept tag and never
/// re-kept: the quarantine group is never recorded as anyone's own. Any other interface's
/// groups now are kept, replacing a tag an earlier attempt left (it may be stale, or from a
/// version that kept one list for the whole instance).
pub fn isolation_of(instance: &Instance, quarantine: &str) -> Isolation {
    let mut isolation = Isolation { keep: Vec::new(), previous: Vec::new(), swap: Vec::new() };
    for i in by_device_index(&instance.interfaces) {
        let groups = if quarantined_only(i, quarantine) {
            kept_tag(&instance.tags, i).map(|v| groups_from_tag(v)).unwrap_or_default()
        } else {
            let key = fenced_groups_key(&i.interface_id);
            let value = groups_tag_value(&i.groups);
            if instance.tags.get(&key) != Some(&value) {
                isolation.keep.push((key, value));
            }
            isolation.swap.push(i.interface_id.clone());
            i.groups.clone()
        };
        isolation.previous.push(InterfaceGroups {
            interface_id: i.interface_id.clone(),
            device_index: i.device_index,
            groups,
        });
    }
    isolation
}

/// What unfencing does with one fenced original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnfencePlan {
    /// Isolated: put each interface's groups back, then remove the fencing marks.
    Restore(Vec<InterfaceGroups>),
    /// Not isolated (terminate or notify left its groups alone): remove the marks only.
    Unmark,
    /// Left as it is, marks kept; why.
    Refuse(UnfenceRefusal),
}

/// Why an original is not put back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnfenceRefusal {
    #[error("its incident {0} is still open: unfence after the server is back and the incident closed, or force it")]
    IncidentOpen(String),
    #[error("its workload's replacement {0} still runs: two copies would serve; stop one first, or force it")]
    ReplacementRuns(String),
    #[error("it had no security groups when it was isolated; set its groups by hand, then remove its fencing tags")]
    NoGroupsKept,
    #[error("none of the network interfaces whose groups were kept is attached to it now; set its groups by hand, then remove its fencing tags")]
    InterfacesGone,
}

/// What unfencing knows about one fenced original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnfenceFacts<'a> {
    pub tags: &'a BTreeMap<String, String>,
    /// Its network interfaces now.
    pub interfaces: &'a [AttachedInterface],
    /// The incident it was fenced for is still open in the ledger.
    pub incident_open: bool,
    /// A live replacement of its workload, if any.
    pub live_replacement: Option<&'a str>,
    /// The operator said to put it back anyway.
    pub force: bool,
}

/// The groups kept for each interface still attached (an unsuffixed tag: the primary's);
/// `None` when it was never isolated.
fn kept_groups(
    tags: &BTreeMap<String, String>,
    interfaces: &[AttachedInterface],
) -> Option<Result<Vec<InterfaceGroups>, UnfenceRefusal>> {
    if !tags.keys().any(|k| is_fenced_groups_key(k)) {
        return None;
    }
    let mut kept = Vec::new();
    for i in by_device_index(interfaces) {
        let Some(value) = kept_tag(tags, i) else { continue };
        let groups = groups_from_tag(value);
        if groups.is_empty() {
            return Some(Err(UnfenceRefusal::NoGroupsKept));
        }
        kept.push(InterfaceGroups { interface_id: i.interface_id.clone(), device_index: i.device_index, groups });
    }
    if kept.is_empty() {
        let nothing_kept =
            tags.iter().filter(|(k, _)| is_fenced_groups_key(k)).all(|(_, v)| groups_from_tag(v).is_empty());
        return Some(Err(if nothing_kept { UnfenceRefusal::NoGroupsKept } else { UnfenceRefusal::InterfacesGone }));
    }
    Some(Ok(kept))
}

/// Pure: what unfencing does with a fenced original. Never two live copies unless the
/// operator forces it, and never a guess at groups that were not kept.
pub fn unfence_plan(f: &UnfenceFacts<'_>) -> UnfencePlan {
    let kept = match kept_groups(f.tags, f.interfaces) {
        Some(Err(refusal)) => return UnfencePlan::Refuse(refusal),
        Some(Ok(kept)) => Some(kept),
        None => None,
    };
    if !f.force {
        if f.incident_open {
            let incident = f.tags.get(tag::FENCED).cloned().unwrap_or_default();
            return UnfencePlan::Refuse(UnfenceRefusal::IncidentOpen(incident));
        }
        if let Some(replacement) = f.live_replacement {
            return UnfencePlan::Refuse(UnfenceRefusal::ReplacementRuns(replacement.to_string()));
        }
    }
    match kept {
        Some(groups) => UnfencePlan::Restore(groups),
        None => UnfencePlan::Unmark,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::InstanceState;

    const INC: &str = "inc-1";
    const OP: &str = "op-0000000000000000a";

    fn candidate(id: &str, workload: &str, extra: &[(&str, &str)]) -> Instance {
        let mut tags: BTreeMap<String, String> = [(tag::WORKLOAD.to_string(), workload.to_string())].into();
        tags.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Instance::new(id, InstanceState::Running, tags)
    }

    fn replaced(workload: &str, replacement: &str, policy: FencingPolicy) -> ReplacedWorkload {
        ReplacedWorkload { workload: workload.into(), replacement_instance_id: replacement.into(), policy }
    }

    #[test]
    fn only_originals_of_replaced_workloads_are_fenced() {
        let replaced =
            [replaced("pos", "i-r1", FencingPolicy::Isolate), replaced("db", "i-r2", FencingPolicy::Terminate)];
        let mut elsewhere = candidate("i-elsewhere", "pos", &[]);
        elsewhere.server_id = Some("op-0000000000000000b".into());
        let mut here = candidate("i-db", "db", &[]);
        here.server_id = Some(OP.into());
        let mut gone = candidate("i-gone", "pos", &[]);
        gone.state = InstanceState::Terminated;
        // Terminated by a pass that died before telling it: told again.
        let mut terminated_here = candidate("i-terminated", "pos", &[(tag::FENCED, INC)]);
        terminated_here.state = InstanceState::Terminated;
        let candidates = [
            candidate("i-pos", "pos", &[]),
            here,
            candidate("i-kiosk", "kiosk", &[]),
            candidate("i-r1", "pos", &[]),
            candidate("i-r-other", "pos", &[(tag::INCIDENT, "inc-0")]),
            candidate("i-done", "pos", &[(tag::FENCED, INC)]),
            candidate("i-old-fence", "pos", &[(tag::FENCED, "inc-0")]),
            elsewhere,
            gone,
            terminated_here,
        ];
        let actions = choose_originals(INC, OP, &replaced, &candidates);
        let got: Vec<(&str, FencingPolicy, bool)> =
            actions.iter().map(|a| (a.instance_id.as_str(), a.policy, a.already)).collect();
        assert_eq!(
            got,
            vec![
                ("i-db", FencingPolicy::Terminate, false),
                ("i-done", FencingPolicy::Isolate, true),
                ("i-old-fence", FencingPolicy::Isolate, false),
                ("i-pos", FencingPolicy::Isolate, false),
                ("i-terminated", FencingPolicy::Isolate, true),
            ]
        );
        assert_eq!(actions[3].replacement_instance_id, "i-r1");
    }

    #[test]
    fn policies_parse_and_the_template_tag_overrides() {
        for p in [FencingPolicy::Isolate, FencingPolicy::Terminate, FencingPolicy::Notify] {
            assert_eq!(FencingPolicy::parse(p.as_str()), Some(p));
        }
        assert_eq!(FencingPolicy::parse("kill"), None);
        let tags: BTreeMap<String, String> = [(tag::FENCING.to_string(), "notify".to_string())].into();
        assert_eq!(policy_for(&tags, FencingPolicy::Isolate), FencingPolicy::Notify);
        let bad: BTreeMap<String, String> = [(tag::FENCING.to_string(), "kill".to_string())].into();
        assert_eq!(policy_for(&bad, FencingPolicy::Terminate), FencingPolicy::Terminate);
    }

    #[test]
    fn outpost_arns_and_group_tags() {
        assert_eq!(
            server_of_outpost_arn("arn:aws:outposts:eu-west-1:123456789012:outpost/op-0000000000000000a").as_deref(),
            Some(OP)
        );
        assert_eq!(server_of_outpost_arn("arn:aws:outposts:eu-west-1:123456789012:site/os-1"), None);
        let groups = vec!["sg-1".to_string(), "sg-2".to_string()];
        assert_eq!(groups_from_tag(&groups_tag_value(&groups)), groups);
        assert!(groups_from_tag("").is_empty());
    }

    fn interface(id: &str, device_index: i32, groups: &[&str]) -> AttachedInterface {
        AttachedInterface {
            interface_id: id.into(),
            device_index,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    fn kept(id: &str, device_index: i32, groups: &[&str]) -> InterfaceGroups {
        InterfaceGroups {
            interface_id: id.into(),
            device_index,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    #[test]
    fn isolation_keeps_every_interface_once_and_never_keeps_the_quarantine_group() {
        let q = "sg-q";
        let mut lni = candidate("i-pos", "pos", &[]);
        lni.interfaces = vec![interface("eni-lni", 1, &["sg-store"]), interface("eni-main", 0, &["sg-1", "sg-2"])];
        let first = isolation_of(&lni, q);
        assert_eq!(
            first.keep,
            vec![
                ("outposts-ha:fenced-groups:eni-main".to_string(), "sg-1,sg-2".to_string()),
                ("outposts-ha:fenced-groups:eni-lni".to_string(), "sg-store".to_string()),
            ]
        );
        assert_eq!(first.previous, vec![kept("eni-main", 0, &["sg-1", "sg-2"]), kept("eni-lni", 1, &["sg-store"])]);
        assert_eq!(first.swap, vec!["eni-main", "eni-lni"]);
        assert!(!is_partly_isolated(&lni, q));
        // A retry after the tags were written and one interface swapped: nothing new to
        // keep, the swapped one reported from its tag, only the other swapped.
        lni.tags.extend(first.keep.iter().cloned());
        lni.interfaces[1].groups = vec![q.into()];
        assert!(is_partly_isolated(&lni, q));
        let retry = isolation_of(&lni, q);
        assert!(retry.keep.is_empty());
        assert_eq!(retry.previous, first.previous);
        assert_eq!(retry.swap, vec!["eni-lni"]);
        lni.interfaces[0].groups = vec![q.into()];
        assert!(is_partly_isolated(&lni, q) && isolation_of(&lni, q).swap.is_empty(), "isolated: nothing left to swap");
        // Seen in quarantine before its tag is (tags are eventually consistent): its groups
        // are unknown, and the quarantine group is never kept as its own.
        let mut early = candidate("i-early", "pos", &[]);
        early.interfaces = vec![interface("eni-main", 0, &[q]), interface("eni-lni", 1, &["sg-store"])];
        let isolation = isolation_of(&early, q);
        assert_eq!(isolation.keep, vec![("outposts-ha:fenced-groups:eni-lni".to_string(), "sg-store".to_string())]);
        assert_eq!(isolation.previous[0], kept("eni-main", 0, &[]));
        // A tag left by a version that kept one list for the instance and then failed to
        // swap: the interface is not in quarantine, so its groups now are kept.
        let mut legacy = candidate("i-old", "pos", &[(tag::FENCED_GROUPS, "sg-1,sg-store")]);
        legacy.interfaces = vec![interface("eni-main", 0, &["sg-1"]), interface("eni-lni", 1, &["sg-store"])];
        let isolation = isolation_of(&legacy, q);
        assert_eq!(isolation.previous, vec![kept("eni-main", 0, &["sg-1"]), kept("eni-lni", 1, &["sg-store"])]);
        // Swapped by that version (one interface): its tag is the primary's.
        let mut swapped = candidate("i-older", "pos", &[(tag::FENCED_GROUPS, "sg-1")]);
        swapped.interfaces = vec![interface("eni-main", 0, &[q])];
        assert_eq!(isolation_of(&swapped, q).previous, vec![kept("eni-main", 0, &["sg-1"])]);
        let mut marks = legacy.tags.clone();
        marks.insert(tag::FENCED.into(), INC.into());
        marks.insert("outposts-ha:fenced-groups:eni-lni".into(), "sg-store".into());
        marks.insert("outposts-ha:fenced-groups:by-hand".into(), "not ours".into());
        marks.insert("outposts-ha:fenced-groupsX".into(), "not ours".into());
        assert_eq!(
            fencing_tag_keys(&marks),
            vec!["outposts-ha:fenced", "outposts-ha:fenced-groups", "outposts-ha:fenced-groups:eni-lni"]
        );
    }

    #[test]
    fn unfencing_restores_what_was_kept_never_makes_a_second_copy_unasked_and_never_guesses() {
        let tags = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let both = [interface("eni-main", 0, &["sg-q"]), interface("eni-lni", 1, &["sg-q"])];
        let isolated = tags(&[
            (tag::FENCED, INC),
            ("outposts-ha:fenced-groups:eni-main", "sg-1,sg-2"),
            ("outposts-ha:fenced-groups:eni-lni", "sg-store"),
        ]);
        let legacy = tags(&[(tag::FENCED, INC), (tag::FENCED_GROUPS, "sg-1,sg-2")]);
        let notified = tags(&[(tag::FENCED, INC)]);
        let bare = tags(&[(tag::FENCED, INC), ("outposts-ha:fenced-groups:eni-main", " , ")]);
        let elsewhere = tags(&[(tag::FENCED, INC), ("outposts-ha:fenced-groups:eni-detached", "sg-1")]);
        let restore =
            UnfencePlan::Restore(vec![kept("eni-main", 0, &["sg-1", "sg-2"]), kept("eni-lni", 1, &["sg-store"])]);
        let restore_primary = UnfencePlan::Restore(vec![kept("eni-main", 0, &["sg-1", "sg-2"])]);
        let open = UnfencePlan::Refuse(UnfenceRefusal::IncidentOpen(INC.into()));
        let runs = UnfencePlan::Refuse(UnfenceRefusal::ReplacementRuns("i-r".into()));
        let none_kept = UnfencePlan::Refuse(UnfenceRefusal::NoGroupsKept);
        // (tags, incident open, live replacement, force) → plan
        let table = [
            (&isolated, false, None, false, restore.clone()),
            (&legacy, false, None, false, restore_primary),
            (&notified, false, None, false, UnfencePlan::Unmark),
            (&isolated, true, None, false, open.clone()),
            (&isolated, true, Some("i-r"), false, open),
            (&isolated, false, Some("i-r"), false, runs.clone()),
            (&notified, false, Some("i-r"), false, runs),
            (&isolated, true, Some("i-r"), true, restore),
            (&notified, true, None, true, UnfencePlan::Unmark),
            (&bare, false, None, false, none_kept.clone()),
            (&bare, true, Some("i-r"), true, none_kept),
            (&elsewhere, false, None, false, UnfencePlan::Refuse(UnfenceRefusal::InterfacesGone)),
        ];
        for (t, incident_open, live_replacement, force, want) in table {
            let facts = UnfenceFacts { tags: t, interfaces: &both, incident_open, live_replacement, force };
            assert_eq!(unfence_plan(&facts), want, "{facts:?}");
        }
    }
}
