//! What a person reads about each event: a subject, what happened, what the system already
//! did and what is left to a person. Channel limits (subject length, attributes) are not
//! applied here.

mod backup;
mod failover;
mod incident;
mod partition;
mod recovery;
mod relaunch;
mod standby;

use crate::presentation::Presentation;
use crate::severity::Severity;
use ha_domain::contract::ProjectEvent;

/// Subject and body as written, before the channel fits them to its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub subject: String,
    pub body: String,
    /// The headline alone (pages and chat carry it without the tag and the place).
    pub headline: String,
}

/// One event's wording; [`describe`] adds the severity, the incident and the place to the
/// headline and lays out the body.
struct EventText {
    headline: String,
    what_happened: Vec<String>,
    /// What Outposts HA already did about it.
    done: Vec<String>,
    /// What is left to a person (empty: nothing).
    left_to_you: Vec<String>,
}

/// `None` for events that are not mailed (see [`crate::severity`]).
pub fn describe(event: &ProjectEvent, severity: Severity, p: &Presentation) -> Option<Text> {
    let text = match event {
        ProjectEvent::WitnessVerdict(e) => partition::witness_verdict(e, p),
        ProjectEvent::MassOutage(e) => partition::mass_outage(e, p),
        ProjectEvent::IncidentOpened(e) => incident::opened(e, p),
        ProjectEvent::IncidentContinued(e) => incident::continued(e, p),
        ProjectEvent::RelaunchSuppressed(e) => incident::suppressed(e, p),
        ProjectEvent::FailoverCompleted(e) => failover::completed(e, p),
        ProjectEvent::DrillCompleted(e) => relaunch::drill_completed(e, p),
        ProjectEvent::FleetDrillCompleted(e) => relaunch::fleet_drill_completed(e, p),
        ProjectEvent::WorkloadRelaunchFailed(e) => relaunch::relaunch_failed(e),
        ProjectEvent::OriginalFenced(e) => recovery::original_fenced(e),
        ProjectEvent::OriginalUnfenced(e) => recovery::original_unfenced(e, p),
        ProjectEvent::IncidentClosed(e) => recovery::incident_closed(e, p),
        ProjectEvent::BackupFailed(e) => backup::failed(e),
        ProjectEvent::BackupStale(e) => backup::stale(e, p),
        ProjectEvent::PromotionFailed(e) => standby::promotion_failed(e),
        ProjectEvent::StandbyDrifted(e) => standby::standby_drifted(e),
        _ => return None,
    };
    let subject = subject(severity, event, &text.headline);
    Some(Text { subject, body: body(&text, p), headline: text.headline })
}

fn subject_tag(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "INFO",
        Severity::Warning => "WARNING",
        Severity::Critical => "CRITICAL",
    }
}

/// Site names longer than this are cut in subjects (the body has them whole).
const SITE_IN_SUBJECT: usize = 24;

/// `[CRITICAL] inc-… Store 17: <headline>`: the incident id in every subject of an
/// incident, so mail clients and filters group them; the site's name, else the server id.
fn subject(severity: Severity, event: &ProjectEvent, headline: &str) -> String {
    let mut subject = format!("[{}]", subject_tag(severity));
    if let Some(incident) = incident_of(event) {
        subject.push(' ');
        subject.push_str(incident);
    }
    // A site name SNS cannot carry in a subject (not ASCII) gives way to the server id.
    let site = site_of(event).filter(|s| s.is_ascii()).map(short_site);
    if let Some(place) = site.or_else(|| event.server_id().map(str::to_string)) {
        subject.push(' ');
        subject.push_str(&place);
        subject.push(':');
    }
    subject.push(' ');
    subject.push_str(headline);
    subject
}

fn short_site(site: &str) -> String {
    if site.chars().count() <= SITE_IN_SUBJECT {
        site.to_string()
    } else {
        format!("{}...", site.chars().take(SITE_IN_SUBJECT - 3).collect::<String>())
    }
}

