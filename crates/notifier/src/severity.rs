//! The severity model: how soon a person must act on an event. It is the `severity`
//! message attribute subscribers filter on and the `[TAG]` that starts every subject.
//!
//! - **critical**: act now, or a workload stays down or runs twice. A server went down
//!   (`IncidentOpened`); a workload is held while its server is partitioned or its witness
//!   cannot say (`WitnessVerdict` with a hold), or many servers went down at once
//!   (`MassOutage`); a workload will not be relaunched automatically, because every
//!   destination refused or a stateful workload has no usable backup
//!   (`WorkloadRelaunchFailed`); an original was left running beside its replacement
//!   (`OriginalFenced`), or put back by force beside it (`OriginalUnfenced`).
//! - **warning**: service goes on, but a person should look soon. The witness could not
//!   say, or holds only for a wave (`WitnessVerdict`). The alarm flapped
//!   (`IncidentContinued`); a relaunch failed and will be retried
//!   (`WorkloadRelaunchFailed`); a server came back and its originals may run beside their
//!   replacements (`ServerRecovered`); an original was isolated or terminated
//!   (`OriginalFenced`); a server went down during maintenance and nothing was relaunched
//!   (`RelaunchSuppressed`); a backup failed or is older than its RPO (`BackupFailed`,
//!   `BackupStale`); a drill found a workload that would not relaunch (`DrillCompleted`).
//! - **info**: nothing to do. A witness verdict that held nothing, `WorkloadRelaunched`, `WorkloadServing`, `IncidentClosed`,
//!   `BackupCompleted`, an original an operator put back (`OriginalUnfenced`), and a drill
//!   where every workload would relaunch.
//!
//! Commands between functions (`RelaunchRequested`, `DrillRequested`,
//! `MaintenanceRequested`, `UnfenceRequested`, `IncidentStatusRequested`,
//! `ReleaseRequested`) have no
//! severity: they are not news for people and are not sent.

