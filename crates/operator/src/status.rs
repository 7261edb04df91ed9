//! The status query: the ledger's story of a server's open incident, or of a named one,
//! so operator tooling reads the ledger through the function that owns it.

use crate::{refused, Operator, Response};
use ha_aws::invocation::HandlerError;
use ha_domain::contract::IncidentStatusRequested;
use ha_domain::incident::IncidentId;
use ha_domain::ledger::IncidentStory;
use ha_domain::model::ServerId;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusReport {
    pub server_id: String,
    /// `None`: no open incident (or the named one is unknown, or another server's).
    pub incident: Option<IncidentStory>,
}

impl Operator {
    pub(crate) async fn status(&self, r: IncidentStatusRequested) -> Result<Response, HandlerError> {
        let Ok(server) = ServerId::parse(&r.server_id) else {
            return refused(format!("'{}' is not an Outposts server id", r.server_id));
        };
        let incident = match r.incident_id.as_deref() {
            Some(id) => match IncidentId::parse(id) {
                Some(incident) => Some(incident),
                None => return refused(format!("'{id}' is not an incident id (inc- and 24 hex digits)")),
            },
            None => self.ports.ledger.open_incident_of(&server).await?,
        };
        let story = match incident {
            Some(incident) => self.ports.ledger.story_of(&incident).await?.filter(|s| s.server_id == server.as_str()),
            None => None,
        };
        Ok(Response::Status(StatusReport { server_id: server.to_string(), incident: story }))
    }
}
