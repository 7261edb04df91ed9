//! What a person reads about each event: a subject, what happened and what to do next.
//! Channel limits (subject length, attributes) are not applied here.

mod backup;
mod incident;
mod partition;
mod recovery;
mod relaunch;

use crate::severity::Severity;
use ha_domain::contract::ProjectEvent;

/// Subject and body as written, before the channel fits them to its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub subject: String,
    pub body: String,
}

/// One event's wording; [`describe`] tags the headline with the severity and lays out the body.
struct EventText {
    headline: String,
    what_happened: Vec<String>,
    what_to_do_next: Vec<String>,
}

/// `None` for commands between functions, which have nothing to tell a person.
pub fn describe(event: &ProjectEvent, severity: Severity) -> Option<Text> {
    let text = match event {
        ProjectEvent::RelaunchRequested(_)
        | ProjectEvent::DrillRequested(_)
        | ProjectEvent::FenceRequested(_)
        | ProjectEvent::MaintenanceRequested(_)
        | ProjectEvent::UnfenceRequested(_)
        | ProjectEvent::IncidentStatusRequested(_)
        | ProjectEvent::ReleaseRequested(_) => return None,
        ProjectEvent::WitnessVerdict(e) => partition::witness_verdict(e),
        ProjectEvent::MassOutage(e) => partition::mass_outage(e),
        ProjectEvent::IncidentOpened(e) => incident::opened(e),
        ProjectEvent::IncidentContinued(e) => incident::continued(e),
        ProjectEvent::RelaunchSuppressed(e) => incident::suppressed(e),
        ProjectEvent::DrillCompleted(e) => relaunch::drill_completed(e),
        ProjectEvent::WorkloadRelaunched(e) => relaunch::relaunched(e),
        ProjectEvent::WorkloadRelaunchFailed(e) => relaunch::relaunch_failed(e),
        ProjectEvent::WorkloadServing(e) => relaunch::serving(e),
        ProjectEvent::ServerRecovered(e) => recovery::server_recovered(e),
        ProjectEvent::OriginalFenced(e) => recovery::original_fenced(e),
        ProjectEvent::OriginalUnfenced(e) => recovery::original_unfenced(e),
        ProjectEvent::IncidentClosed(e) => recovery::incident_closed(e),
        ProjectEvent::BackupCompleted(e) => backup::completed(e),
        ProjectEvent::BackupFailed(e) => backup::failed(e),
        ProjectEvent::BackupStale(e) => backup::stale(e),
    };
    Some(Text { subject: format!("[{}] {}", subject_tag(severity), text.headline), body: body(&text) })
}

fn subject_tag(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "INFO",
        Severity::Warning => "WARNING",
        Severity::Critical => "CRITICAL",
    }
}

fn body(text: &EventText) -> String {
    let mut body = text.what_happened.join("\n");
    body.push_str("\n\nWhat to do next:\n");
    body.push_str(&text.what_to_do_next.iter().map(|n| format!("- {n}")).collect::<Vec<_>>().join("\n"));
    body
}
