//! operator: carries out an operator's commands, so the state they touch is changed by the
//! code that owns it and the tooling holds no table layout. One module per command, chosen
//! once at the edge ([`Command`]): `maintenance` (a server's maintenance window),
//! `unfence` (fenced originals back in service), `release` (held workloads relaunched),
//! `status` (an incident's story from the ledger; how each server of the fleet stands) and
//! `failback` (stateless workloads moved home). Nothing routes events here: only principals allowed to invoke it can.

mod failback;
mod maintenance;
mod release;
mod status;
mod unfence;

pub use failback::{FailbackReport, LeftAway, MovedHome, WaitingHome};
pub use release::Released;
pub use status::{ServerStatus, StatusReport};
pub use unfence::{LeftIsolated, UnfenceReport, Unfenced};

use ha_aws::invocation::HandlerError;
use ha_domain::config::{ConfigError, EnvReader, IncidentStore};
use ha_domain::contract::{
    FailbackRequested, FleetStatusRequested, IncidentStatusRequested, MaintenanceRequested, ProjectEvent,
    ReleaseRequested, UnfenceRequested,
};
use ha_ports::{BackupCatalog, Bus, Clock, Fleet, Ledger, LoadBalancing};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use tracing::{info, warn, Instrument};

#[derive(Debug, Clone)]
pub struct Config {
    pub store: IncidentStore,
    /// The stack whose backups (parameters under `/outposts-ha/<stack>/`) status reads.
    pub stack_name: String,
}

impl Config {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &EnvReader<F>) -> Result<Self, ConfigError> {
        Ok(Config { store: IncidentStore::from_env(env)?, stack_name: env.optional("STACK_NAME", "outposts-ha") })
    }
}

/// What an operator asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Maintenance(MaintenanceRequested),
    Unfence(UnfenceRequested),
    Status(IncidentStatusRequested),
    Release(ReleaseRequested),
    FleetStatus(FleetStatusRequested),
    Failback(FailbackRequested),
    /// Not a command this function carries out; why.
    Unknown(String),
}

impl Command {
    pub fn parse(event: Value) -> Command {
        match serde_json::from_value::<ProjectEvent>(event) {
            Ok(ProjectEvent::MaintenanceRequested(r)) => Command::Maintenance(r),
            Ok(ProjectEvent::UnfenceRequested(r)) => Command::Unfence(r),
            Ok(ProjectEvent::IncidentStatusRequested(r)) => Command::Status(r),
            Ok(ProjectEvent::ReleaseRequested(r)) => Command::Release(r),
            Ok(ProjectEvent::FleetStatusRequested(r)) => Command::FleetStatus(r),
            Ok(ProjectEvent::FailbackRequested(r)) => Command::Failback(r),
            Ok(other) => Command::Unknown(format!("{} is not an operator command", other.detail_type())),
            Err(e) => Command::Unknown(format!("malformed: {e}")),
        }
    }
}

/// The answer to one command.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Response {
    /// The server's maintenance window was set (or ended).
    Maintenance {
        server_id: String,
        until: String,
        reason: String,
        ended: bool,
    },
    Unfence(UnfenceReport),
    Status(StatusReport),
    /// Held workloads released: their incidents' launches requested again.
    Release {
        released: Vec<Released>,
        /// Named servers with no open incident (back already): nothing of theirs is held.
        skipped: Vec<String>,
    },
    /// How each named server stands.
    FleetStatus {
        servers: Vec<ServerStatus>,
    },
    Failback(FailbackReport),
    /// Nothing was done: the request is wrong, and this says how.
    Refused {
        reason: String,
    },
}

impl Response {
    pub fn refused(&self) -> Option<&str> {
        match self {
            Response::Refused { reason } => Some(reason),
            _ => None,
        }
    }

    pub fn as_unfence(&self) -> Option<&UnfenceReport> {
        match self {
            Response::Unfence(r) => Some(r),
            _ => None,
        }
    }
}

/// The ports the commands act through.
#[derive(Clone)]
pub struct Ports {
    pub ledger: Ledger,
    pub fleet: Arc<dyn Fleet>,
    pub backups: Arc<dyn BackupCatalog>,
    pub load_balancing: Arc<dyn LoadBalancing>,
    pub bus: Arc<dyn Bus>,
    pub clock: Arc<dyn Clock>,
}

