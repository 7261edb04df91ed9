//! The drill job: every workload of a server through a dry-run relaunch — permissions,
//! parameters, backup resolution and destinations as a real relaunch would meet them, and
//! the witness of each workload whose fate it decides. Launches nothing.

use crate::{Relaunch, Response};
use futures::stream::{self, StreamExt};
use ha_aws::invocation::{told, HandlerError};
use ha_domain::contract::{
    DrillCompleted, DrillRequested, DrillVerdict, FleetDrillCompleted, FleetDrillRequested, ProjectEvent, ServerDrill,
};
use ha_domain::error::{AwsFailure, Retry};
use ha_domain::incident::IncidentId;
use ha_domain::launch::{interfaces_at, launch_order};
use ha_domain::ledger::DrillRecord;
use ha_domain::model::{ServerId, Workload};
use ha_domain::partition::witness_check;
use ha_domain::timefmt::{format_timestamp, parse_timestamp};
use ha_ports::{LaunchFor, LaunchRequest};
use serde::Serialize;
use tracing::{error, info, Instrument};

/// A drill's verdicts, one per workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DrillReport {
    pub server_id: String,
    pub verdicts: Vec<DrillVerdict>,
}

/// The error code EC2 answers a dry run that would have succeeded with.
const DRY_RUN_WOULD_SUCCEED: &str = "DryRunOperation";

/// Servers drilled at once by a fleet drill (each drills its workloads concurrently too):
/// the dry runs share the account's RunInstances rate with a real failover.
const SERVERS_AT_ONCE: usize = 4;
/// A fleet drill starts no server after this long (the function's timeout is 120 s).
const FLEET_DRILL_BUDGET_SECONDS: i64 = 80;

/// A fleet drill's verdicts, one line per server (the digest told carries only those that
/// need a person).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FleetDrillReport {
    pub requested_at: String,
    pub servers: Vec<ServerDrill>,
}

impl Relaunch {
    pub(crate) async fn drill(&self, r: DrillRequested) -> Result<Response, HandlerError> {
        let Ok(server) = ServerId::parse(&r.server_id) else {
            return Ok(Response::Ignored { reason: format!("'{}' is not an Outposts server id", r.server_id) });
        };
        let verdicts = self.drill_server(&server).await?;
        self.ports
            .bus
            .publish(&[ProjectEvent::DrillCompleted(DrillCompleted {
                server_id: server.to_string(),
                requested_at: r.requested_at.clone(),
                verdicts: verdicts.clone(),
            })])
            .await?;
        Ok(Response::Drill(DrillReport { server_id: server.to_string(), verdicts }))
    }