use ha_domain::contract::ProjectEvent;
use ha_domain::partition::WitnessFinding;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// `None` for events that are commands between functions, not news for people.
pub fn severity_of(event: &ProjectEvent) -> Option<Severity> {
    let severity = match event {
        ProjectEvent::RelaunchRequested(_)
        | ProjectEvent::FenceRequested(_)
        | ProjectEvent::DrillRequested(_)
        | ProjectEvent::MaintenanceRequested(_)
        | ProjectEvent::UnfenceRequested(_)
        | ProjectEvent::IncidentStatusRequested(_)
        | ProjectEvent::ReleaseRequested(_) => return None,
        ProjectEvent::IncidentOpened(_) | ProjectEvent::MassOutage(_) => Severity::Critical,
        ProjectEvent::WitnessVerdict(e) => {
            if e.held.iter().any(|h| !h.why.is_wave()) {
                Severity::Critical
            } else if e.held.is_empty() && matches!(e.finding, WitnessFinding::Answered { .. }) {
                Severity::Info
            } else {
                Severity::Warning
            }
        }
        ProjectEvent::WorkloadRelaunchFailed(e) => {
            if e.error_code.is_missing_backup() || e.manual_action_required {
                Severity::Critical
            } else {
                Severity::Warning
            }
        }
        ProjectEvent::OriginalFenced(e) => {
            if e.action.leaves_original_running() || e.action.replacement_not_running() {
                Severity::Critical
            } else {
                Severity::Warning
            }
        }
        ProjectEvent::OriginalUnfenced(e) => {
            if e.forced {
                Severity::Critical
            } else {
                Severity::Info
            }
        }
        ProjectEvent::DrillCompleted(e) => {
            if e.verdicts.iter().all(|v| v.ready) {
                Severity::Info
            } else {
                Severity::Warning
            }
        }
        ProjectEvent::IncidentContinued(_)
        | ProjectEvent::ServerRecovered(_)
        | ProjectEvent::RelaunchSuppressed(_)
        | ProjectEvent::BackupFailed(_)
        | ProjectEvent::BackupStale(_) => Severity::Warning,
        ProjectEvent::WorkloadRelaunched(_)
        | ProjectEvent::WorkloadServing(_)
        | ProjectEvent::IncidentClosed(_)
        | ProjectEvent::BackupCompleted(_) => Severity::Info,
    };
    Some(severity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ha_domain::contract::{DrillVerdict, FenceOutcome, RelaunchFailure};
    use std::path::Path;

    fn sample(name: &str) -> ProjectEvent {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/contract").join(format!("{name}.json"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    const CAPACITY: &str = "InsufficientInstanceCapacity";

    fn relaunch_failed(code: &str, manual_action_required: bool) -> ProjectEvent {
        let ProjectEvent::WorkloadRelaunchFailed(mut e) = sample("WorkloadRelaunchFailed") else { unreachable!() };
        e.error_code = RelaunchFailure::from(code.to_string());
        e.manual_action_required = manual_action_required;
        ProjectEvent::WorkloadRelaunchFailed(e)
    }

    fn fenced(action: FenceOutcome) -> ProjectEvent {
        let ProjectEvent::OriginalFenced(mut e) = sample("OriginalFenced") else { unreachable!() };
        e.action = action;
        ProjectEvent::OriginalFenced(e)
    }

    fn unfenced(forced: bool) -> ProjectEvent {
        let ProjectEvent::OriginalUnfenced(mut e) = sample("OriginalUnfenced") else { unreachable!() };
        e.forced = forced;
        ProjectEvent::OriginalUnfenced(e)
    }

    fn drill(ready: &[bool]) -> ProjectEvent {
        let ProjectEvent::DrillCompleted(mut e) = sample("DrillCompleted") else { unreachable!() };
        let verdict = e.verdicts[0].clone();
        e.verdicts = ready.iter().map(|&ready| DrillVerdict { ready, ..verdict.clone() }).collect();
        ProjectEvent::DrillCompleted(e)
    }

    fn recovered_without_incident() -> ProjectEvent {
        let ProjectEvent::ServerRecovered(mut e) = sample("ServerRecovered") else { unreachable!() };
        e.incident_id = None;
        ProjectEvent::ServerRecovered(e)
    }

    #[test]
    fn each_event_kind_has_its_documented_severity() {
        use Severity::{Critical, Info, Warning};
        let rows: Vec<(&str, ProjectEvent, Option<Severity>)> = vec![
            ("IncidentOpened", sample("IncidentOpened"), Some(Critical)),
            ("IncidentContinued", sample("IncidentContinued"), Some(Warning)),
            ("WorkloadRelaunched", sample("WorkloadRelaunched"), Some(Info)),
            ("failed, will retry", relaunch_failed(CAPACITY, false), Some(Warning)),
            ("failed, no destination", relaunch_failed("NoDestination", false), Some(Warning)),
            ("failed, known shortage", relaunch_failed("KnownCapacityShortage", false), Some(Warning)),
            ("failed, every destination refused", relaunch_failed(CAPACITY, true), Some(Critical)),
            ("failed, no backup", relaunch_failed("NoBackup", false), Some(Critical)),
            ("failed, backup image missing", relaunch_failed("BackupImageMissing", false), Some(Critical)),
            ("failed, backup image unavailable", relaunch_failed("BackupImageUnavailable", false), Some(Critical)),
            ("failed, no backup, every destination refused", relaunch_failed("NoBackup", true), Some(Critical)),
            ("ServerRecovered", sample("ServerRecovered"), Some(Warning)),
            ("ServerRecovered, no incident open", recovered_without_incident(), Some(Warning)),
            ("BackupCompleted", sample("BackupCompleted"), Some(Info)),
            ("BackupFailed", sample("BackupFailed"), Some(Warning)),
            ("BackupStale", sample("BackupStale"), Some(Warning)),
            ("original isolated", fenced(FenceOutcome::Isolated), Some(Warning)),
            ("original terminated", fenced(FenceOutcome::Terminated), Some(Warning)),
            ("original left running", fenced(FenceOutcome::LeftRunning), Some(Critical)),
            ("original left running, no VPC", fenced(FenceOutcome::LeftRunningNoVpc), Some(Critical)),
            ("original left running, fencing failed", fenced(FenceOutcome::LeftRunningFenceFailed), Some(Critical)),
            (
                "original partly isolated, fencing failed",
                fenced(FenceOutcome::PartlyIsolatedFenceFailed),
                Some(Critical),
            ),
            ("original kept, replacement not running", fenced(FenceOutcome::KeptReplacementNotRunning), Some(Critical)),
            (
                "original still isolated, replacement not running",
                fenced(FenceOutcome::StillIsolatedReplacementNotRunning),
                Some(Critical),
            ),
            ("IncidentClosed", sample("IncidentClosed"), Some(Info)),
            ("original put back", unfenced(false), Some(Info)),
            ("original put back by force", unfenced(true), Some(Critical)),
            ("RelaunchSuppressed", sample("RelaunchSuppressed"), Some(Warning)),
            ("drill, every workload ready", drill(&[true, true]), Some(Info)),
            ("drill, one workload not ready", drill(&[true, false]), Some(Warning)),
            ("drill, no workloads", drill(&[]), Some(Info)),
            ("WorkloadServing", sample("WorkloadServing"), Some(Info)),
            ("RelaunchRequested", sample("RelaunchRequested"), None),
            ("DrillRequested", sample("DrillRequested"), None),
            ("MaintenanceRequested", sample("MaintenanceRequested"), None),
            ("UnfenceRequested", sample("UnfenceRequested"), None),
            ("IncidentStatusRequested", sample("IncidentStatusRequested"), None),
        ];
        for (case, event, expected) in rows {
            assert_eq!(severity_of(&event), expected, "{case}");
        }
    }

    #[test]
    fn severities_are_named_for_filter_policies() {
        for (severity, name) in
            [(Severity::Info, "info"), (Severity::Warning, "warning"), (Severity::Critical, "critical")]
        {
            assert_eq!(severity.as_str(), name);
        }
    }
}
