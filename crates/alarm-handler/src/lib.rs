//! alarm-handler: classifies a protected server's ConnectedStatus alarm transition,
//! opens (or continues) the incident in the ledger, resolves the server's workloads and
//! hands them to relaunch over the project's bus.

use futures::stream::{self, StreamExt};
use ha_aws::invocation::{told, HandlerError};
use ha_domain::alarm::{classify_transition, parse_alarm_notification, AlarmTransition, AlarmVerdict};
use ha_domain::config::{ConfigError, EnvReader, IncidentStore};
use ha_domain::contract::{
    FenceRequested, IncidentContinued, IncidentOpened, ProjectEvent, RelaunchRequested, RelaunchSuppressed,
    ServerRecovered,
};
use ha_domain::incident::{
    decide_incident, suppressed_by, IncidentDecision, IncidentId, MaintenanceWindow, ServerLedgerState,
};
use ha_domain::ledger::{IncidentMark, IncidentStatus};
use ha_domain::metrics;
use ha_domain::model::ServerId;
use ha_domain::timefmt::format_timestamp;
use ha_ports::ledger::{Freshness, IncidentRecord};
use ha_ports::{AlarmStates, Bus, Clock, Fleet, Ledger};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use tracing::{info, warn, Instrument};

/// Read once at cold start; see docs/reference.md, Configuration.
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
    /// An older transition delivered after a newer one, or a closed incident's: nothing to do.
    Stale {
        server_id: String,
        reason: String,
    },
    /// Down during its maintenance window: recorded and announced, nothing relaunched.
    Suppressed {
        server_id: String,
        maintenance_until: String,
    },
}

/// The ports alarm-handler acts through.
#[derive(Clone)]
pub struct Ports {
    pub ledger: Ledger,
    pub fleet: Arc<dyn Fleet>,
    pub bus: Arc<dyn Bus>,
    pub alarms: Arc<dyn AlarmStates>,
    pub clock: Arc<dyn Clock>,
}

impl Ports {
    pub fn aws(config: &Config, sdk: &aws_config::SdkConfig) -> Ports {
        Ports {
            ledger: ha_aws::ledger::ledger_of_store(aws_sdk_dynamodb::Client::new(sdk), &config.store),
            fleet: Arc::new(ha_aws::fleet::Ec2Fleet::new(aws_sdk_ec2::Client::new(sdk))),
            bus: Arc::new(ha_aws::bus::EventBridgeBus::of_store(aws_sdk_eventbridge::Client::new(sdk), &config.store)),
            alarms: Arc::new(ha_aws::alarms::CloudWatchAlarms::new(aws_sdk_cloudwatch::Client::new(sdk))),
            clock: Arc::new(ha_ports::SystemClock),
        }
    }
}

pub struct AlarmHandler {
    config: Config,
    ports: Ports,
}

impl AlarmHandler {
    pub fn new(config: Config, sdk: &aws_config::SdkConfig) -> Self {
        let ports = Ports::aws(&config, sdk);
        AlarmHandler::with_ports(config, ports)
    }

    pub fn with_ports(config: Config, ports: Ports) -> Self {
        AlarmHandler { config, ports }
    }

    /// Malformed or foreign input is logged and answered with `Rejected`/`Ignored` (no
    /// retry can fix it); AWS failures are returned as errors so Lambda retries.
    /// `invocation_id` names this attempt as the teller of what it tells.
    pub async fn handle(&self, event: Value, invocation_id: &str) -> Result<Vec<Outcome>, HandlerError> {
        if is_reconcile_tick(&event) {
            return self.reconcile(invocation_id).instrument(tracing::info_span!("reconcile")).await;
        }
        let transitions = match parse_alarm_notification(&event) {
            Ok(t) => t,
            Err(e) => {
                warn!(reason = %e, "rejected an event that is not a usable alarm notification");
                return Ok(vec![Outcome::Rejected { reason: e.to_string() }]);
            }
        };
        let mut outcomes = Vec::with_capacity(transitions.len());
        for t in &transitions {
            outcomes.push(self.handle_transition(t, invocation_id).await?);
        }
        Ok(outcomes)
    }

