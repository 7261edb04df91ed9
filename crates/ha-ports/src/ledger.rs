//! The incident ledger on its [`Table`], laid out as [`ha_domain::ledger`] says. Each
//! conditional write makes one piece of work happen once under concurrent redelivery; the
//! same conditions run against DynamoDB and against the simulator's table.

use crate::bus::Bus;
use crate::clock::Clock;
use crate::fleet::Fleet;
use crate::table::{Change, Condition, Item, Table, Value, SK};
use ha_domain::contract::{ProjectEvent, RelaunchRequested};
use ha_domain::error::AwsFailure;
use ha_domain::failover::{IncidentFacts, Plan, WorkloadProgress};
use ha_domain::incident::{IncidentId, MaintenanceWindow, ServerLedgerState};
use ha_domain::launch::ClaimRecord;
use ha_domain::ledger::{
    backup_key, expires_at, incident_key, parameter_key, server_key, wave_key, workload_key, BackupMark, DrillRecord,
    IncidentMark, IncidentStatus, IncidentStory, ToldFact, WorkloadStatus, WorkloadStory, ALARM_STATE, DRILL,
    LAST_INCIDENT, MAINTENANCE, MAINTENANCE_KEPT_SECONDS, META, OPEN_INCIDENT, PARAMETER_HOLD, PARAMETER_VALUE,
    RELEASED, WAVE, WITNESS, WORKLOAD_PREFIX,
};
use ha_domain::model::{ServerId, Workload};
use ha_domain::partition::{RelaunchGrounds, Wave, WitnessFinding};
use ha_domain::timefmt::{format_timestamp, parse_timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;

#[derive(Clone)]
pub struct Ledger {
    table: Arc<dyn Table>,
    retention_days: u32,
}

/// What the alarm handler records when it opens an incident.
pub struct IncidentRecord<'a> {
    pub incident: &'a IncidentId,
    pub server: &'a ServerId,
    pub alarm_arn: &'a str,
    pub alarm_name: &'a str,
    pub detected_at: &'a str,
    pub site_name: Option<&'a str>,
    /// Templates tagged for the server that are not usable: `name (lt-…): reason`.
    pub unusable: &'a [String],
}

/// What a claim launches: the workload as declared when it was claimed, and on what grounds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimedLaunch {
    pub workload: Workload,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grounds: Option<RelaunchGrounds>,
    /// Reopened to launch cold after its promotion failed: whoever takes it over checks the
    /// server again (nothing was launched for it yet) and adopts no promoted copy.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub after_failed_promotion: bool,
}

/// Result of trying to claim one (incident, workload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimAttempt {
    Won,
    /// `launch`: what the claim was taken to launch (claims of earlier versions: none);
    /// `attempted`: a claim reopened after a failed promotion had its cold launch tried
    /// since (`Ledger::mark_attempted`).
    Existing {
        record: ClaimRecord,
        outcome_event: Option<String>,
        launch: Option<Box<ClaimedLaunch>>,
        attempted: bool,
    },
}

/// How a claimed workload ended.
pub struct Settlement<'a> {
    pub launched: bool,
    pub replacement_instance_id: Option<&'a str>,
    pub subnet_id: Option<&'a str>,
    pub launch_requested_at: Option<&'a str>,
    pub launch_accepted_at: Option<&'a str>,
    /// The event detail to (re-)emit, as JSON; kept so a redelivery can emit it again.
    pub outcome_event: &'a str,
}

/// Where a server's alarm transition stands against the newest one seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// The newest transition (or a redelivery of it): act on it.
    Newest,
    /// An older transition delivered late: the server has moved on since.
    Stale,
}

/// The backup a parameter was last moved to, and by which execution from what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterRecord {
    pub image_id: String,
    /// When the backup was taken (epoch milliseconds): the parameter only moves to later ones.
    pub taken_ms: i64,
    pub execution_id: String,
    pub previous_image_id: Option<String>,
}

/// What one execution's backup did to its parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adopted {
    pub parameter: String,
    pub image_id: String,
    /// The parameter was moved to it (false: it already named it, or a newer backup).
    pub moved: bool,
    /// What the parameter named before (when moved), or the newer backup it names.
    pub previous_image_id: Option<String>,
}

/// A backup execution's adoption (sort key under `BACKUP#<execution id>`).
const ADOPTED: &str = "ADOPTED";

/// The witness of an incident: the probe sent, and what it found once recorded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WitnessRecord {
    pub witness: Option<String>,
    pub command_id: Option<String>,
    pub asked_epoch: Option<i64>,
    pub finding: Option<WitnessFinding>,
}

/// What an operator released in an incident.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Releases {
    /// Every held workload of the incident.
    pub all: bool,
    pub workloads: BTreeSet<String>,
}

impl Releases {
    pub fn covers(&self, workload: &str) -> bool {
        self.all || self.workloads.contains(workload)
    }
}

/// How telling a fact went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Told {
    /// Published by this call, then marked.
    Now,
    /// Told before (this very marker): nothing published.
    Before,
    /// Another delivery is telling it right now; if it dies, its lease runs out and a
    /// retry tells it.
    ByAnother,
}

/// How long a delivery telling a fact holds it: enough for one PutEvents and one write
/// with the SDK's retries, and shorter than Lambda's first retry (about a minute after the
/// failure), so the retry of a teller that died tells the fact instead of waiting on it.
pub const TELLING_LEASE_SECONDS: i64 = 50;

const TELLING: &str = "telling";
/// A server's recovery told while no incident was open (sort key under the server).
const RECOVERED: &str = "RECOVERED";
const TOLD: &str = "told";
/// Sort-key prefix of a lost replacement's mark (`IncidentMark::ReplacementLost`).
const LOST_PREFIX: &str = "LOST#";
/// Sort-key prefix of a serving replacement's mark (`IncidentMark::Serving`).
const SERVING_PREFIX: &str = "SERVING#";

/// An incident's detection time in epoch seconds (0 when unreadable).
fn detected_epoch(detected_at: &str) -> i64 {
    parse_timestamp(detected_at).map(|t| t.unix_timestamp()).unwrap_or(0)
}

fn epoch_time(epoch: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(epoch).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

fn s(v: impl Into<String>) -> Value {
    Value::S(v.into())
}
fn get_s<'a>(item: &'a Item, k: &str) -> Option<&'a str> {
    match item.get(k) {
        Some(Value::S(v)) => Some(v),
        _ => None,
    }
}
fn get_n(item: &Item, k: &str) -> Option<i64> {
    match item.get(k) {
        Some(Value::N(v)) => Some(*v),
        _ => None,
    }
}
fn get_bool(item: &Item, k: &str) -> bool {
    matches!(item.get(k), Some(Value::Bool(true)))
}
fn set(field: &str, value: Value) -> Change {
    Change::Set(field.to_string(), value)
}
fn item(pairs: Vec<(&str, Value)>) -> Item {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}
/// Sort key of a promoted standby's hook (one per workload of an incident).
fn hook_key(workload: &str) -> String {
    format!("HOOK#{workload}")
}
fn launching() -> Value {
    s(WorkloadStatus::Launching.as_str())
}

impl Ledger {
    pub fn new(table: Arc<dyn Table>, retention_days: u32) -> Self {
        Ledger { table, retention_days }
    }

