//! Backups of stateful instances, as pure decisions: which instances a schedule tick
//! starts, whether a finished execution produced a usable backup, whether the parameter
//! moves forward, which old backups are pruned, and how old the newest backup is.

use crate::launch::ExistingReplacement;
use crate::model::{is_parameter_name, tag, Instance};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;

/// A backup taken this close to its interval counts as due, so an hourly schedule with
/// a 4 h interval backs up every 4th tick, not every 5th.
pub const DUE_TOLERANCE_SECONDS: i64 = 300;

/// Every backup parameter of a stack lives under this path (IAM scopes the functions to it).
pub fn parameter_prefix(stack: &str) -> String {
    format!("/outposts-ha/{stack}/")
}

/// An instance declared for backup by its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatefulInstance {
    pub instance_id: String,
    /// Its VPC: the runbook's helper instance runs in a Region subnet of it.
    pub vpc_id: Option<String>,
    /// Its CPU architecture as EC2 names it (`x86_64`, `arm64`): the helper's must match.
    pub architecture: Option<String>,
    pub workload: Option<String>,
    pub server_id: Option<String>,
    pub parameter: String,
    /// Back up at most this often; `None`: on every tick.
    pub interval_seconds: Option<i64>,
}

/// An instance tagged for backup whose tags cannot be used; reported as stale, never backed up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MisdeclaredInstance {
    pub instance_id: String,
    pub workload: Option<String>,
    pub reason: String,
}

/// Reads an instance's backup declaration from its tags.
pub fn stateful_instance_from_tags(
    instance_id: &str,
    host: &Host<'_>,
    tags: &BTreeMap<String, String>,
    stack: &str,
) -> Result<StatefulInstance, MisdeclaredInstance> {
    let workload = tags.get(tag::WORKLOAD).cloned();
    let misdeclared = |reason: String| MisdeclaredInstance {
        instance_id: instance_id.to_string(),
        workload: workload.clone(),
        reason,
    };
    let parameter = tags.get(tag::BACKUP_PARAMETER).map(|p| p.trim()).unwrap_or_default();
    let prefix = parameter_prefix(stack);
    if !is_parameter_name(parameter) || !parameter.starts_with(&prefix) {
        return Err(misdeclared(format!(
            "tag {} is '{parameter}'; it must name an SSM parameter under {prefix}",
            tag::BACKUP_PARAMETER
        )));
    }
    let interval_seconds = match tags.get(tag::BACKUP_INTERVAL).map(|i| i.trim()) {
        None | Some("") => None,
        Some(text) => match humantime::parse_duration(text) {
            Ok(d) if d.as_secs() >= 60 => Some(d.as_secs().min(i64::MAX as u64) as i64),
            _ => {
                return Err(misdeclared(format!(
                    "tag {} is '{text}'; expected a duration of at least a minute, like 30m, 4h or 1d",
                    tag::BACKUP_INTERVAL
                )))
            }
        },
    };
    Ok(StatefulInstance {
        instance_id: instance_id.to_string(),
        vpc_id: host.vpc_id.map(str::to_string),
        architecture: host.architecture.map(str::to_string),
        workload,
        server_id: tags.get(tag::PROTECTED_SERVER).cloned(),
        parameter: parameter.to_string(),
        interval_seconds,
    })
}

/// Where an instance runs, as DescribeInstances tells it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Host<'a> {
    pub vpc_id: Option<&'a str>,
    pub architecture: Option<&'a str>,
}

/// A subnet tagged `outposts-ha:backup-helper`: where the runbook's helper instance may run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperSubnet {
    pub subnet_id: String,
    pub vpc_id: String,
    /// It is an Outpost's subnet (EC2 names its `OutpostArn`), not the Region's.
    pub on_outpost: bool,
}

/// The helper instance type for each CPU architecture (the runbook's
/// `TemporaryInstancesType` must match the instance's: Graviton on 1U servers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperTypes {
    pub x86_64: String,
    pub arm64: String,
}

/// Whether the instance type is a Graviton (arm64) one: `a1`, or its family has a `g`
/// after the generation (`c6g`, `m7gd`, `t4g`, `im4gn`, `g5g`; not `g4dn`).
pub fn is_graviton_type(instance_type: &str) -> bool {
    let family = instance_type.split('.').next().unwrap_or_default();
    if family == "a1" {
        return true;
    }
    let after_generation = family.trim_start_matches(|c: char| c.is_ascii_lowercase());
    let attributes = after_generation.trim_start_matches(|c: char| c.is_ascii_digit());
    !after_generation.is_empty() && attributes.contains('g')
}