    /// The reconcile pass: every server alarm's current state is handled again as if just
    /// delivered, so work whose events ran out of retries (or were never delivered) is
    /// driven again: a server in ALARM gets its relaunch requested, a server back with an
    /// incident still open gets its fencing requested. Everything it repeats is idempotent.
    async fn reconcile(&self, owner: &str) -> Result<Vec<Outcome>, HandlerError> {
        let alarms = self.ports.alarms.current(&self.config.alarm_name_prefix).await?;
        let results: Vec<Option<Result<Outcome, HandlerError>>> = stream::iter(&alarms)
            .map(|t| async move {
                let mut t = t.clone();
                let server = match classify_transition(&t, &self.config.alarm_name_prefix) {
                    AlarmVerdict::ServerDown(server) => server,
                    AlarmVerdict::ServerBack(server) => match self.ports.ledger.open_incident_of(&server).await {
                        Ok(None) => return None,
                        Ok(Some(_)) => server,
                        Err(e) => return Some(Err(e.into())),
                    },
                    AlarmVerdict::Ignore(_) => return None,
                };
                // The transition recorded when it was delivered names the incident; the alarm's
                // own timestamp may differ from the event's by milliseconds.
                let down = t.new_state == ha_domain::alarm::AlarmState::Alarm;
                match self.ports.ledger.server_state(&server).await {
                    Ok(Some((up, changed_ms))) if up != down => {
                        let at_ms = (t.state_change_time.unix_timestamp_nanos() / 1_000_000) as i64;
                        if (at_ms - changed_ms).abs() < 60_000 {
                            if let Ok(at) =
                                time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(changed_ms) * 1_000_000)
                            {
                                t.state_change_time = at;
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => return Some(Err(e.into())),
                }
                Some(self.handle_transition(&t, owner).await)
            })
            .buffer_unordered(RECONCILE_CONCURRENCY)
            .collect()
            .await;
        let mut outcomes = Vec::new();
        let mut failed = 0;
        for result in results.into_iter().flatten() {
            match result {
                Ok(o) => outcomes.push(o),
                Err(e) => {
                    warn!(error = %e, "could not reconcile an alarm; the next pass tries again");
                    failed += 1;
                }
            }
        }
        info!(alarms = alarms.len(), driven = outcomes.len(), failed, "reconcile pass finished");
        if failed > 0 {
            return Err(HandlerError::PartlyTransient(failed));
        }
        Ok(outcomes)
    }

    async fn handle_transition(&self, t: &AlarmTransition, owner: &str) -> Result<Outcome, HandlerError> {
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
                self.server_down(t, server, incident, owner).instrument(span).await
            }
            AlarmVerdict::ServerBack(server) => {
                let span = tracing::info_span!("server_back", server_id = %server);
                self.server_back(t, server, owner).instrument(span).await
            }
        }
    }

    /// Whether the transition is the newest seen for the server; a stale one is logged.
    async fn is_newest(&self, t: &AlarmTransition, server: &ServerId, up: bool) -> Result<bool, HandlerError> {
        let changed_ms = (t.state_change_time.unix_timestamp_nanos() / 1_000_000) as i64;
        let fresh = self.ports.ledger.server_transition(server, up, changed_ms, self.ports.clock.epoch()).await?;
        if fresh == Freshness::Stale {
            warn!(state_change_time = %format_timestamp(t.state_change_time), up, "a newer transition of the server was already seen: this late delivery changes nothing");
        }
        Ok(fresh == Freshness::Newest)
    }

    fn stale(server: &ServerId, reason: &str) -> Outcome {
        Outcome::Stale { server_id: server.to_string(), reason: reason.to_string() }
    }

