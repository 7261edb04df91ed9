//! The events the functions exchange on the project's bus. `detail-type` names the fact;
//! `detail` carries it. Serialized adjacently tagged, so a whole EventBridge envelope
//! (`{"detail-type": …, "detail": …, "source": …}`) deserializes into [`ProjectEvent`].

use crate::launch::DestinationAttempt;
use crate::model::{RejectedWorkload, Workload};
use crate::partition::{HoldReason, RelaunchGrounds, Verdict, WitnessFinding};
use serde::{Deserialize, Serialize};

/// `source` of every event the project puts on its bus.
pub const EVENT_SOURCE: &str = "outposts-ha";

/// PutEvents: "The total entry size must be less than 256KB", an entry counted as its
/// Source, DetailType and Detail in UTF-8 (plus 14 bytes for Time and each Resources
/// entry, which the project does not set); at most 10 entries per request.
pub const MAX_PUT_BYTES: usize = 256 * 1024 - 1;
pub const MAX_PUT_ENTRIES: usize = 10;
/// Headroom for the envelope EventBridge builds around an entry (id, account, time,
/// region…), which counts toward the event's own 256 KB.
pub const ENVELOPE_BYTES: usize = 1024;
pub const MAX_ENTRY_BYTES: usize = MAX_PUT_BYTES - ENVELOPE_BYTES;

/// An event that cannot be put even after splitting its lists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {detail_type} event of {bytes} bytes does not fit in one PutEvents entry ({MAX_ENTRY_BYTES} bytes) and has no list to split")]
pub struct EntryTooLarge {
    pub detail_type: &'static str,
    pub bytes: usize,
}

/// The events as PutEvents requests: each event split until it fits one entry, and
/// entries grouped, in order, at most 10 and 256 KB per request.
pub fn put_batches(events: &[ProjectEvent]) -> Result<Vec<Vec<ProjectEvent>>, EntryTooLarge> {
    let mut batches: Vec<Vec<ProjectEvent>> = Vec::new();
    let mut bytes = 0;
    for entry in events.iter().cloned().flat_map(|e| e.split_to_fit(MAX_ENTRY_BYTES)) {
        let size = entry.entry_bytes();
        if size > MAX_ENTRY_BYTES {
            return Err(EntryTooLarge { detail_type: entry.detail_type(), bytes: size });
        }
        match batches.last_mut() {
            Some(batch) if batch.len() < MAX_PUT_ENTRIES && bytes + size <= MAX_PUT_BYTES => {
                bytes += size;
                batch.push(entry);
            }
            _ => {
                bytes = size;
                batches.push(vec![entry]);
            }
        }
    }
    Ok(batches)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "detail-type", content = "detail")]
pub enum ProjectEvent {
    IncidentOpened(IncidentOpened),
    IncidentContinued(IncidentContinued),
    RelaunchRequested(RelaunchRequested),
    WorkloadRelaunched(WorkloadRelaunched),
    WorkloadRelaunchFailed(WorkloadRelaunchFailed),
    ServerRecovered(ServerRecovered),
    FenceRequested(FenceRequested),
    BackupCompleted(BackupCompleted),
    BackupFailed(BackupFailed),
    BackupStale(BackupStale),
    OriginalFenced(OriginalFenced),
    IncidentClosed(IncidentClosed),
    RelaunchSuppressed(RelaunchSuppressed),
    DrillRequested(DrillRequested),
    DrillCompleted(DrillCompleted),
    WorkloadServing(WorkloadServing),
    MaintenanceRequested(MaintenanceRequested),
    UnfenceRequested(UnfenceRequested),
    IncidentStatusRequested(IncidentStatusRequested),
    OriginalUnfenced(OriginalUnfenced),
    WitnessVerdict(WitnessVerdict),
    MassOutage(MassOutage),
    ReleaseRequested(ReleaseRequested),
    FailoverCompleted(FailoverCompleted),
    OnCallAlert(OnCallAlert),
    FleetDrillRequested(FleetDrillRequested),
    FleetDrillCompleted(FleetDrillCompleted),
    FleetStatusRequested(FleetStatusRequested),
    FailbackRequested(FailbackRequested),
    StandbyReconcileRequested(StandbyReconcileRequested),
    StandbyPromoted(StandbyPromoted),
    PromotionFailed(PromotionFailed),
    StandbyDrifted(StandbyDrifted),
}