/// Where and as what the runbook's helper runs for one instance; `None`: the runbook is
/// not given that parameter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HelperPlacement {
    pub subnet_id: Option<String>,
    pub instance_type: Option<String>,
}

/// Pure: the helper for one instance — a Region subnet of its VPC tagged as a helper
/// subnet (the lowest id when several are), and the type for its architecture; or why it
/// cannot be backed up. `subnets`/`types` `None`: the runbook takes no such parameter.
pub fn helper_for(
    instance: &StatefulInstance,
    subnets: Option<&[HelperSubnet]>,
    types: Option<&HelperTypes>,
) -> Result<HelperPlacement, MisdeclaredInstance> {
    let misdeclared = |reason: String| MisdeclaredInstance {
        instance_id: instance.instance_id.clone(),
        workload: instance.workload.clone(),
        reason,
    };
    let subnet_id = match subnets {
        None => None,
        Some(subnets) => {
            let vpc = instance.vpc_id.as_deref().unwrap_or_default();
            let in_vpc: Vec<&HelperSubnet> = subnets.iter().filter(|s| s.vpc_id == vpc).collect();
            let regional = in_vpc.iter().filter(|s| !s.on_outpost).map(|s| s.subnet_id.as_str()).min();
            match (regional, in_vpc.iter().map(|s| s.subnet_id.as_str()).min()) {
                (Some(id), _) => Some(id.to_string()),
                (None, Some(outpost)) => {
                    return Err(misdeclared(format!(
                        "subnet {outpost} tagged {} is an Outpost's subnet; the backup runbook's helper runs in a subnet of the Region in VPC {vpc}: tag one of those",
                        tag::BACKUP_HELPER
                    )))
                }
                (None, None) => {
                    return Err(misdeclared(format!(
                        "no subnet of VPC {vpc} is tagged {}; the backup runbook's helper needs a subnet of the Region in the instance's VPC",
                        tag::BACKUP_HELPER
                    )))
                }
            }
        }
    };
    let instance_type = match types {
        None => None,
        Some(types) => match instance.architecture.as_deref() {
            Some("x86_64") => Some(types.x86_64.clone()),
            Some("arm64") => Some(types.arm64.clone()),
            other => {
                return Err(misdeclared(format!(
                    "its architecture is {}; the backup runbook's helper is x86_64 or arm64",
                    other.unwrap_or("unknown")
                )))
            }
        },
    };
    Ok(HelperPlacement { subnet_id, instance_type })
}

/// An AMI's state, as EC2 names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageState {
    Available,
    Pending,
    /// Any other state (`failed`, `deregistered`, `invalid`, …), by its name.
    Unusable(String),
}

impl ImageState {
    pub fn parse(name: &str) -> ImageState {
        match name {
            "available" => ImageState::Available,
            "pending" => ImageState::Pending,
            other => ImageState::Unusable(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ImageState::Available => "available",
            ImageState::Pending => "pending",
            ImageState::Unusable(name) => name,
        }
    }
}

/// One good backup: an AMI this stack tagged after checking it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupImage {
    pub image_id: String,
    pub instance_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub taken_at: OffsetDateTime,
    pub snapshot_ids: Vec<String>,
}

/// Newest first; the image id breaks ties so the order is total.
fn newest_first(backups: &mut [&BackupImage]) {
    backups.sort_by(|a, b| b.taken_at.cmp(&a.taken_at).then_with(|| b.image_id.cmp(&a.image_id)));
}

pub fn newest_backup<'a>(backups: &'a [BackupImage], instance_id: &str) -> Option<&'a BackupImage> {
    let mut mine: Vec<&BackupImage> = backups.iter().filter(|b| b.instance_id == instance_id).collect();
    newest_first(&mut mine);
    mine.first().copied()
}

/// Why a declared instance was not started this tick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum NotStarted {
    /// An execution for it is already running.
    InFlight,
    /// Its interval has not passed since the newest backup.
    NotDue { due_in_seconds: i64 },
    /// The concurrency bound is reached; the oldest backups went first.
    Deferred,
}