    /// Every protected server (each alarm of this stack) drilled, its verdict kept, and the
    /// result told once as one digest: the counts and the servers that need a person. The
    /// servers drilled longest ago go first; those the time budget leaves out say so.
    pub(crate) async fn fleet_drill(&self, r: FleetDrillRequested, owner: &str) -> Result<Response, HandlerError> {
        let started = self.ports.clock.now();
        let prefix = &self.config.alarm_name_prefix;
        let alarms = self.ports.alarms.current(prefix).await?;
        let named: Vec<(ServerId, String)> = alarms
            .into_iter()
            .filter_map(|a| Some((ServerId::parse(a.alarm_name.strip_prefix(prefix.as_str())?).ok()?, a.alarm_arn)))
            .collect();
        // Only this stack's servers (another stack's alarms may share the prefix).
        let labelled: Vec<(ServerId, String, Option<String>, Option<i64>)> = stream::iter(named)
            .map(|(server, arn)| async move {
                let labels = self.ports.alarms.labels(&arn).await?;
                if labels.stack.as_deref() != Some(self.config.stack_name.as_str()) {
                    return Ok(None);
                }
                let last = self.ports.ledger.last_drill_of(&server).await?;
                let last = last.and_then(|d| parse_timestamp(&d.drilled_at)).map(|t| t.unix_timestamp());
                Ok(Some((server, arn, labels.site_name, last)))
            })
            .buffer_unordered(SERVERS_AT_ONCE)
            .collect::<Vec<Result<_, AwsFailure>>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect();
        let mut servers = labelled;
        servers.sort_by(|a, b| a.3.cmp(&b.3).then_with(|| a.0.as_str().cmp(b.0.as_str())));
        servers.dedup_by(|a, b| a.0 == b.0);
        let mut drilled: Vec<ServerDrill> = stream::iter(servers)
            .map(|(server, _, site_name, _)| async move {
                let blank = |problem: String| ServerDrill {
                    server_id: server.to_string(),
                    site_name: site_name.clone(),
                    ready: 0,
                    not_ready: Vec::new(),
                    problem: Some(problem),
                };
                if (self.ports.clock.now() - started).whole_seconds() >= FLEET_DRILL_BUDGET_SECONDS {
                    return blank(format!(
                        "not drilled: the fleet drill's {FLEET_DRILL_BUDGET_SECONDS} s ran out; the next one takes it first"
                    ));
                }
                let span = tracing::info_span!("drill", server_id = %server);
                match self.drill_server(&server).instrument(span).await {
                    Ok(verdicts) => {
                        let ready = verdicts.iter().filter(|v| v.ready).count() as u32;
                        let not_ready = verdicts.into_iter().filter(|v| !v.ready).collect();
                        ServerDrill { server_id: server.to_string(), site_name: site_name.clone(), ready, not_ready, problem: None }
                    }
                    Err(f) => {
                        error!(server_id = %server, error = %f, "a server of the fleet drill could not be drilled");
                        blank(format!("not drilled: {f}"))
                    }
                }
            })
            .buffer_unordered(SERVERS_AT_ONCE)
            .collect()
            .await;
        drilled.sort_by(|a, b| a.server_id.cmp(&b.server_id));
        let attention: Vec<ServerDrill> = drilled.iter().filter(|s| s.needs_person().is_some()).cloned().collect();
        let digest = FleetDrillCompleted {
            requested_at: r.requested_at.clone(),
            completed_at: format_timestamp(self.ports.clock.now()),
            servers_drilled: drilled.len() as u32,
            servers_ready: (drilled.len() - attention.len()) as u32,
            servers: attention,
        };
        info!(servers = digest.servers_drilled, ready = digest.servers_ready, "fleet drill finished; nothing launched");
        let outcome = self
            .ports
            .ledger
            .tell_fleet_drill(
                &*self.ports.bus,
                &r.requested_at,
                owner,
                self.ports.clock.epoch(),
                &[ProjectEvent::FleetDrillCompleted(digest)],
            )
            .await?;
        told(outcome, "the fleet drill's digest")?;
        Ok(Response::FleetDrill(FleetDrillReport { requested_at: r.requested_at, servers: drilled }))
    }

