//! Pure rendering of a project event into what a person reads and a machine filters on.

use ha_domain::contract::ProjectEvent;
use ha_domain::timefmt::human_duration;

/// SNS limits subjects to 100 printable ASCII characters without line breaks.
pub const MAX_SUBJECT: usize = 100;

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub subject: String,
    pub body: String,
    pub severity: Severity,
    /// SNS message attributes for subscription filter policies.
    pub attributes: Vec<(&'static str, String)>,
}

/// Printable ASCII only, single line, at most [`MAX_SUBJECT`] characters.
pub fn subject_line(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if clean.len() <= MAX_SUBJECT {
        clean
    } else {
        format!("{}...", &clean[..MAX_SUBJECT - 3])
    }
}

/// `None` for events that are commands between functions, not news for people.
pub fn render(event: &ProjectEvent) -> Option<Notification> {
    let (severity, subject, what, next): (Severity, String, Vec<String>, Vec<String>) = match event {
        ProjectEvent::RelaunchRequested(_) | ProjectEvent::DrillRequested(_) => return None,
        ProjectEvent::DrillCompleted(e) => {
            let ready = e.verdicts.iter().filter(|v| v.ready).count();
            let mut what = vec![
                format!(
                    "Drill of Outposts server {} (requested {}): {ready} of {} workload(s) would relaunch. Nothing was launched.",
                    e.server_id,
                    e.requested_at,
                    e.verdicts.len()
                ),
                String::new(),
            ];
            what.extend(e.verdicts.iter().map(|v| {
                let backup = v
                    .restored_from
                    .as_ref()
                    .map(|r| {
                        let age = r.age_seconds.map(|s| format!(", {} old", human_duration(s))).unwrap_or_default();
                        format!(" from {}{age}", r.image_id)
                    })
                    .unwrap_or_default();
                match &v.destination {
                    Some(subnet) if v.ready => format!("  READY    {} -> {subnet}{backup}", v.workload),
                    _ => format!("  NOT READY {}: {}", v.workload, v.problems.join("; ")),
                }
            }));
            let severity = if ready == e.verdicts.len() { Severity::Info } else { Severity::Warning };
            let label = if severity == Severity::Info { "INFO" } else { "WARNING" };
            (
                severity,
                format!("[{label}] Drill of {}: {ready}/{} workloads ready", e.server_id, e.verdicts.len()),
                what,
                vec!["Fix every NOT READY workload before the server fails for real.".into()],
            )
        }
        ProjectEvent::IncidentOpened(e) => {
            let mut what = vec![
                format!("Outposts server {} lost its connection to AWS (alarm {}).", e.server_id, e.alarm_name),
                format!("Detected at {}. Incident {}.", e.detected_at, e.incident_id),
                String::new(),
            ];
            if e.workloads.is_empty() {
                what.push("No workloads are declared for this server, so nothing is being relaunched.".into());
            } else {
                what.push(format!("Relaunching {} workload(s) on their standby servers:", e.workloads.len()));
                what.extend(e.workloads.iter().map(|w| format!("  - {w}")));
            }
            if !e.rejected_workloads.is_empty() {
                what.push(String::new());
                what.push(format!(
                    "{} launch template(s) tagged for this server are NOT usable and will not be relaunched:",
                    e.rejected_workloads.len()
                ));
                what.extend(
                    e.rejected_workloads
                        .iter()
                        .map(|r| format!("  - {} ({}): {}", r.launch_template_name, r.launch_template_id, r.reason)),
                );
            }
            let mut next = vec![
                "Check the site: power, network uplink and the server's service link.".to_string(),
                "Watch for one WorkloadRelaunched or WorkloadRelaunchFailed message per workload.".to_string(),
            ];
            if !e.rejected_workloads.is_empty() {
                next.push("Fix the tags of the unusable launch templates (see the README's tag table).".into());
            }
            let subject = format!(
                "[CRITICAL] Outposts server {} down: relaunching {} workload(s)",
                e.server_id,
                e.workloads.len()
            );
            (Severity::Critical, subject, what, next)
        }
        ProjectEvent::IncidentContinued(e) => (
            Severity::Warning,
            format!("[WARNING] Outposts server {} down again (incident {})", e.server_id, e.incident_id),
            vec![
                format!(
                    "The alarm {} went into ALARM again at {} while incident {} is still open.",
                    e.alarm_name, e.realarmed_at, e.incident_id
                ),
                "The server is flapping. Workloads already replaced are not launched a second time.".into(),
            ],
            vec!["Check the server's service link; a flapping link often precedes a longer outage.".into()],
        ),
        ProjectEvent::WorkloadRelaunched(e) => {
            let fallbacks = e.destinations_tried.iter().filter(|d| d.error_code.is_some()).count();
            let mut what = vec![
                format!(
                    "Workload {} from Outposts server {} was relaunched as {}.",
                    e.workload, e.server_id, e.replacement_instance_id
                ),
                format!(
                    "Subnet {} (launch template {}). Incident {}.",
                    e.subnet_id, e.launch_template_id, e.incident_id
                ),
                format!(
                    "Detected {}, launch requested {}, accepted {}.",
                    e.detected_at, e.launch_requested_at, e.launch_accepted_at
                ),
            ];
            if fallbacks > 0 {
                what.push(format!("{fallbacks} preferred destination(s) refused first:"));
                what.extend(
                    e.destinations_tried
                        .iter()
                        .filter_map(|d| d.error_code.as_ref().map(|c| format!("  - {}: {}", d.subnet_id, c))),
                );
            }
            if let Some(r) = &e.restored_from {
                let age = r.age_seconds.map(|s| format!(" taken {} ago", human_duration(s))).unwrap_or_default();
                let at = r.taken_at.as_deref().map(|t| format!(" ({t})")).unwrap_or_default();
                what.push(format!("Restored from {}{age}{at}, named by {}.", r.image_id, r.parameter));
            }
            if let Some(earlier) = &e.already_replaced_in {
                what.push(format!(
                    "Nothing was launched: the workload already runs as {}, the replacement from incident {earlier}.",
                    e.replacement_instance_id
                ));
            } else if e.adopted {
                what.push(
                    "An earlier, interrupted attempt had already launched it; it was adopted, not launched twice."
                        .into(),
                );
            }
            (
                Severity::Info,
                format!("[INFO] Relaunched {} from {} as {}", e.workload, e.server_id, e.replacement_instance_id),
                what,
                vec![
                    "Confirm the replacement passes its health checks and serves.".into(),
                    "Leave the original alone until the server is back and fenced.".into(),
                ],
            )
        }
        ProjectEvent::WorkloadRelaunchFailed(e) => {
            let mut what = vec![
                format!("Workload {} from Outposts server {} could NOT be relaunched.", e.workload, e.server_id),
                format!("Last error: {}: {}", e.error_code, e.error_message),
                format!("Incident {}, launch template {}.", e.incident_id, e.launch_template_id),
                "Destinations tried:".into(),
            ];
            what.extend(
                e.destinations_tried
                    .iter()
                    .map(|d| format!("  - {}: {}", d.subnet_id, d.error_code.as_deref().unwrap_or("accepted"))),
            );
            let no_backup =
                matches!(e.error_code.as_str(), "NoBackup" | "BackupImageMissing" | "BackupImageUnavailable");
            let (severity, subject, next) = if no_backup {
                (
                    Severity::Critical,
                    format!("[CRITICAL] MANUAL ACTION NEEDED: {} from {} has no usable backup", e.workload, e.server_id),
                    vec![
                        "MANUAL ACTION NEEDED: a stateful workload is only launched from its backup, and there is none usable.".into(),
                        "Look for BackupFailed / BackupStale messages about this workload's instance.".into(),
                        "Point the backup parameter at a known-good backup AMI, then launch the workload by hand.".into(),
                    ],
                )
            } else if e.manual_action_required {
                (
                    Severity::Critical,
                    format!("[CRITICAL] MANUAL ACTION NEEDED: {} from {} not relaunched", e.workload, e.server_id),
                    vec![
                        "MANUAL ACTION NEEDED: every destination refused, nothing more will be tried automatically."
                            .into(),
                        "Check whether the standby server is up and has capacity for the instance type.".into(),
                        format!(
                            "Launch {} by hand from its launch template, or add a fallback subnet to its tags.",
                            e.launch_template_id
                        ),
                    ],
                )
            } else {
                (
                    Severity::Warning,
                    format!("[WARNING] Relaunch of {} from {} failed", e.workload, e.server_id),
                    vec!["Check the error above; the relaunch will be retried.".into()],
                )
            };
            (severity, subject, what, next)
        }
        ProjectEvent::ServerRecovered(e) => {
            let incident = e.incident_id.as_deref().unwrap_or("none open");
            (
                Severity::Warning,
                format!("[WARNING] Outposts server {} is back (incident {})", e.server_id, incident),
                vec![
                    format!(
                        "The alarm {} returned to OK at {}: server {} is connected again.",
                        e.alarm_name, e.recovered_at, e.server_id
                    ),
                    format!("Open incident: {incident}."),
                ],
                vec![
                    "The original instances may be running again beside their replacements.".into(),
                    "Make sure only one copy of each replaced workload serves before returning traffic.".into(),
                ],
            )
        }
        ProjectEvent::BackupCompleted(e) => {
            let who = instance_label(&e.instance_id, e.workload.as_deref());
            let mut what = vec![
                format!(
                    "Backup of {who} finished: {} (taken {}, {} ago).",
                    e.image_id,
                    e.taken_at,
                    human_duration(e.backup_age_seconds)
                ),
                format!("The runbook took {} (execution {}).", human_duration(e.duration_seconds), e.execution_id),
                format!("Snapshots: {}.", e.snapshot_ids.join(", ")),
            ];
            what.push(match (e.parameter_moved, &e.previous_image_id) {
                (true, Some(previous)) => format!("{} now names {} (was {previous}).", e.parameter, e.image_id),
                (true, None) => format!("{} created, naming {}.", e.parameter, e.image_id),
                (false, Some(current)) if current == &e.image_id => {
                    format!("{} already named {}.", e.parameter, e.image_id)
                }
                (false, current) => format!(
                    "{} was left on {}, a newer backup.",
                    e.parameter,
                    current.as_deref().unwrap_or("its current value")
                ),
            });
            if e.pruned.is_empty() {
                what.push("No old backups were pruned.".into());
            } else {
                what.push(format!("Pruned {} old backup(s):", e.pruned.len()));
                what.extend(e.pruned.iter().map(|p| {
                    format!("  - {} from {} with {} snapshot(s)", p.image_id, p.taken_at, p.snapshot_ids.len())
                }));
            }
            (
                Severity::Info,
                format!("[INFO] Backup of {who} done: {}", e.image_id),
                what,
                vec!["Nothing. A relaunch of this workload now starts from this backup.".into()],
            )
        }
        ProjectEvent::BackupFailed(e) => {
            let who = instance_label(&e.instance_id, e.workload.as_deref());
            let mut what = vec![format!("Backup of {who} FAILED ({}).", e.status), format!("Reason: {}", e.reason)];
            if let Some(step) = &e.failed_step {
                what.push(format!("Failing step: {step}."));
            }
            if !e.execution_id.is_empty() {
                what.push(format!("Execution {}.", e.execution_id));
            }
            what.push(match (&e.parameter, &e.parameter_image_id) {
                (Some(p), Some(image)) => {
                    format!("{p} still names the previous backup {image}; a relaunch would use it.")
                }
                (Some(p), None) => {
                    format!("{p} names no backup yet: this workload cannot be relaunched from a backup.")
                }
                (None, _) => "The instance names no usable backup parameter.".into(),
            });
            if let Some(image) = &e.unused_image_id {
                what.push(format!("The execution made {image}, which was NOT adopted; inspect or deregister it."));
            }
            (
                Severity::Warning,
                format!("[WARNING] Backup of {who} failed: {}", e.status),
                what,
                vec![
                    "Open the execution in Systems Manager > Automation to see the failing step's output.".into(),
                    "The next schedule tick tries again; watch for BackupStale if it keeps failing.".into(),
                ],
            )
        }
        ProjectEvent::BackupStale(e) => {
            let who = instance_label(&e.instance_id, e.workload.as_deref());
            let mut what = vec![
                format!("Backups of {who} are STALE: {}.", e.reason),
                format!("Recovery point objective: {}.", human_duration(e.rpo_seconds)),
            ];
            if let (Some(image), Some(at)) = (&e.newest_image_id, &e.newest_taken_at) {
                what.push(format!("Newest good backup: {image}, taken {at}."));
            }
            (
                Severity::Warning,
                format!("[WARNING] Backups of {who} are stale"),
                what,
                vec![
                    "If this server failed now, its workload would lose more data than the RPO allows.".into(),
                    "Look for BackupFailed messages and check the instance's backup tags.".into(),
                ],
            )
        }
        ProjectEvent::OriginalFenced(e) => {
            let mut what = vec![
                format!(
                    "Original {} of workload {} on Outposts server {} was {} (policy {}).",
                    e.instance_id,
                    e.workload,
                    e.server_id,
                    e.action,
                    e.policy.as_str()
                ),
                format!("Its replacement {} keeps serving. Incident {}.", e.replacement_instance_id, e.incident_id),
            ];
            if let Some(q) = &e.quarantine_security_group {
                what.push(if e.previous_security_groups.is_empty() {
                    format!("It had no security groups; it now has only the quarantine group {q} (no traffic in or out).")
                } else {
                    format!(
                        "Security groups {} were swapped for the quarantine group {q} (no traffic in or out); the previous ones are kept in its tag outposts-ha:fenced-groups.",
                        e.previous_security_groups.join(", ")
                    )
                });
            }
            let next = match e.action.as_str() {
                "isolated" => vec![
                    "Copy any data you need from the isolated original, then terminate it.".to_string(),
                    format!("To put it back in service instead: make unfence INSTANCE={}", e.instance_id),
                ],
                "terminated" => vec!["Nothing: only the replacement runs now.".to_string()],
                _ => vec![format!(
                    "MANUAL ACTION NEEDED: two copies of {} are running; stop one before they diverge.",
                    e.workload
                )],
            };
            let severity = if e.action.starts_with("left running") { Severity::Critical } else { Severity::Warning };
            let label = if severity == Severity::Critical { "CRITICAL" } else { "WARNING" };
            (severity, format!("[{label}] Original {} of {} {}", e.instance_id, e.workload, e.action), what, next)
        }
        ProjectEvent::WorkloadServing(e) => {
            let took = e.detection_to_serving_seconds.map(|s| format!(" ({:.0} s after detection)", s)).unwrap_or_default();
            let mut what = vec![format!(
                "Workload {} from Outposts server {} is serving from {} since {}{took}.",
                e.workload, e.server_id, e.replacement_instance_id, e.serving_at
            )];
            if e.target_groups.is_empty() {
                what.push("It has no target groups: running is serving.".into());
            } else {
                what.push(format!("Healthy in target group(s) {}.", e.target_groups.join(", ")));
                what.push(if e.deregistered.is_empty() {
                    "No original was registered there.".into()
                } else {
                    format!("Originals deregistered: {}.", e.deregistered.join(", "))
                });
            }
            (
                Severity::Info,
                format!("[INFO] {} serving again from {}", e.workload, e.replacement_instance_id),
                what,
                vec!["Nothing; the originals are fenced when their server comes back.".into()],
            )
        }
        ProjectEvent::RelaunchSuppressed(e) => (
            Severity::Warning,
            format!("[WARNING] Outposts server {} down during maintenance: nothing relaunched", e.server_id),
            vec![
                format!(
                    "Outposts server {} went into ALARM at {} (alarm {}), inside its maintenance window until {} ({}).",
                    e.server_id, e.detected_at, e.alarm_name, e.maintenance_until, e.maintenance_reason
                ),
                format!("Relaunch was suppressed for {} workload(s): {}.", e.workloads.len(), e.workloads.join(", ")),
            ],
            vec![
                "If the outage is not the planned work, end the window and the next alarm relaunches:".into(),
                format!("make maintenance SERVER={} UNTIL=now", e.server_id),
                "A server still down when the window ends is not relaunched by itself (its alarm does not change state again): check it then.".into(),
            ],
        ),
        ProjectEvent::IncidentClosed(e) => (
            Severity::Info,
            format!("[INFO] Incident {} on {} closed", e.incident_id, e.server_id),
            vec![
                format!(
                    "Outposts server {} is back (at {}); incident {} is closed.",
                    e.server_id, e.recovered_at, e.incident_id
                ),
                e.summary.clone(),
            ],
            vec!["Plan the fail-back: the replacements keep serving until you move the workloads home.".into()],
        ),
    };

    let mut body = what.join("\n");
    body.push_str("\n\nWhat to do next:\n");
    body.push_str(&next.iter().map(|n| format!("- {n}")).collect::<Vec<_>>().join("\n"));
    body.push_str("\n\n--- event (JSON) ---\n");
    let json = serde_json::to_value(event).unwrap_or_default();
    body.push_str(&serde_json::to_string_pretty(&json).unwrap_or_default());

    let mut attributes =
        vec![("event_type", event.detail_type().to_string()), ("severity", severity.as_str().to_string())];
    if let Some(server) = event.server_id() {
        attributes.push(("server_id", server.to_string()));
    }
    if let Some(instance) = instance_of(event) {
        attributes.push(("instance_id", instance.to_string()));
    }
    if let Some(incident) = incident_of(event) {
        attributes.push(("incident_id", incident.to_string()));
    }
    Some(Notification { subject: subject_line(&subject), body, severity, attributes })
}

