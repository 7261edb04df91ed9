//! Replacing workloads: a drill's dry run, a relaunch that worked or failed, a replacement serving.

use super::EventText;
use ha_domain::contract::{DrillCompleted, WorkloadRelaunchFailed, WorkloadRelaunched, WorkloadServing};
use ha_domain::timefmt::human_duration;

pub(super) fn drill_completed(e: &DrillCompleted) -> EventText {
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
            Some(subnet) if v.ready => {
                let witness = v.witness.as_ref().map(|w| format!(" (witness: {w})")).unwrap_or_default();
                format!("  READY    {} -> {subnet}{backup}{witness}", v.workload)
            }
            _ => format!("  NOT READY {}: {}", v.workload, v.problems.join("; ")),
        }
    }));
    EventText {
        headline: format!("Drill of {}: {ready}/{} workloads ready", e.server_id, e.verdicts.len()),
        what_happened: what,
        what_to_do_next: vec!["Fix every NOT READY workload before the server fails for real.".into()],
    }
}

pub(super) fn relaunched(e: &WorkloadRelaunched) -> EventText {
    let fallbacks = e.destinations_tried.iter().filter(|d| d.error_code.is_some()).count();
    let mut what = vec![
        format!(
            "Workload {} from Outposts server {} was relaunched as {}.",
            e.workload, e.server_id, e.replacement_instance_id
        ),
        format!("Subnet {} (launch template {}). Incident {}.", e.subnet_id, e.launch_template_id, e.incident_id),
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
            "An earlier, interrupted attempt had already launched it; it was adopted, not launched twice.".into(),
        );
    }
    EventText {
        headline: format!("Relaunched {} from {} as {}", e.workload, e.server_id, e.replacement_instance_id),
        what_happened: what,
        what_to_do_next: vec![
            "Confirm the replacement passes its health checks and serves.".into(),
            "Leave the original alone until the server is back and fenced.".into(),
        ],
    }
}

pub(super) fn relaunch_failed(e: &WorkloadRelaunchFailed) -> EventText {
    let mut what = vec![
        format!("Workload {} from Outposts server {} could NOT be relaunched.", e.workload, e.server_id),
        format!("Last error: {}: {}", e.error_code, e.error_message),
        format!("Incident {}, launch template {}.", e.incident_id, e.launch_template_id),
        "Destinations tried:".into(),
    ];
    what.extend(
        e.destinations_tried
            .iter()
            .map(|d| format!("  - {}: {}", d.subnet_id, d.error_code.as_ref().map_or("accepted", |c| c.as_str()))),
    );
    let (headline, next) = if e.error_code.is_missing_backup() {
        (
            format!("MANUAL ACTION NEEDED: {} from {} has no usable backup", e.workload, e.server_id),
            vec![
                "MANUAL ACTION NEEDED: a stateful workload is only launched from its backup, and there is none usable."
                    .into(),
                "Look for BackupFailed / BackupStale messages about this workload's instance.".into(),
                "Point the backup parameter at a known-good backup AMI, then launch the workload by hand.".into(),
            ],
        )
    } else if e.manual_action_required {
        (
            format!("MANUAL ACTION NEEDED: {} from {} not relaunched", e.workload, e.server_id),
            vec![
                "MANUAL ACTION NEEDED: every destination refused, nothing more will be tried automatically.".into(),
                "Check whether the standby server is up and has capacity for the instance type.".into(),
                format!(
                    "Launch {} by hand from its launch template, or add a fallback subnet to its tags.",
                    e.launch_template_id
                ),
            ],
        )
    } else {
        (
            format!("Relaunch of {} from {} failed", e.workload, e.server_id),
            vec!["Check the error above; the relaunch will be retried.".into()],
        )
    };
    EventText { headline, what_happened: what, what_to_do_next: next }
}

pub(super) fn serving(e: &WorkloadServing) -> EventText {
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
    EventText {
        headline: format!("{} serving again from {}", e.workload, e.replacement_instance_id),
        what_happened: what,
        what_to_do_next: vec!["Nothing; the originals are fenced when their server comes back.".into()],
    }
}
