//! Backups of stateful workloads that need a person: failed, or older than the RPO.

use super::EventText;
use crate::presentation::Presentation;
use ha_domain::contract::{BackupFailed, BackupStale};
use ha_domain::timefmt::human_duration;

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
        headline: format!("backup of {who} failed: {}", e.status),
        what_happened: what,
        done: vec![
            "Left the backup parameter on the previous good backup.".into(),
            "The next schedule tick tries again; a BackupStale message follows if backups keep failing past the RPO."
                .into(),
        ],
        left_to_you: vec!["Open the execution in Systems Manager > Automation to see the failing step's output.".into()],
    }
}

pub(super) fn stale(e: &BackupStale, p: &Presentation) -> EventText {
    let who = instance_label(&e.instance_id, e.workload.as_deref());
    let mut what = vec![
        format!("Backups of {who} are STALE: {}.", e.reason),
        format!("Recovery point objective: {}.", human_duration(e.rpo_seconds)),
    ];
    if let (Some(image), Some(at)) = (&e.newest_image_id, &e.newest_taken_at) {
        what.push(format!("Newest good backup: {image}, taken {}.", p.when(at)));
    }
    what.push("If this server failed now, its workload would lose more data than the RPO allows.".into());
    EventText {
        headline: format!("backups of {who} are stale"),
        what_happened: what,
        done: vec!["Kept starting backups on schedule; told this once until a backup succeeds.".into()],
        left_to_you: vec!["Look for BackupFailed messages and check the instance's backup tags.".into()],
    }
}

/// `pos-db (i-0abc…)` or just the instance id.
fn instance_label(instance_id: &str, workload: Option<&str>) -> String {
    match workload {
        Some(w) => format!("{w} ({instance_id})"),
        None => instance_id.to_string(),
    }
}