    fn expires(&self, now_epoch: i64) -> Value {
        Value::N(expires_at(now_epoch, self.retention_days))
    }

    /// Records a server's alarm transition (`up`, at `changed_ms`) unless a newer one was
    /// seen: deliveries arrive out of order, and only the newest may act.
    pub async fn server_transition(
        &self,
        server: &ServerId,
        up: bool,
        changed_ms: i64,
        now_epoch: i64,
    ) -> Result<Freshness, AwsFailure> {
        let newer_or_same = Condition::Or(vec![
            Condition::ItemAbsent,
            Condition::AtMost("changed_ms".into(), changed_ms - 1),
            Condition::And(vec![
                Condition::equals("changed_ms", Value::N(changed_ms)),
                Condition::equals("up", Value::Bool(up)),
            ]),
        ]);
        let record = item(vec![
            ("up", Value::Bool(up)),
            ("changed_ms", Value::N(changed_ms)),
            ("expires_at", self.expires(now_epoch)),
        ]);
        let written = self.table.put(&server_key(server), ALARM_STATE, record, Some(newer_or_same)).await?;
        Ok(if written { Freshness::Newest } else { Freshness::Stale })
    }

    /// The newest transition seen: (up, when in epoch ms).
    pub async fn server_state(&self, server: &ServerId) -> Result<Option<(bool, i64)>, AwsFailure> {
        let item = self.table.get(&server_key(server), ALARM_STATE).await?;
        Ok(item.map(|i| (get_bool(&i, "up"), get_n(&i, "changed_ms").unwrap_or(0))))
    }

    /// Whether the newest transition seen says the server is up (`None`: none seen).
    pub async fn server_is_up(&self, server: &ServerId) -> Result<Option<bool>, AwsFailure> {
        Ok(self.server_state(server).await?.map(|(up, _)| up))
    }

    /// Makes `incident` the server's open incident unless another one already is.
    pub async fn claim_server(
        &self,
        server: &ServerId,
        incident: &IncidentId,
        now_epoch: i64,
    ) -> Result<ServerLedgerState, AwsFailure> {
        for _ in 0..3 {
            let record = item(vec![
                ("incident_id", s(incident.as_str())),
                ("opened_epoch", Value::N(now_epoch)),
                ("expires_at", self.expires(now_epoch)),
            ]);
            if self.table.put(&server_key(server), OPEN_INCIDENT, record, Some(Condition::ItemAbsent)).await? {
                return Ok(ServerLedgerState::Free);
            }
            match self.open_incident_of(server).await? {
                Some(open) if &open == incident => return Ok(ServerLedgerState::HeldBySame),
                Some(open) => return Ok(ServerLedgerState::HeldByOther(open)),
                // Released between our write and our read: try again.
                None => {}
            }
        }
        Err(AwsFailure {
            operation: "PutItem",
            code: "ServerClaimContended".into(),
            message: "the server's open-incident item kept changing under us".into(),
            retry: ha_domain::error::Retry::CanHelp,
        })
    }

    pub async fn open_incident_of(&self, server: &ServerId) -> Result<Option<IncidentId>, AwsFailure> {
        let item = self.table.get(&server_key(server), OPEN_INCIDENT).await?;
        Ok(item.as_ref().and_then(|i| get_s(i, "incident_id")).map(IncidentId::from_stored))
    }

    /// Writes the incident item once; true when this call created it.
    pub async fn record_incident(&self, r: &IncidentRecord<'_>, now_epoch: i64) -> Result<bool, AwsFailure> {
        let record = item(vec![
            ("server_id", s(r.server.as_str())),
            ("alarm_arn", s(r.alarm_arn)),
            ("alarm_name", s(r.alarm_name)),
            ("detected_at", s(r.detected_at)),
            ("site_name", s(r.site_name.unwrap_or_default())),
            ("unusable", s(serde_json::to_string(r.unusable).unwrap_or_default())),
            ("status", s(IncidentStatus::Open.as_str())),
            ("announced", Value::Bool(false)),
            ("created_epoch", Value::N(now_epoch)),
            ("expires_at", self.expires(now_epoch)),
        ]);
        // The server's newest incident first: a failure here leaves nothing half-made, and a
        // late write of an older incident is refused.
        let newer = Condition::Or(vec![
            Condition::ItemAbsent,
            Condition::AtMost("detected_epoch".into(), detected_epoch(r.detected_at)),
        ]);
        let last = item(vec![
            ("incident_id", s(r.incident.as_str())),
            ("detected_epoch", Value::N(detected_epoch(r.detected_at))),
            ("expires_at", self.expires(now_epoch)),
        ]);
        self.table.put(&server_key(r.server), LAST_INCIDENT, last, Some(newer)).await?;
        self.table.put(&incident_key(r.incident), META, record, Some(Condition::ItemAbsent)).await
    }

    /// The incident's status; `None` when it is unknown (never opened, or expired).
    pub async fn incident_status(&self, incident: &IncidentId) -> Result<Option<IncidentStatus>, AwsFailure> {
        let item = self.table.get(&incident_key(incident), META).await?;
        Ok(item.map(|i| IncidentStatus::parse(get_s(&i, "status")).unwrap_or(IncidentStatus::Open)))
    }

    /// When the incident's server came back, once recorded.
    pub async fn incident_recovered_at(&self, incident: &IncidentId) -> Result<Option<String>, AwsFailure> {
        let item = self.table.get(&incident_key(incident), META).await?;
        Ok(item.as_ref().and_then(|i| get_s(i, "recovered_at")).map(str::to_string))
    }

    pub async fn incident_detected_at(&self, incident: &IncidentId) -> Result<Option<String>, AwsFailure> {
        let item = self.table.get(&incident_key(incident), META).await?;
        Ok(item.as_ref().and_then(|i| get_s(i, "detected_at")).map(str::to_string))
    }

    pub async fn mark_announced(&self, incident: &IncidentId) -> Result<(), AwsFailure> {
        self.set_on_incident(incident, "announced", Value::Bool(true)).await
    }

    /// Records an incident-level time such as `recovered_at`.
    pub async fn set_incident_time(&self, incident: &IncidentId, field: &str, at: &str) -> Result<(), AwsFailure> {
        self.set_on_incident(incident, field, s(at)).await
    }

    /// Sets one field of the incident item, if the item is there (an expired or never
    /// written incident is not recreated as a fragment).
    async fn set_on_incident(&self, incident: &IncidentId, field: &str, value: Value) -> Result<(), AwsFailure> {
        self.table
            .update(&incident_key(incident), META, vec![set(field, value)], Some(Condition::ItemExists))
            .await
            .map(drop)
    }

    /// Keeps an incident's items from expiring while it is still open (a long outage).
    pub async fn extend_incident(&self, incident: &IncidentId, now_epoch: i64) -> Result<(), AwsFailure> {
        let open =
            Condition::And(vec![Condition::ItemExists, Condition::equals("status", s(IncidentStatus::Open.as_str()))]);
        self.table
            .update(&incident_key(incident), META, vec![set("expires_at", self.expires(now_epoch))], Some(open))
            .await
            .map(drop)
    }

