//! Backups of stateful workloads: taken, failed, or older than the RPO.

use super::EventText;
use ha_domain::contract::{BackupCompleted, BackupFailed, BackupStale};
use ha_domain::timefmt::human_duration;

pub(super) fn completed(e: &BackupCompleted) -> EventText {
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
        what.extend(
            e.pruned
                .iter()
                .map(|p| format!("  - {} from {} with {} snapshot(s)", p.image_id, p.taken_at, p.snapshot_ids.len())),
        );
    }
    EventText {
        headline: format!("Backup of {who} done: {}", e.image_id),
        what_happened: what,
        what_to_do_next: vec!["Nothing. A relaunch of this workload now starts from this backup.".into()],
    }
}

pub(super) fn failed(e: &BackupFailed) -> EventText {
    let who = instance_label(&e.instance_id, e.workload.as_deref());
    let mut what = vec![format!("Backup of {who} FAILED ({}).", e.status), format!("Reason: {}", e.reason)];
    if let Some(step) = &e.failed_step {
        what.push(format!("Failing step: {step}."));
    }
    if !e.execution_id.is_empty() {
        what.push(format!("Execution {}.", e.execution_id));
    }
    what.push(match (&e.parameter, &e.parameter_image_id) {
        (Some(p), Some(image)) => format!("{p} still names the previous backup {image}; a relaunch would use it."),
        (Some(p), None) => format!("{p} names no backup yet: this workload cannot be relaunched from a backup."),
        (None, _) => "The instance names no usable backup parameter.".into(),
    });
    if let Some(image) = &e.unused_image_id {
        what.push(format!("The execution made {image}, which was NOT adopted; inspect or deregister it."));
    }
    EventText {
        headline: format!("Backup of {who} failed: {}", e.status),
        what_happened: what,
        what_to_do_next: vec![
            "Open the execution in Systems Manager > Automation to see the failing step's output.".into(),
            "The next schedule tick tries again; watch for BackupStale if it keeps failing.".into(),
        ],
    }
}

pub(super) fn stale(e: &BackupStale) -> EventText {
    let who = instance_label(&e.instance_id, e.workload.as_deref());
    let mut what = vec![
        format!("Backups of {who} are STALE: {}.", e.reason),
        format!("Recovery point objective: {}.", human_duration(e.rpo_seconds)),
    ];
    if let (Some(image), Some(at)) = (&e.newest_image_id, &e.newest_taken_at) {
        what.push(format!("Newest good backup: {image}, taken {at}."));
    }
    EventText {
        headline: format!("Backups of {who} are stale"),
        what_happened: what,
        what_to_do_next: vec![
            "If this server failed now, its workload would lose more data than the RPO allows.".into(),
            "Look for BackupFailed messages and check the instance's backup tags.".into(),
        ],
    }
}

/// `pos-db (i-0abc…)` or just the instance id.
fn instance_label(instance_id: &str, workload: Option<&str>) -> String {
    match workload {
        Some(w) => format!("{w} ({instance_id})"),
        None => instance_id.to_string(),
    }
}