impl ProjectEvent {
    pub fn detail_type(&self) -> &'static str {
        match self {
            ProjectEvent::IncidentOpened(_) => "IncidentOpened",
            ProjectEvent::IncidentContinued(_) => "IncidentContinued",
            ProjectEvent::RelaunchRequested(_) => "RelaunchRequested",
            ProjectEvent::WorkloadRelaunched(_) => "WorkloadRelaunched",
            ProjectEvent::WorkloadRelaunchFailed(_) => "WorkloadRelaunchFailed",
            ProjectEvent::ServerRecovered(_) => "ServerRecovered",
            ProjectEvent::FenceRequested(_) => "FenceRequested",
            ProjectEvent::BackupCompleted(_) => "BackupCompleted",
            ProjectEvent::BackupFailed(_) => "BackupFailed",
            ProjectEvent::BackupStale(_) => "BackupStale",
            ProjectEvent::OriginalFenced(_) => "OriginalFenced",
            ProjectEvent::IncidentClosed(_) => "IncidentClosed",
            ProjectEvent::RelaunchSuppressed(_) => "RelaunchSuppressed",
            ProjectEvent::DrillRequested(_) => "DrillRequested",
            ProjectEvent::DrillCompleted(_) => "DrillCompleted",
            ProjectEvent::WorkloadServing(_) => "WorkloadServing",
            ProjectEvent::MaintenanceRequested(_) => "MaintenanceRequested",
            ProjectEvent::UnfenceRequested(_) => "UnfenceRequested",
            ProjectEvent::IncidentStatusRequested(_) => "IncidentStatusRequested",
            ProjectEvent::OriginalUnfenced(_) => "OriginalUnfenced",
            ProjectEvent::WitnessVerdict(_) => "WitnessVerdict",
            ProjectEvent::MassOutage(_) => "MassOutage",
            ProjectEvent::ReleaseRequested(_) => "ReleaseRequested",
            ProjectEvent::FailoverCompleted(_) => "FailoverCompleted",
            ProjectEvent::OnCallAlert(_) => "OnCallAlert",
            ProjectEvent::FleetDrillRequested(_) => "FleetDrillRequested",
            ProjectEvent::FleetDrillCompleted(_) => "FleetDrillCompleted",
            ProjectEvent::FleetStatusRequested(_) => "FleetStatusRequested",
            ProjectEvent::FailbackRequested(_) => "FailbackRequested",
            ProjectEvent::StandbyReconcileRequested(_) => "StandbyReconcileRequested",
            ProjectEvent::StandbyPromoted(_) => "StandbyPromoted",
            ProjectEvent::PromotionFailed(_) => "PromotionFailed",
            ProjectEvent::StandbyDrifted(_) => "StandbyDrifted",
        }
    }

    /// The entry's size as EventBridge counts it: Source, DetailType and Detail in UTF-8.
    pub fn entry_bytes(&self) -> usize {
        EVENT_SOURCE.len() + self.detail_type().len() + self.detail_json().len()
    }

    /// The event as events that each fit in `max_bytes`: one too large is split on its
    /// longest list (workloads, verdicts, instances…) into events carrying half of it
    /// each, every other field copied, until each part fits. One without a list to split
    /// stays whole.
    pub fn split_to_fit(self, max_bytes: usize) -> Vec<ProjectEvent> {
        if self.entry_bytes() <= max_bytes {
            return vec![self];
        }
        let detail_type = self.detail_type();
        let detail: serde_json::Value = serde_json::from_str(&self.detail_json()).unwrap_or_default();
        let longest = detail.as_object().and_then(|fields| {
            fields
                .iter()
                .filter_map(|(k, v)| v.as_array().filter(|a| a.len() >= 2).map(|a| (k, a)))
                .max_by_key(|(_, a)| serde_json::Value::Array(a.to_vec()).to_string().len())
                .map(|(k, a)| (k.clone(), a.clone()))
        });
        let Some((field, items)) = longest else { return vec![self] };
        let (first, second) = items.split_at(items.len() / 2);
        let mut parts = Vec::new();
        for half in [first, second] {
            let mut part = detail.clone();
            part[&field] = serde_json::Value::Array(half.to_vec());
            let wrapped = serde_json::json!({"detail-type": detail_type, "detail": part});
            match serde_json::from_value::<ProjectEvent>(wrapped) {
                Ok(e) => parts.extend(e.split_to_fit(max_bytes)),
                Err(_) => return vec![self],
            }
        }
        parts
    }

    /// The `detail` object alone, as PutEvents wants it.
    pub fn detail_json(&self) -> String {
        let tagged = serde_json::to_value(self).unwrap_or_default();
        tagged.get("detail").map(|d| d.to_string()).unwrap_or_else(|| "{}".into())
    }

    /// The protected server the event is about; backup events know it only when the
    /// instance carries the server's tag.
    pub fn server_id(&self) -> Option<&str> {
        match self {
            ProjectEvent::IncidentOpened(e) => Some(&e.server_id),
            ProjectEvent::IncidentContinued(e) => Some(&e.server_id),
            ProjectEvent::RelaunchRequested(e) => Some(&e.server_id),
            ProjectEvent::WorkloadRelaunched(e) => Some(&e.server_id),
            ProjectEvent::WorkloadRelaunchFailed(e) => Some(&e.server_id),
            ProjectEvent::ServerRecovered(e) => Some(&e.server_id),
            ProjectEvent::FenceRequested(e) => Some(&e.server_id),
            ProjectEvent::BackupCompleted(e) => e.server_id.as_deref(),
            ProjectEvent::BackupFailed(e) => e.server_id.as_deref(),
            ProjectEvent::BackupStale(e) => e.server_id.as_deref(),
            ProjectEvent::OriginalFenced(e) => Some(&e.server_id),
            ProjectEvent::IncidentClosed(e) => Some(&e.server_id),
            ProjectEvent::RelaunchSuppressed(e) => Some(&e.server_id),
            ProjectEvent::DrillRequested(e) => Some(&e.server_id),
            ProjectEvent::DrillCompleted(e) => Some(&e.server_id),
            ProjectEvent::WorkloadServing(e) => Some(&e.server_id),
            ProjectEvent::MaintenanceRequested(e) => Some(&e.server_id),
            ProjectEvent::UnfenceRequested(_) => None,
            ProjectEvent::IncidentStatusRequested(e) => Some(&e.server_id),
            ProjectEvent::OriginalUnfenced(e) => e.server_id.as_deref(),
            ProjectEvent::WitnessVerdict(e) => Some(&e.server_id),
            ProjectEvent::MassOutage(_) => None,
            ProjectEvent::ReleaseRequested(_) => None,
            ProjectEvent::FailoverCompleted(e) => Some(&e.server_id),
            ProjectEvent::OnCallAlert(e) => e.server_id.as_deref(),
            ProjectEvent::FleetDrillRequested(_) => None,
            ProjectEvent::FleetDrillCompleted(_) => None,
            ProjectEvent::FleetStatusRequested(_) => None,
            ProjectEvent::FailbackRequested(e) => Some(&e.server_id),
            ProjectEvent::StandbyReconcileRequested(_) => None,
            ProjectEvent::StandbyPromoted(e) => Some(&e.server_id),
            ProjectEvent::PromotionFailed(e) => Some(&e.server_id),
            ProjectEvent::StandbyDrifted(e) => Some(&e.server_id),
        }
    }
}

