//! The partition gate before a launch: a disconnected server is not a dead one. Stateful
//! workloads (and any that hold on a partition) wait for the server's witness; its finding is
//! recorded once per incident, and each workload is relaunched or held on it, on the mass-
//! outage breaker and on an operator's release. A probe's completion (its SSM event) records
//! the finding and drives the launch again.

use crate::Relaunch;
use ha_aws::invocation::HandlerError;
use ha_domain::alarm::{classify_transition, AlarmState, AlarmVerdict};
use ha_domain::contract::{
    HeldWorkload, MassOutage, ProjectEvent, RelaunchOnGrounds, RelaunchRequested, WitnessVerdict,
};
use ha_domain::incident::IncidentId;
use ha_domain::ledger::{IncidentMark, IncidentStatus};
use ha_domain::model::{ServerId, Workload};
use ha_domain::partition::{
    decide, needs_witness, parse_probe_output, probe_targets, verdict_for, PartitionDecision, PartitionFacts,
    RelaunchGrounds, UnconfirmedCause, Wave, WitnessFinding,
};
use ha_domain::timefmt::parse_timestamp;
use ha_ports::{Asked, ProbeStatus};
use std::collections::BTreeMap;
use tracing::{info, warn};

/// EventBridge's detail-type for a Run Command command's status change.
pub const COMMAND_STATUS_CHANGE: &str = "EC2 Command Status-change Notification";

/// What the gate lets each workload do in this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Gate {
    Relaunch(Option<RelaunchGrounds>),
    Held,
    AwaitingWitness,
    /// The server is back or the incident closed: nothing new is claimed; a claim already
    /// taken is finished on the grounds it was taken on.
    StandDown,
}

/// A probe command finished (its status-change event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeFinished {
    pub command_id: String,
    pub incident_id: String,
    pub witness: String,
}

impl ProbeFinished {
    /// The event's command, incident (a parameter of the probe document) and witness (its
    /// only target); `None` for another document's commands or a non-terminal status.
    pub fn parse(event: &serde_json::Value, document: &str) -> Option<ProbeFinished> {
        let d = &event["detail"];
        if d["document-name"].as_str() != Some(document) {
            return None;
        }
        if !matches!(d["status"].as_str(), Some("Success" | "Failed" | "TimedOut" | "Cancelled")) {
            return None;
        }
        let incident_id = d["parameters"]["Incident"][0].as_str()?.to_string();
        let witness = event["resources"]
            .as_array()?
            .iter()
            .filter_map(|r| r.as_str()?.rsplit_once("instance/").map(|(_, id)| id.to_string()))
            .next()?;
        Some(ProbeFinished { command_id: d["command-id"].as_str()?.to_string(), incident_id, witness })
    }
}

impl Relaunch {
    /// Each workload's gate for this pass, and the failure to retry on. A workload the
    /// witness does not concern relaunches whatever happens here; one it concerns waits
    /// while the witness, the ledger or the alarms cannot be read.
    pub(crate) async fn gates(
        &self,
        request: &RelaunchRequested,
        incident: &IncidentId,
        owner: &str,
    ) -> (BTreeMap<String, Gate>, Option<HandlerError>) {
        let waiting: BTreeMap<String, Gate> = request
            .workloads
            .iter()
            .map(|w| {
                let gate = if needs_witness([(w.is_stateful(), w.partition_policy().0)]) {
                    Gate::AwaitingWitness
                } else {
                    Gate::Relaunch(None)
                };
                (w.name.clone(), gate)
            })
            .collect();
        if !waiting.values().any(|g| *g == Gate::AwaitingWitness) {
            return (waiting, None);
        }
        match self.partition_gates(request, incident, owner).await {
            Ok(Some(gates)) => (gates, None),
            Ok(None) => (waiting, None),
            Err(e) => {
                warn!(error = %e, "the partition gate could not decide; the workloads the witness concerns wait");
                (waiting, Some(e))
            }
        }
    }

