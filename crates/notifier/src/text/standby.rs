//! Warm standby: a promotion that failed over to a cold launch, and a standby's drift.

use super::EventText;
use ha_domain::contract::{PromotionFailed, StandbyDrifted};
use ha_domain::standby::StandbyDrift;

pub(super) fn promotion_failed(e: &PromotionFailed) -> EventText {
    EventText {
        headline: format!("promotion of {}'s standby failed", e.workload),
        what_happened: vec![
            format!(
                "Outposts server {} went down; the warm standby {} of workload {} was promoted, but its promotion hook {} did not succeed: {}.",
                e.server_id, e.standby_instance_id, e.workload, e.promotion_document, e.reason
            ),
            format!("Incident {}.", e.incident_id),
        ],
        done: vec![
            format!("Kept {} out of service (never registered, tagged outposts-ha:role=promotion-failed).", e.standby_instance_id),
            format!("Relaunched {} cold, as its launch template says; a message follows if that fails too.", e.workload),
        ],
        left_to_you: vec![
            format!(
                "Inspect {}: its data may be newer than the backup the cold copy started from. Terminate it when done.",
                e.standby_instance_id
            ),
            format!("Find why {} failed (SSM Run Command history) before the next failure needs it.", e.promotion_document),
        ],
    }
}

pub(super) fn standby_drifted(e: &StandbyDrifted) -> EventText {
    let standby = e.standby_instance_id.as_deref().unwrap_or("none");
    let mut done = Vec::new();
    match e.action.as_str() {
        "launched" => done.push(format!(
            "Launched a new standby{}.",
            e.launched_instance_id.as_deref().map(|i| format!(" {i}")).unwrap_or_default()
        )),
        "retired" => done.push(format!("Terminated standby {standby}.")),
        "waiting" => done.push(format!("Kept {standby} until its successor runs; the next pass retires it.")),
        _ => {}
    }
    let left_to_you = if e.action == "none" {
        match e.drift {
            StandbyDrift::NoDestination => vec![format!(
                "Give {} a destination for its standby (outposts-ha:subnets), or accept cold recovery until the server is back.",
                e.workload
            )],
            _ => vec![format!("Make room for {}'s standby, or fix what the detail says.", e.workload)],
        }
    } else {
        Vec::new()
    };
    EventText {
        headline: format!("standby of {}: {}", e.workload, e.drift.as_str().replace('_', " ")),
        what_happened: vec![
            format!("Warm workload {} of Outposts server {}: {}.", e.workload, e.server_id, e.detail),
            format!("Standby: {standby}. Seen at {}.", e.observed_at),
        ],
        done,
        left_to_you,
    }
}