    /// Claims (incident, workload) for `owner` with a lease; the loser learns what is there.
    /// The claim keeps what it launches, so a delivery that takes it over can finish it
    /// even when its template is gone or the workload is held since.
    pub async fn claim_workload(
        &self,
        incident: &IncidentId,
        launch: &ClaimedLaunch,
        owner: &str,
        now_epoch: i64,
        lease_seconds: i64,
    ) -> Result<ClaimAttempt, AwsFailure> {
        let (pk, sk) = (incident_key(incident), workload_key(&launch.workload.name));
        let launch_json = serde_json::to_string(launch).unwrap_or_default();
        for _ in 0..3 {
            let record = item(vec![
                ("launch", s(launch_json.as_str())),
                ("status", launching()),
                ("owner", s(owner)),
                ("claimed_epoch", Value::N(now_epoch)),
                ("lease_until", Value::N(now_epoch + lease_seconds)),
                ("reported", Value::Bool(false)),
                ("expires_at", self.expires(now_epoch)),
            ]);
            if self.table.put(&pk, &sk, record, Some(Condition::ItemAbsent)).await? {
                return Ok(ClaimAttempt::Won);
            }
            if let Some(item) = self.table.get(&pk, &sk).await? {
                return Ok(ClaimAttempt::Existing {
                    record: claim_record(&item),
                    outcome_event: get_s(&item, "outcome_event").map(str::to_string),
                    launch: get_s(&item, "launch").and_then(|l| serde_json::from_str(l).ok()).map(Box::new),
                    attempted: get_bool(&item, "attempted"),
                });
            }
            // Released (transient failure) between write and read: claim again.
        }
        Err(AwsFailure {
            operation: "PutItem",
            code: "WorkloadClaimContended".into(),
            message: "the workload's claim kept changing under us".into(),
            retry: ha_domain::error::Retry::CanHelp,
        })
    }

    /// Takes over a claim whose lease ran out. Only one of several contenders wins.
    pub async fn take_over(
        &self,
        incident: &IncidentId,
        workload: &str,
        expired_lease_until: i64,
        owner: &str,
        now_epoch: i64,
        lease_seconds: i64,
    ) -> Result<bool, AwsFailure> {
        let changes = vec![
            set("owner", s(owner)),
            set("lease_until", Value::N(now_epoch + lease_seconds)),
            set("claimed_epoch", Value::N(now_epoch)),
            Change::Add("takeovers".into(), 1),
        ];
        let condition = Condition::And(vec![
            Condition::equals("status", launching()),
            Condition::equals("lease_until", Value::N(expired_lease_until)),
        ]);
        self.table.update(&incident_key(incident), &workload_key(workload), changes, Some(condition)).await
    }

    /// Marks a claim reopened after a failed promotion as having its cold launch tried, before
    /// the first RunInstances, while `owner` holds it: a later taker knows RunInstances may
    /// have taken effect. False when `owner` no longer holds it.
    pub async fn mark_attempted(&self, incident: &IncidentId, workload: &str, owner: &str) -> Result<bool, AwsFailure> {
        let holder =
            Condition::And(vec![Condition::equals("owner", s(owner)), Condition::equals("status", launching())]);
        let changes = vec![set("attempted", Value::Bool(true))];
        self.table.update(&incident_key(incident), &workload_key(workload), changes, Some(holder)).await
    }

    /// Records the outcome, if `owner` still holds the claim. Returns false when another
    /// claimant took over (then that claimant reports).
    pub async fn settle(
        &self,
        incident: &IncidentId,
        workload: &str,
        owner: &str,
        outcome: &Settlement<'_>,
        now_epoch: i64,
        lease_seconds: i64,
    ) -> Result<bool, AwsFailure> {
        let status = if outcome.launched { WorkloadStatus::Launched } else { WorkloadStatus::Failed };
        let mut changes = vec![
            set("status", s(status.as_str())),
            set("outcome_event", s(outcome.outcome_event)),
            set("settled_epoch", Value::N(now_epoch)),
            // The settler reports it at the end of its pass; nobody else may until its claim's
            // lease (longer than the function's timeout) runs out.
            set("report_until", Value::N(now_epoch + lease_seconds)),
        ];
        let optional = [
            ("replacement_instance_id", outcome.replacement_instance_id),
            ("subnet_id", outcome.subnet_id),
            ("launch_requested_at", outcome.launch_requested_at),
            ("launch_accepted_at", outcome.launch_accepted_at),
        ];
        changes.extend(optional.into_iter().filter_map(|(f, v)| v.map(|v| set(f, s(v)))));
        let holder =
            Condition::And(vec![Condition::equals("owner", s(owner)), Condition::equals("status", launching())]);
        self.table.update(&incident_key(incident), &workload_key(workload), changes, Some(holder)).await
    }

    /// Takes over reporting a settled outcome whose settler did not report it in time; only
    /// one of several deliveries wins (the others leave it to the winner).
    pub async fn take_report(&self, incident: &IncidentId, workload: &str, now_epoch: i64) -> Result<bool, AwsFailure> {
        let unreported = Condition::And(vec![
            Condition::equals("reported", Value::Bool(false)),
            Condition::Or(vec![
                Condition::field_absent("report_until"),
                Condition::AtMost("report_until".into(), now_epoch),
            ]),
        ]);
        let changes = vec![set("report_until", Value::N(now_epoch + TELLING_LEASE_SECONDS))];
        self.table.update(&incident_key(incident), &workload_key(workload), changes, Some(unreported)).await
    }

    /// Gives back the report of a settled outcome this pass could not publish, so a retry
    /// reports it at once.
    pub async fn release_report(&self, incident: &IncidentId, workload: &str) -> Result<(), AwsFailure> {
        let unreported = Condition::equals("reported", Value::Bool(false));
        let changes = vec![set("report_until", Value::N(0))];
        self.table.update(&incident_key(incident), &workload_key(workload), changes, Some(unreported)).await.map(drop)
    }

    /// Marks a settled workload's outcome as reported (never creates a fragment).
    pub async fn mark_reported(&self, incident: &IncidentId, workload: &str) -> Result<(), AwsFailure> {
        let changes = vec![set("reported", Value::Bool(true))];
        self.table
            .update(&incident_key(incident), &workload_key(workload), changes, Some(Condition::ItemExists))
            .await
            .map(drop)
    }

    /// Every workload item of the incident: (status, outcome event as stored JSON).
    pub async fn outcomes_of(
        &self,
        incident: &IncidentId,
    ) -> Result<Vec<(WorkloadStatus, Option<String>)>, AwsFailure> {
        let items = self.table.query(&incident_key(incident), WORKLOAD_PREFIX).await?;
        Ok(items
            .iter()
            .map(|i| (WorkloadStatus::parse(get_s(i, "status")), get_s(i, "outcome_event").map(str::to_string)))
            .collect())
    }

    /// Settled outcomes of the incident not reported yet: (workload, outcome event JSON).
    pub async fn unreported_of(&self, incident: &IncidentId) -> Result<Vec<(String, String)>, AwsFailure> {
        let items = self.table.query(&incident_key(incident), WORKLOAD_PREFIX).await?;
        Ok(items
            .iter()
            .filter(|i| {
                WorkloadStatus::parse(get_s(i, "status")) != WorkloadStatus::Launching && !get_bool(i, "reported")
            })
            .filter_map(|i| {
                let workload = get_s(i, SK)?.strip_prefix(WORKLOAD_PREFIX)?.to_string();
                Some((workload, get_s(i, "outcome_event")?.to_string()))
            })
            .collect())
    }

