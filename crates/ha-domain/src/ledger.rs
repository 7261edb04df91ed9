//! The incident ledger's layout: every key, status and retention rule. The ledger
//! (`ha_ports::ledger`, on DynamoDB through `ha_aws::ledger`) writes exactly this and
//! nothing else writes the table.
//!
//! | pk                 | sk               | what                                        |
//! |--------------------|------------------|---------------------------------------------|
//! | `SERVER#op-…`      | `OPEN_INCIDENT`  | which incident holds the server             |
//! | `SERVER#op-…`      | `MAINTENANCE`    | relaunch suppressed until `until_epoch`     |
//! | `SERVER#op-…`      | `ALARM_STATE`    | the newest transition seen: `up`, `changed_ms` |
//! | `SERVER#op-…`      | `RECOVERED`      | a recovery with no incident open was told   |
//! | `SERVER#op-…`      | `LAST_INCIDENT`  | the server's newest incident (open or closed) |
//! | `SERVER#op-…`      | `DRILL`          | the server's last drill: when, ready, what was not |
//! | `INCIDENT#inc-…`   | `META`           | the incident: server, site, alarm, times, status, plan |
//! | `INCIDENT#inc-…`   | `WORKLOAD#name`  | the claim and outcome for one workload      |
//! | `INCIDENT#inc-…`   | `FENCED#i-…`     | an original's fencing was reported          |
//! | `INCIDENT#inc-…`   | `SERVING#name`   | a replacement's serving was reported        |
//! | `INCIDENT#inc-…`   | `SUPPRESSED`     | a suppressed relaunch was reported          |
//! | `INCIDENT#inc-…`   | `OPENED`, `REALARMED`, `RECOVERED`, `CLOSED`, `LOST#name`, `FAILOVER`, `PROMOTION_FAILED#name` | the incident's other facts told |
//! | `INCIDENT#inc-…`   | `HOOK#name`      | a promoted standby's hook: its instance and command, sent once |
//! | `STANDBY#op-…#name` | `<drift>#<instance or version>` | a warm workload's standby drift was told |
//! | `FLEET_DRILL#<requested at>` | `META` | a fleet drill's digest was told        |
//! | `BACKUP#<exec id>` | `REPORTED`       | a finished backup execution was reported    |
//! | `BACKUP#i-…`       | `STALE`          | the backup whose staleness was announced    |
//! | `BACKUP#<exec id>` | `ADOPTED`        | what its backup did to the parameter        |
//! | `PARAMETER#/…`     | `HOLD`           | the completion moving the parameter (lease) |
//! | `PARAMETER#/…`     | `VALUE`          | the backup it was last moved to             |
//!
//! Every item carries `expires_at` (epoch seconds) for the table's TTL, except a
//! parameter's `VALUE`, kept as long as the parameter.

use crate::incident::IncidentId;
use crate::model::ServerId;
use serde::Serialize;

pub const OPEN_INCIDENT: &str = "OPEN_INCIDENT";
pub const MAINTENANCE: &str = "MAINTENANCE";
pub const META: &str = "META";
/// Under an incident: the witness asked and what it found.
pub const WITNESS: &str = "WITNESS";
/// Under an incident: the wave of outages it belongs to, recorded once.
pub const WAVE: &str = "WAVE";
/// Under an incident: an operator's release, of every held workload or (`RELEASED#<workload>`) one.
pub const RELEASED: &str = "RELEASED";
/// A server's newest alarm transition seen (sort key under the server).
pub const ALARM_STATE: &str = "ALARM_STATE";
/// A server's newest incident, open or closed (sort key under the server).
pub const LAST_INCIDENT: &str = "LAST_INCIDENT";
/// A server's last drill (sort key under the server).
pub const DRILL: &str = "DRILL";
/// Prefix of every (incident, workload) item's sort key.
pub const WORKLOAD_PREFIX: &str = "WORKLOAD#";

/// A maintenance window may last at most this long: a forgotten one must not disable
/// failover for good.
pub const MAX_MAINTENANCE_SECONDS: i64 = 30 * 86_400;
/// A maintenance item outlives its window by this much, so it can still be read afterwards.
pub const MAINTENANCE_KEPT_SECONDS: i64 = 90 * 86_400;

pub fn server_key(server: &ServerId) -> String {
    format!("SERVER#{server}")
}

pub fn incident_key(incident: &IncidentId) -> String {
    format!("INCIDENT#{incident}")
}

