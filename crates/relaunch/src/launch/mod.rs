//! The launch job: every workload of an incident, concurrently (bounded, priority order),
//! exactly once per (incident, workload), moving to fallback destinations when one refuses.

mod outcome;

use crate::Relaunch;
use futures::stream::{self, StreamExt};
use ha_aws::fleet::LaunchRequest;
use ha_aws::invocation::HandlerError;
use ha_aws::ledger::{ClaimAttempt, Settlement};
use ha_domain::contract::{ProjectEvent, RelaunchFailure, RelaunchRequested, RestoredFrom, WorkloadRelaunchFailed};
use ha_domain::error::AwsFailure;
use ha_domain::incident::{client_token, IncidentId};
use ha_domain::launch::{
    after_launch_failure, decide_on_existing_claim, launch_order, AfterFailure, ClaimDecision, ClaimRecord,
    DestinationAttempt,
};
use ha_domain::metrics;
use ha_domain::model::Workload;
use ha_domain::timefmt::{format_timestamp, now};
use outcome::{attempt_failed, cannot_launch, outcome_metric, relaunched, workload_of, Refusal};
use serde::Serialize;
use tracing::{error, info, warn, Instrument};

/// What one launch pass did, workload by workload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LaunchReport {
    pub incident_id: String,
    pub launched: Vec<String>,
    pub failed: Vec<String>,
    pub already_handled: Vec<String>,
    pub retry_later: Vec<String>,
}

enum WorkloadResult {
    /// An outcome event to emit: `fresh` when settled now, not when re-emitted after a
    /// lost report (metrics count each outcome once).
    Report {
        event: Box<ProjectEvent>,
        fresh: bool,
    },
    AlreadyHandled,
    RetryLater(AwsFailure),
}

impl Relaunch {
    /// Launches every workload of the incident, each exactly once, and reports each outcome.
    pub(crate) async fn launch(&self, request: RelaunchRequested, owner: &str) -> Result<LaunchReport, HandlerError> {
        let incident = IncidentId::from_stored(request.incident_id.clone());
        let ordered = launch_order(request.workloads.clone());
        let results: Vec<(String, WorkloadResult)> = stream::iter(ordered)
            .map(|w| {
                let span = tracing::info_span!("workload", workload = %w.name);
                let (request, incident) = (&request, &incident);
                async move {
                    let result = self.relaunch_one(request, incident, &w, owner).await;
                    (w.name.clone(), result)
                }
                .instrument(span)
            })
            .buffer_unordered(self.config.launch_concurrency)
            .collect()
            .await;

        let mut report = LaunchReport { incident_id: request.incident_id.clone(), ..Default::default() };
        let mut events = Vec::new();
        let mut fresh_metrics = Vec::new();
        for (name, result) in results {
            match result {
                WorkloadResult::Report { event, fresh } => {
                    let event = *event;
                    match &event {
                        ProjectEvent::WorkloadRelaunched(_) => report.launched.push(name),
                        _ => report.failed.push(name),
                    }
                    if fresh {
                        fresh_metrics.extend(outcome_metric(&event));
                    }
                    events.push(event);
                }
                WorkloadResult::AlreadyHandled => report.already_handled.push(name),
                WorkloadResult::RetryLater(f) => {
                    warn!(workload = %name, failure = %f, "transient failure; the event will be retried");
                    report.retry_later.push(name);
                }
            }
        }
        // Outcomes are settled in the ledger before they are reported; if this publish
        // fails, the retried event finds them unreported and emits them again.
        self.bus.publish(&events).await?;
        for e in &events {
            if let Some(workload) = workload_of(e) {
                self.ledger.mark_reported(&incident, workload).await?;
            }
        }
        for metric in fresh_metrics {
            metrics::publish_for_server(&self.config.stack_name, &request.server_id, metric);
        }
        info!(
            launched = report.launched.len(),
            failed = report.failed.len(),
            already_handled = report.already_handled.len(),
            retry_later = report.retry_later.len(),
            "relaunch pass finished"
        );
        if report.retry_later.is_empty() {
            Ok(report)
        } else {
            Err(HandlerError::PartlyTransient(report.retry_later.len()))
        }
    }