    /// The incident's story: its item, every workload's and each fact told, or `None` if
    /// it is unknown.
    pub async fn story_of(&self, incident: &IncidentId) -> Result<Option<IncidentStory>, AwsFailure> {
        let items = self.table.query(&incident_key(incident), "").await?;
        let mut meta = None;
        let mut workloads = Vec::new();
        let mut told = Vec::new();
        for item in &items {
            let sk = get_s(item, SK).unwrap_or_default();
            let text = |k: &str| get_s(item, k).map(str::to_string);
            if sk == META {
                meta = Some(item);
            } else if let Some(workload) = sk.strip_prefix(WORKLOAD_PREFIX) {
                workloads.push(WorkloadStory {
                    workload: workload.to_string(),
                    status: WorkloadStatus::parse(get_s(item, "status")),
                    replacement_instance_id: text("replacement_instance_id"),
                    subnet_id: text("subnet_id"),
                    launch_accepted_at: text("launch_accepted_at"),
                    serving_at: text("serving_at"),
                });
            } else if get_s(item, "state") == Some(TOLD) {
                if let Some(at) = get_n(item, "recorded_epoch") {
                    told.push((at, sk.to_string()));
                }
            }
        }
        told.sort();
        let told = told.into_iter().map(|(at, key)| ToldFact::of_key(&key, format_timestamp(epoch_time(at)))).collect();
        Ok(meta.map(|item| {
            let text = |k: &str| get_s(item, k).filter(|v| !v.is_empty()).map(str::to_string);
            IncidentStory {
                incident_id: incident.to_string(),
                server_id: text("server_id").unwrap_or_default(),
                status: IncidentStatus::parse(get_s(item, "status")).unwrap_or(IncidentStatus::Open),
                detected_at: text("detected_at").unwrap_or_default(),
                summary: text("summary"),
                site_name: text("site_name"),
                recovered_at: text("recovered_at"),
                workloads,
                told,
            }
        }))
    }

    /// The server's newest incident, open or closed (`None` before its first, or once it
    /// expired).
    pub async fn last_incident_of(&self, server: &ServerId) -> Result<Option<IncidentId>, AwsFailure> {
        let item = self.table.get(&server_key(server), LAST_INCIDENT).await?;
        Ok(item.as_ref().and_then(|i| get_s(i, "incident_id")).map(IncidentId::from_stored))
    }

    /// Keeps the server's last drill (a later drill replaces it).
    pub async fn record_drill(&self, server: &ServerId, drill: &DrillRecord, now_epoch: i64) -> Result<(), AwsFailure> {
        let record = item(vec![
            ("drill", s(serde_json::to_string(drill).unwrap_or_default())),
            ("expires_at", self.expires(now_epoch)),
        ]);
        self.table.put(&server_key(server), DRILL, record, None).await.map(drop)
    }

    pub async fn last_drill_of(&self, server: &ServerId) -> Result<Option<DrillRecord>, AwsFailure> {
        let item = self.table.get(&server_key(server), DRILL).await?;
        Ok(item.as_ref().and_then(|i| get_s(i, "drill")).and_then(|d| serde_json::from_str(d).ok()))
    }

    /// Closes the incident with its summary (true when this call closed it).
    pub async fn close_incident(
        &self,
        incident: &IncidentId,
        summary: &str,
        now_epoch: i64,
    ) -> Result<bool, AwsFailure> {
        let changes = vec![
            set("status", s(IncidentStatus::Closed.as_str())),
            set("summary", s(summary)),
            set("closed_epoch", Value::N(now_epoch)),
        ];
        let open = Condition::And(vec![
            Condition::ItemExists,
            Condition::differs("status", s(IncidentStatus::Closed.as_str())),
        ]);
        self.table.update(&incident_key(incident), META, changes, Some(open)).await
    }

    /// Frees the server if `incident` holds it (a later incident's hold is left alone).
    pub async fn release_server(&self, server: &ServerId, incident: &IncidentId) -> Result<(), AwsFailure> {
        let held = Condition::equals("incident_id", s(incident.as_str()));
        self.table.delete(&server_key(server), OPEN_INCIDENT, Some(held)).await.map(drop)
    }

    /// The server's maintenance window, if one was set (expired ones included).
    pub async fn maintenance_of(&self, server: &ServerId) -> Result<Option<MaintenanceWindow>, AwsFailure> {
        let item = self.table.get(&server_key(server), MAINTENANCE).await?;
        Ok(item.and_then(|i| {
            Some(MaintenanceWindow {
                until_epoch: get_n(&i, "until_epoch")?,
                until: get_s(&i, "until").unwrap_or_default().to_string(),
                reason: get_s(&i, "reason").unwrap_or_default().to_string(),
            })
        }))
    }

    /// Sets the server's maintenance window.
    pub async fn set_maintenance(&self, server: &ServerId, window: &MaintenanceWindow) -> Result<(), AwsFailure> {
        let record = item(vec![
            ("until_epoch", Value::N(window.until_epoch)),
            ("until", s(&window.until)),
            ("reason", s(&window.reason)),
            ("expires_at", Value::N(window.until_epoch + MAINTENANCE_KEPT_SECONDS)),
        ]);
        self.table.put(&server_key(server), MAINTENANCE, record, None).await.map(drop)
    }

    /// Records the workloads a launch pass was asked for and which it held: what the
    /// failover report counts. The newest read of the fleet wins (`read_at_ms`): a request
    /// delivered late never puts back a list read before the recorded one, and one that
    /// carries no time only records a first plan. Whether it was recorded.
    pub async fn record_plan(
        &self,
        incident: &IncidentId,
        plan: &Plan,
        read_at_ms: Option<i64>,
    ) -> Result<bool, AwsFailure> {
        let list = |names: &BTreeSet<String>| s(serde_json::to_string(names).unwrap_or_default());
        let mut changes = vec![set("plan_workloads", list(&plan.workloads)), set("plan_held", list(&plan.held))];
        let not_older = match read_at_ms {
            Some(at) => {
                changes.push(set("plan_read_at_ms", Value::N(at)));
                // No time recorded covers no plan recorded: the time is only written with one.
                Condition::Or(vec![
                    Condition::field_absent("plan_read_at_ms"),
                    Condition::AtMost("plan_read_at_ms".into(), at),
                ])
            }
            None => Condition::field_absent("plan_workloads"),
        };
        let condition = Condition::And(vec![Condition::ItemExists, not_older]);
        self.table.update(&incident_key(incident), META, changes, Some(condition)).await
    }

    /// Records what a replacement's last health check waited for (until it serves).
    pub async fn record_waiting(&self, incident: &IncidentId, workload: &str, waiting: &str) -> Result<(), AwsFailure> {
        let not_serving = Condition::And(vec![Condition::ItemExists, Condition::field_absent("serving_at")]);
        let changes = vec![set("waiting_for", s(waiting))];
        self.table.update(&incident_key(incident), &workload_key(workload), changes, Some(not_serving)).await.map(drop)
    }

