//! The severity model: how soon a person must act. It is the `severity` message attribute
//! subscription filter policies match on (the stack's email subscription takes warning
//! and above by default), the `[TAG]` that starts every subject, and what pages.
//!
//! An incident reaches people as a few messages: its opening, one failover summary, one
//! message per item that needs a person, and its closing. Per-workload facts
//! (`WorkloadRelaunched`, `WorkloadServing`, an original isolated or terminated,
//! `ServerRecovered`) and successful backups stay on the bus and in the ledger: no message.
//!
//! - **critical**: act now, or a workload stays down or runs twice. A server went down
//!   (`IncidentOpened`); a workload is held while its server is partitioned or its witness
//!   cannot say (`WitnessVerdict` with a hold), or many servers went down at once
//!   (`MassOutage`); a workload was not relaunched (`WorkloadRelaunchFailed`: every
//!   destination refused, no usable backup, its replacement lost); an original was left
//!   running beside its replacement, or is the only copy (`OriginalFenced`), or was put
//!   back by force beside it (`OriginalUnfenced`); a failover summary with items left for
//!   a person (`FailoverCompleted`).
//! - **warning**: service goes on, but a person should look soon. The witness could not
//!   say, or holds only for a wave (`WitnessVerdict`); the alarm flapped
//!   (`IncidentContinued`); a server went down during maintenance and nothing was
//!   relaunched (`RelaunchSuppressed`); a backup failed or is older than its RPO
//!   (`BackupFailed`, `BackupStale`); a drill found a workload that would not relaunch
//!   (`DrillCompleted`), or a server of the fleet drill's digest that needs a person
//!   (`FleetDrillCompleted`); a warm standby's promotion hook failed and the workload fell
//!   back to a cold launch (`PromotionFailed`); a standby's drift nobody can repair
//!   (`StandbyDrifted` with action `none`).
//! - **info**: nothing left to do. A failover where every workload serves, an incident
//!   closed with every original handled (`IncidentClosed`; warning when an original needs
//!   a person), a witness verdict that held nothing, an original an operator put back, a
//!   drill where every workload would relaunch, a standby's drift repaired.
//!
//! Commands between functions and `OnCallAlert` (the notifier's own page) have no severity.

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

