//! The serve job: a replacement reached `running`; register it with its workload's target
//! groups, and once it is healthy in every one, take the originals out. Not healthy yet
//! answers [`NotYet`], so Lambda's asynchronous retries re-check it (a bounded re-check,
//! no polling here); registering again changes nothing.

use crate::{Relaunch, Response};
use ha_aws::invocation::{told, HandlerError, NotYet};
use ha_domain::contract::{ProjectEvent, WorkloadServing};
use ha_domain::incident::IncidentId;
use ha_domain::ledger::IncidentMark;
use ha_domain::metrics;
use ha_domain::model::{comma_list, is_replacement, tag, Instance, InstanceState};
use ha_domain::timefmt::{format_timestamp, parse_timestamp};
use ha_ports::register_in;
use serde::Serialize;
use std::collections::BTreeSet;
use tracing::info;

/// A replacement that serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServeReport {
    pub incident_id: String,
    pub workload: String,
    pub replacement_instance_id: String,
    /// Originals' targets taken out of the groups by this pass.
    pub deregistered: Vec<String>,
    /// Target groups the workload names that do not exist.
    pub missing_target_groups: Vec<String>,
}

impl Relaunch {
    pub(crate) async fn serve(&self, instance_id: &str, owner: &str) -> Result<Response, HandlerError> {
        let Some(replacement) = self.ports.fleet.instance(instance_id).await? else {
            // EC2 said it runs: Describe has not caught up yet (eventual consistency).
            return Err(HandlerError::NotYet {
                reason: NotYet::ReplacementPending,
                detail: format!("{instance_id} is not visible to DescribeInstances yet"),
            });
        };
        self.serve_replacement(replacement, owner, false).await
    }

    /// Serves `replacement` as described (tags included). A promoted standby whose
    /// workload names a hook serves only once the hook succeeded: `hook_succeeded` when
    /// the caller just saw it succeed (its tag may not be visible yet).
    pub(crate) async fn serve_replacement(
        &self,
        replacement: Instance,
        owner: &str,
        hook_succeeded: bool,
    ) -> Result<Response, HandlerError> {
        let ignored = |reason: &str| Ok(Response::Ignored { reason: reason.to_string() });
        let (fleet, ledger, lb) = (&self.ports.fleet, &self.ports.ledger, &self.ports.load_balancing);
        let instance_id = replacement.instance_id.as_str();
        match &replacement.state {
            InstanceState::Running | InstanceState::Other(_) => {}
            InstanceState::Pending => {
                return Err(HandlerError::NotYet {
                    reason: NotYet::ReplacementPending,
                    detail: format!("{instance_id} is not running yet as DescribeInstances sees it"),
                })
            }
            // A retried check of a replacement that stopped since: the lost job relaunches the
            // workload, and a successor may serve by now; registering this one would put it back.
            other => return ignored(&format!("the replacement is {}, no longer running", other.as_str())),
        }
        let tags = &replacement.tags;
        let hook_pending = tags.contains_key(tag::PROMOTION_DOCUMENT)
            && !hook_succeeded
            && tags.get(tag::PROMOTION_HOOK).map(String::as_str) != Some(tag::HOOK_SUCCEEDED);
        if hook_pending {
            return ignored("a promoted standby serves once its promotion hook succeeded");
        }
        let (Some(role), Some(incident), Some(workload), Some(server)) =
            (tags.get(tag::ROLE), tags.get(tag::INCIDENT), tags.get(tag::WORKLOAD), tags.get(tag::SOURCE_SERVER))
        else {
            return ignored("not a replacement");
        };
        if role != tag::ROLE_REPLACEMENT {
            return ignored("not a replacement");
        }
        let incident = IncidentId::from_stored(incident.as_str());
        let names = tags.get(tag::TARGET_GROUPS).map(|v| comma_list(v)).unwrap_or_default();
        let (groups, missing) =
            if names.is_empty() { (Vec::new(), Vec::new()) } else { lb.target_groups(&names).await? };
        if !missing.is_empty() {
            tracing::error!(missing = ?missing, "target groups named by the workload do not exist; serving through the others");
        }
        let unhealthy = register_in(&**lb, &groups, &replacement, "replacement").await?;
        if !unhealthy.is_empty() {
            info!(waiting_for = ?unhealthy, "registered; originals stay until the replacement is healthy");
            // What the failover report says it waits for, should the deadline come first.
            ledger.record_waiting(&incident, workload, &unhealthy.join("; ")).await?;
            return Err(HandlerError::NotYet { reason: NotYet::TargetNotHealthy, detail: unhealthy.join("; ") });
        }

        // Healthy everywhere: now the originals may go.
        let originals: Vec<Instance> = if groups.is_empty() {
            Vec::new()
        } else {
            // Only this server's originals: every store may call its workload `pos`.
            fleet
                .instances_of(std::slice::from_ref(workload))
                .await?
                .into_iter()
                .filter(|i| {
                    !is_replacement(&i.tags)
                        && !i.state.is_gone()
                        && i.server_id.as_deref().is_none_or(|s| s == server.as_str())
                })
                .collect()
        };
        let mut deregistered = Vec::new();
        for group in &groups {
            let registered: BTreeSet<String> = lb.targets(group).await?.into_iter().map(|(id, _)| id).collect();
            let leaving: Vec<String> =
                originals.iter().filter_map(|i| group.target_of(i)).filter(|t| registered.contains(t)).collect();
            if !leaving.is_empty() {
                lb.deregister(group, &leaving).await?;
                info!(target_group = %group.name, targets = ?leaving, "originals deregistered");
                deregistered.extend(leaving);
            }
        }

        let serving_at = format_timestamp(self.ports.clock.now());
        ledger.record_serving(&incident, workload, &serving_at).await?;
        let detected_at = ledger.incident_detected_at(&incident).await?.unwrap_or_default();
        let seconds = parse_timestamp(&detected_at)
            .zip(parse_timestamp(&serving_at))
            .map(|(d, s)| (s - d).as_seconds_f64().max(0.0));
        let event = ProjectEvent::WorkloadServing(WorkloadServing {
            incident_id: incident.to_string(),
            server_id: server.clone(),
            workload: workload.clone(),
            replacement_instance_id: instance_id.to_string(),
            target_groups: groups.iter().map(|g| g.name.clone()).collect(),
            deregistered: deregistered.clone(),
            detected_at,
            serving_at,
            detection_to_serving_seconds: seconds,
        });
        let mark = IncidentMark::Serving { workload };
        let outcome = ledger
            .tell_incident(&*self.ports.bus, &incident, mark, instance_id, owner, self.ports.clock.epoch(), &[event])
            .await?;
        if told(outcome, "that this replacement serves")? {
            if let Some(s) = seconds {
                metrics::publish_for_server(
                    &self.config.stack_name,
                    server,
                    ("DetectionToServingSeconds", s, metrics::Unit::Seconds),
                );
            }
        }
        // After the metric: a retry of a failed check finds the serving told (no metric twice).
        self.report_failover(&incident, owner).await?;
        Ok(Response::Serve(ServeReport {
            incident_id: incident.to_string(),
            workload: workload.clone(),
            replacement_instance_id: instance_id.to_string(),
            deregistered,
            missing_target_groups: missing,
        }))
    }
}
