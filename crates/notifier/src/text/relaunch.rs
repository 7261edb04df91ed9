//! Replacing workloads: a drill's dry run, a workload that could not be relaunched.

use super::EventText;
use crate::presentation::Presentation;
use ha_domain::contract::{DrillCompleted, FleetDrillCompleted, WorkloadRelaunchFailed};
use ha_domain::timefmt::human_duration;

pub(super) fn drill_completed(e: &DrillCompleted, p: &Presentation) -> EventText {
    let ready = e.verdicts.iter().filter(|v| v.ready).count();
    let mut what = vec![
        format!(
            "Drill of Outposts server {} (requested {}): {ready} of {} workload(s) would relaunch.",
            e.server_id,
            p.when(&e.requested_at),
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
    let left = if ready == e.verdicts.len() {
        Vec::new()
    } else {
        vec!["Fix every NOT READY workload before the server fails for real.".into()]
    };
    EventText {
        headline: format!("drill, {ready} of {} workloads ready", e.verdicts.len()),
        what_happened: what,
        done: vec!["Dry-ran every workload's relaunch (RunInstances with DryRun); nothing was launched.".into()],
        left_to_you: left,
    }
}

/// Servers listed by name in a fleet drill's digest; the rest are counted (`make drill`
/// prints every one).
const FLEET_DRILL_LISTED: usize = 50;

pub(super) fn fleet_drill_completed(e: &FleetDrillCompleted, p: &Presentation) -> EventText {
    let (ready, total) = (e.servers_ready, e.servers_drilled);
    let mut what = vec![
        format!(
            "Fleet drill (requested {}): {ready} of {total} protected server(s) would relaunch every workload.",
            p.when(&e.requested_at)
        ),
        String::new(),
    ];
    let attention: Vec<_> = e.servers.iter().filter_map(|s| s.needs_person().map(|why| (s, why))).collect();
    for (s, why) in attention.iter().take(FLEET_DRILL_LISTED) {
        what.push(format!("  NEEDS YOU {}: {why}", super::place(s.site_name.as_deref(), &s.server_id)));
        what.extend(s.not_ready.iter().map(|v| format!("    {}: {}", v.workload, v.problems.join("; "))));
    }
    if attention.len() > FLEET_DRILL_LISTED {
        what.push(format!(
            "  … and {} more server(s): make drill lists every one.",
            attention.len() - FLEET_DRILL_LISTED
        ));
    }
    let left = if attention.is_empty() {
        Vec::new()
    } else {
        vec!["Fix each server marked NEEDS YOU before it fails for real; make drill SERVER=op-… checks one again."
            .into()]
    };
    EventText {
        headline: format!("fleet drill, {ready} of {total} servers ready"),
        what_happened: what,
        done: vec![
            "Dry-ran the relaunch of every workload of every protected server (RunInstances with DryRun); nothing was launched.".into(),
        ],
        left_to_you: left,
    }
}

pub(super) fn relaunch_failed(e: &WorkloadRelaunchFailed) -> EventText {
    let mut what = vec![
        format!("Workload {} from Outposts server {} could NOT be relaunched.", e.workload, e.server_id),
        format!("Last error: {}: {}", e.error_code, e.error_message),
        format!("Incident {}, launch template {}.", e.incident_id, e.launch_template_id),
    ];
    if !e.destinations_tried.is_empty() {
        what.push("Destinations tried:".into());
        what.extend(
            e.destinations_tried
                .iter()
                .map(|d| format!("  - {}: {}", d.subnet_id, d.error_code.as_ref().map_or("accepted", |c| c.as_str()))),
        );
    }
    let (headline, done, left) = if e.error_code.is_missing_backup() {
        (
            format!("{} has no usable backup", e.workload),
            vec!["Relaunched nothing: a stateful workload starts only from its backup, and none is usable.".to_string()],
            vec![
                "Look for BackupFailed / BackupStale messages about this workload's instance.".to_string(),
                "Point the backup parameter at a known-good backup AMI, then launch the workload by hand.".to_string(),
            ],
        )
    } else if e.error_code.as_str() == "ReplacementLost" {
        (
            format!("replacement of {} lost", e.workload),
            vec!["Detected that the replacement stopped or was terminated; nothing is relaunched automatically."
                .to_string()],
            vec![format!(
                "Launch {} by hand from launch template {}, or bring its server back.",
                e.workload, e.launch_template_id
            )],
        )
    } else {
        (
            format!("{} not relaunched", e.workload),
            vec![format!(
                "Tried every destination the workload lists ({}); nothing more will be tried automatically.",
                e.destinations_tried.len()
            )],
            vec![
                "Check whether the standby server is up and has capacity for the instance type.".to_string(),
                format!(
                    "Launch {} by hand from its launch template, or add a fallback subnet to its tags.",
                    e.launch_template_id
                ),
            ],
        )
    };
    EventText { headline, what_happened: what, done, left_to_you: left }
}