fn incident_of(event: &ProjectEvent) -> Option<&str> {
    match event {
        ProjectEvent::IncidentOpened(e) => Some(&e.incident_id),
        ProjectEvent::IncidentContinued(e) => Some(&e.incident_id),
        ProjectEvent::RelaunchRequested(e) => Some(&e.incident_id),
        ProjectEvent::WorkloadRelaunched(e) => Some(&e.incident_id),
        ProjectEvent::WorkloadRelaunchFailed(e) => Some(&e.incident_id),
        ProjectEvent::ServerRecovered(e) => e.incident_id.as_deref(),
        ProjectEvent::OriginalFenced(e) => Some(&e.incident_id),
        ProjectEvent::IncidentClosed(e) => Some(&e.incident_id),
        ProjectEvent::RelaunchSuppressed(e) => Some(&e.incident_id),
        ProjectEvent::WorkloadServing(e) => Some(&e.incident_id),
        ProjectEvent::DrillRequested(_) | ProjectEvent::DrillCompleted(_) => None,
        ProjectEvent::BackupCompleted(_) | ProjectEvent::BackupFailed(_) | ProjectEvent::BackupStale(_) => None,
    }
}

fn instance_of(event: &ProjectEvent) -> Option<&str> {
    match event {
        ProjectEvent::BackupCompleted(e) => Some(&e.instance_id),
        ProjectEvent::BackupFailed(e) => Some(&e.instance_id),
        ProjectEvent::BackupStale(e) => Some(&e.instance_id),
        ProjectEvent::OriginalFenced(e) => Some(&e.instance_id),
        _ => None,
    }
}

/// `pos-db (i-0abc…)` or just the instance id.
fn instance_label(instance_id: &str, workload: Option<&str>) -> String {
    match workload {
        Some(w) => format!("{w} ({instance_id})"),
        None => instance_id.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_short_single_line_ascii() {
        assert_eq!(subject_line("a\nb\tc  d"), "a b c d");
        assert_eq!(subject_line("caf\u{e9} ok"), "caf ok");
        let long = subject_line(&"x".repeat(300));
        assert_eq!(long.len(), MAX_SUBJECT);
        assert!(long.ends_with("..."));
    }
}
