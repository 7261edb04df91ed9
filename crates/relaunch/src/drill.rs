//! The drill job: every workload of a server through a dry-run relaunch — permissions,
//! parameters, backup resolution and destinations as a real relaunch would meet them, and
//! the witness of each workload whose fate it decides. Launches nothing.

use crate::{Relaunch, Response};
use futures::stream::{self, StreamExt};
use ha_aws::invocation::HandlerError;
use ha_domain::contract::{DrillCompleted, DrillRequested, DrillVerdict, ProjectEvent};
use ha_domain::error::{AwsFailure, Retry};
use ha_domain::incident::IncidentId;
use ha_domain::launch::{interfaces_at, launch_order};
use ha_domain::model::{ServerId, Workload};
use ha_domain::partition::witness_check;
use ha_ports::LaunchRequest;
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

impl Relaunch {
    pub(crate) async fn drill(&self, r: DrillRequested) -> Result<Response, HandlerError> {
        let Ok(server) = ServerId::parse(&r.server_id) else {
            return Ok(Response::Ignored { reason: format!("'{}' is not an Outposts server id", r.server_id) });
        };
        let (declared, witness) =
            tokio::join!(self.ports.fleet.workloads_of(&server), self.ports.witness.witness_of(&server));
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
        info!(ready, not_ready = verdicts.len() - ready, "drill finished; nothing launched");
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
        let capacity = self.ports.capacity.of(w).await;
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
                incident: &incident,
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