    async fn server_down(
        &self,
        t: &AlarmTransition,
        server: ServerId,
        derived: IncidentId,
        owner: &str,
    ) -> Result<Outcome, HandlerError> {
        let (ledger, clock) = (&self.ports.ledger, &self.ports.clock);
        if !self.is_newest(t, &server, false).await? {
            return Ok(Self::stale(&server, "a newer transition of the server was seen"));
        }
        let now_epoch = clock.epoch();
        let detected_at = format_timestamp(t.state_change_time);
        let workloads_read_at_ms = clock.epoch_ms();
        // Independent reads and writes go out together: every round trip here delays every launch.
        let (held, declared, window, status, site_name) = tokio::join!(
            ledger.claim_server(&server, &derived, now_epoch),
            self.ports.fleet.workloads_of(&server),
            ledger.maintenance_of(&server),
            ledger.incident_status(&derived),
            self.site_name(t)
        );
        let (mut held, (workloads, rejected), window, status) = (held?, declared?, window?, status?);
        // Read after the claim: a recovery that raced this delivery (it found no incident to
        // fence) has marked the server up by now, and this outage is over.
        if ledger.server_is_up(&server).await? == Some(true) {
            // Only a hold this outage's delivery took: an incident already open under it is
            // the recovery's to close (freeing it here would leave it open and unfenced).
            if !(held == ServerLedgerState::HeldBySame && status == Some(IncidentStatus::Open)) {
                ledger.release_server(&server, &derived).await?;
            }
            return Ok(Self::stale(&server, "the server came back while this was handled"));
        }
        if let ServerLedgerState::HeldByOther(open) = &held {
            // A hold a closed incident left behind (its closing died before releasing it) is
            // no open incident: free it and claim afresh.
            if ledger.incident_status(open).await? == Some(IncidentStatus::Closed) {
                warn!(closed_incident = %open, "the server was still held by a closed incident: released");
                // Its closing died before it was told and the server freed: drive it to the
                // end (fencing a closed incident only finishes its closing).
                let recovered_at = ledger.incident_recovered_at(open).await?.unwrap_or_default();
                let finish = ProjectEvent::FenceRequested(FenceRequested {
                    incident_id: open.to_string(),
                    server_id: server.to_string(),
                    site_name: None,
                    recovered_at,
                });
                self.ports.bus.publish(&[finish]).await?;
                ledger.release_server(&server, open).await?;
                held = ledger.claim_server(&server, &derived, now_epoch).await?;
            }
        }
        if status == Some(IncidentStatus::Closed) {
            // A late copy of a closed incident's alarm must not point the server back at it.
            ledger.release_server(&server, &derived).await?;
            warn!("the alarm's incident is already closed: late delivery ignored");
            return Ok(Self::stale(&server, "the incident is closed"));
        }
        // A window suppresses a new outage, never one whose incident is already open.
        let opens_new = match &held {
            ServerLedgerState::Free => true,
            ServerLedgerState::HeldBySame => status.is_none(),
            ServerLedgerState::HeldByOther(_) => false,
        };
        if opens_new && suppressed_by(window.as_ref(), t.state_change_time, clock.now()) {
            // The claim just taken must not outlive the window.
            ledger.release_server(&server, &derived).await?;
            let window =
                window.unwrap_or(MaintenanceWindow { until_epoch: 0, until: String::new(), reason: String::new() });
            return self.suppressed(t, &server, &derived, &detected_at, &window, &workloads, site_name, owner).await;
        }
        let IncidentDecision::Relaunch { incident, continued_from_flap } = decide_incident(&derived, &held);
        for r in &rejected {
            warn!(launch_template_id = %r.launch_template_id, reason = %r.reason, "launch template tagged for this server is not a usable workload");
        }

        let mut new_incident = false;
        let mut announced = false;
        if continued_from_flap {
            warn!(open_incident = %incident, "server went down again while its incident is open: continuing it, no second wave");
            ledger.extend_incident(&incident, now_epoch).await?;
            let event = ProjectEvent::IncidentContinued(IncidentContinued {
                incident_id: incident.to_string(),
                server_id: server.to_string(),
                alarm_name: t.alarm_name.clone(),
                realarmed_at: detected_at.clone(),
            });
            let outcome = ledger
                .tell_incident(
                    &*self.ports.bus,
                    &incident,
                    IncidentMark::Realarmed,
                    &detected_at,
                    owner,
                    now_epoch,
                    &[event],
                )
                .await?;
            told(outcome, "the re-alarm")?;
        } else {
            let unusable: Vec<String> = rejected
                .iter()
                .map(|r| format!("{} ({}): {}", r.launch_template_name, r.launch_template_id, r.reason))
                .collect();
            let record = IncidentRecord {
                incident: &incident,
                server: &server,
                alarm_arn: &t.alarm_arn,
                alarm_name: &t.alarm_name,
                detected_at: &detected_at,
                site_name: site_name.as_deref(),
                unusable: &unusable,
            };
            new_incident = ledger.record_incident(&record, now_epoch).await?;
            let event = ProjectEvent::IncidentOpened(IncidentOpened {
                incident_id: incident.to_string(),
                server_id: server.to_string(),
                site_name: site_name.clone(),
                alarm_name: t.alarm_name.clone(),
                alarm_arn: t.alarm_arn.clone(),
                detected_at: detected_at.clone(),
                reason: t.reason.clone(),
                workloads: workloads.iter().map(|w| w.name.clone()).collect(),
                rejected_workloads: rejected.clone(),
            });
            // Told before the hand-off: people hear of the outage before anything it leads to
            // (a failover report, a page's resolution) can reach them.
            announced = self.tell_opening(&incident, event, owner, now_epoch).await?;
        }
        // Sent on every delivery: relaunch's per-workload claims make repeats harmless,
        // and a delivery whose first attempt died before this point still gets through.
        if !workloads.is_empty() {
            let incident_detected_at = if continued_from_flap {
                ledger.incident_detected_at(&incident).await?.unwrap_or_else(|| detected_at.clone())
            } else {
                detected_at.clone()
            };
            self.ports
                .bus
                .publish(&[ProjectEvent::RelaunchRequested(RelaunchRequested {
                    incident_id: incident.to_string(),
                    server_id: server.to_string(),
                    site_name,
                    detected_at: incident_detected_at,
                    workloads: workloads.clone(),
                    workloads_read_at_ms: Some(workloads_read_at_ms),
                })])
                .await?;
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
            announced,
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

    /// Tells the opening of an incident recorded while its server was down, from the ledger
    /// and the server's workloads as declared now.
    async fn tell_late_opening(
        &self,
        t: &AlarmTransition,
        server: &ServerId,
        incident: &IncidentId,
        owner: &str,
    ) -> Result<(), HandlerError> {
        let ledger = &self.ports.ledger;
        let (detected_at, declared, site_name) = tokio::join!(
            ledger.incident_detected_at(incident),
            self.ports.fleet.workloads_of(server),
            self.site_name(t)
        );
        let (workloads, rejected) = declared?;
        let event = ProjectEvent::IncidentOpened(IncidentOpened {
            incident_id: incident.to_string(),
            server_id: server.to_string(),
            site_name,
            alarm_name: t.alarm_name.clone(),
            alarm_arn: t.alarm_arn.clone(),
            detected_at: detected_at?.unwrap_or_default(),
            reason: "told at the server's recovery: no delivery of the outage could tell it earlier".into(),
            workloads: workloads.iter().map(|w| w.name.clone()).collect(),
            rejected_workloads: rejected,
        });
        self.tell_opening(incident, event, owner, self.ports.clock.epoch()).await.map(drop)
    }

    /// Tells the incident's opening once and marks it announced; whether this call told it.
    async fn tell_opening(
        &self,
        incident: &IncidentId,
        event: ProjectEvent,
        owner: &str,
        epoch: i64,
    ) -> Result<bool, HandlerError> {
        let (ledger, mark) = (&self.ports.ledger, IncidentMark::Opened);
        let outcome =
            ledger.tell_incident(&*self.ports.bus, incident, mark, incident.as_str(), owner, epoch, &[event]).await?;
        let announced = told(outcome, "the incident's opening")?;
        if announced {
            ledger.mark_announced(incident).await?;
        }
        Ok(announced)
    }

    /// The site's name from the alarm's tag. Best effort: a name is not worth delaying or
    /// failing a failover for.
    async fn site_name(&self, t: &AlarmTransition) -> Option<String> {
        match self.ports.alarms.site_name(&t.alarm_arn).await {
            Ok(name) => name,
            Err(f) => {
                warn!(failure = %f, "could not read the alarm's site name; the server id stands alone");
                None
            }
        }
    }

    /// Records and announces (once) an outage inside the server's maintenance window.
    #[allow(clippy::too_many_arguments)]
    async fn suppressed(
        &self,
        t: &AlarmTransition,
        server: &ServerId,
        derived: &IncidentId,
        detected_at: &str,
        window: &MaintenanceWindow,
        workloads: &[ha_domain::model::Workload],
        site_name: Option<String>,
        owner: &str,
    ) -> Result<Outcome, HandlerError> {
        warn!(maintenance_until = %window.until, reason = %window.reason, "server down during its maintenance window: relaunch suppressed");
        let event = ProjectEvent::RelaunchSuppressed(RelaunchSuppressed {
            incident_id: derived.to_string(),
            server_id: server.to_string(),
            site_name,
            alarm_name: t.alarm_name.clone(),
            detected_at: detected_at.to_string(),
            maintenance_until: window.until.clone(),
            maintenance_reason: window.reason.clone(),
            workloads: workloads.iter().map(|w| w.name.clone()).collect(),
        });
        let outcome = self
            .ports
            .ledger
            .tell_incident(
                &*self.ports.bus,
                derived,
                IncidentMark::Suppressed,
                &window.until,
                owner,
                self.ports.clock.epoch(),
                &[event],
            )
            .await?;
        told(outcome, "the suppressed outage")?;
        Ok(Outcome::Suppressed { server_id: server.to_string(), maintenance_until: window.until.clone() })
    }

    async fn server_back(&self, t: &AlarmTransition, server: ServerId, owner: &str) -> Result<Outcome, HandlerError> {
        if !self.is_newest(t, &server, true).await? {
            return Ok(Self::stale(&server, "a newer transition of the server was seen"));
        }
        let ledger = &self.ports.ledger;
        let recovered_at = format_timestamp(t.state_change_time);
        let held = ledger.open_incident_of(&server).await?;
        let recorded = match &held {
            Some(incident) => ledger.incident_status(incident).await?.is_some(),
            None => false,
        };
        // A hold whose incident was never recorded (a suppressed outage, or every delivery died
        // between claiming the server and recording) opened nothing: the recovery is the
        // server's alone.
        let open = held.clone().filter(|_| recorded);
        let event = ProjectEvent::ServerRecovered(ServerRecovered {
            server_id: server.to_string(),
            incident_id: open.as_ref().map(ToString::to_string),
            alarm_name: t.alarm_name.clone(),
            recovered_at: recovered_at.clone(),
        });
        if let Some(incident) = &open {
            if !ledger.was_told(incident, IncidentMark::Opened).await? {
                // Every down delivery died between recording the incident and telling its
                // opening; none will come now, and its recovery must not be told first.
                self.tell_late_opening(t, &server, incident, owner).await?;
            }
            ledger.set_incident_time(incident, "recovered_at", &recovered_at).await?;
        }
        // The server's fact, told under the server's mark whatever the hold looked like: two
        // copies of this transition that read the hold either side of its incident's recording
        // still tell it once.
        let outcome = ledger
            .tell_server(&*self.ports.bus, &server, &recovered_at, owner, self.ports.clock.epoch(), &[event])
            .await?;
        told(outcome, "the recovery")?;
        if let Some(incident) = &held {
            // The work, on every delivery: fencing is idempotent, and a delivery whose fencing
            // was lost (its retries exhausted) is driven again. An unrecorded hold is freed
            // there, after the bus hop, by which time no live delivery is still recording it.
            let fence = ProjectEvent::FenceRequested(FenceRequested {
                incident_id: incident.to_string(),
                server_id: server.to_string(),
                site_name: self.site_name(t).await,
                recovered_at: recovered_at.clone(),
            });
            self.ports.bus.publish(&[fence]).await?;
        }
        info!(incident_id = ?open.as_ref().map(|i| i.as_str()), "server is back");
        Ok(Outcome::ServerRecovered { server_id: server.to_string(), incident_id: open.map(|i| i.to_string()) })
    }
}

/// Alarms a reconcile pass drives at once: 300 servers fit well inside the timeout.
const RECONCILE_CONCURRENCY: usize = 16;

/// A tick of the reconcile schedule (an EventBridge scheduled rule).
fn is_reconcile_tick(event: &Value) -> bool {
    event.get("source").and_then(Value::as_str) == Some("aws.events")
        && event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
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