/// A protected server's alarm went into ALARM and a new incident was opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentOpened {
    pub incident_id: String,
    pub server_id: String,
    /// The site's name, from the server alarm's `outposts-ha:site-name` tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_name: Option<String>,
    pub alarm_name: String,
    pub alarm_arn: String,
    /// When the alarm changed state (the incident's detection time).
    pub detected_at: String,
    pub reason: String,
    /// Workloads handed to relaunch, by name.
    pub workloads: Vec<String>,
    /// Launch templates tagged for the server whose tags are unusable.
    #[serde(default)]
    pub rejected_workloads: Vec<RejectedWorkload>,
}

/// The alarm went into ALARM again while an incident was still open (a flap):
/// relaunch continues that incident, so replaced workloads are not launched twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentContinued {
    pub incident_id: String,
    pub server_id: String,
    pub alarm_name: String,
    pub realarmed_at: String,
}

/// Hand-off from alarm-handler to relaunch: launch these workloads for this incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelaunchRequested {
    pub incident_id: String,
    pub server_id: String,
    /// The site's name (the server alarm's `outposts-ha:site-name` tag), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_name: Option<String>,
    pub detected_at: String,
    pub workloads: Vec<Workload>,
    /// When `workloads` was read from the fleet (Unix ms). Requests arrive in any order; the
    /// failover report counts the newest read, never an older one delivered late.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workloads_read_at_ms: Option<i64>,
}

/// A replacement was accepted by EC2 for (incident, workload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadRelaunched {
    pub incident_id: String,
    pub server_id: String,
    pub workload: String,
    pub launch_template_id: String,
    pub replacement_instance_id: String,
    pub subnet_id: String,
    pub destinations_tried: Vec<DestinationAttempt>,
    pub detected_at: String,
    pub launch_requested_at: String,
    pub launch_accepted_at: String,
    /// True when a previous, interrupted attempt had already launched it and we adopted it.
    #[serde(default)]
    pub adopted: bool,
    /// Set when the workload already ran as a replacement from this earlier incident (the
    /// server failed again before fail-back): nothing was launched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub already_replaced_in: Option<String>,
    /// Stateful workloads: the backup the replacement was launched from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<RestoredFrom>,
    /// On what the witness said it was relaunched; none when the witness was not asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grounds: Option<RelaunchGrounds>,
    /// A stateful workload (launched from a backup): its original's fate on return depends
    /// on `grounds`.
    #[serde(default)]
    pub stateful: bool,
    /// A warm workload: its running standby was promoted (nothing was launched).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub promoted_standby: bool,
}

impl ProjectEvent {
    /// Records the backup a relaunched workload came from (other events are unchanged).
    pub fn with_restored_from(mut self, restored: Option<RestoredFrom>) -> Self {
        if let ProjectEvent::WorkloadRelaunched(r) = &mut self {
            r.restored_from = restored;
        }
        self
    }
}

/// The backup a stateful workload's replacement was launched from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoredFrom {
    pub image_id: String,
    pub parameter: String,
    /// When the backup was taken, if the AMI says (backups this stack made do).
    pub taken_at: Option<String>,
    /// Backup age at launch time.
    pub age_seconds: Option<i64>,
}