/// A wave of outages, by its first outage's time.
pub fn wave_key(started_at: &str) -> String {
    format!("WAVE#{started_at}")
}

/// A backup subject: an automation execution id or an instance id.
pub fn backup_key(subject: &str) -> String {
    format!("BACKUP#{subject}")
}

/// A backup parameter: its hold (sort key [`PARAMETER_HOLD`], one writer at a time) and
/// the backup it was last moved to (sort key [`PARAMETER_VALUE`]).
pub fn parameter_key(name: &str) -> String {
    format!("PARAMETER#{name}")
}

pub const PARAMETER_HOLD: &str = "HOLD";
pub const PARAMETER_VALUE: &str = "VALUE";

pub fn workload_key(workload: &str) -> String {
    format!("{WORKLOAD_PREFIX}{workload}")
}

/// When an item written at `now_epoch` expires.
pub fn expires_at(now_epoch: i64, retention_days: u32) -> i64 {
    now_epoch + i64::from(retention_days) * 86_400
}

/// A fact about an incident that was told once (the marker item's sort key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentMark<'a> {
    /// An original instance was fenced.
    Fenced { instance_id: &'a str },
    /// A workload's replacement serves.
    Serving { workload: &'a str },
    /// The relaunch was suppressed by a maintenance window.
    Suppressed,
    /// The incident's opening was told.
    Opened,
    /// The server went down again while the incident was open (marker: when).
    Realarmed,
    /// A workload's replacement stopped or terminated before the server came back.
    ReplacementLost { workload: &'a str },
    /// The incident was closed.
    Closed,
    /// The witness's verdict and what each workload does on it.
    Witnessed,
    /// The failover's report (every workload settled, or the deadline passed).
    FailoverReported,
    /// A promoted standby's hook failed; the workload fell back to a cold launch.
    PromotionFailed { workload: &'a str },
}

impl IncidentMark<'_> {
    pub fn key(&self) -> String {
        match self {
            IncidentMark::Fenced { instance_id } => format!("FENCED#{instance_id}"),
            IncidentMark::Serving { workload } => format!("SERVING#{workload}"),
            IncidentMark::Suppressed => "SUPPRESSED".to_string(),
            IncidentMark::Opened => "OPENED".to_string(),
            IncidentMark::Realarmed => "REALARMED".to_string(),
            IncidentMark::ReplacementLost { workload } => format!("LOST#{workload}"),
            IncidentMark::Closed => "CLOSED".to_string(),
            IncidentMark::Witnessed => "WITNESSED".to_string(),
            IncidentMark::FailoverReported => "FAILOVER".to_string(),
            IncidentMark::PromotionFailed { workload } => format!("PROMOTION_FAILED#{workload}"),
        }
    }
}

/// A fact about a backup subject that was told once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupMark {
    /// A finished execution was reported (subject: the execution id).
    Reported,
    /// An instance's stale backup was announced (subject: the instance id).
    Stale,
    /// A backup of an instance could not be started (subject: the instance id; marker: the
    /// error), told once per error until a start succeeds.
    NotStarted,
}

impl BackupMark {
    pub fn key(self) -> &'static str {
        match self {
            BackupMark::Reported => "REPORTED",
            BackupMark::Stale => "STALE",
            BackupMark::NotStarted => "NOT_STARTED",
        }
    }
}

/// Where one (incident, workload) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadStatus {
    /// Claimed; a launch is in flight.
    Launching,
    Launched,
    Failed,
}

impl WorkloadStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            WorkloadStatus::Launching => "launching",
            WorkloadStatus::Launched => "launched",
            WorkloadStatus::Failed => "failed",
        }
    }

    /// An item without a status is in flight; one with a status this version does not
    /// know is settled without a launch (as the claim reader judges it too).
    pub fn parse(text: Option<&str>) -> WorkloadStatus {
        match text {
            None | Some("launching") => WorkloadStatus::Launching,
            Some("launched") => WorkloadStatus::Launched,
            Some(_) => WorkloadStatus::Failed,
        }
    }
}

/// Whether an incident is still open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatus {
    Open,
    Closed,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Closed => "closed",
        }
    }

    pub fn parse(text: Option<&str>) -> Option<IncidentStatus> {
        match text? {
            "open" => Some(IncidentStatus::Open),
            "closed" => Some(IncidentStatus::Closed),
            _ => None,
        }
    }
}

