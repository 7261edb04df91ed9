//! The launch job: every workload of an incident, concurrently (bounded, priority order),
//! exactly once per (incident, workload), moving to fallback destinations when one refuses.

mod outcome;

use crate::witness::Gate;
use crate::Relaunch;
use futures::stream::{self, StreamExt};
use ha_aws::invocation::{HandlerError, NotYet};
use ha_domain::contract::{
    ProjectEvent, RelaunchFailure, RelaunchRequested, RestoredFrom, StandbyPromoted, WorkloadRelaunchFailed,
};
use ha_domain::error::{refused_unacted, AwsFailure, Retry};
use ha_domain::failover::Plan;
use ha_domain::incident::{client_token, IncidentId};
use ha_domain::launch::{
    adoptable, after_launch_failure, decide_on_existing_claim, interfaces_at, launch_order, AfterFailure,
    ClaimDecision, ClaimRecord, DestinationAttempt, ExistingReplacement,
};
use ha_domain::ledger::{IncidentMark, IncidentStatus};
use ha_domain::metrics;
use ha_domain::model::tag;
use ha_domain::model::{InstanceState, ServerId, Workload};
use ha_domain::partition::RelaunchGrounds;
use ha_domain::standby::promotable;
use ha_domain::timefmt::format_timestamp;
use ha_ports::ledger::{ClaimAttempt, ClaimedLaunch, Settlement};
use ha_ports::{metric_chooses, LaunchFor, LaunchRequest};
use outcome::{attempt_failed, cannot_launch, outcome_metric, relaunched, workload_of, Refusal};
use serde::Serialize;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::OnceCell;
use tracing::{error, info, warn, Instrument};

/// What one launch pass did, workload by workload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LaunchReport {
    pub incident_id: String,
    pub launched: Vec<String>,
    pub failed: Vec<String>,
    pub already_handled: Vec<String>,
    pub retry_later: Vec<String>,
    /// Being launched by another delivery right now.
    pub in_progress: Vec<String>,
    /// Not launched: the server came back (or the incident closed) first.
    pub not_needed: Vec<String>,
    /// Not launched: held on the witness's verdict, a wave or a misdeclared policy, until
    /// an operator releases them.
    pub held: Vec<String>,
    /// Not launched yet: the witness's probe is still out.
    pub awaiting_witness: Vec<String>,
}

enum WorkloadResult {
    /// An outcome event to emit: `fresh` when settled now, not when re-emitted after a
    /// lost report (metrics count each outcome once).
    Report {
        event: Box<ProjectEvent>,
        fresh: bool,
    },
    AlreadyHandled,
    /// Another delivery holds the claim; this one retries so the work is taken over if
    /// that delivery died.
    InProgress,
    /// The server is back or the incident closed before this workload was claimed.
    NotNeeded,
    RetryLater(AwsFailure),
}

impl Relaunch {
    /// Launches every workload of the incident, each exactly once, and reports each outcome.
    pub(crate) async fn launch(&self, request: RelaunchRequested, owner: &str) -> Result<LaunchReport, HandlerError> {
        // A request to finish the incident's claims (fencing's) carries no workloads: no plan.
        let plan = !request.workloads.is_empty();
        self.launch_pass(request, owner, plan).await
    }

