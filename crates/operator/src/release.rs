//! `make release`: relaunch held workloads on the operator's word. The release is recorded
//! in the incident's ledger (relaunch reads it before each launch), then the incident's
//! launch is requested again. A server with no open incident has nothing held.

use crate::{refused, Operator, Response};
use ha_aws::invocation::HandlerError;
use ha_domain::contract::{ProjectEvent, ReleaseRequested};
use ha_domain::ledger::IncidentStatus;
use ha_domain::model::{is_replacement, tag, ServerId};
use serde::Serialize;
use std::collections::BTreeSet;
use tracing::info;

/// One incident released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Released {
    pub server_id: String,
    pub incident_id: String,
    /// The one workload released; none: every held workload of the incident.
    pub workload: Option<String>,
}

impl Operator {
    pub(crate) async fn release(&self, request: ReleaseRequested) -> Result<Response, HandlerError> {
        let workload = request.workload.as_deref().map(str::trim).filter(|w| !w.is_empty());
        let mut servers = BTreeSet::new();
        for text in request.server_ids.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            match ServerId::parse(text) {
                Ok(server) => servers.insert(server),
                Err(e) => return refused(e.to_string()),
            };
        }
        if let Some(name) = workload {
            // Its server is where its original runs.
            let originals: BTreeSet<ServerId> = self
                .ports
                .fleet
                .instances_of(&[name.to_string()])
                .await?
                .into_iter()
                .filter(|i| !is_replacement(&i.tags))
                // The Outpost EC2 names, else the server its tags name (stateful originals).
                .filter_map(|i| {
                    let named = i.server_id.or_else(|| i.tags.get(tag::PROTECTED_SERVER).cloned());
                    named.and_then(|s| ServerId::parse(&s).ok())
                })
                .collect();
            match (servers.is_empty(), originals.len()) {
                (_, 0) if servers.is_empty() => {
                    return refused(format!("no original of workload {name} is known on any server: name its SERVER="))
                }
                (true, 1) => servers = originals,
                (true, _) => return refused(format!("workload {name} runs on several servers: name its SERVER=")),
                (false, _) => {}
            }
            if servers.len() != 1 {
                return refused("release one workload on one server (WORKLOAD= with at most one SERVER=)");
            }
        }
        if servers.is_empty() {
            return refused("name the servers to release (SERVER=op-…[,op-…]) or a workload (WORKLOAD=…)");
        }
        // A server of a wave may be back already: it is skipped and said, the rest released.
        let ledger = &self.ports.ledger;
        let (mut incidents, mut skipped) = (Vec::new(), Vec::new());
        for server in &servers {
            // A hold with no incident recorded is an outage still being judged (or suppressed
            // by a maintenance window): nothing of it is held.
            match ledger.open_incident_of(server).await? {
                Some(incident) if ledger.incident_status(&incident).await? == Some(IncidentStatus::Open) => {
                    incidents.push((server.clone(), incident))
                }
                _ => skipped.push(server.to_string()),
            }
        }
        if incidents.is_empty() {
            return refused(format!("no open incident on {}: nothing is held", skipped.join(", ")));
        }
        let mut released = Vec::new();
        for (server, incident) in incidents {
            ledger.record_release(&incident, workload, &request.requested_at, self.ports.clock.epoch()).await?;
            if let Some(launch) = ledger.relaunch_request(&*self.ports.fleet, &*self.ports.clock, &incident).await? {
                self.ports.bus.publish(&[ProjectEvent::RelaunchRequested(launch)]).await?;
            }
            info!(server_id = %server, incident_id = %incident, workload = ?workload, "released: relaunch requested");
            released.push(Released {
                server_id: server.to_string(),
                incident_id: incident.to_string(),
                workload: workload.map(str::to_string),
            });
        }
        Ok(Response::Release { released, skipped })
    }
}
