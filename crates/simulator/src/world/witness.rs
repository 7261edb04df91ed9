//! SSM Run Command for the witness probe: every protected server has a witness on its store
//! network; a probe runs for a moment and, when it ends, reports each original as the world
//! has it then (a dead box is silent, a partitioned one answers) and puts the documented
//! command status-change event on the default bus.

use super::{Outgoing, Sim, World};
use async_trait::async_trait;
use ha_domain::error::AwsFailure;
use ha_domain::incident::IncidentId;
use ha_domain::model::{InstanceState, ServerId};
use ha_ports::{Asked, ProbeStatus, PromotionHooks, Witness, WitnessInstance};
use rand::Rng;
use serde_json::{json, Value};
use std::sync::Arc;

/// The probe document the simulated stack owns.
pub const PROBE_DOCUMENT: &str = "sim-witness-probe";

/// One probe command.
#[derive(Debug, Clone)]
pub struct ProbeCommand {
    pub incident: String,
    pub witness: String,
    pub targets: String,
    /// `InProgress`, `Success` or `Failed`.
    pub status: String,
    pub output: String,
    /// A promotion hook (this document) on `witness`, the promoted standby.
    pub hook: Option<String>,
}

pub fn witness_of_server(server: &ServerId) -> String {
    format!("i-witness-{}", &server.as_str()[3..])
}

pub struct SimWitness(pub Arc<Sim>);

#[async_trait]
impl Witness for SimWitness {
    async fn witness_of(&self, server: &ServerId) -> Result<Option<WitnessInstance>, AwsFailure> {
        self.0.enter("DescribeInstances").await?;
        let witness = WitnessInstance { instance_id: witness_of_server(server), control: None };
        self.0.leave("DescribeInstances").await?;
        Ok(Some(witness))
    }

    async fn ask(&self, witness: &WitnessInstance, incident: &IncidentId, targets: &str) -> Result<Asked, AwsFailure> {
        self.0.enter("SendCommand").await?;
        let id = {
            let mut w = self.0.world();
            let id = w.next_id("cmd");
            let after_ms = w.rng.gen_range(500..8_000);
            let command = ProbeCommand {
                incident: incident.to_string(),
                witness: witness.instance_id.clone(),
                targets: targets.to_string(),
                status: "InProgress".into(),
                output: String::new(),
                hook: None,
            };
            w.note(format!("witness probe {id} for {incident}: {targets}"));
            w.probes.insert(id.clone(), command);
            w.outbox.push(Outgoing::ProbeEnds { command_id: id.clone(), after_ms });
            id
        };
        // A lost answer: the command was sent; a retry sends another (harmless).
        self.0.leave("SendCommand").await?;
        Ok(Asked::Sent(id))
    }

    async fn status(&self, command_id: &str, _witness: &str) -> Result<ProbeStatus, AwsFailure> {
        self.0.enter("GetCommandInvocation").await?;
        let status = match self.0.world().probes.get(command_id) {
            None => ProbeStatus::Running,
            Some(c) if c.status == "InProgress" => ProbeStatus::Running,
            Some(c) if c.status == "Success" => ProbeStatus::Finished(c.output.clone()),
            Some(c) => ProbeStatus::Failed(format!("the probe ended {}", c.status)),
        };
        self.0.leave("GetCommandInvocation").await?;
        Ok(status)
    }
}

/// Run Command for promotion hooks: a command on a running instance ends after a moment,
/// Success or (by the schedule's fault) Failed; an instance not running refuses it.
pub struct SimHooks(pub Arc<Sim>);

#[async_trait]
impl PromotionHooks for SimHooks {
    async fn run(&self, document: &str, instance_id: &str) -> Result<Asked, AwsFailure> {
        self.0.enter("SendCommand").await?;
        let id = {
            let mut w = self.0.world();
            if w.instances.get(instance_id).is_none_or(|i| i.state != InstanceState::Running) {
                return Ok(Asked::Offline(format!("{instance_id} is not running")));
            }
            let id = w.next_id("cmd");
            let p = w.faults.hook_slow;
            let slow = p > 0.0 && w.rng.gen_bool(p);
            let after_ms = if slow { w.rng.gen_range(60_000..1_800_000) } else { w.rng.gen_range(2_000..20_000) };
            w.note(format!("promotion hook {id} ({document}) on {instance_id}"));
            w.probes.insert(
                id.clone(),
                ProbeCommand {
                    incident: String::new(),
                    witness: instance_id.to_string(),
                    targets: String::new(),
                    status: "InProgress".into(),
                    output: String::new(),
                    hook: Some(document.to_string()),
                },
            );
            w.outbox.push(Outgoing::ProbeEnds { command_id: id.clone(), after_ms });
            id
        };
        self.0.leave("SendCommand").await?;
        Ok(Asked::Sent(id))
    }
}

impl World {
    /// A promotion hook ends: Failed by the schedule's fault, or when its instance stopped.
    fn end_hook(&mut self, command_id: &str, command: &ProbeCommand, document: &str) -> Value {
        let running = self.instances.get(&command.witness).is_some_and(|i| i.state == InstanceState::Running);
        let failed = !running || (self.faults.hook_fails > 0.0 && self.rng.gen_bool(self.faults.hook_fails));
        let status = if failed { "Failed" } else { "Success" };
        self.note(format!("promotion hook {command_id} on {} ends {status}", command.witness));
        if let Some(c) = self.probes.get_mut(command_id) {
            c.status = status.into();
        }
        json!({
            "detail-type": relaunch::COMMAND_STATUS_CHANGE,
            "source": "aws.ssm",
            "resources": [format!("arn:aws:ec2:eu-west-1:123456789012:instance/{}", command.witness)],
            "detail": {"command-id": command_id, "document-name": document, "status": status, "parameters": {}}
        })
    }

    /// The probe ends: each original answers unless its box is dead.
    pub fn end_probe(&mut self, command_id: &str) -> Option<Value> {
        let command = self.probes.get(command_id).filter(|c| c.status == "InProgress")?.clone();
        if let Some(document) = command.hook.clone() {
            return Some(self.end_hook(command_id, &command, &document));
        }
        let failed = self.rng.gen_bool(self.faults.transient.min(1.0));
        let mut output = String::from("control 10.0.0.1 connected\n");
        for pair in command.targets.split_whitespace() {
            let (workload, target) = pair.split_once('=').unwrap_or((pair, ""));
            let host = target.split(':').next().unwrap_or_default();
            let alive = self.probe_hosts.get(host).is_some_and(|server| !self.servers_down.contains(server));
            output.push_str(&format!("target {workload} {target} {}\n", if alive { "connected" } else { "no_reply" }));
        }
        let status = if failed { "Failed" } else { "Success" };
        self.note(format!("witness probe {command_id} ends {status}: {}", output.trim().replace('\n', "; ")));
        let c = self.probes.get_mut(command_id).expect("just read");
        c.status = status.into();
        c.output = output;
        Some(json!({
            "detail-type": relaunch::COMMAND_STATUS_CHANGE,
            "source": "aws.ssm",
            "resources": [format!("arn:aws:ec2:eu-west-1:123456789012:instance/{}", command.witness)],
            "detail": {
                "command-id": command_id,
                "document-name": PROBE_DOCUMENT,
                "status": status,
                "parameters": {"Incident": [command.incident], "Targets": [command.targets]},
            }
        }))
    }
}