/// An incident as the ledger tells it (operators read it through relaunch's status query).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IncidentStory {
    pub incident_id: String,
    pub server_id: String,
    pub status: IncidentStatus,
    pub detected_at: String,
    /// Set when the incident closed.
    pub summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site_name: Option<String>,
    /// When the server came back, once it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovered_at: Option<String>,
    /// By workload name.
    pub workloads: Vec<WorkloadStory>,
    /// Each fact told about the incident (its mark, e.g. `OPENED`, `FENCED#i-…`), oldest first.
    pub told: Vec<ToldFact>,
}

/// A fact the ledger says was told, and when: `kind` is the mark's name in snake case
/// (`opened`, `fenced`, `serving`, `failover_reported`, …), `subject` the instance or
/// workload it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToldFact {
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub at: String,
}

impl ToldFact {
    /// The fact a mark's sort key stands for (see [`IncidentMark::key`]).
    pub fn of_key(key: &str, at: String) -> ToldFact {
        let (kind, subject) = match key.split_once('#') {
            Some(("FENCED", s)) => ("fenced", Some(s)),
            Some(("SERVING", s)) => ("serving", Some(s)),
            Some(("LOST", s)) => ("replacement_lost", Some(s)),
            Some((other, s)) => return ToldFact { kind: other.to_lowercase(), subject: Some(s.to_string()), at },
            None => match key {
                "FAILOVER" => ("failover_reported", None),
                other => return ToldFact { kind: other.to_lowercase(), subject: None, at },
            },
        };
        ToldFact { kind: kind.to_string(), subject: subject.map(str::to_string), at }
    }
}

/// A server's last drill as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DrillRecord {
    pub drilled_at: String,
    pub ready: u32,
    /// The workloads that would not relaunch, each with its first problem.
    pub not_ready: Vec<String>,
}

/// One workload's line in an incident's story.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkloadStory {
    pub workload: String,
    pub status: WorkloadStatus,
    pub replacement_instance_id: Option<String>,
    pub subnet_id: Option<String>,
    pub launch_accepted_at: Option<String>,
    pub serving_at: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_documented_ones() {
        let server = ServerId::parse("op-0123456789abcdef0").unwrap();
        let incident = IncidentId::from_stored("inc-1");
        assert_eq!(server_key(&server), "SERVER#op-0123456789abcdef0");
        assert_eq!(incident_key(&incident), "INCIDENT#inc-1");
        assert_eq!(backup_key("i-1"), "BACKUP#i-1");
        assert_eq!(workload_key("pos"), "WORKLOAD#pos");
        assert_eq!(IncidentMark::Fenced { instance_id: "i-1" }.key(), "FENCED#i-1");
        assert_eq!(IncidentMark::Serving { workload: "pos" }.key(), "SERVING#pos");
        assert_eq!(IncidentMark::Suppressed.key(), "SUPPRESSED");
        assert_eq!((BackupMark::Reported.key(), BackupMark::Stale.key()), ("REPORTED", "STALE"));
        let told = |mark: IncidentMark| {
            let f = ToldFact::of_key(&mark.key(), String::new());
            (f.kind, f.subject)
        };
        assert_eq!(told(IncidentMark::Fenced { instance_id: "i-1" }), ("fenced".into(), Some("i-1".into())));
        assert_eq!(
            told(IncidentMark::ReplacementLost { workload: "pos" }),
            ("replacement_lost".into(), Some("pos".into()))
        );
        assert_eq!(told(IncidentMark::FailoverReported), ("failover_reported".into(), None));
        assert_eq!(told(IncidentMark::Opened), ("opened".into(), None));
        assert_eq!(expires_at(100, 2), 100 + 2 * 86_400);
    }

    #[test]
    fn statuses_round_trip_and_a_missing_one_means_in_flight() {
        for s in [WorkloadStatus::Launching, WorkloadStatus::Launched, WorkloadStatus::Failed] {
            assert_eq!(WorkloadStatus::parse(Some(s.as_str())), s);
        }
        assert_eq!(WorkloadStatus::parse(None), WorkloadStatus::Launching);
        assert_eq!(WorkloadStatus::parse(Some("weird")), WorkloadStatus::Failed);
        for s in [IncidentStatus::Open, IncidentStatus::Closed] {
            assert_eq!(IncidentStatus::parse(Some(s.as_str())), Some(s));
        }
        assert_eq!(IncidentStatus::parse(Some("x")), None);
    }
}
