//! alarm-handler: classifies a protected server's ConnectedStatus alarm transition,
//! opens (or continues) the incident in the ledger, resolves the server's workloads and
//! hands them to relaunch over the project's bus.

use ha_aws::bus::EventBus;
use ha_aws::fleet::Fleet;
use ha_aws::invocation::HandlerError;
use ha_aws::ledger::{IncidentRecord, Ledger};
use ha_domain::alarm::{classify_transition, parse_alarm_notification, AlarmTransition, AlarmVerdict};
use ha_domain::config::{ConfigError, EnvReader, IncidentStore};
use ha_domain::contract::{
    IncidentContinued, IncidentOpened, ProjectEvent, RelaunchRequested, RelaunchSuppressed, ServerRecovered,
};
use ha_domain::incident::{
    decide_incident, should_announce, suppressed_by, IncidentDecision, IncidentId, IncidentRecordState,
    MaintenanceWindow, ServerLedgerState,
};
use ha_domain::ledger::IncidentMark;
use ha_domain::metrics;
use ha_domain::model::ServerId;
use ha_domain::timefmt::{format_timestamp, now};
use serde::Serialize;
use serde_json::Value;
use tracing::{info, warn, Instrument};

/// Read once at cold start; see the README's configuration table.
#[derive(Debug, Clone)]
pub struct Config {
    pub store: IncidentStore,
    /// Only alarms whose name starts with this are ours.
    pub alarm_name_prefix: String,
    /// The `Stack` dimension of the metrics this function publishes.
    pub stack_name: String,
}

impl Config {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &EnvReader<F>) -> Result<Self, ConfigError> {
        Ok(Config {
            store: IncidentStore::from_env(env)?,
            alarm_name_prefix: env.optional("ALARM_NAME_PREFIX", "outposts-ha-"),
            stack_name: env.optional("STACK_NAME", "outposts-ha"),
        })
    }
}

/// What one delivery led to; also the function's response, for people invoking it by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Rejected {
        reason: String,
    },
    Ignored {
        alarm_name: String,
        reason: String,
    },
    Relaunching {
        incident_id: String,
        server_id: String,
        workloads: usize,
        new_incident: bool,
        flap: bool,
    },
    ServerRecovered {
        server_id: String,
        incident_id: Option<String>,
    },
    /// Down during its maintenance window: recorded and announced, nothing relaunched.
    Suppressed {
        server_id: String,
        maintenance_until: String,
    },
}

pub struct AlarmHandler {
    config: Config,
    ledger: Ledger,
    fleet: Fleet,
    bus: EventBus,
}

impl AlarmHandler {
    pub fn new(config: Config, sdk: &aws_config::SdkConfig) -> Self {
        AlarmHandler {
            ledger: Ledger::of_store(aws_sdk_dynamodb::Client::new(sdk), &config.store),
            fleet: Fleet::new(aws_sdk_ec2::Client::new(sdk)),
            bus: EventBus::of_store(aws_sdk_eventbridge::Client::new(sdk), &config.store),
            config,
        }
    }

    /// Malformed or foreign input is logged and answered with `Rejected`/`Ignored` (no
    /// retry can fix it); AWS failures are returned as errors so Lambda retries.
    pub async fn handle(&self, event: Value) -> Result<Vec<Outcome>, HandlerError> {
        let transitions = match parse_alarm_notification(&event) {
            Ok(t) => t,
            Err(e) => {
                warn!(reason = %e, "rejected an event that is not a usable alarm notification");
                return Ok(vec![Outcome::Rejected { reason: e.to_string() }]);
            }
        };
        let mut outcomes = Vec::with_capacity(transitions.len());
        for t in &transitions {
            outcomes.push(self.handle_transition(t).await?);
        }
        Ok(outcomes)
    }

