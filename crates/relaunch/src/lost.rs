//! The lost job: an incident's replacement stopped or was terminated (capacity, a KMS key,
//! a pruned backup, a person). Until its server is back (or, after fail-over, until its
//! original is put back) the workload has no copy that serves: a person is told once.

use crate::{Relaunch, Response};
use ha_aws::invocation::{told, HandlerError, NotYet};
use ha_domain::contract::{ProjectEvent, RelaunchFailure, WorkloadRelaunchFailed};
use ha_domain::error::AwsFailure;
use ha_domain::fencing::is_partly_isolated;
use ha_domain::incident::IncidentId;
use ha_domain::ledger::IncidentMark;
use ha_domain::model::{is_replacement, tag, InstanceState, ServerId};
use serde::Serialize;
use tracing::error;

/// An incident's replacement that stopped or went away.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LostReport {
    pub incident_id: String,
    pub workload: String,
    pub replacement_instance_id: String,
    pub state: String,
}

impl Relaunch {
    pub(crate) async fn lost(
        &self,
        instance_id: &str,
        state: InstanceState,
        owner: &str,
    ) -> Result<Response, HandlerError> {
        let ignored = |reason: &str| Ok(Response::Ignored { reason: reason.to_string() });
        let (fleet, ledger) = (&self.ports.fleet, &self.ports.ledger);
        let Some(instance) = fleet.instance(instance_id).await? else {
            // EC2 told of it: Describe has not caught up yet (eventual consistency).
            return Err(HandlerError::NotYet {
                reason: NotYet::ReplacementPending,
                detail: format!("{instance_id} is not visible to DescribeInstances yet"),
            });
        };
        let tags = &instance.tags;
        let (Some(workload), Some(server)) = (tags.get(tag::WORKLOAD), tags.get(tag::SOURCE_SERVER)) else {
            return ignored("not a replacement");
        };
        let Ok(server) = ServerId::parse(server) else {
            return ignored("not a replacement");
        };
        if !is_replacement(tags) {
            return ignored("not a replacement");
        }
        // Moved home (fail-back): the server is up and an unfenced original of the workload
        // runs on it. (During an outage EC2 still says the originals run.)
        let up = ledger.server_is_up(&server).await? == Some(true);
        let home = up && self.runs_at_home(workload, &server).await?;
        if home {
            return ignored("the workload runs on its original again");
        }
        // The server's open incident first (it may have adopted the replacement from an
        // earlier one: its summary and page are the live ones), else the one that launched it.
        let mut incidents: Vec<IncidentId> = ledger.open_incident_of(&server).await?.into_iter().collect();
        incidents.extend(tags.get(tag::INCIDENT).map(IncidentId::from_stored));
        // Open or closed: after fail-over the replacement is the workload's copy, and its
        // original is fenced; losing it leaves no copy that serves.
        for incident in incidents {
            let relaunched = ledger.outcomes_of(&incident).await?.into_iter().find_map(|(_, outcome)| {
                match outcome.and_then(|o| serde_json::from_str::<ProjectEvent>(&o).ok()) {
                    Some(ProjectEvent::WorkloadRelaunched(r))
                        if &r.workload == workload && r.replacement_instance_id == instance_id =>
                    {
                        Some(r)
                    }
                    _ => None,
                }
            });
            let Some(relaunched) = relaunched else {
                continue;
            };
            error!(incident_id = %incident, %workload, state = %state.as_str(), "the replacement stopped: the workload has no running copy; manual action required");
            let event = ProjectEvent::WorkloadRelaunchFailed(WorkloadRelaunchFailed {
                incident_id: incident.to_string(),
                server_id: server.to_string(),
                site_name: None,
                workload: workload.clone(),
                launch_template_id: relaunched.launch_template_id.clone(),
                error_code: RelaunchFailure::ReplacementLost,
                error_message: format!(
                    "replacement {instance_id} is {}: the workload has no running copy until its server is back or it is relaunched by hand",
                    state.as_str()
                ),
                destinations_tried: Vec::new(),
                manual_action_required: true,
                detected_at: ledger.incident_detected_at(&incident).await?.unwrap_or_default(),
            });
            let outcome = ledger
                .tell_incident(
                    &*self.ports.bus,
                    &incident,
                    IncidentMark::ReplacementLost { workload },
                    instance_id,
                    owner,
                    self.ports.clock.epoch(),
                    &[event],
                )
                .await?;
            told(outcome, "the replacement was lost")?;
            self.report_failover(&incident, owner).await?;
            return Ok(Response::Lost(LostReport {
                incident_id: incident.to_string(),
                workload: workload.clone(),
                replacement_instance_id: instance_id.to_string(),
                state: state.as_str().to_string(),
            }));
        }
        ignored("not an incident's replacement")
    }

    /// An unfenced original of the workload runs on its server, none of its interfaces in
    /// quarantine: the workload serves at home. Read from EC2, which during an outage still
    /// says the originals run: ask only of a server known up.
    pub(crate) async fn runs_at_home(&self, workload: &str, server: &ServerId) -> Result<bool, AwsFailure> {
        let fleet = &self.ports.fleet;
        for i in fleet.instances_of(&[workload.to_string()]).await? {
            // A standby (or one whose promotion failed) is no original.
            let candidate = !is_replacement(&i.tags)
                && !i.tags.contains_key(tag::ROLE)
                && i.state == InstanceState::Running
                && !i.tags.contains_key(tag::FENCED)
                && i.server_id.as_deref() == Some(server.as_str());
            if !candidate {
                continue;
            }
            // An interface left in quarantine by a fencing pass that died: not serving.
            let quarantine = match i.vpc_id.as_deref() {
                Some(vpc) => fleet.find_quarantine_group(vpc, &self.config.stack_name).await?,
                None => None,
            };
            if !quarantine.is_some_and(|q| is_partly_isolated(&i, &q)) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
