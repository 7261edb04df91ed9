//! The failover report: once every workload of an incident has settled (serving, failed,
//! held), or its deadline passed first, the whole failover is told as `FailoverCompleted`.
//! Checked after each launch pass, serving and lost replacement; the reconcile pass's
//! relaunch requests bring the deadline round. A late report is followed by the complete
//! one; a complete one is told again only when what it holds changes (a release).

use crate::Relaunch;
use ha_aws::invocation::HandlerError;
use ha_domain::contract::{FailoverCompleted, ProjectEvent};
use ha_domain::failover::failover_report;
use ha_domain::incident::IncidentId;
use ha_domain::ledger::IncidentMark;
use ha_ports::ledger::Told;
use tracing::info;

/// What a report is, as its mark records it: `late`, `complete`, or `complete holding a,b`.
fn marker(report: &FailoverCompleted) -> String {
    match (report.complete, report.held.is_empty()) {
        (false, _) => "late".into(),
        (true, true) => "complete".into(),
        (true, false) => format!("complete holding {}", report.held.join(",")),
    }
}

impl Relaunch {
    pub(crate) async fn report_failover(&self, incident: &IncidentId, owner: &str) -> Result<(), HandlerError> {
        let ledger = &self.ports.ledger;
        let told = ledger.told_marker(incident, IncidentMark::FailoverReported).await?;
        if told.as_deref() == Some("complete") {
            // Nothing held, everything settled: nothing can follow.
            return Ok(());
        }
        let Some((facts, progress)) = ledger.progress_of(incident).await? else { return Ok(()) };
        let now = self.ports.clock.now();
        let Some(report) = failover_report(&facts, &progress, now, self.config.failover_report_seconds) else {
            return Ok(());
        };
        let marker = marker(&report);
        if told.is_some() && !report.complete {
            // Late was told; the complete report follows when it comes.
            return Ok(());
        }
        let (serving, failed, complete) = (report.serving.len(), report.failed.len(), report.complete);
        let outcome = ledger
            .tell_incident(
                &*self.ports.bus,
                incident,
                IncidentMark::FailoverReported,
                &marker,
                owner,
                self.ports.clock.epoch(),
                &[ProjectEvent::FailoverCompleted(report)],
            )
            .await?;
        if outcome == Told::Now {
            info!(serving, failed, complete, "failover reported");
        }
        // Told by another delivery right now: if it dies, the next check tells it.
        Ok(())
    }
}
