//! The fence job: the server is back; fence the originals of the workloads this incident
//! replaced, per policy, then close the incident. Redelivery finds them fenced and does
//! nothing. An original is fenced only when its workload has a replacement.

use crate::{Relaunch, Response};
use ha_aws::invocation::{HandlerError, NotYet};
use ha_domain::contract::{FenceOutcome, IncidentClosed, OriginalFenced, ProjectEvent, ServerRecovered};
use ha_domain::error::AwsFailure;
use ha_domain::fencing::{
    choose_originals, groups_from_tag, groups_tag_value, policy_for, FenceAction, FencingPolicy, ReplacedWorkload,
};
use ha_domain::incident::IncidentId;
use ha_domain::ledger::{IncidentMark, WorkloadStatus};
use ha_domain::model::{tag, Instance, ServerId};
use ha_domain::timefmt::now;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use tracing::{error, info, warn, Instrument};

/// What one fencing pass did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FenceReport {
    pub incident_id: String,
    /// Originals fenced (or found fenced) by this pass.
    pub fenced: Vec<String>,
    pub incident_closed: bool,
}

/// What fencing did to one original.
struct Fenced {
    outcome: FenceOutcome,
    previous_groups: Vec<String>,
    quarantine: Option<String>,
}

impl Fenced {
    fn untouched(outcome: FenceOutcome) -> Fenced {
        Fenced { outcome, previous_groups: Vec::new(), quarantine: None }
    }
}

impl Relaunch {
    pub(crate) async fn fence(&self, r: ServerRecovered) -> Result<Response, HandlerError> {
        let (Some(incident), Ok(server)) = (r.incident_id.as_deref(), ServerId::parse(&r.server_id)) else {
            info!("no open incident for the server: nothing to fence");
            return Ok(Response::Ignored { reason: "no open incident".into() });
        };
        let incident = IncidentId::from_stored(incident);
        let mut replaced = Vec::new();
        for (status, outcome) in self.ledger.outcomes_of(&incident).await? {
            if status == WorkloadStatus::Launching {
                // A launch still in flight would leave its original unfenced: come back later.
                return Err(HandlerError::NotYet {
                    reason: NotYet::RelaunchInProgress,
                    detail: "a workload of the incident is still being launched".into(),
                });
            }
            if let Some(ProjectEvent::WorkloadRelaunched(w)) = outcome.and_then(|o| serde_json::from_str(&o).ok()) {
                replaced.push(w);
            }
        }
        let template_ids: Vec<String> =
            replaced.iter().map(|w| w.launch_template_id.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        let template_tags = self.fleet.template_tags(&template_ids).await?;
        let no_tags = BTreeMap::new();
        let replaced_workloads: Vec<ReplacedWorkload> = replaced
            .iter()
            .map(|w| ReplacedWorkload {
                workload: w.workload.clone(),
                replacement_instance_id: w.replacement_instance_id.clone(),
                policy: policy_for(
                    template_tags.get(&w.launch_template_id).unwrap_or(&no_tags),
                    self.config.fencing_policy,
                ),
            })
            .collect();
        let names: Vec<String> = replaced_workloads.iter().map(|w| w.workload.clone()).collect();
        let candidates = if names.is_empty() { Vec::new() } else { self.fleet.instances_of(&names).await? };
        let actions = choose_originals(incident.as_str(), server.as_str(), &replaced_workloads, &candidates);

        let mut events = Vec::new();
        let mut fenced_ids = Vec::new();
        for action in &actions {
            let span = tracing::info_span!("original", workload = %action.workload, instance_id = %action.instance_id);
            let candidate = candidates.iter().find(|c| c.instance_id == action.instance_id);
            let fenced = self.fence_one(&incident, action, candidate).instrument(span).await?;
            let mark = IncidentMark::Fenced { instance_id: &action.instance_id };
            let first =
                self.ledger.mark_incident(&incident, mark, fenced.outcome.as_str(), now().unix_timestamp()).await?;
            if first {
                events.push(ProjectEvent::OriginalFenced(OriginalFenced {
                    incident_id: incident.to_string(),
                    server_id: server.to_string(),
                    workload: action.workload.clone(),
                    instance_id: action.instance_id.clone(),
                    replacement_instance_id: action.replacement_instance_id.clone(),
                    policy: action.policy,
                    action: fenced.outcome,
                    previous_security_groups: fenced.previous_groups,
                    quarantine_security_group: fenced.quarantine,
                }));
            }
            fenced_ids.push(action.instance_id.clone());
        }

        let summary = format!(
            "{} workload(s) replaced; {} original(s) fenced on {} ({})",
            replaced.len(),
            actions.len(),
            r.recovered_at,
            actions.iter().map(|a| format!("{} {}", a.instance_id, a.policy.as_str())).collect::<Vec<_>>().join(", ")
        );
        if self.ledger.close_incident(&incident, &server, &summary, now().unix_timestamp()).await? {
            info!(%summary, "incident closed");
            events.push(ProjectEvent::IncidentClosed(IncidentClosed {
                incident_id: incident.to_string(),
                server_id: server.to_string(),
                recovered_at: r.recovered_at.clone(),
                replaced: replaced.iter().map(|w| w.workload.clone()).collect(),
                fenced: fenced_ids.clone(),
                summary,
            }));
        }
        self.bus.publish(&events).await?;
        Ok(Response::Fence(FenceReport {
            incident_id: incident.to_string(),
            fenced: fenced_ids,
            incident_closed: true,
        }))
    }

    async fn fence_one(
        &self,
        incident: &IncidentId,
        action: &FenceAction,
        candidate: Option<&Instance>,
    ) -> Result<Fenced, AwsFailure> {
        let id = action.instance_id.as_str();
        let fenced = match (action.policy, candidate.and_then(|c| c.vpc_id.as_deref().map(|v| (c, v)))) {
            (FencingPolicy::Isolate, Some((c, vpc))) => {
                let quarantine = self.fleet.quarantine_group(vpc, &self.config.stack_name).await?;
                // The groups are kept before they are swapped, and never overwritten by a retry
                // that would only see the quarantine group.
                let previous = match c.tags.get(tag::FENCED_GROUPS) {
                    Some(kept) => groups_from_tag(kept),
                    None => {
                        let groups = c.security_groups.clone();
                        self.fleet.tag_instance(id, &[(tag::FENCED_GROUPS, &groups_tag_value(&groups))]).await?;
                        groups
                    }
                };
                self.fleet.set_security_groups(id, std::slice::from_ref(&quarantine)).await?;
                warn!(%quarantine, previous = ?previous, "original isolated");
                Fenced { outcome: FenceOutcome::Isolated, previous_groups: previous, quarantine: Some(quarantine) }
            }
            (FencingPolicy::Terminate, _) => {
                self.fleet.terminate(id).await?;
                warn!("original terminated");
                return Ok(Fenced::untouched(FenceOutcome::Terminated));
            }
            (FencingPolicy::Isolate, None) => {
                error!("original has no VPC to isolate it in; left running");
                Fenced::untouched(FenceOutcome::LeftRunningNoVpc)
            }
            (FencingPolicy::Notify, _) => {
                warn!("original left running (policy notify)");
                Fenced::untouched(FenceOutcome::LeftRunning)
            }
        };
        self.fleet.tag_instance(id, &[(tag::FENCED, incident.as_str())]).await?;
        Ok(fenced)
    }
}