/// The site's name where the event carries it.
pub fn site_of(event: &ProjectEvent) -> Option<&str> {
    match event {
        ProjectEvent::IncidentOpened(e) => e.site_name.as_deref(),
        ProjectEvent::RelaunchSuppressed(e) => e.site_name.as_deref(),
        ProjectEvent::FailoverCompleted(e) => e.site_name.as_deref(),
        ProjectEvent::IncidentClosed(e) => e.site_name.as_deref(),
        ProjectEvent::WorkloadRelaunchFailed(e) => e.site_name.as_deref(),
        ProjectEvent::WitnessVerdict(e) => e.site_name.as_deref(),
        ProjectEvent::OriginalFenced(e) => e.site_name.as_deref(),
        _ => None,
    }
}

/// `Store 17, Main St (op-…)`, or the server id alone.
pub(crate) fn place(site: Option<&str>, server: &str) -> String {
    match site {
        Some(site) => format!("{site} ({server})"),
        None => format!("Outposts server {server}"),
    }
}

pub fn incident_of(event: &ProjectEvent) -> Option<&str> {
    match event {
        ProjectEvent::IncidentOpened(e) => Some(&e.incident_id),
        ProjectEvent::IncidentContinued(e) => Some(&e.incident_id),
        ProjectEvent::RelaunchRequested(e) => Some(&e.incident_id),
        ProjectEvent::WorkloadRelaunched(e) => Some(&e.incident_id),
        ProjectEvent::WorkloadRelaunchFailed(e) => Some(&e.incident_id),
        ProjectEvent::ServerRecovered(e) => e.incident_id.as_deref(),
        ProjectEvent::FenceRequested(e) => Some(&e.incident_id),
        ProjectEvent::OriginalFenced(e) => Some(&e.incident_id),
        ProjectEvent::OriginalUnfenced(e) => Some(&e.incident_id),
        ProjectEvent::IncidentClosed(e) => Some(&e.incident_id),
        ProjectEvent::RelaunchSuppressed(e) => Some(&e.incident_id),
        ProjectEvent::WorkloadServing(e) => Some(&e.incident_id),
        ProjectEvent::UnfenceRequested(e) => e.incident_id.as_deref(),
        ProjectEvent::IncidentStatusRequested(e) => e.incident_id.as_deref(),
        ProjectEvent::WitnessVerdict(e) => Some(&e.incident_id),
        ProjectEvent::FailoverCompleted(e) => Some(&e.incident_id),
        ProjectEvent::OnCallAlert(e) => e.incident_id.as_deref(),
        ProjectEvent::MassOutage(_) | ProjectEvent::ReleaseRequested(_) => None,
        ProjectEvent::DrillRequested(_) | ProjectEvent::DrillCompleted(_) | ProjectEvent::MaintenanceRequested(_) => {
            None
        }
        ProjectEvent::FleetDrillRequested(_)
        | ProjectEvent::FleetDrillCompleted(_)
        | ProjectEvent::FleetStatusRequested(_)
        | ProjectEvent::FailbackRequested(_)
        | ProjectEvent::StandbyReconcileRequested(_)
        | ProjectEvent::StandbyDrifted(_) => None,
        ProjectEvent::StandbyPromoted(e) => Some(&e.incident_id),
        ProjectEvent::PromotionFailed(e) => Some(&e.incident_id),
        ProjectEvent::BackupCompleted(_) | ProjectEvent::BackupFailed(_) | ProjectEvent::BackupStale(_) => None,
    }
}

fn bullets(lines: &[String]) -> String {
    lines.iter().map(|n| format!("- {n}")).collect::<Vec<_>>().join("\n")
}

fn body(text: &EventText, p: &Presentation) -> String {
    let mut body = text.what_happened.join("\n");
    body.push_str("\n\nDone by Outposts HA:\n");
    body.push_str(&bullets(&text.done));
    body.push_str("\n\nLeft to you:\n");
    if text.left_to_you.is_empty() {
        body.push_str("- Nothing.");
    } else {
        body.push_str(&bullets(&text.left_to_you));
    }
    let links = p.links();
    if !links.is_empty() {
        body.push_str("\n\n");
        body.push_str(&links.join("\n"));
    }
    body
}