impl Ports {
    pub fn aws(config: &Config, sdk: &aws_config::SdkConfig) -> Ports {
        let ec2 = aws_sdk_ec2::Client::new(sdk);
        Ports {
            ledger: ha_aws::ledger::ledger_of_store(aws_sdk_dynamodb::Client::new(sdk), &config.store),
            backups: Arc::new(ha_aws::backups::BackupStore::new(
                ec2.clone(),
                aws_sdk_ssm::Client::new(sdk),
                &config.stack_name,
            )),
            load_balancing: Arc::new(ha_aws::serving::ElbLoadBalancing::new(
                aws_sdk_elasticloadbalancingv2::Client::new(sdk),
            )),
            fleet: Arc::new(ha_aws::fleet::Ec2Fleet::new(ec2)),
            bus: Arc::new(ha_aws::bus::EventBridgeBus::of_store(aws_sdk_eventbridge::Client::new(sdk), &config.store)),
            clock: Arc::new(ha_ports::SystemClock),
        }
    }
}

pub struct Operator {
    ports: Ports,
}

impl Operator {
    pub fn new(config: Config, sdk: &aws_config::SdkConfig) -> Self {
        Operator { ports: Ports::aws(&config, sdk) }
    }

    pub fn with_ports(ports: Ports) -> Self {
        Operator { ports }
    }

    /// A wrong request is answered `Refused` with the reason (no retry can fix it); AWS
    /// failures are errors.
    pub async fn handle(&self, event: Value) -> Result<Response, HandlerError> {
        match Command::parse(event) {
            Command::Maintenance(r) => {
                let span = tracing::info_span!("maintenance", server_id = %r.server_id);
                self.maintenance(r).instrument(span).await
            }
            Command::Unfence(r) => {
                let span = tracing::info_span!("unfence", incident_id = ?r.incident_id, instance_id = ?r.instance_id);
                self.unfence(r).instrument(span).await
            }
            Command::Status(r) => {
                let span = tracing::info_span!("status", server_id = %r.server_id, incident_id = ?r.incident_id);
                self.status(r).instrument(span).await
            }
            Command::Release(r) => {
                let span = tracing::info_span!("release", servers = ?r.server_ids, workload = ?r.workload);
                self.release(r).instrument(span).await
            }
            Command::FleetStatus(r) => {
                let span = tracing::info_span!("fleet_status", servers = r.server_ids.len());
                self.fleet_status(r).instrument(span).await
            }
            Command::Failback(r) => {
                let span = tracing::info_span!("failback", server_id = %r.server_id);
                self.failback(r).instrument(span).await
            }
            Command::Unknown(reason) => {
                warn!(%reason, "not an operator command; nothing done");
                Ok(Response::Refused { reason })
            }
        }
    }
}

fn refused(reason: impl Into<String>) -> Result<Response, HandlerError> {
    let reason = reason.into();
    info!(%reason, "request refused");
    Ok(Response::Refused { reason })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample(name: &str) -> Value {
        let root = std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo");
        serde_json::from_str(&std::fs::read_to_string(format!("{root}/../../events/contract/{name}.json")).unwrap())
            .unwrap()
    }

    #[test]
    fn each_command_is_parsed_once_and_anything_else_is_named() {
        assert!(matches!(Command::parse(sample("MaintenanceRequested")), Command::Maintenance(_)));
        assert!(matches!(Command::parse(sample("UnfenceRequested")), Command::Unfence(_)));
        assert!(matches!(Command::parse(sample("IncidentStatusRequested")), Command::Status(_)));
        assert!(matches!(Command::parse(sample("FleetStatusRequested")), Command::FleetStatus(_)));
        assert!(matches!(Command::parse(sample("FailbackRequested")), Command::Failback(_)));
        assert_eq!(
            Command::parse(sample("DrillRequested")),
            Command::Unknown("DrillRequested is not an operator command".into())
        );
        match Command::parse(json!({"detail-type": "UnfenceRequested", "detail": {"force": "yes"}})) {
            Command::Unknown(reason) => assert!(reason.starts_with("malformed: "), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn config_needs_the_store() {
        let c = Config::from_env(&EnvReader::from_pairs(&[("LEDGER_TABLE", "t"), ("EVENT_BUS_NAME", "b")])).unwrap();
        assert_eq!(c.store.ledger_table, "t");
        assert!(Config::from_env(&EnvReader::from_pairs(&[("LEDGER_TABLE", "t")])).is_err());
    }
}