    /// The gates on the witness's finding, once it is in (`None` while the probe is out);
    /// tells the verdict and a wave once.
    async fn partition_gates(
        &self,
        request: &RelaunchRequested,
        incident: &IncidentId,
        owner: &str,
    ) -> Result<Option<BTreeMap<String, Gate>>, HandlerError> {
        let ledger = &self.ports.ledger;
        let Ok(server) = ServerId::parse(&request.server_id) else {
            // relaunch_one reports the bad request per workload.
            return Ok(Some(request.workloads.iter().map(|w| (w.name.clone(), Gate::Relaunch(None))).collect()));
        };
        let (up, status) = tokio::join!(ledger.server_is_up(&server), ledger.incident_status(incident));
        if up? == Some(true) || status? == Some(IncidentStatus::Closed) {
            info!("the server is back or the incident closed: no probe, nothing new launched");
            return Ok(Some(request.workloads.iter().map(|w| (w.name.clone(), Gate::StandDown)).collect()));
        }
        let any_stateful = request.workloads.iter().any(Workload::is_stateful);
        let wave = async {
            if any_stateful {
                self.wave_of(&server, incident, &request.detected_at).await
            } else {
                Ok(None)
            }
        };
        let (finding, releases, wave) = tokio::join!(
            self.witness_finding(&server, incident, &request.workloads),
            ledger.releases_of(incident),
            wave
        );
        let (finding, releases, wave) = (finding?, releases?, wave?);
        let Some(finding) = finding else {
            info!("waiting for the witness's probe");
            return Ok(None);
        };
        let mut gates = BTreeMap::new();
        let (mut held, mut relaunching) = (Vec::new(), Vec::new());
        for w in &request.workloads {
            let (policy, misdeclared) = w.partition_policy();
            let verdict = verdict_for(&w.name, finding.as_result());
            let decision = decide(PartitionFacts {
                stateful: w.is_stateful(),
                policy,
                misdeclared: misdeclared.as_ref(),
                verdict: &verdict,
                when_unconfirmed: self.config.when_unconfirmed,
                wave: wave.as_ref(),
                operator_released: releases.covers(&w.name),
                server_back: false,
            });
            let gate = match decision {
                PartitionDecision::Relaunch { grounds } => {
                    relaunching.push(RelaunchOnGrounds { workload: w.name.clone(), grounds });
                    Gate::Relaunch(Some(grounds))
                }
                PartitionDecision::Hold { why } => {
                    warn!(workload = %w.name, ?why, "held: not relaunched automatically");
                    held.push(HeldWorkload { workload: w.name.clone(), why, verdict });
                    Gate::Held
                }
                // Not reachable with server_back false (the server's return was read above).
                PartitionDecision::StandDown => Gate::Held,
            };
            gates.insert(w.name.clone(), gate);
        }
        let now = self.ports.clock.epoch();
        if let Some(wave) = wave.as_ref().filter(|_| held.iter().any(|h| h.why.is_wave())) {
            self.tell_wave(wave, owner).await?;
        }
        let verdict = ProjectEvent::WitnessVerdict(WitnessVerdict {
            incident_id: incident.to_string(),
            server_id: server.to_string(),
            site_name: request.site_name.clone(),
            finding,
            release_command: format!("make release SERVER={server}"),
            held,
            relaunching,
        });
        let told = ledger
            .tell_incident(&*self.ports.bus, incident, IncidentMark::Witnessed, "told", owner, now, &[verdict])
            .await?;
        ha_aws::invocation::told(told, "the witness's verdict")?;
        Ok(Some(gates))
    }

    /// The finding recorded for the incident; otherwise the probe is read (or sent) and a
    /// finished one recorded. `None`: the probe is still out.
    async fn witness_finding(
        &self,
        server: &ServerId,
        incident: &IncidentId,
        workloads: &[Workload],
    ) -> Result<Option<WitnessFinding>, HandlerError> {
        let ledger = &self.ports.ledger;
        let record = ledger.witness_of(incident).await?;
        if record.finding.is_some() {
            return Ok(record.finding);
        }
        let now = self.ports.clock.epoch();
        if let (Some(command), Some(witness)) = (&record.command_id, &record.witness) {
            let asked = record.asked_epoch.unwrap_or(now);
            return match self.ports.witness.status(command, witness).await? {
                ProbeStatus::Running if now - asked < self.config.witness_timeout_seconds => Ok(None),
                status => Ok(Some(self.record_finding(incident, witness, status).await?)),
            };
        }
        let targets: Vec<(&str, &str)> =
            workloads.iter().filter_map(|w| w.probe.as_deref().map(|p| (w.name.as_str(), p))).collect();
        let cause = match self.ports.witness.witness_of(server).await? {
            None => UnconfirmedCause::NoWitness,
            Some(_) if targets.is_empty() => UnconfirmedCause::NothingToProbe,
            Some(witness) => match self.ports.witness.ask(&witness, incident, &probe_targets(targets)).await? {
                Asked::Sent(command) => {
                    info!(witness = %witness.instance_id, command_id = %command, "asked the witness");
                    ledger.record_witness_asked(incident, &witness.instance_id, &command, now).await?;
                    return Ok(None);
                }
                Asked::Offline(detail) => {
                    warn!(%detail, "the witness cannot run the probe");
                    UnconfirmedCause::WitnessOffline { witness: witness.instance_id }
                }
                Asked::Refused(detail) => UnconfirmedCause::ProbeFailed { witness: witness.instance_id, detail },
            },
        };
        warn!(?cause, "the witness cannot say");
        Ok(Some(ledger.record_witness_finding(incident, &WitnessFinding::Unavailable { cause }, now).await?))
    }