/// `None` for events that are not a message for people: commands, and facts a summary or
/// the closing carries.
pub fn severity_of(event: &ProjectEvent) -> Option<Severity> {
    let severity = match event {
        ProjectEvent::RelaunchRequested(_)
        | ProjectEvent::FenceRequested(_)
        | ProjectEvent::DrillRequested(_)
        | ProjectEvent::MaintenanceRequested(_)
        | ProjectEvent::UnfenceRequested(_)
        | ProjectEvent::IncidentStatusRequested(_)
        | ProjectEvent::ReleaseRequested(_)
        | ProjectEvent::FleetDrillRequested(_)
        | ProjectEvent::FleetStatusRequested(_)
        | ProjectEvent::FailbackRequested(_)
        | ProjectEvent::StandbyReconcileRequested(_)
        | ProjectEvent::StandbyPromoted(_)
        | ProjectEvent::OnCallAlert(_)
        | ProjectEvent::WorkloadRelaunched(_)
        | ProjectEvent::WorkloadServing(_)
        | ProjectEvent::ServerRecovered(_)
        | ProjectEvent::BackupCompleted(_) => return None,
        ProjectEvent::IncidentOpened(_) | ProjectEvent::MassOutage(_) | ProjectEvent::WorkloadRelaunchFailed(_) => {
            Severity::Critical
        }
        ProjectEvent::WitnessVerdict(e) => {
            if e.held.iter().any(|h| !h.why.is_wave()) {
                Severity::Critical
            } else if e.held.is_empty() && matches!(e.finding, WitnessFinding::Answered { .. }) {
                Severity::Info
            } else {
                Severity::Warning
            }
        }
        ProjectEvent::FailoverCompleted(e) => {
            if e.needs_person() {
                Severity::Critical
            } else {
                Severity::Info
            }
        }
        ProjectEvent::OriginalFenced(e) => {
            if e.action.leaves_original_running() || e.action.replacement_not_running() {
                Severity::Critical
            } else {
                return None;
            }
        }
        ProjectEvent::IncidentClosed(e) => {
            if e.originals.iter().any(|o| o.action.leaves_original_running() || o.action.replacement_not_running()) {
                Severity::Warning
            } else {
                Severity::Info
            }
        }
        ProjectEvent::OriginalUnfenced(e) => {
            if e.forced && !e.moving_home {
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
        ProjectEvent::FleetDrillCompleted(e) => {
            if e.servers_ready == e.servers_drilled && e.servers.is_empty() {
                Severity::Info
            } else {
                Severity::Warning
            }
        }
        ProjectEvent::IncidentContinued(_)
        | ProjectEvent::RelaunchSuppressed(_)
        | ProjectEvent::BackupFailed(_)
        | ProjectEvent::BackupStale(_)
        | ProjectEvent::PromotionFailed(_) => Severity::Warning,
        // A drift repaired is for the record; one nobody can repair needs a person.
        ProjectEvent::StandbyDrifted(e) => {
            if e.action == "none" {
                Severity::Warning
            } else {
                Severity::Info
            }
        }
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

    fn closed_leaving_one_running() -> ProjectEvent {
        let ProjectEvent::IncidentClosed(mut e) = sample("IncidentClosed") else { unreachable!() };
        e.originals[0].action = FenceOutcome::LeftRunning;
        ProjectEvent::IncidentClosed(e)
    }

    fn failover(with_failure: bool) -> ProjectEvent {
        let ProjectEvent::FailoverCompleted(mut e) = sample("FailoverCompleted") else { unreachable!() };
        if !with_failure {
            e.failed.clear();
            e.held.clear();
            e.not_serving.clear();
            e.pending.clear();
            e.unusable.clear();
        }
        ProjectEvent::FailoverCompleted(e)
    }

    #[test]
    fn each_event_kind_has_its_documented_severity() {
        use Severity::{Critical, Info, Warning};
        let rows: Vec<(&str, ProjectEvent, Option<Severity>)> = vec![
            ("IncidentOpened", sample("IncidentOpened"), Some(Critical)),
            ("IncidentContinued", sample("IncidentContinued"), Some(Warning)),
            ("WorkloadRelaunched: in the summary", sample("WorkloadRelaunched"), None),
            ("failed, every destination refused", relaunch_failed(CAPACITY, true), Some(Critical)),
            ("failed, no backup", relaunch_failed("NoBackup", true), Some(Critical)),
            ("failed, backup image missing", relaunch_failed("BackupImageMissing", true), Some(Critical)),
            ("failed, replacement lost", relaunch_failed("ReplacementLost", true), Some(Critical)),
            ("ServerRecovered: in the closing", sample("ServerRecovered"), None),
            ("BackupCompleted: no news", sample("BackupCompleted"), None),
            ("BackupFailed", sample("BackupFailed"), Some(Warning)),
            ("BackupStale", sample("BackupStale"), Some(Warning)),
            ("original isolated: in the closing", fenced(FenceOutcome::Isolated), None),
            ("original terminated: in the closing", fenced(FenceOutcome::Terminated), None),
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
            ("original kept beside its replacement", fenced(FenceOutcome::KeptBothCopies), Some(Critical)),
            ("IncidentClosed, every original fenced", sample("IncidentClosed"), Some(Info)),
            ("IncidentClosed, an original left running", closed_leaving_one_running(), Some(Warning)),
            ("FailoverCompleted, every workload serving", failover(false), Some(Info)),
            ("FailoverCompleted, a failure left", failover(true), Some(Critical)),
            ("original put back", unfenced(false), Some(Info)),
            ("original put back by force", unfenced(true), Some(Critical)),
            ("RelaunchSuppressed", sample("RelaunchSuppressed"), Some(Warning)),
            ("drill, every workload ready", drill(&[true, true]), Some(Info)),
            ("drill, one workload not ready", drill(&[true, false]), Some(Warning)),
            ("drill, no workloads", drill(&[]), Some(Info)),
            ("WorkloadServing: in the summary", sample("WorkloadServing"), None),
            ("RelaunchRequested", sample("RelaunchRequested"), None),
            ("DrillRequested", sample("DrillRequested"), None),
            ("MaintenanceRequested", sample("MaintenanceRequested"), None),
            ("UnfenceRequested", sample("UnfenceRequested"), None),
            ("IncidentStatusRequested", sample("IncidentStatusRequested"), None),
            ("OnCallAlert", sample("OnCallAlert"), None),
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
