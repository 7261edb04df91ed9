//! What a settled launch tells: the outcome events, the refusals they list, and the
//! metric each fresh outcome contributes.

use ha_domain::contract::{
    ProjectEvent, RelaunchFailure, RelaunchRequested, WorkloadRelaunchFailed, WorkloadRelaunched,
};
use ha_domain::error::{AwsFailure, Retry};
use ha_domain::launch::DestinationAttempt;
use ha_domain::metrics;
use ha_domain::model::Workload;
use ha_domain::timefmt::parse_timestamp;

/// Why one destination did not take the launch.
pub(super) enum Refusal {
    /// The Outpost reported no capacity for the instance type: not even tried.
    KnownShortage(String),
    /// The destination subnet is on the failed server (its message).
    OnFailedServer(String),
    /// EC2 answered with an instance that is no longer running (an earlier attempt's, by
    /// its ClientToken): this destination's token is spent (its message).
    LaunchedAndLost(String),
    Aws(AwsFailure),
}

impl Refusal {
    pub(super) fn code(&self) -> RelaunchFailure {
        match self {
            Refusal::KnownShortage(_) => RelaunchFailure::KnownCapacityShortage,
            Refusal::OnFailedServer(_) => RelaunchFailure::DestinationOnFailedServer,
            Refusal::LaunchedAndLost(_) => RelaunchFailure::ReplacementLost,
            Refusal::Aws(f) => RelaunchFailure::Aws(f.code.clone()),
        }
    }

    pub(super) fn message(&self) -> &str {
        match self {
            Refusal::KnownShortage(m) | Refusal::OnFailedServer(m) | Refusal::LaunchedAndLost(m) => m,
            Refusal::Aws(f) => &f.message,
        }
    }

    pub(super) fn retry(&self) -> Retry {
        match self {
            Refusal::KnownShortage(_) | Refusal::OnFailedServer(_) | Refusal::LaunchedAndLost(_) => Retry::WontHelp,
            Refusal::Aws(f) => f.retry,
        }
    }
}

/// A workload that cannot be launched at all (no destination, no backup).
pub(super) fn cannot_launch(
    req: &RelaunchRequested,
    w: &Workload,
    code: RelaunchFailure,
    message: &str,
) -> ProjectEvent {
    ProjectEvent::WorkloadRelaunchFailed(WorkloadRelaunchFailed {
        incident_id: req.incident_id.clone(),
        server_id: req.server_id.clone(),
        site_name: req.site_name.clone(),
        workload: w.name.clone(),
        launch_template_id: w.launch_template_id.clone(),
        error_code: code,
        error_message: message.into(),
        destinations_tried: Vec::new(),
        manual_action_required: true,
        detected_at: req.detected_at.clone(),
    })
}

pub(super) fn attempt_failed(subnet: &str, refusal: &Refusal) -> DestinationAttempt {
    DestinationAttempt {
        subnet_id: subnet.to_string(),
        error_code: Some(refusal.code()),
        error_message: Some(refusal.message().to_string()),
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn relaunched(
    req: &RelaunchRequested,
    w: &Workload,
    instance_id: &str,
    subnet: &str,
    tried: Vec<DestinationAttempt>,
    requested_at: &str,
    accepted_at: &str,
    adopted: bool,
) -> ProjectEvent {
    ProjectEvent::WorkloadRelaunched(WorkloadRelaunched {
        incident_id: req.incident_id.clone(),
        server_id: req.server_id.clone(),
        workload: w.name.clone(),
        launch_template_id: w.launch_template_id.clone(),
        replacement_instance_id: instance_id.to_string(),
        subnet_id: subnet.to_string(),
        destinations_tried: tried,
        detected_at: req.detected_at.clone(),
        launch_requested_at: requested_at.to_string(),
        launch_accepted_at: accepted_at.to_string(),
        adopted,
        restored_from: None,
        already_replaced_in: None,
        grounds: None,
        stateful: false,
        promoted_standby: false,
    })
}

/// The metric one settled outcome contributes: how long from detection until EC2 accepted
/// the replacement, or one relaunch failure.
pub(super) fn outcome_metric(e: &ProjectEvent) -> Option<(&'static str, f64, metrics::Unit)> {
    match e {
        ProjectEvent::WorkloadRelaunched(r) if r.already_replaced_in.is_none() => {
            let detected = parse_timestamp(&r.detected_at)?;
            let accepted = parse_timestamp(&r.launch_accepted_at)?;
            Some(("DetectionToLaunchSeconds", (accepted - detected).as_seconds_f64().max(0.0), metrics::Unit::Seconds))
        }
        ProjectEvent::WorkloadRelaunchFailed(_) => Some(("RelaunchFailures", 1.0, metrics::Unit::Count)),
        _ => None,
    }
}

pub(super) fn workload_of(e: &ProjectEvent) -> Option<&str> {
    match e {
        ProjectEvent::WorkloadRelaunched(r) => Some(&r.workload),
        ProjectEvent::WorkloadRelaunchFailed(f) => Some(&f.workload),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_fresh_outcome_is_one_metric() {
        let path = format!("{}/../../events/contract/", std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"));
        let load = |name: &str| -> ProjectEvent {
            serde_json::from_str(&std::fs::read_to_string(format!("{path}{name}.json")).unwrap()).unwrap()
        };
        let (name, seconds, unit) = outcome_metric(&load("WorkloadRelaunched")).unwrap();
        assert_eq!((name, unit), ("DetectionToLaunchSeconds", metrics::Unit::Seconds));
        assert!((seconds - 1.789).abs() < 1e-9, "{seconds}");
        assert_eq!(
            outcome_metric(&load("WorkloadRelaunchFailed")),
            Some(("RelaunchFailures", 1.0, metrics::Unit::Count))
        );
        assert_eq!(outcome_metric(&load("ServerRecovered")), None);
    }
}