    async fn relaunch_one(
        &self,
        req: &RelaunchRequested,
        incident: &IncidentId,
        w: &Workload,
        owner: &str,
    ) -> WorkloadResult {
        match self.try_relaunch_one(req, incident, w, owner).await {
            Ok(r) => r,
            Err(f) => {
                // We may hold the claim: give it back so the retried event can take it at once.
                if let Err(e) = self.ledger.release(incident, &w.name, owner).await {
                    error!(failure = %e, "could not release the claim; it frees itself when its lease runs out");
                }
                WorkloadResult::RetryLater(f)
            }
        }
    }

    async fn try_relaunch_one(
        &self,
        req: &RelaunchRequested,
        incident: &IncidentId,
        w: &Workload,
        owner: &str,
    ) -> Result<WorkloadResult, AwsFailure> {
        let lease = self.config.claim_lease_seconds;
        let now_epoch = now().unix_timestamp();
        // The claim, the look for an orphaned replacement and the backup lookup go out
        // together: each sequential round trip here delays the launch. The reads are
        // simply dropped when the claim is lost.
        let backup = async {
            match &w.backup_parameter {
                None => Ok(None),
                Some(parameter) => self.newest_backup(parameter).await.map(Some),
            }
        };
        let (claim, existing, backup, capacity) = tokio::join!(
            self.ledger.claim_workload(incident, &w.name, owner, now_epoch, lease),
            self.fleet.replacement_of(incident, &w.name),
            backup,
            self.capacity.of(w)
        );
        match claim? {
            ClaimAttempt::Won => {}
            ClaimAttempt::Existing { record, outcome_event } => match decide_on_existing_claim(&record, now_epoch) {
                ClaimDecision::Launch => {}
                ClaimDecision::TakeOver => {
                    let ClaimRecord::Launching { lease_until } = record else {
                        return Ok(WorkloadResult::AlreadyHandled);
                    };
                    if !self.ledger.take_over(incident, &w.name, lease_until, owner, now_epoch, lease).await? {
                        return Ok(WorkloadResult::AlreadyHandled);
                    }
                    warn!(previous_lease_until = lease_until, "took over a claim whose owner stopped mid-launch");
                }
                ClaimDecision::LeaveToOther | ClaimDecision::Done => return Ok(WorkloadResult::AlreadyHandled),
                ClaimDecision::ReEmit => {
                    let Some(event) = outcome_event.and_then(|json| serde_json::from_str::<ProjectEvent>(&json).ok())
                    else {
                        error!("settled claim has no readable outcome to re-emit");
                        return Ok(WorkloadResult::AlreadyHandled);
                    };
                    return Ok(WorkloadResult::Report { event: Box::new(event), fresh: false });
                }
            },
        }

        // Events on the bus can come from elsewhere than alarm-handler: never trust a list.
        if w.subnets.is_empty() {
            error!("the request names no destination for this workload");
            let event = cannot_launch(
                req,
                w,
                RelaunchFailure::NoDestination,
                "the relaunch request lists no subnet for this workload",
            );
            return self.settle(incident, w, owner, event, None).await;
        }

        // Already replaced: a claimant that died after RunInstances left its replacement in
        // EC2, or an earlier incident's replacement still runs (the server failed again
        // before fail-back). Adopt it; never launch a second copy.
        if let Some(existing) = existing? {
            let at = format_timestamp(now());
            let earlier = existing.incident.clone().filter(|i| i != incident.as_str());
            match &earlier {
                Some(other) => {
                    info!(instance_id = %existing.instance_id, earlier_incident = %other, "the workload already runs as an earlier incident's replacement")
                }
                None => {
                    info!(instance_id = %existing.instance_id, "adopting the replacement an interrupted attempt launched")
                }
            }
            let restored = existing.restored_from.as_ref().map(|image| RestoredFrom {
                image_id: image.clone(),
                parameter: w.backup_parameter.clone().unwrap_or_default(),
                taken_at: None,
                age_seconds: None,
            });
            let mut event = relaunched(req, w, &existing.instance_id, &existing.subnet_id, Vec::new(), &at, &at, true)
                .with_restored_from(restored);
            if let ProjectEvent::WorkloadRelaunched(r) = &mut event {
                r.already_replaced_in = earlier;
            }
            return self
                .settle(incident, w, owner, event, Some((&existing.instance_id, &existing.subnet_id, &at, &at)))
                .await;
        }

        // A stateful workload starts from its newest good backup or not at all: an empty
        // database beside a lost one is worse than an operator deciding.
        let restored_from = match backup? {
            None => None,
            Some(Ok(r)) => Some(r),
            Some(Err(none)) => {
                error!(parameter = ?w.backup_parameter, code = %none.failure, message = %none.message, "no usable backup: manual action required");
                let event = cannot_launch(req, w, none.failure, &none.message);
                return self.settle(incident, w, owner, event, None).await;
            }
        };

        let mut tried: Vec<DestinationAttempt> = Vec::new();
        let mut index = 0;
        loop {
            let subnet = &w.subnets[index];
            let token = client_token(incident, &w.name, index);
            let requested_at = format_timestamp(now());
            let launch = LaunchRequest {
                workload: w,
                incident,
                subnet_id: subnet,
                client_token: &token,
                restored_from: restored_from.as_ref(),
                dry_run: false,
            };
            // A known shortage moves on at once, named in the report; unknown capacity launches.
            let outcome = match capacity.get(subnet).filter(|c| c.is_short()) {
                Some(c) => Err(Refusal::KnownShortage(c.shortage())),
                None => self.fleet.launch(&launch).await.map_err(Refusal::Aws),
            };
            match outcome {
                Ok(instance_id) => {
                    let accepted_at = format_timestamp(now());
                    info!(instance_id = %instance_id, subnet_id = %subnet, "replacement launched");
                    tried.push(DestinationAttempt { subnet_id: subnet.clone(), error_code: None, error_message: None });
                    let event = relaunched(req, w, &instance_id, subnet, tried, &requested_at, &accepted_at, false)
                        .with_restored_from(restored_from.clone());
                    return self
                        .settle(incident, w, owner, event, Some((&instance_id, subnet, &requested_at, &accepted_at)))
                        .await;
                }
                Err(refusal) => {
                    let code = refusal.code();
                    warn!(subnet_id = %subnet, %code, message = %refusal.message(), "destination refused the launch");
                    match after_launch_failure(index, w.subnets.len(), refusal.retry()) {
                        AfterFailure::NextDestination(next) => {
                            tried.push(attempt_failed(subnet, &refusal));
                            index = next;
                        }
                        AfterFailure::RetryLater => match refusal {
                            Refusal::Aws(f) => return Err(f),
                            Refusal::KnownShortage(_) => unreachable!("a known shortage is never retried"),
                        },
                        AfterFailure::Exhausted => {
                            tried.push(attempt_failed(subnet, &refusal));
                            error!(%code, "every destination refused: manual action required");
                            let event = ProjectEvent::WorkloadRelaunchFailed(WorkloadRelaunchFailed {
                                incident_id: req.incident_id.clone(),
                                server_id: req.server_id.clone(),
                                workload: w.name.clone(),
                                launch_template_id: w.launch_template_id.clone(),
                                error_code: code,
                                error_message: refusal.message().to_string(),
                                destinations_tried: tried,
                                manual_action_required: true,
                                detected_at: req.detected_at.clone(),
                            });
                            return self.settle(incident, w, owner, event, None).await;
                        }
                    }
                }
            }
        }
    }

    async fn settle(
        &self,
        incident: &IncidentId,
        w: &Workload,
        owner: &str,
        event: ProjectEvent,
        launched: Option<(&str, &str, &str, &str)>,
    ) -> Result<WorkloadResult, AwsFailure> {
        let outcome_event = serde_json::to_string(&event).unwrap_or_default();
        let settlement = Settlement {
            launched: launched.is_some(),
            replacement_instance_id: launched.map(|l| l.0),
            subnet_id: launched.map(|l| l.1),
            launch_requested_at: launched.map(|l| l.2),
            launch_accepted_at: launched.map(|l| l.3),
            outcome_event: &outcome_event,
        };
        if self.ledger.settle(incident, &w.name, owner, &settlement, now().unix_timestamp()).await? {
            Ok(WorkloadResult::Report { event: Box::new(event), fresh: true })
        } else {
            warn!("another claimant took this workload over; it reports the outcome");
            Ok(WorkloadResult::AlreadyHandled)
        }
    }
}