    async fn handle_transition(&self, t: &AlarmTransition) -> Result<Outcome, HandlerError> {
        match classify_transition(t, &self.config.alarm_name_prefix) {
            AlarmVerdict::Ignore(reason) => {
                if reason.is_suspicious() {
                    warn!(alarm_name = %t.alarm_name, reason = %reason, "ignored our own alarm: check its definition");
                } else {
                    info!(alarm_name = %t.alarm_name, reason = %reason, "ignored alarm state change");
                }
                Ok(Outcome::Ignored { alarm_name: t.alarm_name.clone(), reason: reason.to_string() })
            }
            AlarmVerdict::ServerDown(server) => {
                let incident = IncidentId::derive(&t.alarm_arn, t.state_change_time);
                let span = tracing::info_span!("server_down", server_id = %server, incident_id = %incident);
                self.server_down(t, server, incident).instrument(span).await
            }
            AlarmVerdict::ServerBack(server) => {
                let span = tracing::info_span!("server_back", server_id = %server);
                self.server_back(t, server).instrument(span).await
            }
        }
    }

    async fn server_down(
        &self,
        t: &AlarmTransition,
        server: ServerId,
        derived: IncidentId,
    ) -> Result<Outcome, HandlerError> {
        let now_epoch = now().unix_timestamp();
        let detected_at = format_timestamp(t.state_change_time);
        // Independent reads and writes go out together: every round trip here delays every launch.
        let (held, declared, window) = tokio::join!(
            self.ledger.claim_server(&server, &derived, now_epoch),
            self.fleet.workloads_of(&server),
            self.ledger.maintenance_of(&server)
        );
        let (held, (workloads, rejected), window) = (held?, declared?, window?);
        if suppressed_by(window.as_ref(), t.state_change_time) {
            if !matches!(held, ServerLedgerState::HeldByOther(_)) {
                // The claim just taken must not outlive the window.
                self.ledger.release_server(&server, &derived).await?;
            }
            let window =
                window.unwrap_or(MaintenanceWindow { until_epoch: 0, until: String::new(), reason: String::new() });
            return self.suppressed(t, &server, &derived, &detected_at, &window, &workloads).await;
        }
        let IncidentDecision::Relaunch { incident, continued_from_flap } = decide_incident(&derived, &held);
        for r in &rejected {
            warn!(launch_template_id = %r.launch_template_id, reason = %r.reason, "launch template tagged for this server is not a usable workload");
        }

        let mut events = Vec::new();
        let mut announce = false;
        let mut new_incident = false;
        if continued_from_flap {
            warn!(open_incident = %incident, "server went down again while its incident is open: continuing it, no second wave");
            if self.ledger.record_realarm(&incident, &detected_at).await? {
                events.push(ProjectEvent::IncidentContinued(IncidentContinued {
                    incident_id: incident.to_string(),
                    server_id: server.to_string(),
                    alarm_name: t.alarm_name.clone(),
                    realarmed_at: detected_at.clone(),
                }));
            }
        } else {
            let record = IncidentRecord {
                incident: &incident,
                server: &server,
                alarm_arn: &t.alarm_arn,
                alarm_name: &t.alarm_name,
                detected_at: &detected_at,
            };
            let state = self.ledger.record_incident(&record, now_epoch).await?;
            announce = should_announce(state, now_epoch);
            new_incident = state == IncidentRecordState::Created;
            if announce {
                events.push(ProjectEvent::IncidentOpened(IncidentOpened {
                    incident_id: incident.to_string(),
                    server_id: server.to_string(),
                    alarm_name: t.alarm_name.clone(),
                    alarm_arn: t.alarm_arn.clone(),
                    detected_at: detected_at.clone(),
                    reason: t.reason.clone(),
                    workloads: workloads.iter().map(|w| w.name.clone()).collect(),
                    rejected_workloads: rejected.clone(),
                }));
            }
        }
        // Sent on every delivery: relaunch's per-workload claims make repeats harmless,
        // and a delivery whose first attempt died before this point still gets through.
        if !workloads.is_empty() {
            let incident_detected_at = if continued_from_flap {
                self.ledger.incident_detected_at(&incident).await?.unwrap_or_else(|| detected_at.clone())
            } else {
                detected_at.clone()
            };
            events.push(ProjectEvent::RelaunchRequested(RelaunchRequested {
                incident_id: incident.to_string(),
                server_id: server.to_string(),
                detected_at: incident_detected_at,
                workloads: workloads.clone(),
            }));
        }
        self.bus.publish(&events).await?;
        if announce {
            self.ledger.mark_announced(&incident).await?;
        }
        if new_incident {
            let opened = ("IncidentsOpened", 1.0, metrics::Unit::Count);
            metrics::publish_for_server(&self.config.stack_name, server.as_str(), opened);
        }
        info!(
            incident_id = %incident,
            workloads = workloads.len(),
            rejected = rejected.len(),
            new_incident,
            announced = announce,
            flap = continued_from_flap,
            "handed workloads to relaunch"
        );
        Ok(Outcome::Relaunching {
            incident_id: incident.to_string(),
            server_id: server.to_string(),
            workloads: workloads.len(),
            new_incident,
            flap: continued_from_flap,
        })
    }