/// The age of one instance's newest good backup at this tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupAge {
    pub instance_id: String,
    pub newest: Option<BackupImage>,
    pub age_seconds: Option<i64>,
    /// Older than the RPO, or no backup at all.
    pub stale: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TickPlan {
    pub start: Vec<String>,
    pub not_started: Vec<(String, NotStarted)>,
    pub ages: Vec<BackupAge>,
}

pub struct TickFacts<'a> {
    pub instances: &'a [StatefulInstance],
    pub backups: &'a [BackupImage],
    /// Instances with an execution of the runbook in flight.
    pub in_flight: &'a BTreeSet<String>,
    /// Executions of the runbook in flight in the account, ours or not.
    pub executions_in_flight: usize,
    pub max_concurrent: usize,
    pub rpo_seconds: i64,
    pub now: OffsetDateTime,
}

/// Which instances to start now: due, not in flight, oldest backup first, within the bound.
pub fn plan_tick(f: &TickFacts<'_>) -> TickPlan {
    let mut plan = TickPlan::default();
    let mut due: Vec<(Option<i64>, &str)> = Vec::new();
    for instance in f.instances {
        let newest = newest_backup(f.backups, &instance.instance_id);
        let age = newest.map(|b| (f.now - b.taken_at).whole_seconds().max(0));
        plan.ages.push(BackupAge {
            instance_id: instance.instance_id.clone(),
            newest: newest.cloned(),
            age_seconds: age,
            stale: age.is_none_or(|a| a > f.rpo_seconds),
        });
        if f.in_flight.contains(&instance.instance_id) {
            plan.not_started.push((instance.instance_id.clone(), NotStarted::InFlight));
            continue;
        }
        if let (Some(interval), Some(age)) = (instance.interval_seconds, age) {
            if age + DUE_TOLERANCE_SECONDS < interval {
                let due_in_seconds = interval - DUE_TOLERANCE_SECONDS - age;
                plan.not_started.push((instance.instance_id.clone(), NotStarted::NotDue { due_in_seconds }));
                continue;
            }
        }
        due.push((age, &instance.instance_id));
    }
    // Never backed up first, then the oldest backup.
    due.sort_by(|a, b| b.0.map_or(i64::MAX, |x| x).cmp(&a.0.map_or(i64::MAX, |x| x)).then(a.1.cmp(b.1)));
    let room = f.max_concurrent.saturating_sub(f.executions_in_flight);
    for (i, (_, id)) in due.into_iter().enumerate() {
        if i < room {
            plan.start.push(id.to_string());
        } else {
            plan.not_started.push((id.to_string(), NotStarted::Deferred));
        }
    }
    plan
}

/// What a finished execution's record says, reduced to plain data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecutionFacts {
    pub execution_id: String,
    pub status: String,
    pub parameters: BTreeMap<String, Vec<String>>,
    pub outputs: BTreeMap<String, Vec<String>>,
    pub failure_message: Option<String>,
    /// The first step that did not succeed: (name, status, message).
    pub failed_step: Option<(String, String, String)>,
    pub started_at: Option<OffsetDateTime>,
    pub ended_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionVerdict {
    /// The runbook succeeded and names the AMI it made.
    Produced { image_id: String },
    /// The runbook ended without a usable AMI.
    Failed { failed_step: Option<String>, reason: String },
    /// Not a final status: nothing to do yet.
    Unfinished,
}

/// Statuses after which an execution will not change.
pub fn is_final_status(status: &str) -> bool {
    matches!(
        status,
        "Success" | "Failed" | "Cancelled" | "TimedOut" | "Rejected" | "CompletedWithSuccess" | "CompletedWithFailure"
    )
}

