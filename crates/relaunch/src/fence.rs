//! The fence job: the server is back; fence the originals of the workloads this incident
//! replaced, per policy, then close the incident. Redelivery finds them fenced and does
//! nothing. An original is fenced only when its workload has a replacement.

use crate::{Relaunch, Response};
use ha_aws::invocation::{told, HandlerError, NotYet};
use ha_domain::contract::{
    FenceOutcome, FenceRequested, HandledOriginal, IncidentClosed, OriginalFenced, ProjectEvent, RelaunchRequested,
    StandbyPromoted,
};
use ha_domain::error::{AwsFailure, Retry};
use ha_domain::failover::timeline;
use ha_domain::fencing::{
    choose_originals, is_partly_isolated, isolation_of, policy_for, FenceAction, FencingPolicy, InterfaceGroups,
    ReplacedWorkload,
};
use ha_domain::incident::IncidentId;
use ha_domain::ledger::{IncidentMark, IncidentStatus, WorkloadStatus};
use ha_domain::model::{tag, Instance, InstanceState, ServerId};
use ha_domain::partition::{on_return, OnReturn};
use ha_domain::timefmt::format_timestamp;
use ha_ports::ledger::{HookVerdict, Told};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use tracing::{error, info, warn, Instrument};

/// What one fencing pass did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FenceReport {
    pub incident_id: String,
    /// Originals fenced (or found fenced) by this pass.
    pub fenced: Vec<String>,
    pub incident_closed: bool,
}

/// What fencing did to one original.
struct Fenced {
    outcome: FenceOutcome,
    previous: Vec<InterfaceGroups>,
    quarantine: Option<String>,
}

impl Fenced {
    fn untouched(outcome: FenceOutcome) -> Fenced {
        Fenced { outcome, previous: Vec::new(), quarantine: None }
    }
}

/// How fencing one original went.
enum Attempt {
    Done(Fenced),
    /// Its replacement is not running yet: come back.
    ReplacementPending,
    /// A retry may help.
    Transient(AwsFailure),
}