    /// The incident and every workload's progress, in one read of its items; `None` when
    /// the incident is unknown.
    pub async fn progress_of(
        &self,
        incident: &IncidentId,
    ) -> Result<Option<(IncidentFacts, Vec<WorkloadProgress>)>, AwsFailure> {
        let items = self.table.query(&incident_key(incident), "").await?;
        let mut facts = None;
        let mut progress = Vec::new();
        let (mut lost, mut serving) = (BTreeSet::new(), BTreeSet::new());
        for item in &items {
            let sk = get_s(item, SK).unwrap_or_default();
            let text = |k: &str| get_s(item, k).filter(|v| !v.is_empty()).map(str::to_string);
            if sk == META {
                let names = |k: &str| text(k).and_then(|j| serde_json::from_str::<BTreeSet<String>>(&j).ok());
                facts = Some(IncidentFacts {
                    incident_id: incident.to_string(),
                    server_id: text("server_id").unwrap_or_default(),
                    site_name: text("site_name"),
                    detected_at: text("detected_at").unwrap_or_default(),
                    recovered_at: text("recovered_at"),
                    closed: IncidentStatus::parse(get_s(item, "status")) == Some(IncidentStatus::Closed),
                    plan: names("plan_workloads")
                        .map(|workloads| Plan { workloads, held: names("plan_held").unwrap_or_default() }),
                    unusable: text("unusable").and_then(|j| serde_json::from_str(&j).ok()).unwrap_or_default(),
                });
            } else if let Some(workload) = sk.strip_prefix(WORKLOAD_PREFIX) {
                progress.push(WorkloadProgress {
                    workload: workload.to_string(),
                    status: WorkloadStatus::parse(get_s(item, "status")),
                    outcome: get_s(item, "outcome_event").and_then(|o| serde_json::from_str(o).ok()),
                    reported: get_bool(item, "reported"),
                    launch_accepted_at: text("launch_accepted_at"),
                    serving_at: text("serving_at"),
                    lost: false,
                    waiting_for: text("waiting_for"),
                });
            } else if let Some(workload) = sk.strip_prefix(LOST_PREFIX) {
                if get_s(item, "state") == Some(TOLD) {
                    lost.insert(workload.to_string());
                }
            } else if let Some(workload) = sk.strip_prefix(SERVING_PREFIX) {
                if get_s(item, "state") == Some(TOLD) {
                    serving.insert(workload.to_string());
                }
            }
        }
        for p in &mut progress {
            p.lost = lost.contains(&p.workload);
            // Serving counts once it was told (the time is recorded just before).
            if !serving.contains(&p.workload) {
                p.serving_at = None;
            }
        }
        Ok(facts.map(|f| (f, progress)))
    }

    /// Records when the workload's replacement started serving (the first time only).
    pub async fn record_serving(&self, incident: &IncidentId, workload: &str, at: &str) -> Result<(), AwsFailure> {
        let first = Condition::And(vec![Condition::ItemExists, Condition::field_absent("serving_at")]);
        let changes = vec![set("serving_at", s(at))];
        self.table.update(&incident_key(incident), &workload_key(workload), changes, Some(first)).await.map(drop)
    }

    /// Tells `events` once for `mark` carrying `marker` (a different marker is a new fact):
    /// the mark is taken with a short lease, the events are published, then the mark says told.
    /// A failed publish gives the mark back, so a retry tells it.
    #[allow(clippy::too_many_arguments)]
    pub async fn tell_incident(
        &self,
        bus: &dyn Bus,
        incident: &IncidentId,
        mark: IncidentMark<'_>,
        marker: &str,
        owner: &str,
        now_epoch: i64,
        events: &[ProjectEvent],
    ) -> Result<Told, AwsFailure> {
        self.tell(bus, &incident_key(incident), &mark.key(), marker, owner, now_epoch, events).await
    }

    /// [`Ledger::tell_incident`] for a server's own fact (a recovery with no incident open).
    #[allow(clippy::too_many_arguments)]
    pub async fn tell_server(
        &self,
        bus: &dyn Bus,
        server: &ServerId,
        marker: &str,
        owner: &str,
        now_epoch: i64,
        events: &[ProjectEvent],
    ) -> Result<Told, AwsFailure> {
        self.tell(bus, &server_key(server), RECOVERED, marker, owner, now_epoch, events).await
    }

    /// [`Ledger::tell_incident`] for a wave of outages (by its first outage's time).
    pub async fn tell_wave(
        &self,
        bus: &dyn Bus,
        started_at: &str,
        owner: &str,
        now_epoch: i64,
        events: &[ProjectEvent],
    ) -> Result<Told, AwsFailure> {
        self.tell(bus, &wave_key(started_at), META, started_at, owner, now_epoch, events).await
    }

    /// [`Ledger::tell_incident`] for a fleet drill's digest (by when it was requested).
    pub async fn tell_fleet_drill(
        &self,
        bus: &dyn Bus,
        requested_at: &str,
        owner: &str,
        now_epoch: i64,
        events: &[ProjectEvent],
    ) -> Result<Told, AwsFailure> {
        self.tell(bus, &format!("FLEET_DRILL#{requested_at}"), META, requested_at, owner, now_epoch, events).await
    }

    pub async fn witness_of(&self, incident: &IncidentId) -> Result<WitnessRecord, AwsFailure> {
        let Some(item) = self.table.get(&incident_key(incident), WITNESS).await? else {
            return Ok(WitnessRecord::default());
        };
        Ok(WitnessRecord {
            witness: get_s(&item, "witness").map(str::to_string),
            command_id: get_s(&item, "command_id").map(str::to_string),
            asked_epoch: get_n(&item, "asked_epoch"),
            finding: get_s(&item, "finding").and_then(|f| serde_json::from_str(f).ok()),
        })
    }

    /// Records the probe sent; false when another delivery's probe was recorded first (a
    /// duplicate probe is harmless: only the first finding counts).
    pub async fn record_witness_asked(
        &self,
        incident: &IncidentId,
        witness: &str,
        command_id: &str,
        now_epoch: i64,
    ) -> Result<bool, AwsFailure> {
        let record = item(vec![
            ("witness", s(witness)),
            ("command_id", s(command_id)),
            ("asked_epoch", Value::N(now_epoch)),
            ("expires_at", self.expires(now_epoch)),
        ]);
        self.table.put(&incident_key(incident), WITNESS, record, Some(Condition::ItemAbsent)).await
    }

    /// Records the finding once per incident and returns the one recorded: a later probe
    /// never replaces it (a re-probe must not turn a hold into a launch).
    pub async fn record_witness_finding(
        &self,
        incident: &IncidentId,
        finding: &WitnessFinding,
        now_epoch: i64,
    ) -> Result<WitnessFinding, AwsFailure> {
        let text = serde_json::to_string(finding).unwrap_or_default();
        let changes = vec![set("finding", s(text)), set("expires_at", self.expires(now_epoch))];
        let (pk, first) = (incident_key(incident), Condition::field_absent("finding"));
        if self.table.update(&pk, WITNESS, changes, Some(first)).await? {
            return Ok(finding.clone());
        }
        Ok(self.witness_of(incident).await?.finding.unwrap_or_else(|| finding.clone()))
    }