    /// Records what a finished (or overdue) probe found; the first finding recorded wins.
    async fn record_finding(
        &self,
        incident: &IncidentId,
        witness: &str,
        status: ProbeStatus,
    ) -> Result<WitnessFinding, HandlerError> {
        let failed = |detail: String| WitnessFinding::Unavailable {
            cause: UnconfirmedCause::ProbeFailed { witness: witness.to_string(), detail },
        };
        let finding = match status {
            ProbeStatus::Finished(output) => match parse_probe_output(witness, &output) {
                Ok(report) => WitnessFinding::Answered { report },
                Err(e) => failed(e),
            },
            ProbeStatus::Failed(detail) => failed(detail),
            ProbeStatus::Running => failed(format!("no answer within {} seconds", self.config.witness_timeout_seconds)),
        };
        info!(?finding, "the witness's finding");
        Ok(self.ports.ledger.record_witness_finding(incident, &finding, self.ports.clock.epoch()).await?)
    }

    /// The wave the incident belongs to: the one recorded for it, else the one the stack's
    /// alarms now in ALARM make, recorded once (a wave whose first servers came back must
    /// not lift the hold it put on the others).
    async fn wave_of(
        &self,
        server: &ServerId,
        incident: &IncidentId,
        detected_at: &str,
    ) -> Result<Option<Wave>, HandlerError> {
        let ledger = &self.ports.ledger;
        if let Some(wave) = ledger.wave_of(incident).await? {
            return Ok(Some(wave));
        }
        let Some(down_at) = parse_timestamp(detected_at) else { return Ok(None) };
        let prefix = &self.config.alarm_name_prefix;
        let downs: Vec<_> = self
            .ports
            .alarms
            .current(prefix)
            .await?
            .into_iter()
            .filter(|t| t.new_state == AlarmState::Alarm)
            .filter_map(|t| match classify_transition(&t, prefix) {
                AlarmVerdict::ServerDown(s) => Some((s, t.state_change_time)),
                _ => None,
            })
            .collect();
        match ha_domain::partition::wave_of(&downs, server, down_at, self.config.wave_breaker) {
            Some(wave) => Ok(Some(ledger.record_wave(incident, &wave, self.ports.clock.epoch()).await?)),
            None => Ok(None),
        }
    }

    async fn tell_wave(&self, wave: &Wave, owner: &str) -> Result<(), HandlerError> {
        let servers: Vec<String> = wave.servers.iter().map(ToString::to_string).collect();
        let event = ProjectEvent::MassOutage(MassOutage {
            started_at: wave.started_at.clone(),
            release_command: format!("make release SERVER={}", servers.join(",")),
            servers,
            threshold: self.config.wave_breaker.servers,
            window_minutes: self.config.wave_breaker.window.whole_minutes(),
        });
        let now = self.ports.clock.epoch();
        let told = self.ports.ledger.tell_wave(&*self.ports.bus, &wave.started_at, owner, now, &[event]).await?;
        ha_aws::invocation::told(told, "the mass outage")?;
        Ok(())
    }

    /// A probe finished: its finding is recorded, then the incident's launch runs again.
    pub(crate) async fn probe_finished(&self, p: ProbeFinished, owner: &str) -> Result<crate::Response, HandlerError> {
        let incident = IncidentId::from_stored(p.incident_id.as_str());
        let ledger = &self.ports.ledger;
        if ledger.witness_of(&incident).await?.finding.is_none() {
            let status = self.ports.witness.status(&p.command_id, &p.witness).await?;
            if status == ProbeStatus::Running {
                // The event's status is terminal; the invocation's is not listed yet.
                return Err(HandlerError::NotYet {
                    reason: ha_aws::invocation::NotYet::ProbeUnread,
                    detail: format!("the probe {} has no result yet", p.command_id),
                });
            }
            self.record_finding(&incident, &p.witness, status).await?;
        }
        let Some(request) = ledger.relaunch_request(&*self.ports.fleet, &*self.ports.clock, &incident).await? else {
            info!("the probe's incident is unknown or its server declares nothing: nothing to launch");
            return Ok(crate::Response::Ignored { reason: "no incident to launch for".into() });
        };
        self.launch(request, owner).await.map(crate::Response::Launch)
    }
}
