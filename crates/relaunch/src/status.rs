//! The status query: the ledger's story of a server's open incident, or of a named one,
//! so operator tooling reads the ledger through the function that owns it.

use crate::{Relaunch, Response};
use ha_aws::invocation::HandlerError;
use ha_domain::contract::IncidentStatusRequested;
use ha_domain::incident::IncidentId;
use ha_domain::ledger::IncidentStory;
use ha_domain::model::ServerId;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusReport {
    pub server_id: String,
    /// `None`: no open incident (or the named one is unknown).
    pub incident: Option<IncidentStory>,
}

impl Relaunch {
    pub(crate) async fn status(&self, r: IncidentStatusRequested) -> Result<Response, HandlerError> {
        let Ok(server) = ServerId::parse(&r.server_id) else {
            return Ok(Response::Ignored { reason: format!("'{}' is not an Outposts server id", r.server_id) });
        };
        let incident = match r.incident_id {
            Some(id) => Some(IncidentId::from_stored(id)),
            None => self.ledger.open_incident_of(&server).await?,
        };
        let story = match incident {
            Some(incident) => self.ledger.story_of(&incident).await?,
            None => None,
        };
        Ok(Response::Status(StatusReport { server_id: server.to_string(), incident: story }))
    }
}