    /// The incident's launch request as alarm-handler sends it: its server's workloads as
    /// declared now, detected when the incident was. `None` for an unknown incident.
    pub async fn relaunch_request(
        &self,
        fleet: &dyn Fleet,
        clock: &dyn Clock,
        incident: &IncidentId,
    ) -> Result<Option<RelaunchRequested>, AwsFailure> {
        let Some(meta) = self.table.get(&incident_key(incident), META).await? else { return Ok(None) };
        let Some(server) = get_s(&meta, "server_id").and_then(|s| ServerId::parse(s).ok()) else { return Ok(None) };
        let read_at_ms = clock.epoch_ms();
        let (workloads, _) = fleet.workloads_of(&server).await?;
        Ok(Some(RelaunchRequested {
            incident_id: incident.to_string(),
            server_id: server.to_string(),
            detected_at: get_s(&meta, "detected_at").unwrap_or_default().to_string(),
            site_name: get_s(&meta, "site_name").filter(|n| !n.is_empty()).map(str::to_string),
            workloads,
            workloads_read_at_ms: Some(read_at_ms),
        }))
    }

    /// The wave recorded for the incident.
    pub async fn wave_of(&self, incident: &IncidentId) -> Result<Option<Wave>, AwsFailure> {
        let item = self.table.get(&incident_key(incident), WAVE).await?;
        Ok(item.as_ref().and_then(|i| get_s(i, "wave")).and_then(|w| serde_json::from_str(w).ok()))
    }

    /// Records the incident's wave once and returns the one recorded.
    pub async fn record_wave(&self, incident: &IncidentId, wave: &Wave, now_epoch: i64) -> Result<Wave, AwsFailure> {
        let text = serde_json::to_string(wave).unwrap_or_default();
        let record = item(vec![("wave", s(text)), ("expires_at", self.expires(now_epoch))]);
        if self.table.put(&incident_key(incident), WAVE, record, Some(Condition::ItemAbsent)).await? {
            return Ok(wave.clone());
        }
        Ok(self.wave_of(incident).await?.unwrap_or_else(|| wave.clone()))
    }

    /// What each unfinished claim of the incident (still launching, or settled and not
    /// told) was to launch. Claims written before claims kept it are left to the deliveries
    /// that carry their workload.
    pub async fn unfinished_claims(&self, incident: &IncidentId) -> Result<Vec<ClaimedLaunch>, AwsFailure> {
        let items = self.table.query(&incident_key(incident), WORKLOAD_PREFIX).await?;
        Ok(items
            .iter()
            .filter(|i| {
                WorkloadStatus::parse(get_s(i, "status")) == WorkloadStatus::Launching || !get_bool(i, "reported")
            })
            .filter_map(|i| serde_json::from_str(get_s(i, "launch")?).ok())
            .collect())
    }

    /// Records an operator's release of one workload, or of every held one.
    pub async fn record_release(
        &self,
        incident: &IncidentId,
        workload: Option<&str>,
        requested_at: &str,
        now_epoch: i64,
    ) -> Result<(), AwsFailure> {
        let sk = match workload {
            Some(w) => format!("{RELEASED}#{w}"),
            None => RELEASED.to_string(),
        };
        let record = item(vec![("requested_at", s(requested_at)), ("expires_at", self.expires(now_epoch))]);
        self.table.put(&incident_key(incident), &sk, record, None).await.map(drop)
    }

    pub async fn releases_of(&self, incident: &IncidentId) -> Result<Releases, AwsFailure> {
        let items = self.table.query(&incident_key(incident), RELEASED).await?;
        let mut releases = Releases::default();
        for sk in items.iter().filter_map(|i| get_s(i, SK)) {
            match sk.strip_prefix(RELEASED) {
                Some("") => releases.all = true,
                Some(rest) => {
                    if let Some(w) = rest.strip_prefix('#') {
                        releases.workloads.insert(w.to_string());
                    }
                }
                None => {}
            }
        }
        Ok(releases)
    }