    /// Every workload of the server through a dry run; the result kept as its last drill.
    async fn drill_server(&self, server: &ServerId) -> Result<Vec<DrillVerdict>, AwsFailure> {
        let (declared, witness) =
            tokio::join!(self.ports.fleet.workloads_of(server), self.ports.witness.witness_of(server));
        let ((workloads, rejected), witness) = (declared?, witness?);
        let witness = witness.as_ref().map(|w| w.instance_id.as_str());
        let mut verdicts: Vec<DrillVerdict> = stream::iter(launch_order(workloads))
            .map(|w| async move {
                let span = tracing::info_span!("workload", workload = %w.name);
                let mut verdict = self.drill_one(&w).instrument(span).await?;
                let check = witness_check(
                    w.is_stateful(),
                    w.partition_policy(),
                    w.probe.as_deref(),
                    witness,
                    self.config.when_unconfirmed,
                );
                if let Some(check) = check {
                    if check.blocks {
                        verdict.ready = false;
                        verdict.problems.push(format!("witness: {}", check.note));
                    }
                    verdict.witness = Some(check.note);
                }
                Ok(verdict)
            })
            .buffer_unordered(self.config.launch_concurrency)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, AwsFailure>>()?;
        verdicts.extend(rejected.into_iter().map(|r| DrillVerdict {
            workload: r.launch_template_name,
            launch_template_id: r.launch_template_id,
            ready: false,
            destination: None,
            restored_from: None,
            problems: vec![format!("tags unusable: {}", r.reason)],
            witness: None,
        }));
        verdicts.sort_by(|a, b| a.workload.cmp(&b.workload));
        let ready = verdicts.iter().filter(|v| v.ready).count();
        info!(server_id = %server, ready, not_ready = verdicts.len() - ready, "drill finished; nothing launched");
        let record = DrillRecord {
            drilled_at: format_timestamp(self.ports.clock.now()),
            ready: ready as u32,
            not_ready: verdicts
                .iter()
                .filter(|v| !v.ready)
                .map(|v| format!("{}: {}", v.workload, v.problems.first().map(String::as_str).unwrap_or("not ready")))
                .collect(),
        };
        self.ports.ledger.record_drill(server, &record, self.ports.clock.epoch()).await?;
        Ok(verdicts)
    }

    async fn drill_one(&self, w: &Workload) -> Result<DrillVerdict, AwsFailure> {
        let mut verdict = DrillVerdict {
            workload: w.name.clone(),
            launch_template_id: w.launch_template_id.clone(),
            ready: false,
            destination: None,
            restored_from: None,
            problems: Vec::new(),
            witness: None,
        };
        if let Some(parameter) = &w.backup_parameter {
            match self.newest_backup(parameter).await? {
                Ok(r) => verdict.restored_from = Some(r),
                Err(none) => {
                    verdict.problems.push(format!("{}: {}", none.failure, none.message));
                    return Ok(verdict);
                }
            }
        }
        let incident = IncidentId::from_stored("drill");
        let capacity = self.ports.capacity.of(w, true).await;
        let declared =
            match self.ports.fleet.template_interfaces(&w.launch_template_id, &w.launch_template_version).await {
                Ok(declared) => declared,
                Err(f) if f.retry == Retry::CanHelp => return Err(f),
                Err(f) => {
                    verdict.problems.push(format!("{}: {}: {}", w.launch_template_id, f.code, f.message));
                    return Ok(verdict);
                }
            };
        for subnet in &w.subnets {
            if !self.ports.fleet.subnet_exists(subnet).await? {
                verdict.problems.push(format!("{subnet}: does not exist"));
                continue;
            }
            if let Some(c) = capacity.get(subnet).filter(|c| c.is_short()) {
                verdict.problems.push(format!("{subnet}: {}", c.shortage()));
                continue;
            }
            let interfaces = interfaces_at(&declared, subnet, w.lni_subnets.get(subnet).map(String::as_str));
            let launch = LaunchRequest {
                workload: w,
                purpose: LaunchFor::Incident(&incident),
                subnet_id: subnet,
                interfaces: &interfaces,
                client_token: "",
                restored_from: verdict.restored_from.as_ref(),
                dry_run: true,
            };
            match self.ports.fleet.launch(&launch).await {
                Err(f) if f.code == DRY_RUN_WOULD_SUCCEED => {
                    verdict.ready = true;
                    verdict.destination = Some(subnet.clone());
                    return Ok(verdict);
                }
                Err(f) if f.retry == Retry::CanHelp => return Err(f),
                Err(f) => verdict.problems.push(format!("{subnet}: {}: {}", f.code, f.message)),
                Ok(launched) => {
                    let instance_id = launched.instance_id;
                    // EC2 never launches on DryRun; if something did, say so loudly.
                    error!(%instance_id, "a dry-run launch returned an instance");
                    verdict.problems.push(format!("{subnet}: a dry run launched {instance_id}; terminate it"));
                }
            }
        }
        Ok(verdict)
    }
}