    /// Records and announces (once) an outage inside the server's maintenance window.
    async fn suppressed(
        &self,
        t: &AlarmTransition,
        server: &ServerId,
        derived: &IncidentId,
        detected_at: &str,
        window: &MaintenanceWindow,
        workloads: &[ha_domain::model::Workload],
    ) -> Result<Outcome, HandlerError> {
        warn!(maintenance_until = %window.until, reason = %window.reason, "server down during its maintenance window: relaunch suppressed");
        let first =
            self.ledger.mark_incident(derived, IncidentMark::Suppressed, &window.until, now().unix_timestamp()).await?;
        if first {
            self.bus
                .publish(&[ProjectEvent::RelaunchSuppressed(RelaunchSuppressed {
                    incident_id: derived.to_string(),
                    server_id: server.to_string(),
                    alarm_name: t.alarm_name.clone(),
                    detected_at: detected_at.to_string(),
                    maintenance_until: window.until.clone(),
                    maintenance_reason: window.reason.clone(),
                    workloads: workloads.iter().map(|w| w.name.clone()).collect(),
                })])
                .await?;
        }
        Ok(Outcome::Suppressed { server_id: server.to_string(), maintenance_until: window.until.clone() })
    }

    async fn server_back(&self, t: &AlarmTransition, server: ServerId) -> Result<Outcome, HandlerError> {
        let recovered_at = format_timestamp(t.state_change_time);
        let open = self.ledger.open_incident_of(&server).await?;
        if let Some(incident) = &open {
            self.ledger.set_incident_time(incident, "recovered_at", &recovered_at).await?;
        }
        self.bus
            .publish(&[ProjectEvent::ServerRecovered(ServerRecovered {
                server_id: server.to_string(),
                incident_id: open.as_ref().map(ToString::to_string),
                alarm_name: t.alarm_name.clone(),
                recovered_at,
            })])
            .await?;
        info!(incident_id = ?open.as_ref().map(|i| i.as_str()), "server is back");
        Ok(Outcome::ServerRecovered { server_id: server.to_string(), incident_id: open.map(|i| i.to_string()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_reads_the_store_and_the_prefix() {
        let env =
            EnvReader::from_pairs(&[("LEDGER_TABLE", "t"), ("EVENT_BUS_NAME", "b"), ("ALARM_NAME_PREFIX", "ha-")]);
        let c = Config::from_env(&env).unwrap();
        assert_eq!((c.store.ledger_table.as_str(), c.alarm_name_prefix.as_str()), ("t", "ha-"));
        let missing = Config::from_env(&EnvReader::from_pairs(&[("EVENT_BUS_NAME", "b")])).unwrap_err();
        assert_eq!(missing.to_string(), "environment variable LEDGER_TABLE is required but not set");
        let default =
            Config::from_env(&EnvReader::from_pairs(&[("LEDGER_TABLE", "t"), ("EVENT_BUS_NAME", "b")])).unwrap();
        assert_eq!(default.alarm_name_prefix, "outposts-ha-");
    }
}
