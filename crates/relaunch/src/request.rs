//! The function's input, parsed once at the edge into the job it asks for.

use ha_domain::contract::{
    DrillRequested, FenceRequested, FleetDrillRequested, ProjectEvent, RelaunchRequested, StandbyPromoted,
    StandbyReconcileRequested,
};
use ha_domain::model::InstanceState;
use serde_json::Value;

/// EventBridge's detail-type for EC2 instance state changes.
pub const EC2_STATE_CHANGE: &str = "EC2 Instance State-change Notification";

/// What one invocation asks relaunch to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Launch every workload of an incident.
    Launch(RelaunchRequested),
    /// An instance reached `running`: if it is a replacement, put it behind its target groups.
    Serve { instance_id: String },
    /// An instance stopped or was terminated: if it is an incident's replacement,
    /// the workload lost its copy and a person must hear of it.
    Lost { instance_id: String, state: InstanceState },
    /// Dry-run every workload of a server.
    Drill(DrillRequested),
    /// Dry-run every workload of every protected server; one digest.
    FleetDrill(FleetDrillRequested),
    /// The server is back: fence the originals of what the incident replaced.
    Fence(FenceRequested),
    /// Keep every warm workload's standby as it should be.
    ReconcileStandbys(StandbyReconcileRequested),
    /// A standby was promoted: run its hook, or serve it.
    Promoted(StandbyPromoted),
    /// Nothing for relaunch; why.
    Ignore(String),
    /// Not readable as any input relaunch knows; the parser's reason.
    Malformed(String),
}

impl Request {
    pub fn parse(event: Value) -> Request {
        if event.get("detail-type").and_then(Value::as_str) == Some(EC2_STATE_CHANGE) {
            let instance_id = event["detail"]["instance-id"].as_str().unwrap_or_default().to_string();
            let state = InstanceState::parse(event["detail"]["state"].as_str().unwrap_or_default());
            return match state {
                InstanceState::Running if !instance_id.is_empty() => Request::Serve { instance_id },
                InstanceState::Stopping
                | InstanceState::Stopped
                | InstanceState::ShuttingDown
                | InstanceState::Terminated
                    if !instance_id.is_empty() =>
                {
                    Request::Lost { instance_id, state }
                }
                _ => Request::Ignore(format!("instance state {}", state.as_str())),
            };
        }
        match serde_json::from_value::<ProjectEvent>(event) {
            Ok(ProjectEvent::RelaunchRequested(r)) => Request::Launch(r),
            Ok(ProjectEvent::DrillRequested(r)) => Request::Drill(r),
            Ok(ProjectEvent::FleetDrillRequested(r)) => Request::FleetDrill(r),
            Ok(ProjectEvent::FenceRequested(r)) => Request::Fence(r),
            Ok(ProjectEvent::StandbyReconcileRequested(r)) => Request::ReconcileStandbys(r),
            Ok(ProjectEvent::StandbyPromoted(p)) => Request::Promoted(p),
            Ok(other) => Request::Ignore(other.detail_type().into()),
            Err(e) => Request::Malformed(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample(path: &str) -> Value {
        let root = std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo");
        serde_json::from_str(&std::fs::read_to_string(format!("{root}/../../events/{path}")).unwrap()).unwrap()
    }

    #[test]
    fn each_input_is_one_job() {
        assert!(matches!(Request::parse(sample("contract/RelaunchRequested.json")), Request::Launch(_)));
        assert!(matches!(Request::parse(sample("contract/DrillRequested.json")), Request::Drill(_)));
        assert!(matches!(Request::parse(sample("contract/FleetDrillRequested.json")), Request::FleetDrill(_)));
        assert!(matches!(
            Request::parse(sample("contract/StandbyReconcileRequested.json")),
            Request::ReconcileStandbys(_)
        ));
        assert!(matches!(Request::parse(sample("contract/StandbyPromoted.json")), Request::Promoted(_)));
        assert!(matches!(Request::parse(sample("contract/FenceRequested.json")), Request::Fence(_)));
        assert_eq!(
            Request::parse(sample("contract/ServerRecovered.json")),
            Request::Ignore("ServerRecovered".into()),
            "the news of a recovery is for people; the work is FenceRequested"
        );
        assert!(matches!(Request::parse(sample("ec2/instance-running.json")), Request::Serve { .. }));
        assert_eq!(
            Request::parse(sample("contract/UnfenceRequested.json")),
            Request::Ignore("UnfenceRequested".into()),
            "an operator command goes to the operator function"
        );
        assert_eq!(Request::parse(sample("contract/IncidentOpened.json")), Request::Ignore("IncidentOpened".into()));
        let stopped = json!({"detail-type": EC2_STATE_CHANGE, "detail": {"instance-id": "i-1", "state": "stopped"}});
        assert_eq!(Request::parse(stopped), Request::Lost { instance_id: "i-1".into(), state: InstanceState::Stopped });
        let pending = json!({"detail-type": EC2_STATE_CHANGE, "detail": {"instance-id": "i-1", "state": "pending"}});
        assert_eq!(Request::parse(pending), Request::Ignore("instance state pending".into()));
        let no_id = json!({"detail-type": EC2_STATE_CHANGE, "detail": {"state": "running"}});
        assert_eq!(Request::parse(no_id), Request::Ignore("instance state running".into()));
        match Request::parse(json!({"detail-type": "RelaunchRequested", "detail": {"incident_id": 3}})) {
            Request::Malformed(reason) => assert!(reason.contains("expected a string"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
}