    /// [`Ledger::tell_incident`] for a backup subject (an execution id or an instance id).
    #[allow(clippy::too_many_arguments)]
    pub async fn tell_backup(
        &self,
        bus: &dyn Bus,
        subject: &str,
        mark: BackupMark,
        marker: &str,
        owner: &str,
        now_epoch: i64,
        events: &[ProjectEvent],
    ) -> Result<Told, AwsFailure> {
        self.tell(bus, &backup_key(subject), mark.key(), marker, owner, now_epoch, events).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn tell(
        &self,
        bus: &dyn Bus,
        pk: &str,
        sk: &str,
        marker: &str,
        owner: &str,
        now_epoch: i64,
        events: &[ProjectEvent],
    ) -> Result<Told, AwsFailure> {
        let may_tell = Condition::Or(vec![
            Condition::ItemAbsent,
            Condition::differs("marker", s(marker)),
            Condition::And(vec![
                Condition::equals("state", s(TELLING)),
                Condition::AtMost("lease_until".into(), now_epoch),
            ]),
        ]);
        let record = item(vec![
            ("marker", s(marker)),
            ("state", s(TELLING)),
            ("owner", s(owner)),
            ("lease_until", Value::N(now_epoch + TELLING_LEASE_SECONDS)),
            ("recorded_epoch", Value::N(now_epoch)),
            ("expires_at", self.expires(now_epoch)),
        ]);
        if !self.table.put(pk, sk, record, Some(may_tell)).await? {
            let existing = self.table.get(pk, sk).await?;
            // Gone since: its teller failed to publish and gave the mark back. Not told:
            // come back and tell it.
            let telling = existing.as_ref().is_none_or(|i| get_s(i, "state") == Some(TELLING));
            return Ok(if telling { Told::ByAnother } else { Told::Before });
        }
        let mine = Condition::And(vec![Condition::equals("owner", s(owner)), Condition::equals("marker", s(marker))]);
        if let Err(e) = bus.publish(events).await {
            // Best effort: if this fails too, the lease runs out and a retry tells it.
            let _ = self.table.delete(pk, sk, Some(mine)).await;
            return Err(e);
        }
        self.table.update(pk, sk, vec![set("state", s(TOLD))], Some(mine)).await?;
        Ok(Told::Now)
    }

    /// Holds the backup parameter for `owner` until `lease_seconds` pass. SSM has no
    /// conditional write: two completions moving one parameter take turns, so a late one
    /// cannot overwrite a newer value it did not see. The lease outlasts the function's
    /// timeout, so a holder that died cannot write after it runs out. False: held by another.
    pub async fn hold_parameter(
        &self,
        name: &str,
        owner: &str,
        now_epoch: i64,
        lease_seconds: i64,
    ) -> Result<bool, AwsFailure> {
        let free = Condition::Or(vec![
            Condition::ItemAbsent,
            Condition::equals("owner", s(owner)),
            Condition::AtMost("lease_until".into(), now_epoch),
        ]);
        let record = item(vec![
            ("owner", s(owner)),
            ("lease_until", Value::N(now_epoch + lease_seconds)),
            ("expires_at", self.expires(now_epoch)),
        ]);
        self.table.put(&parameter_key(name), PARAMETER_HOLD, record, Some(free)).await
    }

    /// The backup the parameter was last moved to, as this stack recorded it. SSM applies
    /// an `aws:ec2:image` value asynchronously (PutParameter answers before it validates),
    /// so a read of the parameter may lag the last write; this record does not.
    pub async fn parameter_record(&self, name: &str) -> Result<Option<ParameterRecord>, AwsFailure> {
        let item = self.table.get(&parameter_key(name), PARAMETER_VALUE).await?;
        Ok(item.and_then(|i| {
            Some(ParameterRecord {
                image_id: get_s(&i, "image_id")?.to_string(),
                taken_ms: get_n(&i, "taken_ms")?,
                execution_id: get_s(&i, "execution_id").unwrap_or_default().to_string(),
                previous_image_id: get_s(&i, "previous_image_id").map(str::to_string),
            })
        }))
    }

    /// Records the move, unless a backup taken later is recorded (false then).
    pub async fn record_parameter(&self, name: &str, r: &ParameterRecord, now_epoch: i64) -> Result<bool, AwsFailure> {
        let forward = Condition::Or(vec![Condition::ItemAbsent, Condition::AtMost("taken_ms".into(), r.taken_ms)]);
        let mut fields = vec![
            ("image_id", s(&r.image_id)),
            ("taken_ms", Value::N(r.taken_ms)),
            ("execution_id", s(&r.execution_id)),
            ("recorded_epoch", Value::N(now_epoch)),
        ];
        if let Some(previous) = &r.previous_image_id {
            fields.push(("previous_image_id", s(previous)));
        }
        // Kept as long as the parameter lives: no expiry.
        self.table.put(&parameter_key(name), PARAMETER_VALUE, item(fields), Some(forward)).await
    }

    /// What a finished execution did to its parameter, so a retry reports the same.
    pub async fn record_adoption(&self, execution_id: &str, a: &Adopted, now_epoch: i64) -> Result<(), AwsFailure> {
        let mut fields = vec![
            ("parameter", s(&a.parameter)),
            ("image_id", s(&a.image_id)),
            ("moved", Value::Bool(a.moved)),
            ("expires_at", self.expires(now_epoch)),
        ];
        if let Some(previous) = &a.previous_image_id {
            fields.push(("previous_image_id", s(previous)));
        }
        self.table.put(&backup_key(execution_id), ADOPTED, item(fields), None).await.map(drop)
    }

    pub async fn adoption_of(&self, execution_id: &str) -> Result<Option<Adopted>, AwsFailure> {
        let item = self.table.get(&backup_key(execution_id), ADOPTED).await?;
        Ok(item.and_then(|i| {
            Some(Adopted {
                parameter: get_s(&i, "parameter")?.to_string(),
                image_id: get_s(&i, "image_id")?.to_string(),
                moved: get_bool(&i, "moved"),
                previous_image_id: get_s(&i, "previous_image_id").map(str::to_string),
            })
        }))
    }

    /// Lets the parameter go, if `owner` still holds it.
    pub async fn free_parameter(&self, name: &str, owner: &str) -> Result<(), AwsFailure> {
        let mine = Condition::equals("owner", s(owner));
        self.table.delete(&parameter_key(name), PARAMETER_HOLD, Some(mine)).await.map(drop)
    }

    /// Whether `mark` was told (its telling finished).
    pub async fn was_told(&self, incident: &IncidentId, mark: IncidentMark<'_>) -> Result<bool, AwsFailure> {
        Ok(self.told_marker(incident, mark).await?.is_some())
    }

    /// The marker `mark` was last told with, if it was told.
    pub async fn told_marker(
        &self,
        incident: &IncidentId,
        mark: IncidentMark<'_>,
    ) -> Result<Option<String>, AwsFailure> {
        let item = self.table.get(&incident_key(incident), &mark.key()).await?;
        Ok(item
            .as_ref()
            .filter(|i| get_s(i, "state") == Some(TOLD))
            .and_then(|i| get_s(i, "marker"))
            .map(str::to_string))
    }

    /// Forgets that `mark` was told, so it is told again if it happens again.
    pub async fn clear_incident_mark(&self, incident: &IncidentId, mark: IncidentMark<'_>) -> Result<(), AwsFailure> {
        self.table.delete(&incident_key(incident), &mark.key(), None).await.map(drop)
    }

    /// Forgets that `mark` on a backup subject was told, so its next occurrence is told.
    pub async fn clear_backup_mark(&self, subject: &str, mark: BackupMark) -> Result<(), AwsFailure> {
        self.table.delete(&backup_key(subject), mark.key(), None).await.map(drop)
    }

    /// Whether `mark` on a backup subject was told (its telling finished; one under way,
    /// or dead before it published, does not count).
    pub async fn backup_told(&self, subject: &str, mark: BackupMark) -> Result<bool, AwsFailure> {
        let item = self.table.get(&backup_key(subject), mark.key()).await?;
        Ok(item.as_ref().and_then(|i| get_s(i, "state")) == Some(TOLD))
    }

    /// A workload's claim as recorded: what it launches and its replacement, if settled.
    pub async fn workload_claim(
        &self,
        incident: &IncidentId,
        workload: &str,
    ) -> Result<Option<(ClaimedLaunch, Option<String>)>, AwsFailure> {
        let Some(item) = self.table.get(&incident_key(incident), &workload_key(workload)).await? else {
            return Ok(None);
        };
        let launch = get_s(&item, "launch").and_then(|l| serde_json::from_str::<ClaimedLaunch>(l).ok());
        Ok(launch.map(|l| (l, get_s(&item, "replacement_instance_id").map(str::to_string))))
    }

    /// The open incident of `server` that relaunched (or is relaunching) `workload`, if any:
    /// the ledger knows it at once, before EC2 describes the replacement.
    pub async fn relaunching(&self, server: &ServerId, workload: &str) -> Result<Option<IncidentId>, AwsFailure> {
        let Some(incident) = self.open_incident_of(server).await? else { return Ok(None) };
        let item = self.table.get(&incident_key(&incident), &workload_key(workload)).await?;
        let relaunched = item.is_some_and(|i| WorkloadStatus::parse(get_s(&i, "status")) != WorkloadStatus::Failed);
        Ok(relaunched.then_some(incident))
    }

    /// A promotion whose hook failed falls back to a cold launch: the claim settled with
    /// `standby` as its replacement goes back to launching `cold`, its lease already run
    /// out, so the next pass takes it over. Once: false when it changed since.
    pub async fn reopen_for_cold(
        &self,
        incident: &IncidentId,
        workload: &str,
        standby: &str,
        cold: &ClaimedLaunch,
    ) -> Result<bool, AwsFailure> {
        let changes = vec![
            set("status", launching()),
            set("launch", s(serde_json::to_string(cold).unwrap_or_default())),
            set("owner", s("")),
            set("lease_until", Value::N(0)),
            set("reported", Value::Bool(false)),
            set("promotion_failed", s(standby)),
            Change::Remove("attempted".into()),
            Change::Remove("outcome_event".into()),
            Change::Remove("replacement_instance_id".into()),
            Change::Remove("subnet_id".into()),
            Change::Remove("report_until".into()),
        ];
        let promoted = Condition::And(vec![
            Condition::equals("status", s(WorkloadStatus::Launched.as_str())),
            Condition::equals("replacement_instance_id", s(standby)),
        ]);
        self.table.update(&incident_key(incident), &workload_key(workload), changes, Some(promoted)).await
    }

    /// Claims running a promoted standby's hook, once per (incident, workload): false when
    /// another delivery holds it (or sent it). A claimant that died before sending is taken
    /// over once its lease runs out.
    pub async fn claim_hook(
        &self,
        incident: &IncidentId,
        workload: &str,
        instance_id: &str,
        owner: &str,
        now_epoch: i64,
        lease_seconds: i64,
    ) -> Result<bool, AwsFailure> {
        let free = Condition::Or(vec![
            Condition::ItemAbsent,
            Condition::And(vec![
                Condition::field_absent("command_id"),
                Condition::field_absent("verdict"),
                Condition::AtMost("lease_until".into(), now_epoch),
            ]),
        ]);
        let record = item(vec![
            ("instance_id", s(instance_id)),
            ("owner", s(owner)),
            ("lease_until", Value::N(now_epoch + lease_seconds)),
            ("expires_at", self.expires(now_epoch)),
        ]);
        self.table.put(&incident_key(incident), &hook_key(workload), record, Some(free)).await
    }

    /// The hook's command, once sent.
    pub async fn record_hook_command(
        &self,
        incident: &IncidentId,
        workload: &str,
        command_id: &str,
    ) -> Result<(), AwsFailure> {
        let changes = vec![set("command_id", s(command_id))];
        self.table
            .update(&incident_key(incident), &hook_key(workload), changes, Some(Condition::ItemExists))
            .await
            .map(drop)
    }

    /// Gives the hook back after a transient failure to send it.
    pub async fn release_hook(&self, incident: &IncidentId, workload: &str, owner: &str) -> Result<(), AwsFailure> {
        let holder = Condition::And(vec![
            Condition::equals("owner", s(owner)),
            Condition::field_absent("command_id"),
            Condition::field_absent("verdict"),
        ]);
        self.table.delete(&incident_key(incident), &hook_key(workload), Some(holder)).await.map(drop)
    }

    /// The hook of this (incident, workload): the standby it runs on, its command once sent,
    /// and its verdict once settled.
    pub async fn hook_of(&self, incident: &IncidentId, workload: &str) -> Result<Option<HookRecord>, AwsFailure> {
        let item = self.table.get(&incident_key(incident), &hook_key(workload)).await?;
        Ok(item.map(|i| HookRecord {
            instance_id: get_s(&i, "instance_id").unwrap_or_default().to_string(),
            command_id: get_s(&i, "command_id").map(str::to_string),
            verdict: get_s(&i, "verdict").and_then(HookVerdict::parse),
        }))
    }

    /// Settles whether a promotion's hook counts: the first verdict holds (a success served
    /// the standby; a failure, or fencing giving up on it, keeps it out of service), so a
    /// late or duplicate ending never reverses it. Returns the verdict that holds.
    pub async fn settle_hook(
        &self,
        incident: &IncidentId,
        workload: &str,
        verdict: HookVerdict,
        now_epoch: i64,
    ) -> Result<HookVerdict, AwsFailure> {
        let unsettled =
            Condition::Or(vec![Condition::field_absent("verdict"), Condition::equals("verdict", s(verdict.as_str()))]);
        let changes = vec![set("verdict", s(verdict.as_str())), set("expires_at", self.expires(now_epoch))];
        if self.table.update(&incident_key(incident), &hook_key(workload), changes, Some(unsettled)).await? {
            return Ok(verdict);
        }
        let held = self.hook_of(incident, workload).await?.and_then(|h| h.verdict);
        Ok(held.unwrap_or(verdict))
    }

    /// Tells a warm workload's standby drift once per (drift, standby) and marker.
    #[allow(clippy::too_many_arguments)]
    pub async fn tell_standby(
        &self,
        bus: &dyn Bus,
        server: &ServerId,
        workload: &str,
        key: &str,
        marker: &str,
        owner: &str,
        now_epoch: i64,
        events: &[ProjectEvent],
    ) -> Result<Told, AwsFailure> {
        self.tell(bus, &format!("STANDBY#{server}#{workload}"), key, marker, owner, now_epoch, events).await
    }

    /// Gives a claim back after a transient failure, so the retried event can take it.
    pub async fn release(&self, incident: &IncidentId, workload: &str, owner: &str) -> Result<(), AwsFailure> {
        let holder =
            Condition::And(vec![Condition::equals("owner", s(owner)), Condition::equals("status", launching())]);
        self.table.delete(&incident_key(incident), &workload_key(workload), Some(holder)).await.map(drop)
    }
}

/// A promotion hook's record (`INCIDENT#…/HOOK#workload`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRecord {
    pub instance_id: String,
    pub command_id: Option<String>,
    pub verdict: Option<HookVerdict>,
}

