//! The status queries: the ledger's story of a server's open (else newest) incident, or of
//! a named one, and how each server of the fleet stands, so operator tooling reads the
//! ledger through the function that owns it.

use crate::{refused, Operator, Response};
use futures::stream::{self, StreamExt};
use ha_aws::invocation::HandlerError;
use ha_domain::contract::{FleetStatusRequested, IncidentStatusRequested};
use ha_domain::error::AwsFailure;
use ha_domain::incident::IncidentId;
use ha_domain::ledger::{DrillRecord, IncidentStory};
use ha_domain::model::ServerId;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusReport {
    pub server_id: String,
    /// `None`: no incident recorded (or the named one is unknown, or another server's).
    pub incident: Option<IncidentStory>,
}

impl Operator {
    pub(crate) async fn status(&self, r: IncidentStatusRequested) -> Result<Response, HandlerError> {
        // A named incident needs no server (`make incident ID=…`); without one, the server's.
        let server = match (r.server_id.as_str(), r.incident_id.is_some()) {
            ("", true) => None,
            (id, _) => match ServerId::parse(id) {
                Ok(server) => Some(server),
                Err(_) => return refused(format!("'{id}' is not an Outposts server id")),
            },
        };
        let incident = match (r.incident_id.as_deref(), &server) {
            (Some(id), _) => match IncidentId::parse(id) {
                Some(incident) => Some(incident),
                None => return refused(format!("'{id}' is not an incident id (inc- and 24 hex digits)")),
            },
            (None, Some(server)) => match self.ports.ledger.open_incident_of(server).await? {
                Some(open) => Some(open),
                None if r.latest => self.ports.ledger.last_incident_of(server).await?,
                None => None,
            },
            (None, None) => None,
        };
        let story = match incident {
            Some(incident) => self
                .ports
                .ledger
                .story_of(&incident)
                .await?
                .filter(|s| server.as_ref().is_none_or(|server| s.server_id == server.as_str())),
            None => None,
        };
        let server_id = server.map(|s| s.to_string()).or(story.as_ref().map(|s| s.server_id.clone()));
        Ok(Response::Status(StatusReport { server_id: server_id.unwrap_or_default(), incident: story }))
    }
}

/// How one protected server stands, as the ledger and EC2 say: what `make status` shows
/// beside the alarm it reads itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerStatus {
    pub server_id: String,
    /// Workloads declared with usable tags.
    pub workloads: u32,
    /// Templates tagged for the server whose tags are unusable: `name: reason`.
    pub unusable: Vec<String>,
    /// Stateful workloads among `workloads`.
    pub stateful: u32,
    /// The oldest of the stateful workloads' newest backups (seconds); none without one.
    pub oldest_backup_age_seconds: Option<i64>,
    /// Stateful workloads with no usable backup: `name: why`.
    pub missing_backups: Vec<String>,
    pub last_drill: Option<DrillRecord>,
    pub open_incident: Option<String>,
    /// Workloads running on a replacement launched for this server: `name: i-…`.
    pub away: Vec<String>,
    /// The newest incident, open or closed.
    pub last_incident: Option<String>,
    /// Why the server could not be read (the others still are).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Servers read at once.
const SERVERS_AT_ONCE: usize = 8;

impl Operator {
    pub(crate) async fn fleet_status(&self, r: FleetStatusRequested) -> Result<Response, HandlerError> {
        let mut servers = Vec::new();
        for id in &r.server_ids {
            match ServerId::parse(id) {
                Ok(server) => servers.push(server),
                Err(_) => return refused(format!("'{id}' is not an Outposts server id")),
            }
        }
        let statuses = stream::iter(servers)
            .map(|server| async move {
                match self.server_status(&server).await {
                    Ok(status) => status,
                    Err(f) => ServerStatus {
                        server_id: server.to_string(),
                        workloads: 0,
                        unusable: Vec::new(),
                        stateful: 0,
                        oldest_backup_age_seconds: None,
                        missing_backups: Vec::new(),
                        last_drill: None,
                        open_incident: None,
                        away: Vec::new(),
                        last_incident: None,
                        problem: Some(f.to_string()),
                    },
                }
            })
            .buffered(SERVERS_AT_ONCE)
            .collect::<Vec<_>>()
            .await;
        Ok(Response::FleetStatus { servers: statuses })
    }

    async fn server_status(&self, server: &ServerId) -> Result<ServerStatus, AwsFailure> {
        let ledger = &self.ports.ledger;
        let (declared, drill, open, last) = tokio::join!(
            self.ports.fleet.workloads_of(server),
            ledger.last_drill_of(server),
            ledger.open_incident_of(server),
            ledger.last_incident_of(server)
        );
        let (workloads, rejected) = declared?;
        let mut oldest: Option<i64> = None;
        let mut missing = Vec::new();
        let now = self.ports.clock.now();
        for w in workloads.iter().filter(|w| w.is_stateful()) {
            let parameter = w.backup_parameter.as_deref().unwrap_or_default();
            let image = match self.ports.backups.parameter(parameter).await? {
                Some(image_id) => self.ports.backups.image(&image_id).await?,
                None => None,
            };
            match image.and_then(|i| i.taken_at()) {
                Some(taken) => {
                    let age = (now - taken).whole_seconds().max(0);
                    oldest = Some(oldest.map_or(age, |o| o.max(age)));
                }
                None => missing.push(format!("{}: no backup ({parameter})", w.name)),
            }
        }
        let mut away = Vec::new();
        for w in &workloads {
            for r in self.ports.fleet.replacements_of(&w.name).await? {
                if r.source_server.as_deref() == Some(server.as_str()) && !r.state.is_gone() {
                    away.push(format!("{}: {}", w.name, r.instance_id));
                }
            }
        }
        Ok(ServerStatus {
            server_id: server.to_string(),
            workloads: workloads.len() as u32,
            unusable: rejected.iter().map(|r| format!("{}: {}", r.launch_template_name, r.reason)).collect(),
            stateful: workloads.iter().filter(|w| w.is_stateful()).count() as u32,
            oldest_backup_age_seconds: oldest,
            missing_backups: missing,
            last_drill: drill?,
            open_incident: open?.map(|i| i.to_string()),
            away,
            last_incident: last?.map(|i| i.to_string()),
            problem: None,
        })
    }
}