pub fn judge_execution(facts: &ExecutionFacts, image_output: &str) -> ExecutionVerdict {
    if !is_final_status(&facts.status) {
        return ExecutionVerdict::Unfinished;
    }
    if facts.status != "Success" {
        let (step, reason) = match &facts.failed_step {
            Some((name, status, message)) => (Some(name.clone()), format!("step {name} {status}: {message}")),
            None => (None, String::new()),
        };
        let reason = match (reason.is_empty(), &facts.failure_message) {
            (false, _) => reason,
            (true, Some(m)) if !m.is_empty() => m.clone(),
            _ => format!("the execution ended {}", facts.status),
        };
        return ExecutionVerdict::Failed { failed_step: step, reason: format!("{}: {reason}", facts.status) };
    }
    match facts.outputs.get(image_output).and_then(|v| v.first()).map(|v| v.trim()) {
        Some(id) if id.starts_with("ami-") && id.len() > 4 => ExecutionVerdict::Produced { image_id: id.to_string() },
        Some(other) => ExecutionVerdict::Failed {
            failed_step: None,
            reason: format!("the execution succeeded but output {image_output} is '{other}', not an AMI id"),
        },
        None => ExecutionVerdict::Failed {
            failed_step: None,
            reason: format!("the execution succeeded but has no output {image_output}"),
        },
    }
}

/// What the parameter names now, and when that backup was taken (if it is one of ours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterValue {
    pub image_id: String,
    pub taken_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParameterMove {
    Move,
    AlreadyThere,
    /// The parameter names a newer backup: a late duplicate must not move it back.
    KeepNewer {
        current: String,
    },
}

pub fn decide_parameter_move(current: Option<&ParameterValue>, candidate: &BackupImage) -> ParameterMove {
    match current {
        Some(c) if c.image_id == candidate.image_id => ParameterMove::AlreadyThere,
        Some(ParameterValue { image_id, taken_at: Some(t) }) if *t > candidate.taken_at => {
            ParameterMove::KeepNewer { current: image_id.clone() }
        }
        _ => ParameterMove::Move,
    }
}

/// Why a backup of `instance` taken at `taken_at` must not become its workload's newest
/// good backup: the instance is a fenced original, or an original whose replacement (from
/// its server) still lives — its data stopped being the workload's when the replacement
/// took over — or the backup was taken before the original was put back in service.
/// `replacements`: the workload's replacements EC2 describes, from any server.
pub fn superseded_copy(
    instance: &Instance,
    replacements: &[ExistingReplacement],
    taken_at: OffsetDateTime,
) -> Option<String> {
    if let Some(incident) = instance.tags.get(tag::FENCED) {
        return Some(format!("{} is an original fenced for incident {incident}", instance.instance_id));
    }
    let unfenced_at = instance.tags.get(tag::UNFENCED_AT).and_then(|t| crate::timefmt::parse_timestamp(t));
    if let Some(unfenced_at) = unfenced_at.filter(|u| taken_at < *u) {
        return Some(format!(
            "{} was put back in service at {} and this backup was taken before, while it was fenced or replaced",
            instance.instance_id,
            crate::timefmt::format_timestamp(unfenced_at)
        ));
    }
    if instance.tags.get(tag::ROLE).map(String::as_str) == Some(tag::ROLE_REPLACEMENT) {
        return None;
    }
    let server = instance.server_id.as_deref()?;
    let live = replacements.iter().find(|r| {
        r.instance_id != instance.instance_id && !r.state.is_gone() && r.source_server.as_deref() == Some(server)
    })?;
    Some(format!(
        "{} is an original on {server} and its replacement {} is {}",
        instance.instance_id,
        live.instance_id,
        live.state.as_str()
    ))
}

/// The backups of one instance to delete: all but the newest `keep`, never one in use.
pub fn choose_prunable(backups: &[BackupImage], instance_id: &str, keep: usize, in_use: &[&str]) -> Vec<BackupImage> {
    let mut mine: Vec<&BackupImage> = backups.iter().filter(|b| b.instance_id == instance_id).collect();
    newest_first(&mut mine);
    mine.into_iter().skip(keep).filter(|b| !in_use.contains(&b.image_id.as_str())).cloned().collect()
}

/// Snapshots tagged as a backup whose image no longer exists (a prune interrupted
/// between deregistering the image and deleting its snapshots).
pub fn orphan_snapshots(tagged_snapshots: &[String], images: &[BackupImage]) -> Vec<String> {
    let referenced: BTreeSet<&str> = images.iter().flat_map(|b| b.snapshot_ids.iter().map(String::as_str)).collect();
    tagged_snapshots.iter().filter(|s| !referenced.contains(s.as_str())).cloned().collect()
}