/// No replacement could be launched for (incident, workload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadRelaunchFailed {
    pub incident_id: String,
    pub server_id: String,
    /// The site's name (the server alarm's `outposts-ha:site-name` tag), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_name: Option<String>,
    pub workload: String,
    pub launch_template_id: String,
    /// Why: our own reason, or the last destination's AWS error code.
    pub error_code: RelaunchFailure,
    pub error_message: String,
    pub destinations_tried: Vec<DestinationAttempt>,
    /// Every destination refused: nothing more will be tried automatically.
    pub manual_action_required: bool,
    pub detected_at: String,
}

/// The alarm went from ALARM back to OK: the server is connected again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerRecovered {
    pub server_id: String,
    /// The incident still open for the server, if any (fencing acts on it).
    pub incident_id: Option<String>,
    pub alarm_name: String,
    pub recovered_at: String,
}

/// The server of an open incident is back: relaunch fences the originals of what the
/// incident replaced and closes it. Sent on every delivery of the recovery (and again by
/// each reconcile pass while the incident stays open); fencing is idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceRequested {
    pub incident_id: String,
    pub server_id: String,
    /// The site's name (the server alarm's `outposts-ha:site-name` tag), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_name: Option<String>,
    pub recovered_at: String,
}

/// A backup finished: the AMI was checked, tagged, the parameter moved to it (unless it
/// already named a newer one) and old backups were pruned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupCompleted {
    pub instance_id: String,
    pub workload: Option<String>,
    pub server_id: Option<String>,
    pub execution_id: String,
    pub parameter: String,
    pub image_id: String,
    pub snapshot_ids: Vec<String>,
    /// When the execution started: the point in time the backup holds.
    pub taken_at: String,
    pub completed_at: String,
    pub duration_seconds: i64,
    pub backup_age_seconds: i64,
    /// False when the parameter already named this AMI or a newer one.
    pub parameter_moved: bool,
    /// What the parameter named before (`None`: it did not exist).
    pub previous_image_id: Option<String>,
    pub pruned: Vec<PrunedBackup>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrunedBackup {
    pub image_id: String,
    pub snapshot_ids: Vec<String>,
    pub taken_at: String,
}

/// A backup did not produce a usable AMI; the parameter still names the previous one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupFailed {
    pub instance_id: String,
    pub workload: Option<String>,
    pub server_id: Option<String>,
    pub execution_id: String,
    /// The execution's final status (`Failed`, `Cancelled`, `TimedOut`, or `Success` when
    /// the result was unusable).
    pub status: String,
    pub failed_step: Option<String>,
    pub reason: String,
    pub parameter: Option<String>,
    /// What the parameter still names.
    pub parameter_image_id: Option<String>,
    /// An AMI the execution made that was not adopted (left for inspection).
    pub unused_image_id: Option<String>,
}

/// The newest good backup of a stateful instance is older than the RPO, or there is none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupStale {
    pub instance_id: String,
    pub workload: Option<String>,
    pub server_id: Option<String>,
    pub parameter: Option<String>,
    pub newest_image_id: Option<String>,
    pub newest_taken_at: Option<String>,
    pub age_seconds: Option<i64>,
    pub rpo_seconds: i64,
    pub reason: String,
}

/// An original instance of a replaced workload was fenced when its server came back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginalFenced {
    pub incident_id: String,
    pub server_id: String,
    /// The site's name (the server alarm's `outposts-ha:site-name` tag), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_name: Option<String>,
    pub workload: String,
    pub instance_id: String,
    pub replacement_instance_id: String,
    pub policy: crate::fencing::FencingPolicy,
    pub action: FenceOutcome,
    /// Isolate: the groups its primary network interface had.
    #[serde(default)]
    pub previous_security_groups: Vec<String>,
    /// Isolate: the groups each of its network interfaces had (kept in its
    /// `outposts-ha:fenced-groups:<interface>` tags).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_interface_groups: Vec<crate::fencing::InterfaceGroups>,
    pub quarantine_security_group: Option<String>,
}

/// Why a workload (or one destination) could not be launched: one of this project's own
/// reasons, or the AWS error code EC2 answered with. Serialized as the code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum RelaunchFailure {
    /// A stateful workload's backup parameter does not exist.
    NoBackup,
    /// The parameter names an AMI that does not exist.
    BackupImageMissing,
    /// The parameter names an AMI that is not available.
    BackupImageUnavailable,
    /// The request lists no subnet for the workload.
    NoDestination,
    /// The destination's Outpost reported no capacity for the instance type.
    KnownCapacityShortage,
    /// The destination subnet lives on the failed server itself.
    DestinationOnFailedServer,
    /// The replacement EC2 accepted stopped or terminated before the server came back.
    ReplacementLost,
    /// EC2 refused with this error code.
    Aws(String),
}

impl RelaunchFailure {
    pub fn as_str(&self) -> &str {
        match self {
            RelaunchFailure::NoBackup => "NoBackup",
            RelaunchFailure::BackupImageMissing => "BackupImageMissing",
            RelaunchFailure::BackupImageUnavailable => "BackupImageUnavailable",
            RelaunchFailure::NoDestination => "NoDestination",
            RelaunchFailure::KnownCapacityShortage => "KnownCapacityShortage",
            RelaunchFailure::DestinationOnFailedServer => "DestinationOnFailedServer",
            RelaunchFailure::ReplacementLost => "ReplacementLost",
            RelaunchFailure::Aws(code) => code,
        }
    }