/// Whether a promoted standby's hook counts, settled once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookVerdict {
    Succeeded,
    Failed,
}

impl HookVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            HookVerdict::Succeeded => "succeeded",
            HookVerdict::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<HookVerdict> {
        match s {
            "succeeded" => Some(HookVerdict::Succeeded),
            "failed" => Some(HookVerdict::Failed),
            _ => None,
        }
    }
}

fn claim_record(item: &Item) -> ClaimRecord {
    match WorkloadStatus::parse(get_s(item, "status")) {
        WorkloadStatus::Launching => ClaimRecord::Launching { lease_until: get_n(item, "lease_until").unwrap_or(0) },
        WorkloadStatus::Launched | WorkloadStatus::Failed => ClaimRecord::Settled {
            reported: get_bool(item, "reported"),
            report_until: get_n(item, "report_until").unwrap_or(0),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mark another teller held when this one tried to take it, and gave back (its
    /// publish failed) before this one read it.
    struct GivenBack;

    #[async_trait::async_trait]
    impl Table for GivenBack {
        async fn get(&self, _: &str, _: &str) -> Result<Option<Item>, AwsFailure> {
            Ok(None)
        }
        async fn put(&self, _: &str, _: &str, _: Item, _: Option<Condition>) -> Result<bool, AwsFailure> {
            Ok(false)
        }
        async fn update(&self, _: &str, _: &str, _: Vec<Change>, _: Option<Condition>) -> Result<bool, AwsFailure> {
            unreachable!("nothing is marked told")
        }
        async fn delete(&self, _: &str, _: &str, _: Option<Condition>) -> Result<bool, AwsFailure> {
            unreachable!("nothing is given back")
        }
        async fn query(&self, _: &str, _: &str) -> Result<Vec<Item>, AwsFailure> {
            Ok(Vec::new())
        }
    }

    struct Silent;

    #[async_trait::async_trait]
    impl Bus for Silent {
        async fn publish(&self, _: &[ProjectEvent]) -> Result<(), AwsFailure> {
            unreachable!("another teller holds the mark")
        }
    }

    #[tokio::test]
    async fn a_mark_given_back_by_a_failed_teller_is_not_told() {
        let ledger = Ledger::new(Arc::new(GivenBack), 30);
        let incident = IncidentId::from_stored("inc-000000000000000000000001");
        let mark = IncidentMark::Fenced { instance_id: "i-0123456789abcdef0" };
        let told = ledger.tell_incident(&Silent, &incident, mark, "terminated", "me", 1_000, &[]).await.unwrap();
        assert_eq!(told, Told::ByAnother, "a retry must tell it");
    }
}