/// StartAutomationExecution's idempotency token (UUID form): one per (stack, instance,
/// tick, parameters), so a redelivered tick cannot start a second execution, and a retry
/// whose parameters changed meanwhile (a helper subnet tagged, a helper type set) starts
/// with them rather than failing IdempotentParameterMismatch.
pub fn start_token(stack: &str, instance_id: &str, tick: &str, parameters: &BTreeMap<String, Vec<String>>) -> String {
    let mut name = format!("{stack}\n{instance_id}\n{tick}");
    for (key, values) in parameters {
        name.push_str(&format!("\n{key}={}", values.join("\u{1f}")));
    }
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes()).to_string()
}

/// What woke backup-scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupTrigger {
    /// A schedule tick; `tick` names it (the scheduled time), so a redelivery is the same tick.
    Tick { tick: String },
    /// An automation execution changed status.
    ExecutionChanged { execution_id: String, document: String, status: String },
}

pub const SCHEDULED_EVENT: &str = "Scheduled Event";
pub const EXECUTION_STATUS_CHANGE: &str = "EC2 Automation Execution Status-change Notification";

/// Reads an EventBridge envelope: a schedule tick or an SSM execution status change.
pub fn parse_trigger(event: &serde_json::Value) -> Result<BackupTrigger, String> {
    let text = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    match text(event, "detail-type").as_deref() {
        Some(SCHEDULED_EVENT) => {
            let tick =
                text(event, "time").or_else(|| text(event, "id")).ok_or("a scheduled event without time or id")?;
            Ok(BackupTrigger::Tick { tick })
        }
        Some(EXECUTION_STATUS_CHANGE) => {
            let detail = event.get("detail").ok_or("a status change without detail")?;
            let field = |k: &str| text(detail, k).filter(|v| !v.is_empty()).ok_or(format!("detail.{k} is missing"));
            Ok(BackupTrigger::ExecutionChanged {
                execution_id: field("ExecutionId")?,
                document: field("Definition")?,
                status: field("Status")?,
            })
        }
        Some(other) => Err(format!("detail-type '{other}' is not a schedule tick or an execution status change")),
        None => Err("not an EventBridge event (no detail-type)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-22 12:00 UTC);

    fn instance(id: &str, interval: Option<i64>) -> StatefulInstance {
        StatefulInstance {
            instance_id: id.into(),
            vpc_id: Some("vpc-1".into()),
            architecture: Some("x86_64".into()),
            workload: None,
            server_id: None,
            parameter: format!("/outposts-ha/s/{id}"),
            interval_seconds: interval,
        }
    }

    fn backup(image: &str, instance: &str, minutes_ago: i64) -> BackupImage {
        BackupImage {
            image_id: image.into(),
            instance_id: instance.into(),
            taken_at: NOW - time::Duration::minutes(minutes_ago),
            snapshot_ids: vec![format!("snap-{image}")],
        }
    }

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn declarations_are_read_and_misdeclarations_named() {
        let ok = stateful_instance_from_tags(
            "i-1",
            &Host { vpc_id: Some("vpc-1"), architecture: Some("arm64") },
            &tags(&[(tag::BACKUP_PARAMETER, "/outposts-ha/prod/pos"), (tag::BACKUP_INTERVAL, "4h")]),
            "prod",
        )
        .unwrap();
        assert_eq!((ok.parameter.as_str(), ok.interval_seconds), ("/outposts-ha/prod/pos", Some(14_400)));
        let cases = [
            (vec![(tag::BACKUP_PARAMETER, "/other/pos")], "under /outposts-ha/prod/"),
            (vec![(tag::BACKUP_PARAMETER, "/outposts-ha/prod/a b")], "must name"),
            (vec![(tag::BACKUP_PARAMETER, "/outposts-ha/prod/pos"), (tag::BACKUP_INTERVAL, "often")], "duration"),
            (vec![(tag::BACKUP_PARAMETER, "/outposts-ha/prod/pos"), (tag::BACKUP_INTERVAL, "10s")], "duration"),
        ];
        for (pairs, want) in cases {
            let err = stateful_instance_from_tags("i-1", &Host::default(), &tags(&pairs), "prod").unwrap_err();
            assert!(err.reason.contains(want), "{}", err.reason);
        }
    }

    #[test]
    fn tick_starts_due_instances_oldest_first_within_the_bound() {
        let instances = [
            instance("i-fresh", Some(4 * 3600)),
            instance("i-old", None),
            instance("i-never", None),
            instance("i-busy", None),
            instance("i-due", Some(3600)),
        ];
        let backups = [backup("ami-f", "i-fresh", 60), backup("ami-o", "i-old", 600), backup("ami-d", "i-due", 58)];
        let in_flight: BTreeSet<String> = ["i-busy".to_string()].into();
        let facts = TickFacts {
            instances: &instances,
            backups: &backups,
            in_flight: &in_flight,
            executions_in_flight: 1,
            max_concurrent: 3,
            rpo_seconds: 3 * 3600,
            now: NOW,
        };
        let plan = plan_tick(&facts);
        assert_eq!(plan.start, vec!["i-never", "i-old"]);
        assert_eq!(
            plan.not_started,
            vec![
                ("i-fresh".to_string(), NotStarted::NotDue { due_in_seconds: 4 * 3600 - 300 - 3600 }),
                ("i-busy".to_string(), NotStarted::InFlight),
                ("i-due".to_string(), NotStarted::Deferred),
            ]
        );
        let stale: Vec<&str> = plan.ages.iter().filter(|a| a.stale).map(|a| a.instance_id.as_str()).collect();
        assert_eq!(stale, vec!["i-old", "i-never", "i-busy"]);
        assert_eq!(plan.ages[0].age_seconds, Some(3600));
    }

    #[test]
    fn a_full_account_starts_nothing() {
        let instances = [instance("i-1", None)];
        let facts = TickFacts {
            instances: &instances,
            backups: &[],
            in_flight: &BTreeSet::new(),
            executions_in_flight: 12,
            max_concurrent: 10,
            rpo_seconds: 60,
            now: NOW,
        };
        assert_eq!(plan_tick(&facts).not_started, vec![("i-1".to_string(), NotStarted::Deferred)]);
    }

    fn facts(status: &str) -> ExecutionFacts {
        ExecutionFacts { execution_id: "e".into(), status: status.into(), ..Default::default() }
    }

    #[test]
    fn executions_are_judged() {
        const OUT: &str = "createAMIFromSnapshot.ImageId";
        let mut ok = facts("Success");
        ok.outputs.insert(OUT.into(), vec!["ami-0abc".into()]);
        assert_eq!(judge_execution(&ok, OUT), ExecutionVerdict::Produced { image_id: "ami-0abc".into() });
        assert!(
            matches!(judge_execution(&facts("Success"), OUT), ExecutionVerdict::Failed { reason, .. } if reason.contains("no output"))
        );
        let mut bad = facts("Success");
        bad.outputs.insert(OUT.into(), vec!["{{createAMIFromSnapshot.ImageId}}".into()]);
        assert!(
            matches!(judge_execution(&bad, OUT), ExecutionVerdict::Failed { reason, .. } if reason.contains("not an AMI"))
        );
        let mut failed = facts("Failed");
        failed.failed_step = Some(("createSnapshots".into(), "Failed".into(), "VolumeLimitExceeded".into()));
        assert_eq!(
            judge_execution(&failed, OUT),
            ExecutionVerdict::Failed {
                failed_step: Some("createSnapshots".into()),
                reason: "Failed: step createSnapshots Failed: VolumeLimitExceeded".into()
            }
        );
        assert!(
            matches!(judge_execution(&facts("TimedOut"), OUT), ExecutionVerdict::Failed { reason, .. } if reason == "TimedOut: the execution ended TimedOut")
        );
        assert_eq!(judge_execution(&facts("InProgress"), OUT), ExecutionVerdict::Unfinished);
    }

    #[test]
    fn the_parameter_only_moves_forward() {
        let new = backup("ami-new", "i-1", 5);
        let older = ParameterValue { image_id: "ami-old".into(), taken_at: Some(NOW - time::Duration::hours(1)) };
        let newer = ParameterValue { image_id: "ami-newer".into(), taken_at: Some(NOW) };
        let foreign = ParameterValue { image_id: "ami-by-hand".into(), taken_at: None };
        assert_eq!(decide_parameter_move(None, &new), ParameterMove::Move);
        assert_eq!(decide_parameter_move(Some(&older), &new), ParameterMove::Move);
        assert_eq!(decide_parameter_move(Some(&foreign), &new), ParameterMove::Move);
        assert_eq!(
            decide_parameter_move(Some(&ParameterValue { image_id: "ami-new".into(), taken_at: None }), &new),
            ParameterMove::AlreadyThere
        );
        assert_eq!(decide_parameter_move(Some(&newer), &new), ParameterMove::KeepNewer { current: "ami-newer".into() });
    }

    #[test]
    fn a_fenced_or_replaced_original_is_a_superseded_copy() {
        use crate::model::InstanceState;
        let original = |extra: &[(&str, &str)]| {
            let mut i = Instance::new("i-orig", InstanceState::Running, tags(extra));
            i.server_id = Some("op-0aaaaaaaaaaaaaaaa".into());
            i
        };
        let replacement = |server: &str, state: InstanceState| ExistingReplacement {
            instance_id: "i-repl".into(),
            subnet_id: "subnet-1".into(),
            state,
            source_server: Some(server.into()),
            restored_from: None,
            incident: Some("inc-1".into()),
            retiring_since: None,
            role: crate::launch::ExistingRole::Replacement,
            server_id: None,
            standby_version: None,
            promoted: false,
        };
        let home = "op-0aaaaaaaaaaaaaaaa";
        let judge = |i: &Instance, r: &[ExistingReplacement]| superseded_copy(i, r, NOW);
        assert_eq!(judge(&original(&[]), &[]), None);
        assert!(judge(&original(&[(tag::FENCED, "inc-1")]), &[]).unwrap().contains("fenced for incident inc-1"));
        let running = [replacement(home, InstanceState::Running)];
        assert!(judge(&original(&[]), &running).unwrap().contains("i-repl is running"));
        let stopped = [replacement(home, InstanceState::Stopped)];
        assert!(judge(&original(&[]), &stopped).is_some(), "a stopped replacement still holds newer data");
        let elsewhere = [replacement("op-0bbbbbbbbbbbbbbbb", InstanceState::Running)];
        assert_eq!(judge(&original(&[]), &elsewhere), None, "another store's workload of the same name");
        let gone = [replacement(home, InstanceState::Terminated)];
        assert_eq!(judge(&original(&[]), &gone), None);
        let itself = original(&[(tag::ROLE, tag::ROLE_REPLACEMENT)]);
        assert_eq!(judge(&itself, &running), None, "a replacement's own backups move the parameter");
        let put_back = original(&[(tag::UNFENCED_AT, "2026-11-22T12:00:01.000Z")]);
        assert!(judge(&put_back, &[]).unwrap().contains("put back in service"), "taken before it was put back");
        let put_back_earlier = original(&[(tag::UNFENCED_AT, "2026-11-22T11:00:00.000Z")]);
        assert_eq!(judge(&put_back_earlier, &[]), None, "taken after it was put back");
    }

    #[test]
    fn pruning_keeps_the_newest_and_the_one_in_use() {
        let backups = [
            backup("ami-1", "i-1", 40),
            backup("ami-2", "i-1", 30),
            backup("ami-3", "i-1", 20),
            backup("ami-4", "i-1", 10),
            backup("ami-x", "i-2", 50),
        ];
        let ids = |v: Vec<BackupImage>| v.into_iter().map(|b| b.image_id).collect::<Vec<_>>();
        assert_eq!(ids(choose_prunable(&backups, "i-1", 2, &["ami-4"])), vec!["ami-2", "ami-1"]);
        assert_eq!(ids(choose_prunable(&backups, "i-1", 2, &["ami-1"])), vec!["ami-2"]);
        assert_eq!(ids(choose_prunable(&backups, "i-1", 5, &[])), Vec::<String>::new());
        assert_eq!(ids(choose_prunable(&backups, "i-2", 1, &[])), Vec::<String>::new());
        assert_eq!(
            orphan_snapshots(&["snap-ami-1".into(), "snap-gone".into()], &backups),
            vec!["snap-gone".to_string()]
        );
    }

    #[test]
    fn triggers_are_parsed_and_strangers_named() {
        let tick = serde_json::json!({"detail-type": "Scheduled Event", "source": "aws.events", "time": "2026-11-22T12:00:00Z", "detail": {}});
        assert_eq!(parse_trigger(&tick), Ok(BackupTrigger::Tick { tick: "2026-11-22T12:00:00Z".into() }));
        let change = serde_json::json!({"detail-type": EXECUTION_STATUS_CHANGE, "source": "aws.ssm",
            "detail": {"ExecutionId": "333ba70b-2333-48db-b17e-a5e69c6f4d1c", "Definition": "doc", "Status": "Success"}});
        assert_eq!(
            parse_trigger(&change),
            Ok(BackupTrigger::ExecutionChanged {
                execution_id: "333ba70b-2333-48db-b17e-a5e69c6f4d1c".into(),
                document: "doc".into(),
                status: "Success".into()
            })
        );
        let mut no_id = change.clone();
        no_id["detail"]["ExecutionId"] = serde_json::Value::Null;
        assert_eq!(parse_trigger(&no_id), Err("detail.ExecutionId is missing".into()));
        assert!(parse_trigger(&serde_json::json!({"detail-type": "Other"})).unwrap_err().contains("Other"));
        assert!(parse_trigger(&serde_json::json!([1])).is_err());
    }

    #[test]
    fn start_tokens_are_uuids_per_instance_and_tick() {
        let p: BTreeMap<String, Vec<String>> = [("SubnetId".to_string(), vec!["subnet-1".to_string()])].into();
        let t = start_token("s", "i-1", "2026-11-22T12:00:00Z", &p);
        assert_eq!(uuid::Uuid::parse_str(&t).unwrap().to_string(), t);
        assert_eq!(t, start_token("s", "i-1", "2026-11-22T12:00:00Z", &p));
        assert_ne!(t, start_token("s", "i-2", "2026-11-22T12:00:00Z", &p));
        assert_ne!(t, start_token("s", "i-1", "2026-11-22T13:00:00Z", &p));
        let other: BTreeMap<String, Vec<String>> = [("SubnetId".to_string(), vec!["subnet-2".to_string()])].into();
        assert_ne!(t, start_token("s", "i-1", "2026-11-22T12:00:00Z", &other), "other parameters, another token");
    }

    #[test]
    fn the_helper_runs_in_a_region_subnet_of_the_instances_vpc_with_its_architecture() {
        let subnet = |id: &str, vpc: &str, on_outpost: bool| HelperSubnet {
            subnet_id: id.into(),
            vpc_id: vpc.into(),
            on_outpost,
        };
        let types = HelperTypes { x86_64: "c5.large".into(), arm64: "c6g.large".into() };
        let subnets = [
            subnet("subnet-outpost", "vpc-1", true),
            subnet("subnet-region-b", "vpc-1", false),
            subnet("subnet-region-a", "vpc-1", false),
            subnet("subnet-other", "vpc-2", false),
        ];
        let x86 = instance("i-1", None);
        let placed = helper_for(&x86, Some(&subnets), Some(&types)).unwrap();
        assert_eq!(placed.subnet_id.as_deref(), Some("subnet-region-a"));
        assert_eq!(placed.instance_type.as_deref(), Some("c5.large"));
        let mut graviton = instance("i-2", None);
        graviton.architecture = Some("arm64".into());
        assert_eq!(
            helper_for(&graviton, Some(&subnets), Some(&types)).unwrap().instance_type.as_deref(),
            Some("c6g.large")
        );
        // Only an Outpost's subnet tagged in its VPC, none at all, an unknown architecture.
        let outpost_only = [subnet("subnet-outpost", "vpc-1", true)];
        let why = |r: Result<HelperPlacement, MisdeclaredInstance>| r.unwrap_err().reason;
        assert!(why(helper_for(&x86, Some(&outpost_only), Some(&types))).contains("is an Outpost's subnet"));
        assert!(why(helper_for(&x86, Some(&subnets[3..]), Some(&types))).contains("no subnet of VPC vpc-1 is tagged"));
        let mut mac = instance("i-3", None);
        mac.architecture = Some("x86_64_mac".into());
        assert!(why(helper_for(&mac, Some(&subnets), Some(&types))).contains("architecture is x86_64_mac"));
        for (t, graviton) in [
            ("c6g.large", true),
            ("m7gd.xlarge", true),
            ("t4g.micro", true),
            ("im4gn.large", true),
            ("g5g.xlarge", true),
            ("a1.large", true),
            ("c5.large", false),
            ("g4dn.xlarge", false),
            ("c6id.large", false),
            ("inf1.xlarge", false),
        ] {
            assert_eq!(is_graviton_type(t), graviton, "{t}");
        }
        // A runbook that takes neither parameter needs neither.
        assert_eq!(helper_for(&mac, None, None).unwrap(), HelperPlacement::default());
    }
}