    /// The workload is stateful and has no usable backup to start from.
    pub fn is_missing_backup(&self) -> bool {
        matches!(
            self,
            RelaunchFailure::NoBackup | RelaunchFailure::BackupImageMissing | RelaunchFailure::BackupImageUnavailable
        )
    }
}

impl From<String> for RelaunchFailure {
    fn from(code: String) -> Self {
        match code.as_str() {
            "NoBackup" => RelaunchFailure::NoBackup,
            "BackupImageMissing" => RelaunchFailure::BackupImageMissing,
            "BackupImageUnavailable" => RelaunchFailure::BackupImageUnavailable,
            "NoDestination" => RelaunchFailure::NoDestination,
            "KnownCapacityShortage" => RelaunchFailure::KnownCapacityShortage,
            "DestinationOnFailedServer" => RelaunchFailure::DestinationOnFailedServer,
            "ReplacementLost" => RelaunchFailure::ReplacementLost,
            _ => RelaunchFailure::Aws(code),
        }
    }
}

impl From<RelaunchFailure> for String {
    fn from(f: RelaunchFailure) -> Self {
        f.as_str().to_string()
    }
}

impl std::fmt::Display for RelaunchFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What fencing did to one original.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FenceOutcome {
    /// Its security groups were swapped for the quarantine group.
    #[serde(rename = "isolated")]
    Isolated,
    #[serde(rename = "terminated")]
    Terminated,
    /// Policy `notify`: nothing was touched.
    #[serde(rename = "left running")]
    LeftRunning,
    /// Policy `isolate`, but the instance has no VPC to isolate it in.
    #[serde(rename = "left running (no VPC to isolate in)")]
    LeftRunningNoVpc,
    /// Fencing it failed in a way a retry cannot fix (termination protection, a refusal).
    #[serde(rename = "left running (fencing failed)")]
    LeftRunningFenceFailed,
    /// Isolating it failed for good after some of its network interfaces were quarantined:
    /// it may still serve on the others.
    #[serde(rename = "partly isolated (fencing failed)")]
    PartlyIsolatedFenceFailed,
    /// Not touched: its replacement is not running, so it is the only copy.
    #[serde(rename = "kept (its replacement is not running)")]
    KeptReplacementNotRunning,
    /// Not touched, but still isolated by an earlier incident while its replacement is not
    /// running: no copy of the workload serves until a person unfences it.
    #[serde(rename = "still isolated (its replacement is not running)")]
    StillIsolatedReplacementNotRunning,
    /// A stateful workload relaunched while its original answered the witness (or the
    /// witness could not say): both copies may hold writes, neither is touched.
    #[serde(rename = "kept (both copies may hold writes)")]
    KeptBothCopies,
}

impl FenceOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            FenceOutcome::Isolated => "isolated",
            FenceOutcome::Terminated => "terminated",
            FenceOutcome::LeftRunning => "left running",
            FenceOutcome::LeftRunningNoVpc => "left running (no VPC to isolate in)",
            FenceOutcome::LeftRunningFenceFailed => "left running (fencing failed)",
            FenceOutcome::PartlyIsolatedFenceFailed => "partly isolated (fencing failed)",
            FenceOutcome::KeptReplacementNotRunning => "kept (its replacement is not running)",
            FenceOutcome::StillIsolatedReplacementNotRunning => "still isolated (its replacement is not running)",
            FenceOutcome::KeptBothCopies => "kept (both copies may hold writes)",
        }
    }

    /// The replacement is not running: the original is the only copy there is.
    pub fn replacement_not_running(self) -> bool {
        matches!(self, FenceOutcome::KeptReplacementNotRunning | FenceOutcome::StillIsolatedReplacementNotRunning)
    }

    /// Two copies of the workload may now run: a person must act.
    pub fn leaves_original_running(self) -> bool {
        matches!(
            self,
            FenceOutcome::LeftRunning
                | FenceOutcome::KeptBothCopies
                | FenceOutcome::LeftRunningNoVpc
                | FenceOutcome::LeftRunningFenceFailed
                | FenceOutcome::PartlyIsolatedFenceFailed
        )
    }
}

/// The server is back and every original of a replaced workload was handled: the
/// incident is closed and the server may open a new one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentClosed {
    pub incident_id: String,
    pub server_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_name: Option<String>,
    pub recovered_at: String,
    pub replaced: Vec<String>,
    pub fenced: Vec<String>,
    /// What happened to each original of a replaced workload.
    #[serde(default)]
    pub originals: Vec<HandledOriginal>,
    /// Workloads the incident did not replace (failed, held, lost): their originals run
    /// again now, beside any copy a person launched by hand.
    #[serde(default)]
    pub not_replaced: Vec<String>,
    /// The incident's milestones, oldest first.
    #[serde(default)]
    pub timeline: Vec<Milestone>,
    pub summary: String,
}