    /// One launch pass; `record_plan`: the request names the incident's workloads (a
    /// fallback's request names only its own, and must not replace the plan).
    pub(crate) async fn launch_pass(
        &self,
        request: RelaunchRequested,
        owner: &str,
        record_plan: bool,
    ) -> Result<LaunchReport, HandlerError> {
        let incident = IncidentId::from_stored(request.incident_id.clone());
        let mut report = LaunchReport { incident_id: request.incident_id.clone(), ..Default::default() };
        let (gates, gate_failure) = self.gates(&request, &incident, owner).await;
        let mut ordered = Vec::new();
        for w in launch_order(request.workloads.clone()) {
            match gates.get(&w.name).cloned().unwrap_or(Gate::AwaitingWitness) {
                Gate::Relaunch(grounds) => ordered.push((w, grounds)),
                Gate::Held => report.held.push(w.name),
                Gate::AwaitingWitness => report.awaiting_witness.push(w.name),
                Gate::StandDown => report.not_needed.push(w.name),
            }
        }
        let mut gate_failure = gate_failure;
        let mut results = self.relaunch_each(&request, &incident, ordered.clone(), false, owner).await;
        // What the failover report counts; written after the launches, off their path.
        let plan = Plan {
            workloads: request.workloads.iter().map(|w| w.name.clone()).collect(),
            held: report.held.iter().cloned().collect(),
        };
        // A pass whose gates could not be read counts held workloads as awaiting the witness:
        // its plan would undo the held list a verdict settled.
        if record_plan && gate_failure.is_none() {
            match self.ports.ledger.record_plan(&incident, &plan, request.workloads_read_at_ms).await {
                Ok(true) => {}
                Ok(false) => info!("plan not recorded: a newer read of the workloads is, or the incident is unknown"),
                Err(f) => {
                    gate_failure.get_or_insert(f.into());
                }
            }
        }
        // Off the launches' path: a claim this request does not carry (its workload held
        // since, or its template deleted) is finished as it was claimed (taken over, or its
        // outcome told), never stranded.
        match self.ports.ledger.unfinished_claims(&incident).await {
            Ok(claims) => {
                let stranded: Vec<(Workload, Option<RelaunchGrounds>)> = claims
                    .into_iter()
                    .filter(|c| !ordered.iter().any(|(w, _)| w.name == c.workload.name))
                    .map(|c| (c.workload, c.grounds))
                    .collect();
                for (w, _) in &stranded {
                    for list in [&mut report.held, &mut report.awaiting_witness, &mut report.not_needed] {
                        list.retain(|n| *n != w.name);
                    }
                }
                results.extend(self.relaunch_each(&request, &incident, stranded, true, owner).await);
            }
            Err(f) => {
                gate_failure.get_or_insert(f.into());
            }
        }

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
                WorkloadResult::InProgress => report.in_progress.push(name),
                WorkloadResult::NotNeeded => report.not_needed.push(name),
                WorkloadResult::RetryLater(f) => {
                    warn!(workload = %name, failure = %f, "transient failure; the event will be retried");
                    report.retry_later.push(name);
                }
            }
        }
        // A promoted standby is served (after its hook) by relaunch itself, on this event.
        let promotions: Vec<ProjectEvent> = events.iter().filter_map(standby_promoted).collect();
        events.extend(promotions);
        // Outcomes are settled in the ledger before they are reported; if this publish
        // fails, the retried event finds them unreported and emits them again.
        if let Err(f) = self.ports.bus.publish(&events).await {
            for workload in events.iter().filter_map(workload_of) {
                // Best effort: if this fails too, the report's lease runs out.
                let _ = self.ports.ledger.release_report(&incident, workload).await;
            }
            return Err(f.into());
        }
        for e in &events {
            if let Some(workload) = workload_of(e) {
                self.ports.ledger.mark_reported(&incident, workload).await?;
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
            in_progress = report.in_progress.len(),
            not_needed = report.not_needed.len(),
            held = report.held.len(),
            awaiting_witness = report.awaiting_witness.len(),
            "relaunch pass finished"
        );
        // Every outcome of this pass is told by now: the failover may be complete.
        if let Err(e) = self.report_failover(&incident, owner).await {
            warn!(error = %e, "could not check the failover report; the next pass does");
            gate_failure.get_or_insert(e);
        }
        if let Some(e) = gate_failure {
            Err(e)
        } else if !report.retry_later.is_empty() {
            Err(HandlerError::PartlyTransient(report.retry_later.len()))
        } else if !report.in_progress.is_empty() {
            Err(HandlerError::NotYet {
                reason: NotYet::RelaunchInProgress,
                detail: format!("another delivery is launching {}", report.in_progress.join(", ")),
            })
        } else {
            Ok(report)
        }
    }

    /// Relaunches each workload, bounded and in the order given; `finish_only`: only
    /// claims already taken are finished (taken over, adopted or re-told), none is made.
    async fn relaunch_each(
        &self,
        request: &RelaunchRequested,
        incident: &IncidentId,
        workloads: Vec<(Workload, Option<RelaunchGrounds>)>,
        finish_only: bool,
        owner: &str,
    ) -> Vec<(String, WorkloadResult)> {
        let claimed = OnceCell::new();
        let claimed = &claimed;
        stream::iter(workloads)
            .map(|(w, grounds)| {
                let span = tracing::info_span!("workload", workload = %w.name);
                async move {
                    // A warm workload is promoted without RunInstances: it paces only if it falls
                    // back to a launch.
                    let token =
                        !finish_only && !w.is_warm() && self.pace_before_claim(incident, &w.name, claimed).await;
                    let result = self.relaunch_one(request, incident, &w, grounds, finish_only, token, owner).await;
                    (w.name.clone(), result)
                }
                .instrument(span)
            })
            .buffer_unordered(self.config.launch_concurrency)
            .collect()
            .await
    }

    /// A launch's RunInstances token, taken before its claim (true) so that no claim waits
    /// for one: a claim parked behind the pace would read as launched to whoever took it
    /// over, and would launch after the server came back; and waiters keep the priority
    /// order. A workload already claimed in the incident (being launched, or done) takes
    /// none: it gets one when, and if, it calls RunInstances.
    async fn pace_before_claim(
        &self,
        incident: &IncidentId,
        workload: &str,
        claimed: &OnceCell<BTreeSet<String>>,
    ) -> bool {
        if self.try_pace() {
            return true;
        }
        let claimed = claimed
            .get_or_init(|| async {
                match self.ports.ledger.progress_of(incident).await {
                    Ok(p) => p.map(|(_, progress)| progress.into_iter().map(|w| w.workload).collect()),
                    // Unknown: every workload waits its turn (at worst in vain).
                    Err(_) => None,
                }
                .unwrap_or_default()
            })
            .await;
        if claimed.contains(workload) {
            return false;
        }
        self.pace().await;
        true
    }

    #[allow(clippy::too_many_arguments)]
    async fn relaunch_one(
        &self,
        req: &RelaunchRequested,
        incident: &IncidentId,
        w: &Workload,
        grounds: Option<RelaunchGrounds>,
        finish_only: bool,
        token: bool,
        owner: &str,
    ) -> WorkloadResult {
        let (launched, taken_over) = (AtomicBool::new(false), AtomicBool::new(false));
        let attempt =
            self.try_relaunch_one(req, incident, w, grounds, finish_only, token, owner, &launched, &taken_over);
        match attempt.await {
            Ok(r) => r,
            Err(f)
                if taken_over.load(Ordering::Relaxed)
                    || (launched.load(Ordering::Relaxed) && !refused_unacted(&f.code)) =>
            {
                // RunInstances may have taken effect though it failed (here, or in the dead
                // claimant this one took over from): the claim stays until its lease runs
                // out, and the claimant that takes it over repeats the call with the same
                // ClientToken (getting that instance, never a second one).
                WorkloadResult::RetryLater(f)
            }
            Err(f) => {
                // Nothing launched: give the claim back so the retried event can take it at once.
                if let Err(e) = self.ports.ledger.release(incident, &w.name, owner).await {
                    error!(failure = %e, "could not release the claim; it frees itself when its lease runs out");
                }
                WorkloadResult::RetryLater(f)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn try_relaunch_one(
        &self,
        req: &RelaunchRequested,
        incident: &IncidentId,
        w: &Workload,
        grounds: Option<RelaunchGrounds>,
        finish_only: bool,
        token: bool,
        owner: &str,
        launched: &AtomicBool,
        taken_over: &AtomicBool,
    ) -> Result<WorkloadResult, AwsFailure> {
        // The RunInstances token taken before the claim, for the first call.
        let mut paced = token;
        let lease = self.config.claim_lease_seconds;
        let (ledger, fleet) = (&self.ports.ledger, &self.ports.fleet);
        let now_epoch = self.ports.clock.epoch();
        let Ok(server) = ServerId::parse(&req.server_id) else {
            let event = cannot_launch(req, w, RelaunchFailure::NoDestination, "the request names no valid server");
            return Ok(WorkloadResult::Report { event: Box::new(event), fresh: true });
        };
        // The claim, the look for an orphaned replacement and the backup lookup go out
        // together: each sequential round trip here delays the launch. The reads are
        // simply dropped when the claim is lost.
        let backup = async {
            match &w.backup_parameter {
                None => Ok(None),
                Some(parameter) => self.newest_backup(parameter).await.map(Some),
            }
        };
        let claimed = ClaimedLaunch { workload: w.clone(), grounds, after_failed_promotion: false };
        // A warm workload whose promotion failed in this incident is launched cold.
        let promotion_failed = async {
            if w.is_warm() {
                ledger.was_told(incident, IncidentMark::PromotionFailed { workload: &w.name }).await
            } else {
                Ok(false)
            }
        };
        let (claim, existing, backup, capacity, interfaces, promotion_failed) = tokio::join!(
            ledger.claim_workload(incident, &claimed, owner, now_epoch, lease),
            fleet.copies_of(&w.name),
            backup,
            self.ports.capacity.of(w, metric_chooses(w)),
            fleet.template_interfaces(&w.launch_template_id, &w.launch_template_version),
            promotion_failed
        );
        let fresh = matches!(claim, Ok(ClaimAttempt::Won));
        let mut grounds = grounds;
        let mut reopened_cold: Option<Workload> = None;
        let mut reopened = false;
        let mut untouched_since_reopen = false;
        match claim? {
            ClaimAttempt::Won if finish_only => {
                // Finished or given back since it was listed: nothing of it is left to finish.
                ledger.release(incident, &w.name, owner).await?;
                return Ok(WorkloadResult::NotNeeded);
            }
            ClaimAttempt::Won => {}
            ClaimAttempt::Existing { record, outcome_event, launch, attempted } => {
                match decide_on_existing_claim(&record, now_epoch) {
                    ClaimDecision::Launch => {}
                    ClaimDecision::TakeOver => {
                        let ClaimRecord::Launching { lease_until } = record else {
                            return Ok(WorkloadResult::AlreadyHandled);
                        };
                        // Set first: a take-over whose answer is lost may hold the claim, and
                        // one taken over is never given back (below).
                        taken_over.store(true, Ordering::Relaxed);
                        if !ledger.take_over(incident, &w.name, lease_until, owner, now_epoch, lease).await? {
                            return Ok(WorkloadResult::InProgress);
                        }
                        // Finished on the grounds it was claimed on, whatever this pass decided;
                        // cold when a failed promotion reopened it.
                        if let Some(launch) = launch {
                            grounds = launch.grounds;
                            reopened |= launch.after_failed_promotion;
                            // Reopened and its cold launch not tried since: nothing launched under it.
                            untouched_since_reopen = launch.after_failed_promotion && !attempted;
                            if launch.workload.mode.is_cold() && w.is_warm() {
                                reopened_cold = Some(launch.workload);
                            }
                        }
                        // Its dead claimant may have launched (or it was reopened for a cold
                        // launch a retry must still find): on a failure the claim is kept,
                        // never given back as if nothing were owed, for the next to finish.
                        warn!(previous_lease_until = lease_until, "took over a claim whose owner stopped mid-launch");
                    }
                    ClaimDecision::LeaveToOther => return Ok(WorkloadResult::InProgress),
                    ClaimDecision::Done => return Ok(WorkloadResult::AlreadyHandled),
                    ClaimDecision::ReEmit => {
                        if !ledger.take_report(incident, &w.name, now_epoch).await? {
                            // Its settler (or another delivery) is reporting it; if that one
                            // died, the retry of this event reports it.
                            return Ok(WorkloadResult::InProgress);
                        }
                        let Some(event) =
                            outcome_event.and_then(|json| serde_json::from_str::<ProjectEvent>(&json).ok())
                        else {
                            error!("settled claim has no readable outcome to re-emit");
                            return Ok(WorkloadResult::AlreadyHandled);
                        };
                        return Ok(WorkloadResult::Report { event: Box::new(event), fresh: false });
                    }
                }
            }
        }

        let w = reopened_cold.as_ref().unwrap_or(w);

        // Read after the claim is written: recovery marks the server up before it looks for
        // claims to wait on, so either fencing sees this claim or this sees the server up. A
        // claim taken over goes on: its dead claimant may have launched (and fencing waits).
        let (up, status) = tokio::join!(ledger.server_is_up(&server), ledger.incident_status(incident));
        let (up, status) = (up?, status?);
        let server_back = up == Some(true) || status == Some(IncidentStatus::Closed);
        // A claim reopened after a failed promotion whose cold launch was not tried since
        // launched nothing yet: like a fresh one. Unless the server came back without its
        // original: the promotion was not given up for that, and no other copy is coming.
        if (fresh || untouched_since_reopen)
            && server_back
            && !(untouched_since_reopen
                && up == Some(true)
                && status != Some(IncidentStatus::Closed)
                && !self.runs_at_home(&w.name, &server).await?)
        {
            info!(server_up = ?up, incident_status = ?status, "the server is back or the incident closed: not launched");
            ledger.release(incident, &w.name, owner).await?;
            return Ok(WorkloadResult::NotNeeded);
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
            return self.settle(incident, w, grounds, owner, event, None).await;
        }

        // Already replaced: a claimant that died after RunInstances left its replacement in
        // EC2, or an earlier incident's replacement still runs (the server failed again
        // before fail-back). Adopt it; never launch a second copy.
        let mut existing = existing?;
        if reopened {
            // The failed standby may still read as this incident's replacement (Describe lag).
            existing.retain(|c| !c.promoted);
        }
        if let Some(existing) = adoptable(&existing, incident.as_str(), server.as_str(), self.ports.clock.epoch()) {
            let at = format_timestamp(self.ports.clock.now());
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
                // A promotion interrupted after its tags were written is finished as one.
                r.promoted_standby = existing.promoted && earlier.is_none();
                r.already_replaced_in = earlier;
            }
            return self
                .settle(
                    incident,
                    w,
                    grounds,
                    owner,
                    event,
                    Some((&existing.instance_id, &existing.subnet_id, &at, &at)),
                )
                .await;
        }

        // A warm workload's running standby becomes the replacement: nothing is launched.
        if w.is_warm() && !promotion_failed? {
            match promotable(&existing, w, server.as_str()) {
                // Taken over after the server came back: a promotion the dead claimant made
                // was adopted above; none is made now.
                Some(_) if server_back => {
                    info!("the server is back: the standby is not promoted");
                    ledger.release(incident, &w.name, owner).await?;
                    return Ok(WorkloadResult::NotNeeded);
                }
                Some(standby) => {
                    launched.store(true, Ordering::Relaxed);
                    return self.promote(req, incident, w, grounds, owner, standby).await;
                }
                None => warn!("warm workload has no running standby to promote: launched cold"),
            }
        }

        // A stateful workload starts from its newest good backup or not at all: an empty
        // database beside a lost one is worse than an operator deciding.
        let restored_from = match backup? {
            None => None,
            Some(Ok(r)) => Some(r),
            Some(Err(none)) => {
                error!(parameter = ?w.backup_parameter, code = %none.failure, message = %none.message, "no usable backup: manual action required");
                let event = cannot_launch(req, w, none.failure, &none.message);
                return self.settle(incident, w, grounds, owner, event, None).await;
            }
        };

        // A template EC2 cannot describe (deleted version, denied) cannot be launched
        // either: a person hears of it; a transient failure is retried.
        let declared_interfaces = match interfaces {
            Ok(declared) => declared,
            Err(f) if f.retry == Retry::CanHelp => return Err(f),
            Err(f) => {
                error!(code = %f.code, message = %f.message, "the launch template cannot be read: manual action required");
                let event = cannot_launch(req, w, RelaunchFailure::Aws(f.code.clone()), &f.message);
                return self.settle(incident, w, grounds, owner, event, None).await;
            }
        };
        // A reopened claim's cold launch is marked tried before RunInstances: until then a
        // taker knows nothing was launched under it (the server-back rule above).
        if reopened && !ledger.mark_attempted(incident, &w.name, owner).await? {
            return Ok(WorkloadResult::InProgress);
        }
        let mut tried: Vec<DestinationAttempt> = Vec::new();
        let mut index = 0;
        loop {
            let subnet = &w.subnets[index];
            let token = client_token(incident, &w.name, index);
            let requested_at = format_timestamp(self.ports.clock.now());
            let placed = interfaces_at(&declared_interfaces, subnet, w.lni_subnets.get(subnet).map(String::as_str));
            let launch = LaunchRequest {
                workload: w,
                purpose: LaunchFor::Incident(incident),
                subnet_id: subnet,
                interfaces: &placed,
                client_token: &token,
                restored_from: restored_from.as_ref(),
                dry_run: false,
            };
            // A known shortage moves on at once, named in the report; unknown capacity
            // launches. A destination on the failed server itself is no destination.
            let known = capacity.get(subnet);
            let outcome = if known.and_then(|c| c.outpost.as_deref()) == Some(server.as_str()) {
                Err(Refusal::OnFailedServer(format!("subnet {subnet} is on {server}, the server that failed")))
            } else {
                match known.filter(|c| c.is_short()) {
                    Some(c) => Err(Refusal::KnownShortage(c.shortage())),
                    None => {
                        if !std::mem::take(&mut paced) {
                            self.pace().await;
                        }
                        launched.store(true, Ordering::Relaxed);
                        match fleet.launch(&launch).await {
                            Ok(l) if matches!(l.state, InstanceState::Pending | InstanceState::Running) => {
                                Ok(l.instance_id)
                            }
                            Ok(l) => Err(Refusal::LaunchedAndLost(format!(
                                "{} launched here earlier is {}",
                                l.instance_id,
                                l.state.as_str()
                            ))),
                            Err(f) => Err(Refusal::Aws(f)),
                        }
                    }
                }
            };
            match outcome {
                Ok(instance_id) => {
                    let accepted_at = format_timestamp(self.ports.clock.now());
                    info!(instance_id = %instance_id, subnet_id = %subnet, "replacement launched");
                    tried.push(DestinationAttempt { subnet_id: subnet.clone(), error_code: None, error_message: None });
                    let event = relaunched(req, w, &instance_id, subnet, tried, &requested_at, &accepted_at, false)
                        .with_restored_from(restored_from.clone());
                    return self
                        .settle(
                            incident,
                            w,
                            grounds,
                            owner,
                            event,
                            Some((&instance_id, subnet, &requested_at, &accepted_at)),
                        )
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
                            Refusal::KnownShortage(_) | Refusal::OnFailedServer(_) | Refusal::LaunchedAndLost(_) => {
                                unreachable!("a known refusal is never retried")
                            }
                        },
                        AfterFailure::Exhausted => {
                            tried.push(attempt_failed(subnet, &refusal));
                            error!(%code, "every destination refused: manual action required");
                            let event = ProjectEvent::WorkloadRelaunchFailed(WorkloadRelaunchFailed {
                                incident_id: req.incident_id.clone(),
                                server_id: req.server_id.clone(),
                                site_name: req.site_name.clone(),
                                workload: w.name.clone(),
                                launch_template_id: w.launch_template_id.clone(),
                                error_code: code,
                                error_message: refusal.message().to_string(),
                                destinations_tried: tried,
                                manual_action_required: true,
                                detected_at: req.detected_at.clone(),
                            });
                            return self.settle(incident, w, grounds, owner, event, None).await;
                        }
                    }
                }
            }
        }
    }

    /// The standby becomes the incident's replacement: tagged as one (with when, and the
    /// hook it must pass before it serves), then settled like a launch.
    async fn promote(
        &self,
        req: &RelaunchRequested,
        incident: &IncidentId,
        w: &Workload,
        grounds: Option<RelaunchGrounds>,
        owner: &str,
        standby: &ExistingReplacement,
    ) -> Result<WorkloadResult, AwsFailure> {
        let at = format_timestamp(self.ports.clock.now());
        let mut tags =
            vec![(tag::ROLE, tag::ROLE_REPLACEMENT), (tag::INCIDENT, incident.as_str()), (tag::PROMOTED_AT, &at)];
        if let Some(document) = &w.promotion_document {
            tags.push((tag::PROMOTION_DOCUMENT, document));
        }
        self.ports.fleet.tag_instance(&standby.instance_id, &tags).await?;
        info!(instance_id = %standby.instance_id, subnet_id = %standby.subnet_id, "standby promoted");
        let tried =
            vec![DestinationAttempt { subnet_id: standby.subnet_id.clone(), error_code: None, error_message: None }];
        let restored = standby.restored_from.as_ref().map(|image| RestoredFrom {
            image_id: image.clone(),
            parameter: w.backup_parameter.clone().unwrap_or_default(),
            taken_at: None,
            age_seconds: None,
        });
        let mut event = relaunched(req, w, &standby.instance_id, &standby.subnet_id, tried, &at, &at, false)
            .with_restored_from(restored);
        if let ProjectEvent::WorkloadRelaunched(r) = &mut event {
            r.promoted_standby = true;
        }
        self.settle(incident, w, grounds, owner, event, Some((&standby.instance_id, &standby.subnet_id, &at, &at)))
            .await
    }

    async fn settle(
        &self,
        incident: &IncidentId,
        w: &Workload,
        grounds: Option<RelaunchGrounds>,
        owner: &str,
        mut event: ProjectEvent,
        launched: Option<(&str, &str, &str, &str)>,
    ) -> Result<WorkloadResult, AwsFailure> {
        if let ProjectEvent::WorkloadRelaunched(r) = &mut event {
            r.grounds = grounds;
            r.stateful = w.is_stateful();
        }
        let outcome_event = serde_json::to_string(&event).unwrap_or_default();
        let settlement = Settlement {
            launched: launched.is_some(),
            replacement_instance_id: launched.map(|l| l.0),
            subnet_id: launched.map(|l| l.1),
            launch_requested_at: launched.map(|l| l.2),
            launch_accepted_at: launched.map(|l| l.3),
            outcome_event: &outcome_event,
        };
        let lease = self.config.claim_lease_seconds;
        if self.ports.ledger.settle(incident, &w.name, owner, &settlement, self.ports.clock.epoch(), lease).await? {
            Ok(WorkloadResult::Report { event: Box::new(event), fresh: true })
        } else {
            warn!("another claimant took this workload over; it reports the outcome");
            Ok(WorkloadResult::AlreadyHandled)
        }
    }
}

/// The hand-off that serves a promoted standby, from its outcome.
pub(crate) fn standby_promoted(e: &ProjectEvent) -> Option<ProjectEvent> {
    let ProjectEvent::WorkloadRelaunched(r) = e else { return None };
    r.promoted_standby.then(|| {
        ProjectEvent::StandbyPromoted(StandbyPromoted {
            incident_id: r.incident_id.clone(),
            server_id: r.server_id.clone(),
            workload: r.workload.clone(),
            instance_id: r.replacement_instance_id.clone(),
            subnet_id: r.subnet_id.clone(),
            promotion_document: None,
            promoted_at: r.launch_accepted_at.clone(),
        })
    })
}