impl Relaunch {
    pub(crate) async fn fence(&self, r: FenceRequested, owner: &str) -> Result<Response, HandlerError> {
        let Ok(server) = ServerId::parse(&r.server_id) else {
            info!("not a server id: nothing to fence");
            return Ok(Response::Ignored { reason: "no valid server".into() });
        };
        let (ledger, fleet) = (&self.ports.ledger, &self.ports.fleet);
        let incident = IncidentId::from_stored(r.incident_id.as_str());
        let (up, status) = tokio::join!(ledger.server_is_up(&server), ledger.incident_status(&incident));
        let (up, status) = (up?, status?);
        // A closed incident's closing is finished (told, server freed) even if the server is
        // down again since; an open one waits for the next recovery.
        if up == Some(false) && status != Some(IncidentStatus::Closed) {
            info!("the server went down again since: this recovery is stale, nothing fenced");
            return Ok(Response::Ignored { reason: "the server is down again".into() });
        }
        if status.is_none() && ledger.outcomes_of(&incident).await?.is_empty() {
            // Held by an incident never recorded (a suppressed outage, or deliveries that died
            // between claiming the server and recording) that claimed no workload: nothing was
            // opened or launched. One that claimed any is fenced as any other.
            ledger.release_server(&server, &incident).await?;
            info!("the incident was never recorded: the server's hold is freed, nothing to fence");
            return Ok(Response::Ignored { reason: "incident never recorded".into() });
        }
        // A copy of a recovery already carried out: its closing was told, nothing is left.
        if ledger.was_told(&incident, IncidentMark::Closed).await? {
            // The pass that told it may have died before freeing the server.
            ledger.release_server(&server, &incident).await?;
            info!("the incident is closed and told: nothing to fence");
            return Ok(Response::Ignored { reason: "incident already closed".into() });
        }
        let mut replaced = Vec::new();
        for (status, outcome) in ledger.outcomes_of(&incident).await? {
            if status == WorkloadStatus::Launching {
                // A launch still in flight would leave its original unfenced: come back later.
                // Its request may have run out of retries, and the reconcile pass re-drives
                // only a server still down: ask relaunch to finish the incident's claims (a
                // claim whose claimant died is taken over once its lease runs out).
                let detected_at = ledger.incident_detected_at(&incident).await?.unwrap_or_default();
                let finish = ProjectEvent::RelaunchRequested(RelaunchRequested {
                    incident_id: incident.to_string(),
                    server_id: server.to_string(),
                    site_name: None,
                    detected_at,
                    workloads: Vec::new(),
                    workloads_read_at_ms: None,
                });
                self.ports.bus.publish(&[finish]).await?;
                return Err(HandlerError::NotYet {
                    reason: NotYet::RelaunchInProgress,
                    detail: "a workload of the incident is still being launched".into(),
                });
            }
            if let Some(ProjectEvent::WorkloadRelaunched(w)) = outcome.and_then(|o| serde_json::from_str(&o).ok()) {
                replaced.push(w);
            }
        }
        // An incident never closes with an outcome untold: one whose report was lost (its
        // reporter died, its retries ran out) is told here.
        for (workload, outcome) in ledger.unreported_of(&incident).await? {
            if !ledger.take_report(&incident, &workload, self.ports.clock.epoch()).await? {
                return Err(HandlerError::NotYet {
                    reason: NotYet::BeingTold,
                    detail: format!("the outcome of {workload} is being reported"),
                });
            }
            if let Ok(event) = serde_json::from_str::<ProjectEvent>(&outcome) {
                // A promotion's hand-off first (a repeat is harmless, a lost one never served
                // the standby): it serves, or gives the promotion up if its hook had not run.
                if let Some(handoff) = crate::launch::standby_promoted(&event) {
                    if let Err(f) = self.ports.bus.publish(&[handoff]).await {
                        let _ = ledger.release_report(&incident, &workload).await;
                        return Err(f.into());
                    }
                }
                if let Err(f) = self.ports.bus.publish(&[event]).await {
                    let _ = ledger.release_report(&incident, &workload).await;
                    return Err(f.into());
                }
            }
            ledger.mark_reported(&incident, &workload).await?;
        }
        let template_ids: Vec<String> =
            replaced.iter().map(|w| w.launch_template_id.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        let template_tags = fleet.template_tags(&template_ids).await?;
        let no_tags = BTreeMap::new();
        let replaced_workloads: Vec<ReplacedWorkload> = replaced
            .iter()
            .map(|w| ReplacedWorkload {
                workload: w.workload.clone(),
                replacement_instance_id: w.replacement_instance_id.clone(),
                policy: policy_for(
                    template_tags.get(&w.launch_template_id).unwrap_or(&no_tags),
                    self.config.fencing_policy,
                ),
            })
            .collect();
        // A stateful workload relaunched while its original answered the witness (or the
        // witness could not say): both copies may hold writes, so neither is touched.
        let both_copies: BTreeSet<&str> = replaced
            .iter()
            .filter(|w| {
                // As launched (the template may have changed since); outcomes recorded
                // before the launch kept it go by the backup or the template.
                let stateful = w.stateful
                    || w.restored_from.is_some()
                    || template_tags.get(&w.launch_template_id).is_some_and(|t| t.contains_key(tag::BACKUP_PARAMETER));
                on_return(stateful, w.grounds) == OnReturn::ReportBothCopies
            })
            .map(|w| w.workload.as_str())
            .collect();
        let names: Vec<String> = replaced_workloads.iter().map(|w| w.workload.clone()).collect();
        let candidates = if names.is_empty() { Vec::new() } else { fleet.instances_of(&names).await? };
        let actions = choose_originals(incident.as_str(), server.as_str(), &replaced_workloads, &candidates);

        // One original's trouble never stops the others: each is tried, each told.
        let mut fenced_ids = Vec::new();
        let mut originals = Vec::new();
        let mut transient = None;
        let mut waiting = false;
        for action in &actions {
            let span = tracing::info_span!("original", workload = %action.workload, instance_id = %action.instance_id);
            let candidate = candidates.iter().find(|c| c.instance_id == action.instance_id);
            let attempt = if both_copies.contains(action.workload.as_str()) {
                error!(workload = %action.workload, instance_id = %action.instance_id, "relaunched while its original may have taken writes: both copies kept for a person");
                Attempt::Done(Fenced::untouched(FenceOutcome::KeptBothCopies))
            } else {
                self.fence_one(&incident, &server, action, candidate, owner).instrument(span).await
            };
            let fenced = match attempt {
                Attempt::Done(f) => f,
                Attempt::ReplacementPending => {
                    waiting = true;
                    continue;
                }
                Attempt::Transient(f) => {
                    warn!(instance_id = %action.instance_id, failure = %f, "could not fence the original yet; retried");
                    transient.get_or_insert(f);
                    continue;
                }
            };
            let event = ProjectEvent::OriginalFenced(OriginalFenced {
                incident_id: incident.to_string(),
                server_id: server.to_string(),
                site_name: r.site_name.clone(),
                workload: action.workload.clone(),
                instance_id: action.instance_id.clone(),
                replacement_instance_id: action.replacement_instance_id.clone(),
                policy: action.policy,
                action: fenced.outcome,
                previous_security_groups: fenced
                    .previous
                    .iter()
                    .find(|i| i.device_index == 0)
                    .map(|i| i.groups.clone())
                    .unwrap_or_default(),
                previous_interface_groups: fenced.previous,
                quarantine_security_group: fenced.quarantine,
            });
            let mark = IncidentMark::Fenced { instance_id: &action.instance_id };
            let told = ledger
                .tell_incident(
                    &*self.ports.bus,
                    &incident,
                    mark,
                    fenced.outcome.as_str(),
                    owner,
                    self.ports.clock.epoch(),
                    &[event],
                )
                .await?;
            if told == Told::ByAnother {
                waiting = true;
            }
            originals.push(HandledOriginal {
                workload: action.workload.clone(),
                instance_id: action.instance_id.clone(),
                action: fenced.outcome,
            });
            fenced_ids.push(action.instance_id.clone());
        }
        // A promoted standby whose hook has not succeeded, of a workload with no original left
        // to fence (lost in the return): the promotion is the copy to come, and the incident
        // stays open until its hook's ending serves it or launches cold.
        for w in replaced.iter().filter(|w| w.promoted_standby && !actions.iter().any(|a| a.workload == w.workload)) {
            match self.drive_pending_promotion(&incident, &server, &w.workload, &w.replacement_instance_id, owner).await
            {
                Ok(false) => {}
                Ok(true) => {
                    info!(workload = %w.workload, replacement = %w.replacement_instance_id, "its original did not come back: waiting for the promotion hook");
                    waiting = true;
                }
                Err(HandlerError::Transient(f)) => {
                    transient.get_or_insert(f);
                }
                Err(e) => {
                    warn!(error = %e, workload = %w.workload, "the promotion could not be driven yet; the next pass does");
                    waiting = true;
                }
            }
        }
        if let Some(f) = transient {
            return Err(f.into());
        }
        if waiting {
            return Err(HandlerError::NotYet {
                reason: NotYet::ReplacementPending,
                detail: "a replacement is not running yet, or another delivery is telling a fencing".into(),
            });
        }

        let summary = format!(
            "{} workload(s) replaced; {} original(s) handled on {} ({})",
            replaced.len(),
            actions.len(),
            r.recovered_at,
            actions.iter().map(|a| format!("{} {}", a.instance_id, a.policy.as_str())).collect::<Vec<_>>().join(", ")
        );
        let now_epoch = self.ports.clock.epoch();
        // Read before closing: the timeline is the open incident's.
        let (facts, progress) = ledger.progress_of(&incident).await?.unwrap_or_default();
        if ledger.close_incident(&incident, &summary, now_epoch).await? {
            info!(%summary, "incident closed");
        }
        let closed_at = format_timestamp(self.ports.clock.now());
        let replaced_names: BTreeSet<&str> = replaced.iter().map(|w| w.workload.as_str()).collect();
        let mut not_replaced: BTreeSet<String> = facts.plan.iter().flat_map(|p| p.workloads.iter().cloned()).collect();
        not_replaced.extend(progress.iter().map(|p| p.workload.clone()));
        not_replaced.retain(|w| !replaced_names.contains(w.as_str()));
        let mut facts = facts;
        facts.recovered_at.get_or_insert_with(|| r.recovered_at.clone());
        let closed = ProjectEvent::IncidentClosed(IncidentClosed {
            incident_id: incident.to_string(),
            server_id: server.to_string(),
            site_name: facts.site_name.clone(),
            recovered_at: r.recovered_at.clone(),
            replaced: replaced.iter().map(|w| w.workload.clone()).collect(),
            fenced: fenced_ids.clone(),
            originals,
            not_replaced: not_replaced.into_iter().collect(),
            timeline: timeline(&facts, &progress, &closed_at),
            summary,
        });
        let closing = ledger
            .tell_incident(
                &*self.ports.bus,
                &incident,
                IncidentMark::Closed,
                incident.as_str(),
                owner,
                now_epoch,
                &[closed],
            )
            .await?;
        ledger.release_server(&server, &incident).await?;
        told(closing, "the incident's closing")?;
        Ok(Response::Fence(FenceReport {
            incident_id: incident.to_string(),
            fenced: fenced_ids,
            incident_closed: true,
        }))
    }

    /// A promoted standby whose hook had not succeeded when the server came back: given up
    /// like a failed promotion. `Succeeded`: its success was settled first, it is the copy.
    async fn give_up_promotion_on_return(
        &self,
        incident: &IncidentId,
        workload: &str,
        standby: &Instance,
        owner: &str,
    ) -> Result<HookVerdict, HandlerError> {
        // This incident's claim names it (its outcome did), even when an earlier incident
        // promoted it and this one adopted it.
        let claim = self.ports.ledger.workload_claim(incident, workload).await?;
        let Some((claim, Some(current))) = claim.filter(|(_, r)| r.as_deref() == Some(standby.instance_id.as_str()))
        else {
            // Reopened since by another delivery: the next pass finds it launching or gone.
            return Ok(HookVerdict::Failed);
        };
        let document = claim.workload.promotion_document.clone().unwrap_or_default();
        let reason = "the server came back before the promotion hook succeeded";
        warn!(replacement = %current, "the promotion is given up: its hook had not succeeded when the server came back");
        if self.fall_back(incident, &claim, &current, &document, reason, owner).await? {
            return Ok(HookVerdict::Failed);
        }
        // Its success was settled first.
        self.finish_promotion(incident, &claim.workload.protected_server, workload, &current, &document).await?;
        Ok(HookVerdict::Succeeded)
    }

    /// A promoted standby whose original is not back: what its promotion left unfinished is
    /// driven from the ledger (a hook never sent is handed off again, a failure whose
    /// fallback died is fallen back again, a settled success is tagged and served). True
    /// while fencing must wait for it; false once it is the workload's copy or no longer
    /// this claim's (reopened: a claim `launching` holds the incident open).
    async fn drive_pending_promotion(
        &self,
        incident: &IncidentId,
        server: &ServerId,
        workload: &str,
        standby: &str,
        owner: &str,
    ) -> Result<bool, HandlerError> {
        let ledger = &self.ports.ledger;
        let Some((claim, current)) = ledger.workload_claim(incident, workload).await? else {
            return Ok(false);
        };
        let Some(document) = claim.workload.promotion_document.clone() else {
            return Ok(false); // no hook: it served at once
        };
        if current.as_deref() != Some(standby) {
            return Ok(false);
        }
        let hook = ledger.hook_of(incident, workload).await?;
        match hook.as_ref().and_then(|h| h.verdict) {
            Some(HookVerdict::Succeeded) => {
                self.finish_promotion(incident, server, workload, standby, &document).await?;
                Ok(false)
            }
            Some(HookVerdict::Failed) => {
                let reason = "the promotion hook failed";
                self.fall_back(incident, &claim, standby, &document, reason, owner).await?;
                Ok(true)
            }
            None => {
                // Sent: its completion serves it or falls back. Not sent (its sender died,
                // the hand-off's retries ran out): handed off again, sent once its lease ends.
                if hook.is_none_or(|h| h.command_id.is_none()) {
                    self.ports
                        .bus
                        .publish(&[promotion_handoff(incident, server, workload, standby, &document)])
                        .await?;
                }
                Ok(true)
            }
        }
    }

    /// A promotion whose hook's success is settled, its deliverer possibly dead before it
    /// tagged and served it: tagged here (fencing and serve read the tag), served by relaunch.
    async fn finish_promotion(
        &self,
        incident: &IncidentId,
        server: &ServerId,
        workload: &str,
        standby: &str,
        document: &str,
    ) -> Result<(), AwsFailure> {
        self.ports.fleet.tag_instance(standby, &[(tag::PROMOTION_HOOK, tag::HOOK_SUCCEEDED)]).await?;
        self.ports.bus.publish(&[promotion_handoff(incident, server, workload, standby, document)]).await
    }

    /// Fences one original, only while its replacement runs (never the only copy).
    async fn fence_one(
        &self,
        incident: &IncidentId,
        server: &ServerId,
        action: &FenceAction,
        candidate: Option<&Instance>,
        owner: &str,
    ) -> Attempt {
        if action.already && candidate.is_none_or(|c| c.state.is_gone()) {
            // Terminated by an earlier pass that died before telling it.
            return Attempt::Done(Fenced::untouched(FenceOutcome::Terminated));
        }
        let replacement = match self.ports.fleet.instance(&action.replacement_instance_id).await {
            Ok(r) => r,
            Err(f) => return Attempt::Transient(f),
        };
        // A promoted standby with a hook is a copy only once its hook succeeded. The server is
        // back: if the original runs there again, a hook not yet succeeded never will count:
        // the promotion is given up (told, the claim reopened and released), and the next pass
        // finds the workload unreplaced, its original untouched. The ledger settles it against
        // a success ending at this moment. If the original did not come back running, the
        // promotion is the copy to come: its hook's ending serves it (or launches cold).
        let state = match replacement {
            Some(r)
                if r.tags.contains_key(tag::PROMOTION_DOCUMENT)
                    && r.tags.get(tag::PROMOTION_HOOK).map(String::as_str) != Some(tag::HOOK_SUCCEEDED) =>
            {
                match self.runs_at_home(&action.workload, server).await {
                    Ok(true) => {}
                    Ok(false) => {
                        // Not back running: the promotion goes on (and the next pass sees how).
                        let driven = self
                            .drive_pending_promotion(incident, server, &action.workload, &r.instance_id, owner)
                            .await;
                        return match driven {
                            Err(HandlerError::Transient(f)) => Attempt::Transient(f),
                            _ => Attempt::ReplacementPending,
                        };
                    }
                    Err(f) => return Attempt::Transient(f),
                }
                match self.give_up_promotion_on_return(incident, &action.workload, &r, owner).await {
                    Ok(HookVerdict::Succeeded) => Some(r.state),
                    Ok(HookVerdict::Failed) => return Attempt::ReplacementPending,
                    Err(HandlerError::Transient(f)) => return Attempt::Transient(f),
                    Err(e) => {
                        warn!(error = %e, "the promotion could not be given up yet; the next pass does");
                        return Attempt::ReplacementPending;
                    }
                }
            }
            r => r.map(|r| r.state),
        };
        match state {
            Some(InstanceState::Running) => {}
            Some(InstanceState::Pending) => return Attempt::ReplacementPending,
            other => {
                // Isolated, even partly: an interface is in the quarantine group, whatever
                // the tags say. A person must put the only copy back.
                let isolated = match candidate.and_then(|c| c.vpc_id.as_deref().map(|v| (c, v))) {
                    Some((c, vpc)) => {
                        match self.ports.fleet.find_quarantine_group(vpc, &self.config.stack_name).await {
                            Ok(q) => q.is_some_and(|q| is_partly_isolated(c, &q)),
                            Err(f) => return Attempt::Transient(f),
                        }
                    }
                    None => false,
                };
                // Marked, so make unfence finds it (a pass that swapped an interface may
                // have died before marking it).
                if isolated && candidate.is_some_and(|c| !c.tags.contains_key(tag::FENCED)) {
                    if let Err(f) =
                        self.ports.fleet.tag_instance(&action.instance_id, &[(tag::FENCED, incident.as_str())]).await
                    {
                        return Attempt::Transient(f);
                    }
                }
                error!(replacement_state = ?other, isolated, "the replacement is not running: the original is the only copy and stays");
                let outcome = if isolated {
                    FenceOutcome::StillIsolatedReplacementNotRunning
                } else {
                    FenceOutcome::KeptReplacementNotRunning
                };
                return Attempt::Done(Fenced::untouched(outcome));
            }
        }
        match self.isolate_or_terminate(incident, action, candidate).await {
            Ok(f) => Attempt::Done(f),
            Err(f) if f.retry == Retry::CanHelp => Attempt::Transient(f),
            Err(f) => {
                error!(code = %f.code, message = %f.message, "fencing the original failed; it is left running");
                Attempt::Done(Fenced::untouched(FenceOutcome::LeftRunningFenceFailed))
            }
        }
    }

    async fn isolate_or_terminate(
        &self,
        incident: &IncidentId,
        action: &FenceAction,
        candidate: Option<&Instance>,
    ) -> Result<Fenced, AwsFailure> {
        let fleet = &self.ports.fleet;
        let id = action.instance_id.as_str();
        let fenced = match (action.policy, candidate.and_then(|c| c.vpc_id.as_deref().map(|v| (c, v)))) {
            (FencingPolicy::Isolate, Some((c, _))) if c.interfaces.is_empty() => {
                error!("EC2 describes no network interface of the original: nothing to isolate; left running");
                Fenced::untouched(FenceOutcome::LeftRunningFenceFailed)
            }
            (FencingPolicy::Isolate, Some((c, vpc))) => {
                let quarantine = fleet.quarantine_group(vpc, &self.config.stack_name).await?;
                let isolation = isolation_of(c, &quarantine);
                // Every interface's groups are kept before any is swapped.
                if !isolation.keep.is_empty() {
                    let keep: Vec<(&str, &str)> =
                        isolation.keep.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                    fleet.tag_instance(id, &keep).await?;
                }
                // Per interface: EC2 refuses instance-wide groups on an instance with more
                // than one (every instance with a local network interface).
                let quarantined = std::slice::from_ref(&quarantine);
                for (n, interface) in isolation.swap.iter().enumerate() {
                    if let Err(f) = fleet.set_interface_groups(interface, quarantined).await {
                        let partly = n > 0 || isolation.swap.len() < c.interfaces.len();
                        if f.retry == Retry::CanHelp || !partly {
                            return Err(f);
                        }
                        // Left partly isolated: marked (below), so make unfence finds it and
                        // puts each interface's groups back; told as such.
                        error!(code = %f.code, message = %f.message, "isolating the original failed midway");
                        return self
                            .mark_fenced(
                                incident,
                                id,
                                Fenced {
                                    outcome: FenceOutcome::PartlyIsolatedFenceFailed,
                                    previous: isolation.previous,
                                    quarantine: Some(quarantine),
                                },
                            )
                            .await;
                    }
                }
                warn!(%quarantine, previous = ?isolation.previous, "original isolated");
                Fenced { outcome: FenceOutcome::Isolated, previous: isolation.previous, quarantine: Some(quarantine) }
            }
            (FencingPolicy::Terminate, _) => {
                // Tagged first, so a pass that dies after terminating is told by the next.
                fleet.tag_instance(id, &[(tag::FENCED, incident.as_str())]).await?;
                fleet.terminate(id).await?;
                warn!("original terminated");
                return Ok(Fenced::untouched(FenceOutcome::Terminated));
            }
            (FencingPolicy::Isolate, None) => {
                error!("original has no VPC to isolate it in; left running");
                Fenced::untouched(FenceOutcome::LeftRunningNoVpc)
            }
            (FencingPolicy::Notify, _) => {
                warn!("original left running (policy notify)");
                Fenced::untouched(FenceOutcome::LeftRunning)
            }
        };
        self.mark_fenced(incident, id, fenced).await
    }

    async fn mark_fenced(&self, incident: &IncidentId, id: &str, fenced: Fenced) -> Result<Fenced, AwsFailure> {
        self.ports.fleet.tag_instance(id, &[(tag::FENCED, incident.as_str())]).await?;
        Ok(fenced)
    }
}

/// The hand-off that has relaunch finish a promoted standby (send its hook, or serve it).
fn promotion_handoff(
    incident: &IncidentId,
    server: &ServerId,
    workload: &str,
    standby: &str,
    document: &str,
) -> ProjectEvent {
    ProjectEvent::StandbyPromoted(StandbyPromoted {
        incident_id: incident.to_string(),
        server_id: server.to_string(),
        workload: workload.to_string(),
        instance_id: standby.to_string(),
        subnet_id: String::new(), // not needed to serve it
        promotion_document: Some(document.to_string()),
        promoted_at: String::new(),
    })
}