/// One original of a replaced workload as the incident left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandledOriginal {
    pub workload: String,
    pub instance_id: String,
    pub action: FenceOutcome,
}

/// A moment in an incident's life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Milestone {
    /// RFC 3339.
    pub at: String,
    pub what: String,
}

/// A protected server's alarm went into ALARM during its maintenance window: recorded,
/// nothing relaunched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelaunchSuppressed {
    /// The incident this transition would have opened.
    pub incident_id: String,
    pub server_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_name: Option<String>,
    pub alarm_name: String,
    pub detected_at: String,
    pub maintenance_until: String,
    pub maintenance_reason: String,
    /// Workloads that would have been relaunched.
    pub workloads: Vec<String>,
}

/// A replacement is running and, behind its target groups, healthy; the originals were
/// deregistered from them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadServing {
    pub incident_id: String,
    pub server_id: String,
    pub workload: String,
    pub replacement_instance_id: String,
    /// Target group names; empty when the workload has none (running is serving).
    pub target_groups: Vec<String>,
    /// Originals' targets taken out of the groups.
    pub deregistered: Vec<String>,
    pub detected_at: String,
    pub serving_at: String,
    pub detection_to_serving_seconds: Option<f64>,
}

/// Command to relaunch (`make drill`): dry-run every workload of the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillRequested {
    pub server_id: String,
    pub requested_at: String,
}

/// One workload's drill result: where it would launch, or why it would not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillVerdict {
    pub workload: String,
    pub launch_template_id: String,
    pub ready: bool,
    /// The subnet the launch would use.
    pub destination: Option<String>,
    /// Stateful workloads: the backup it would start from.
    pub restored_from: Option<RestoredFrom>,
    /// Every destination's refusal, or the reason it could not be tried.
    pub problems: Vec<String>,
    /// Its witness, when the witness decides its fate: who probes what, or why nobody can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness: Option<String>,
}

/// A drill ran every workload of a server through a dry-run relaunch; nothing launched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillCompleted {
    pub server_id: String,
    pub requested_at: String,
    pub verdicts: Vec<DrillVerdict>,
}

/// Command to relaunch (the weekly schedule, `FleetDrillSchedule`): drill every protected
/// server and tell the result once, as one digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetDrillRequested {
    pub requested_at: String,
}

/// One server's part of a fleet drill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerDrill {
    pub server_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_name: Option<String>,
    /// Workloads that would relaunch.
    pub ready: u32,
    /// Those that would not, with why.
    pub not_ready: Vec<DrillVerdict>,
    /// Why the server could not be drilled at all (nothing declared, AWS refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// A fleet drill ran every protected server through a dry-run relaunch; nothing launched.
/// The digest: counts, and the servers that need a person (the rest are in the ledger).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetDrillCompleted {
    pub requested_at: String,
    pub completed_at: String,
    pub servers_drilled: u32,
    /// Servers with every workload ready and something to relaunch.
    pub servers_ready: u32,
    /// The servers that need a person.
    pub servers: Vec<ServerDrill>,
}

impl ServerDrill {
    /// Why this server needs a person, if it does.
    pub fn needs_person(&self) -> Option<String> {
        if let Some(problem) = &self.problem {
            return Some(problem.clone());
        }
        match self.not_ready.len() {
            0 if self.ready == 0 => Some("no workloads declared".into()),
            0 => None,
            n => Some(format!("{n} workload(s) would not relaunch")),
        }
    }
}

/// Query to the operator function (`make status`): how each named server stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetStatusRequested {
    pub server_ids: Vec<String>,
    pub requested_at: String,
}

/// Command to the operator function (`make failback`): move the server's stateless
/// workloads home once it is back — originals unfenced, in their target groups and
/// healthy, then the replacements out and terminated. Each request advances; repeat it
/// until it says done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailbackRequested {
    pub server_id: String,
    pub requested_at: String,
}

/// Command to the operator function (`make maintenance`): suppress relaunch for the server until
/// `until` (RFC 3339). An `until` at or before `requested_at` ends the window now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceRequested {
    pub server_id: String,
    pub until: String,
    pub reason: String,
    pub requested_at: String,
}

/// Command to the operator function (`make unfence`): put fenced originals back in
/// service — one instance, or every original fenced for an incident (exactly one of the two
/// is set). An original whose incident is open or whose replacement still runs is put back
/// only when `force` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnfenceRequested {
    #[serde(default)]
    pub instance_id: Option<String>,
    #[serde(default)]
    pub incident_id: Option<String>,
    #[serde(default)]
    pub force: bool,
    pub requested_at: String,
}

/// A fenced original was put back in service on an operator's word (`make unfence`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginalUnfenced {
    /// The incident it had been fenced for.
    pub incident_id: String,
    /// The Outposts server it runs on, when EC2 says.
    pub server_id: Option<String>,
    pub workload: Option<String>,
    pub instance_id: String,
    /// The groups put back on its primary network interface; empty when it had not been isolated.
    pub security_groups: Vec<String>,
    /// The groups put back on each network interface.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interface_groups: Vec<crate::fencing::InterfaceGroups>,
    /// Put back although its incident was open or its replacement still ran.
    pub forced: bool,
    /// A live replacement of its workload when it was put back (only when forced).
    pub replacement_instance_id: Option<String>,
    /// Put back to move its workload home (`make failback`): the replacement is
    /// terminated once the original serves.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub moving_home: bool,
    pub unfenced_at: String,
}

/// Query to the operator function (`make incident`, `make drill GAMEDAY=1`, the demo): the
/// ledger's story of the server's open incident, or of the named one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentStatusRequested {
    pub server_id: String,
    #[serde(default)]
    pub incident_id: Option<String>,
    /// With no incident named: the newest one when none is open (`make incident SERVER=…`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub latest: bool,
    pub requested_at: String,
}

/// What the witness said about a down server's originals and what each workload does on
/// it (told once per incident).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessVerdict {
    pub incident_id: String,
    pub server_id: String,
    /// The site's name (the server alarm's `outposts-ha:site-name` tag), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_name: Option<String>,
    pub finding: WitnessFinding,
    /// Held until an operator releases them (`release_command`) or the server comes back.
    pub held: Vec<HeldWorkload>,
    /// Relaunched on this finding, each with its grounds.
    pub relaunching: Vec<RelaunchOnGrounds>,
    pub release_command: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldWorkload {
    pub workload: String,
    pub why: HoldReason,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelaunchOnGrounds {
    pub workload: String,
    pub grounds: RelaunchGrounds,
}

/// More servers than the breaker allows went down within its window: a WAN or regional
/// event. Stateful workloads on every server of the wave are held (told once per wave).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MassOutage {
    /// The wave's first outage (RFC 3339): its identity.
    pub started_at: String,
    pub servers: Vec<String>,
    /// More than this many servers within `window_minutes` make a wave.
    pub threshold: usize,
    pub window_minutes: i64,
    pub release_command: String,
}

/// Command to the operator function (`make release`): relaunch held workloads on the
/// operator's word: every held workload of the servers named, or the one workload named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRequested {
    #[serde(default)]
    pub server_ids: Vec<String>,
    #[serde(default)]
    pub workload: Option<String>,
    pub requested_at: String,
}

/// The failover of one incident as it stands once every workload settled, or when the
/// deadline passed first (told once per incident).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailoverCompleted {
    pub incident_id: String,
    pub server_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_name: Option<String>,
    pub detected_at: String,
    pub reported_at: String,
    /// Every workload settled; false: the deadline passed first.
    pub complete: bool,
    /// Workloads the incident covers.
    pub workloads: usize,
    /// Replacements running and healthy behind their target groups.
    pub serving: Vec<String>,
    /// Replacements launched that do not serve yet.
    pub not_serving: Vec<NotServing>,
    pub failed: Vec<FailedRelaunch>,
    /// Held until an operator releases them (partition, wave).
    pub held: Vec<String>,
    /// Not launched yet (a launch in flight, or a witness still out).
    pub pending: Vec<String>,
    /// Launch templates tagged for the server that are not usable workloads (never
    /// relaunched): `name (lt-…): reason`.
    #[serde(default)]
    pub unusable: Vec<String>,
    /// The workload slowest from detection to serving.
    pub slowest: Option<SlowestToServe>,
    /// Backups the stateful replacements started from.
    pub backups: Vec<BackupUsed>,
}

impl FailoverCompleted {
    /// Something is left for a person: a failure, a hold, or a workload not serving yet.
    pub fn needs_person(&self) -> bool {
        !(self.failed.is_empty()
            && self.held.is_empty()
            && self.not_serving.is_empty()
            && self.pending.is_empty()
            && self.unusable.is_empty())
    }

    /// Replacements EC2 accepted (serving or not).
    pub fn launched(&self) -> usize {
        self.serving.len() + self.not_serving.len()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotServing {
    pub workload: String,
    pub replacement_instance_id: Option<String>,
    /// What its last health check was waiting for (`tg-name: unhealthy`).
    pub waiting_for: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedRelaunch {
    pub workload: String,
    pub error_code: RelaunchFailure,
    pub error_message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlowestToServe {
    pub workload: String,
    pub detection_to_serving_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupUsed {
    pub workload: String,
    pub image_id: String,
    pub age_seconds: Option<i64>,
}

/// What on-call tooling does with an alert: open (or add to) the incident, or resolve it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertAction {
    Trigger,
    Resolve,
}

/// The notifier's page for on-call tooling, shaped for PagerDuty Events v2 (its rule
/// forwards it through an API destination): one alert per incident by `dedup_key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnCallAlert {
    /// The incident id (a wave's alerts: `wave-<started_at>`).
    pub dedup_key: String,
    pub action: AlertAction,
    /// PagerDuty's severities: critical, error, warning or info.
    pub severity: String,
    /// At most 1,024 characters.
    pub summary: String,
    /// The site and server the alert is about.
    pub source: String,
    /// The fact it reports (`detail-type`).
    pub event_type: String,
    pub incident_id: Option<String>,
    pub server_id: Option<String>,
    pub occurred_at: String,
    pub runbook_url: String,
    pub dashboard_url: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drill(verdicts: usize, problem_bytes: usize) -> ProjectEvent {
        ProjectEvent::DrillCompleted(DrillCompleted {
            server_id: "op-0123456789abcdef0".into(),
            requested_at: "2026-11-22T10:00:00Z".into(),
            verdicts: (0..verdicts)
                .map(|i| DrillVerdict {
                    witness: None,
                    workload: format!("app-{i:04}"),
                    launch_template_id: format!("lt-{i:017x}"),
                    ready: false,
                    destination: None,
                    restored_from: None,
                    problems: vec!["x".repeat(problem_bytes)],
                })
                .collect(),
        })
    }

    #[test]
    fn an_event_too_large_for_one_entry_is_split_without_losing_a_verdict() {
        // 1,000 workloads with a 600-byte problem each: about 700 KB of drill results.
        let big = drill(1_000, 600);
        assert!(big.entry_bytes() > MAX_PUT_BYTES);
        let batches = put_batches(std::slice::from_ref(&big)).unwrap();
        let mut names = Vec::new();
        for batch in &batches {
            assert!(batch.len() <= MAX_PUT_ENTRIES);
            assert!(batch.iter().map(ProjectEvent::entry_bytes).sum::<usize>() <= MAX_PUT_BYTES);
            for e in batch {
                assert!(e.entry_bytes() <= MAX_ENTRY_BYTES);
                let ProjectEvent::DrillCompleted(d) = e else { panic!("a drill part") };
                assert_eq!(d.server_id, "op-0123456789abcdef0", "every part keeps the other fields");
                names.extend(d.verdicts.iter().map(|v| v.workload.clone()));
            }
        }
        let expected: Vec<String> = (0..1_000).map(|i| format!("app-{i:04}")).collect();
        assert_eq!(names, expected, "every verdict once, in order");
        assert!(batches.len() >= 3);
    }

    #[test]
    fn small_events_share_requests_of_ten_and_one_that_cannot_split_is_named() {
        let small: Vec<ProjectEvent> = (0..25).map(|_| drill(1, 10)).collect();
        let sizes: Vec<usize> = put_batches(&small).unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![10, 10, 5]);
        let unsplittable = drill(1, 300 * 1024);
        let err = put_batches(&[unsplittable]).unwrap_err();
        assert_eq!(err.detail_type, "DrillCompleted");
        assert!(err.to_string().contains("does not fit"), "{err}");
    }

    #[test]
    fn envelope_round_trip_ignores_envelope_fields() {
        let envelope = serde_json::json!({
            "version": "0", "id": "x", "source": EVENT_SOURCE, "account": "123456789012",
            "time": "2026-11-22T10:00:00Z", "region": "eu-west-1", "resources": [],
            "detail-type": "ServerRecovered",
            "detail": {"server_id": "op-0123456789abcdef0", "incident_id": null, "alarm_name": "a", "recovered_at": "t"}
        });
        let e: ProjectEvent = serde_json::from_value(envelope).unwrap();
        assert_eq!(e.detail_type(), "ServerRecovered");
        assert_eq!(e.server_id(), Some("op-0123456789abcdef0"));
        let detail: serde_json::Value = serde_json::from_str(&e.detail_json()).unwrap();
        assert_eq!(detail["alarm_name"], "a");
    }

    #[test]
    fn unknown_detail_type_is_an_error() {
        let envelope = serde_json::json!({"detail-type": "SomethingElse", "detail": {}});
        assert!(serde_json::from_value::<ProjectEvent>(envelope).is_err());
    }
}

/// Command to relaunch (the `StandbyReconcileSchedule`): keep every warm workload's standby
/// present, running, current and on the right destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandbyReconcileRequested {
    pub requested_at: String,
}

/// Relaunch to itself: a warm workload's standby became the incident's replacement; run its
/// promotion hook (if it names one), then put it behind its target groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandbyPromoted {
    pub incident_id: String,
    pub server_id: String,
    pub workload: String,
    pub instance_id: String,
    pub subnet_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion_document: Option<String>,
    pub promoted_at: String,
}

/// A promoted standby's hook failed (or could not run): the workload falls back to a cold
/// relaunch. The standby is kept out of service, untouched, for a person to inspect (its
/// data may be newer than the backup) and terminate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromotionFailed {
    pub incident_id: String,
    pub server_id: String,
    pub workload: String,
    pub standby_instance_id: String,
    pub promotion_document: String,
    pub reason: String,
    pub failed_at: String,
    /// A person must look at the kept standby.
    pub manual_action_required: bool,
}

/// The reconciler found a warm workload's standby not as it should be, and what it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandbyDrifted {
    pub server_id: String,
    pub workload: String,
    pub drift: crate::standby::StandbyDrift,
    /// The standby it concerns (none when missing or no destination can hold one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby_instance_id: Option<String>,
    /// What was done: `launched` (a new standby), `retired` (terminated), `waiting` (the
    /// successor must run first), or `none` (a person must act).
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launched_instance_id: Option<String>,
    pub detail: String,
    pub observed_at: String,
}
