//! Warm standby: the reconciler keeps each warm workload's standby present, running, on the
//! template's current version and on the right destination (and tells each drift once); a
//! promoted standby runs its hook, then serves; a failed hook falls back to a cold launch
//! and the standby is kept, out of service, for a person.

use crate::{Relaunch, Response};
use futures::stream::{self, StreamExt};
use ha_aws::invocation::{told, HandlerError, NotYet};
use ha_domain::alarm::{watched_server, AlarmState};
use ha_domain::contract::{
    ProjectEvent, PromotionFailed, RelaunchRequested, StandbyDrifted, StandbyPromoted, StandbyReconcileRequested,
};
use ha_domain::error::{AwsFailure, Retry};
use ha_domain::incident::IncidentId;
use ha_domain::launch::interfaces_at;
use ha_domain::ledger::{IncidentMark, IncidentStatus};
use ha_domain::model::InstanceState;
use ha_domain::model::{tag, Instance, ServerId, Workload};
use ha_domain::standby::{plan_standby, standby_token, Destination, StandbyDrift, StandbyFacts};
use ha_domain::timefmt::format_timestamp;
use ha_ports::ledger::ClaimedLaunch;
use ha_ports::{Asked, HookVerdict, LaunchFor, LaunchRequest};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use tracing::{error, info, warn, Instrument};

/// Warm workloads reconciled at once.
const WORKLOADS_AT_ONCE: usize = 4;
/// A standby's launch token changes every period (the default schedule's), so a standby
/// terminated since is replaced, not answered with the dead one.
const TOKEN_PERIOD_SECONDS: i64 = 300;

/// What one reconcile pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StandbyReport {
    pub workloads: usize,
    /// Standbys launched: `workload: instance`.
    pub launched: Vec<String>,
    /// Standbys terminated: `workload: instance (drift)`.
    pub retired: Vec<String>,
    /// Drift found: `workload: drift`.
    pub drift: Vec<String>,
    /// Left alone: their server is down and the incident promotes the standby.
    pub left_for_incident: Vec<String>,
    /// Warm templates whose tags are unusable: `name (lt-…): reason`.
    pub rejected: Vec<String>,
}

/// What a promotion's hand-off or hook completion did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PromotionReport {
    pub incident_id: String,
    pub workload: String,
    pub instance_id: String,
    pub outcome: PromotionOutcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PromotionOutcome {
    /// The hook was sent; its completion serves the standby.
    HookSent,
    /// The hook failed: the standby is kept out of service and a cold launch was made.
    FellBack,
    /// The server came back before the hook succeeded: the standby is kept out of service
    /// and its original serves.
    GivenUp,
}

/// A promotion hook's command finished (its status-change event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookFinished {
    pub command_id: String,
    pub document: String,
    pub instance_id: String,
    /// `Success`, or how it ended otherwise.
    pub status: String,
}

impl HookFinished {
    /// Any terminal command of a document other than the witness probe, on one instance.
    pub fn parse(event: &serde_json::Value, witness_document: &str) -> Option<HookFinished> {
        let d = &event["detail"];
        let document = d["document-name"].as_str()?;
        if document == witness_document {
            return None;
        }
        let status = d["status"].as_str()?;
        if !matches!(status, "Success" | "Failed" | "TimedOut" | "Cancelled") {
            return None;
        }
        let instance_id = event["resources"]
            .as_array()?
            .iter()
            .filter_map(|r| r.as_str()?.rsplit_once("instance/").map(|(_, id)| id.to_string()))
            .next()?;
        Some(HookFinished {
            command_id: d["command-id"].as_str()?.to_string(),
            document: document.to_string(),
            instance_id,
            status: status.to_string(),
        })
    }
}

impl Relaunch {
    /// Every warm workload of this stack's servers, reconciled.
    pub(crate) async fn reconcile_standbys(
        &self,
        r: StandbyReconcileRequested,
        owner: &str,
    ) -> Result<Response, HandlerError> {
        info!(requested_at = %r.requested_at, "reconciling warm standbys");
        let (warm, rejected) = self.ports.fleet.warm_workloads().await?;
        let down = self.servers_down().await?;
        let mut report = StandbyReport {
            rejected: rejected
                .iter()
                .map(|r| format!("{} ({}): {}", r.launch_template_name, r.launch_template_id, r.reason))
                .collect(),
            ..Default::default()
        };
        let ours: Vec<(Workload, String, bool)> = warm
            .into_iter()
            .filter_map(|(w, version)| {
                let state = down.get(&w.protected_server)?;
                Some((w, version, *state))
            })
            .collect();
        report.workloads = ours.len();
        let results: Vec<(String, Result<StandbyReport, AwsFailure>)> = stream::iter(ours)
            .map(|(w, version, server_down)| {
                let span = tracing::info_span!("standby", workload = %w.name, server_id = %w.protected_server);
                async move {
                    let name = w.name.clone();
                    (name, self.reconcile_workload(&w, &version, server_down, owner).await)
                }
                .instrument(span)
            })
            .buffer_unordered(WORKLOADS_AT_ONCE)
            .collect()
            .await;
        let mut failure = None;
        for (name, result) in results {
            match result {
                Ok(part) => {
                    report.launched.extend(part.launched);
                    report.retired.extend(part.retired);
                    report.drift.extend(part.drift);
                    report.left_for_incident.extend(part.left_for_incident);
                }
                Err(f) => {
                    warn!(workload = %name, failure = %f, "could not reconcile the standby; the next pass does");
                    failure.get_or_insert(f);
                }
            }
        }
        info!(
            workloads = report.workloads,
            launched = report.launched.len(),
            retired = report.retired.len(),
            drift = report.drift.len(),
            "standbys reconciled"
        );
        match failure {
            Some(f) => Err(f.into()),
            None => Ok(Response::Standbys(report)),
        }
    }

    /// This stack's protected servers (by their alarms' stack tag), each with whether it is
    /// down now (its alarm in ALARM, or an incident still open).
    async fn servers_down(&self) -> Result<BTreeMap<ServerId, bool>, AwsFailure> {
        let prefix = &self.config.alarm_name_prefix;
        let alarms = self.ports.alarms.current(prefix).await?;
        let mut servers = BTreeMap::new();
        for a in alarms {
            let Ok(server) = watched_server(&a) else { continue };
            if self.ports.alarms.labels(&a.alarm_arn).await?.stack.as_deref() != Some(self.config.stack_name.as_str()) {
                continue;
            }
            let open = self.ports.ledger.open_incident_of(&server).await?.is_some();
            servers.insert(server, a.new_state == AlarmState::Alarm || open);
        }
        Ok(servers)
    }

    /// One warm workload: its standby launched, replaced or retired as the plan says, and
    /// each drift told once.
    pub(crate) async fn reconcile_workload(
        &self,
        w: &Workload,
        version: &str,
        server_down: bool,
        owner: &str,
    ) -> Result<StandbyReport, AwsFailure> {
        let (fleet, ledger) = (&self.ports.fleet, &self.ports.ledger);
        let (copies, capacity) = tokio::join!(fleet.copies_of(&w.name), self.ports.capacity.of(w, true));
        let copies = copies?;
        // Where a standby may go depends on each destination's Outpost (never the protected
        // server's own): a destination whose subnet could not be read waits for the next pass.
        if let Some(unread) = w.subnets.iter().find(|s| !capacity.contains_key(*s)) {
            return Err(AwsFailure {
                operation: "DescribeSubnets",
                code: "OutpostUnknown".into(),
                message: format!("the Outpost of destination {unread} could not be read; placement waits"),
                retry: Retry::CanHelp,
            });
        }
        let destinations: Vec<Destination> = w
            .subnets
            .iter()
            .map(|s| Destination { subnet_id: s.clone(), server_id: capacity.get(s).and_then(|c| c.outpost.clone()) })
            .collect();
        let plan = plan_standby(&StandbyFacts {
            workload: w,
            current_version: version,
            instances: &copies,
            destinations: &destinations,
            server_down,
        });
        let mut report = StandbyReport::default();
        if plan.left_for_incident {
            report.left_for_incident.push(w.name.clone());
            return Ok(report);
        }
        let now = self.ports.clock.now();
        let mut launched: Option<String> = None;
        let mut not_launched: Option<String> = None;
        if let Some(subnet) = &plan.launch {
            let seen: Vec<&str> = copies.iter().map(|c| c.instance_id.as_str()).collect();
            match self.launch_standby(w, version, subnet, capacity.get(subnet), &seen).await? {
                Ok(id) => {
                    info!(instance_id = %id, subnet_id = %subnet, "standby launched");
                    report.launched.push(format!("{}: {id}", w.name));
                    launched = Some(id);
                }
                Err(why) => {
                    warn!(subnet_id = %subnet, reason = %why, "standby not launched");
                    not_launched = Some(why);
                }
            }
        }
        let mut retired = BTreeSet::new();
        for (instance_id, drift) in &plan.retire {
            // Re-read: a standby promoted since is a replacement now, and never retired here.
            let still_standby = fleet
                .instance(instance_id)
                .await?
                .is_some_and(|i| i.tags.get(tag::ROLE).map(String::as_str) == Some(tag::ROLE_STANDBY));
            if !still_standby {
                continue;
            }
            fleet.terminate(instance_id).await?;
            info!(instance_id = %instance_id, drift = drift.as_str(), "standby retired");
            report.retired.push(format!("{}: {instance_id} ({})", w.name, drift.as_str()));
            retired.insert(instance_id.clone());
        }
        let at = format_timestamp(now);
        for (drift, standby) in &plan.drift {
            report.drift.push(format!("{}: {}", w.name, drift.as_str()));
            let (action, detail) = match drift {
                StandbyDrift::NoDestination => (
                    "none",
                    "no destination can hold a standby: each is the protected server or holds the workload's replacement"
                        .to_string(),
                ),
                _ if standby.as_ref().is_some_and(|s| retired.contains(s)) => ("retired", describe(*drift, version)),
                StandbyDrift::Missing | StandbyDrift::Stopped if launched.is_some() => ("launched", describe(*drift, version)),
                StandbyDrift::Outdated | StandbyDrift::WrongServer if launched.is_some() => {
                    ("launched", format!("{}; its successor is launched first", describe(*drift, version)))
                }
                StandbyDrift::Outdated | StandbyDrift::WrongServer => {
                    ("waiting", format!("{}; retired once its successor runs", describe(*drift, version)))
                }
                _ => ("none", not_launched.clone().unwrap_or_else(|| describe(*drift, version))),
            };
            let subject = standby.clone().unwrap_or_else(|| format!("v{version}"));
            let key = format!("{}#{subject}", drift.as_str());
            let marker = launched.clone().unwrap_or_else(|| action.to_string());
            let event = ProjectEvent::StandbyDrifted(StandbyDrifted {
                server_id: w.protected_server.to_string(),
                workload: w.name.clone(),
                drift: *drift,
                standby_instance_id: standby.clone(),
                action: action.to_string(),
                launched_instance_id: launched.clone(),
                detail,
                observed_at: at.clone(),
            });
            let events = [event];
            let outcome = ledger.tell_standby(
                &*self.ports.bus,
                &w.protected_server,
                &w.name,
                &key,
                &marker,
                owner,
                self.ports.clock.epoch(),
                &events,
            );
            if let Err(e) = told(outcome.await?, "the standby's drift") {
                warn!(error = %e, "another delivery tells this drift");
            }
        }
        Ok(report)
    }

    /// One standby at `subnet`: the workload's template at `version`, placed there like a
    /// replacement (stateful: from its newest backup). `Ok(Err(why))`: not launched, and why.
    async fn launch_standby(
        &self,
        w: &Workload,
        version: &str,
        subnet: &str,
        capacity: Option<&ha_ports::DestinationCapacity>,
        seen: &[&str],
    ) -> Result<Result<String, String>, AwsFailure> {
        if let Some(c) = capacity.filter(|c| c.is_short()) {
            return Ok(Err(format!("no capacity for a standby: {}", c.shortage())));
        }
        let restored_from = match &w.backup_parameter {
            None => None,
            Some(parameter) => match self.newest_backup(parameter).await? {
                Ok(r) => Some(r),
                Err(none) => return Ok(Err(format!("no usable backup to start a standby from: {}", none.message))),
            },
        };
        let at_version = Workload { launch_template_version: version.to_string(), ..w.clone() };
        let declared = self.ports.fleet.template_interfaces(&w.launch_template_id, version).await?;
        let placed = interfaces_at(&declared, subnet, w.lni_subnets.get(subnet).map(String::as_str));
        let token = standby_token(&w.name, version, subnet, self.ports.clock.epoch() / TOKEN_PERIOD_SECONDS, seen);
        let request = LaunchRequest {
            workload: &at_version,
            purpose: LaunchFor::Standby { version },
            subnet_id: subnet,
            interfaces: &placed,
            client_token: &token,
            restored_from: restored_from.as_ref(),
            dry_run: false,
        };
        match self.run_instances(&request).await {
            Ok(l) if !l.state.is_gone() => Ok(Ok(l.instance_id)),
            Ok(l) => Ok(Err(format!(
                "{} launched this period is {}; the next period launches anew",
                l.instance_id,
                l.state.as_str()
            ))),
            Err(f) if f.retry == ha_domain::error::Retry::CanHelp => Err(f),
            Err(f) => Ok(Err(format!("{}: {}", f.code, f.message))),
        }
    }

    /// A promoted standby's hand-off: its hook sent (once), or, with none, it serves now.
    /// Then N+1 is restored where a destination allows.
    pub(crate) async fn standby_promoted(&self, e: StandbyPromoted, owner: &str) -> Result<Response, HandlerError> {
        let incident = IncidentId::from_stored(e.incident_id.as_str());
        let ledger = &self.ports.ledger;
        let Some((claim, replacement)) = ledger.workload_claim(&incident, &e.workload).await? else {
            return Ok(Response::Ignored { reason: "no claim for this workload".into() });
        };
        if replacement.as_deref() != Some(e.instance_id.as_str()) {
            return Ok(Response::Ignored { reason: "no longer the workload's replacement".into() });
        }
        let Some(mut instance) = self.ports.fleet.instance(&e.instance_id).await? else {
            return Err(HandlerError::NotYet {
                reason: NotYet::ReplacementPending,
                detail: format!("{} is not visible to DescribeInstances yet", e.instance_id),
            });
        };
        if instance.state.is_gone() || matches!(instance.state, InstanceState::Stopping | InstanceState::Stopped) {
            let why = format!("the promoted standby is {}", instance.state.as_str());
            let document = claim.workload.promotion_document.clone().unwrap_or_else(|| "(no hook)".into());
            if !self.fall_back(&incident, &claim, &e.instance_id, &document, &why, owner).await? {
                return Ok(Response::Ignored {
                    reason: format!("{why}; its hook had succeeded: the lost job tells it"),
                });
            }
            return Ok(Response::Promotion(PromotionReport {
                incident_id: incident.to_string(),
                workload: e.workload.clone(),
                instance_id: e.instance_id.clone(),
                outcome: PromotionOutcome::FellBack,
            }));
        }
        // What the promotion wrote, should Describe not show it yet.
        let w = &claim.workload;
        for (k, v) in [(tag::ROLE, tag::ROLE_REPLACEMENT), (tag::INCIDENT, incident.as_str())] {
            instance.tags.insert(k.to_string(), v.to_string());
        }
        if let Some(document) = &w.promotion_document {
            instance.tags.insert(tag::PROMOTION_DOCUMENT.to_string(), document.clone());
        }
        let result = match &w.promotion_document {
            None => self.serve_replacement(instance, owner, false).await,
            Some(document) => match instance.tags.get(tag::PROMOTION_HOOK).map(String::as_str) {
                Some(tag::HOOK_SUCCEEDED) => self.serve_replacement(instance, owner, true).await,
                Some(_) => Ok(Response::Ignored { reason: "the promotion hook failed".into() }),
                None => self.send_hook(&incident, &claim, instance, document, owner).await,
            },
        };
        self.restore_standby(w, owner).await;
        result
    }

    async fn send_hook(
        &self,
        incident: &IncidentId,
        claim: &ClaimedLaunch,
        instance: Instance,
        document: &str,
        owner: &str,
    ) -> Result<Response, HandlerError> {
        let (ledger, now) = (&self.ports.ledger, self.ports.clock.epoch());
        let w = &claim.workload;
        let instance_id = instance.instance_id.clone();
        let instance_id = instance_id.as_str();
        if self.original_serves_again(incident, w).await? {
            // A hook now would only be overruled.
            return self.give_up_promotion(incident, claim, instance, document, owner).await;
        }
        if !ledger.claim_hook(incident, &w.name, instance_id, owner, now, self.config.claim_lease_seconds).await? {
            let record = ledger.hook_of(incident, &w.name).await?;
            match record.as_ref().and_then(|h| h.verdict) {
                // Settled by a completion that died before tagging and serving: finish it.
                Some(HookVerdict::Succeeded) => return self.serve_promoted(instance, owner).await,
                Some(HookVerdict::Failed) => {
                    return Ok(Response::Ignored { reason: "the promotion hook failed".into() });
                }
                None if record.is_some_and(|h| h.command_id.is_some()) => {
                    return Ok(Response::Ignored {
                        reason: "the promotion hook was sent; its completion serves".into(),
                    });
                }
                // Its sender may have died before sending: this event comes back after the lease.
                None => {
                    return Err(HandlerError::NotYet {
                        reason: NotYet::RelaunchInProgress,
                        detail: format!("another delivery is sending the promotion hook of {}", w.name),
                    })
                }
            }
        }
        let report = |outcome| PromotionReport {
            incident_id: incident.to_string(),
            workload: w.name.clone(),
            instance_id: instance_id.to_string(),
            outcome,
        };
        match self.ports.hooks.run(document, instance_id).await {
            Ok(Asked::Sent(command_id)) => {
                info!(%command_id, document, "promotion hook sent");
                ledger.record_hook_command(incident, &w.name, &command_id).await?;
                Ok(Response::Promotion(report(PromotionOutcome::HookSent)))
            }
            Ok(Asked::Offline(why) | Asked::Refused(why)) => {
                let reason = format!("the hook could not run: {why}");
                if self.fall_back(incident, claim, instance_id, document, &reason, owner).await? {
                    Ok(Response::Promotion(report(PromotionOutcome::FellBack)))
                } else {
                    Ok(Response::Ignored { reason: "the promotion hook had already succeeded".into() })
                }
            }
            Err(f) => {
                if let Err(e) = ledger.release_hook(incident, &w.name, owner).await {
                    error!(failure = %e, "could not give the hook back; it frees itself when its lease runs out");
                }
                Err(f.into())
            }
        }
    }

    /// A promotion hook's command finished: the standby serves, or the workload falls back.
    pub(crate) async fn hook_finished(&self, h: HookFinished, owner: &str) -> Result<Response, HandlerError> {
        let ignored = |reason: &str| Ok(Response::Ignored { reason: reason.to_string() });
        let Some(instance) = self.ports.fleet.instance(&h.instance_id).await? else {
            return ignored("not an instance EC2 knows");
        };
        if instance.tags.get(tag::ROLE).map(String::as_str) == Some(tag::ROLE_STANDBY) {
            // Describe has not caught up with the promotion's tags yet.
            return Err(HandlerError::NotYet {
                reason: NotYet::ReplacementPending,
                detail: format!("{} does not read as promoted yet", h.instance_id),
            });
        }
        let (Some(incident), Some(workload)) = (instance.tags.get(tag::INCIDENT), instance.tags.get(tag::WORKLOAD))
        else {
            return ignored("not a promoted standby");
        };
        let incident = IncidentId::from_stored(incident.as_str());
        let workload = workload.clone();
        let span = tracing::info_span!("hook_finished", incident_id = %incident, workload = %workload, instance_id = %h.instance_id);
        async move {
            let ledger = &self.ports.ledger;
            let Some(hook) = ledger.hook_of(&incident, &workload).await? else {
                return ignored("no promotion hook was sent for it");
            };
            if hook.instance_id != h.instance_id || hook.command_id.as_deref().is_some_and(|c| c != h.command_id) {
                return ignored("another command than the promotion hook");
            }
            let Some((claim, _)) = ledger.workload_claim(&incident, &workload).await? else {
                return ignored("no claim for this workload");
            };
            if claim.workload.promotion_document.as_deref() != Some(h.document.as_str()) {
                return ignored("not the workload's promotion document");
            }
            // The original serves again: the promotion is given up, whatever its hook says,
            // unless its success was settled first.
            if self.original_serves_again(&incident, &claim.workload).await? {
                return self.give_up_promotion(&incident, &claim, instance, &h.document, owner).await;
            }
            if h.status == "Success" {
                let now = self.ports.clock.epoch();
                // Given up first (fencing, or a delivery that saw the server back): that holds.
                if ledger.settle_hook(&incident, &workload, HookVerdict::Succeeded, now).await? == HookVerdict::Failed {
                    return ignored("the promotion was given up before its hook succeeded");
                }
                info!("promotion hook succeeded");
                return self.serve_promoted(instance, owner).await;
            }
            let reason = format!("the hook ended {}", h.status);
            if !self.fall_back(&incident, &claim, &h.instance_id, &h.document, &reason, owner).await? {
                return ignored("the promotion hook had already succeeded");
            }
            Ok(Response::Promotion(PromotionReport {
                incident_id: incident.to_string(),
                workload: workload.clone(),
                instance_id: h.instance_id.clone(),
                outcome: PromotionOutcome::FellBack,
            }))
        }
        .instrument(span)
        .await
    }

    /// The server is back (or the incident closed) and the workload's original runs there
    /// again. A server back without it (the box replaced, the original lost in its restart)
    /// leaves the promotion as the copy to come: it goes on.
    async fn original_serves_again(&self, incident: &IncidentId, w: &Workload) -> Result<bool, AwsFailure> {
        let ledger = &self.ports.ledger;
        let server = &w.protected_server;
        let (up, status) = tokio::join!(ledger.server_is_up(server), ledger.incident_status(incident));
        if !(up? == Some(true) || status? == Some(IncidentStatus::Closed)) {
            return Ok(false);
        }
        self.runs_at_home(&w.name, server).await
    }

    /// The original serves again before the promotion's hook succeeded: the promotion is given up
    /// like a failed one (told, the standby kept out of service, the claim reopened; the
    /// server being back, the launch pass releases it and the original serves). A hook whose
    /// success was settled first is finished instead: tagged and served.
    async fn give_up_promotion(
        &self,
        incident: &IncidentId,
        claim: &ClaimedLaunch,
        instance: Instance,
        document: &str,
        owner: &str,
    ) -> Result<Response, HandlerError> {
        let standby = instance.instance_id.clone();
        let reason = "the server came back before the promotion hook succeeded";
        if self.fall_back(incident, claim, &standby, document, reason, owner).await? {
            return Ok(Response::Promotion(PromotionReport {
                incident_id: incident.to_string(),
                workload: claim.workload.name.clone(),
                instance_id: standby,
                outcome: PromotionOutcome::GivenUp,
            }));
        }
        self.serve_promoted(instance, owner).await
    }

    /// A promoted standby whose hook's success is settled: tagged so (fencing and serve read
    /// the tag), then served.
    async fn serve_promoted(&self, instance: Instance, owner: &str) -> Result<Response, HandlerError> {
        self.ports.fleet.tag_instance(&instance.instance_id, &[(tag::PROMOTION_HOOK, tag::HOOK_SUCCEEDED)]).await?;
        self.serve_replacement(instance, owner, true).await
    }

    /// The hook failed: the standby is taken out of the replacement role (it never served)
    /// and kept for a person, that is told once, and the workload is launched cold. False:
    /// its hook had already succeeded (a late or duplicate ending), nothing done.
    pub(crate) async fn fall_back(
        &self,
        incident: &IncidentId,
        claim: &ClaimedLaunch,
        standby: &str,
        document: &str,
        reason: &str,
        owner: &str,
    ) -> Result<bool, HandlerError> {
        let (fleet, ledger) = (&self.ports.fleet, &self.ports.ledger);
        let w = &claim.workload;
        if ledger.settle_hook(incident, &w.name, HookVerdict::Failed, self.ports.clock.epoch()).await?
            == HookVerdict::Succeeded
        {
            warn!(instance_id = %standby, %reason, "the promotion hook had already succeeded: this ending changes nothing");
            return Ok(false);
        }
        error!(instance_id = %standby, %reason, "promotion failed: the workload falls back to a cold launch");
        fleet
            .tag_instance(standby, &[(tag::ROLE, tag::ROLE_PROMOTION_FAILED), (tag::PROMOTION_HOOK, tag::HOOK_FAILED)])
            .await?;
        let event = ProjectEvent::PromotionFailed(PromotionFailed {
            incident_id: incident.to_string(),
            server_id: w.protected_server.to_string(),
            workload: w.name.clone(),
            standby_instance_id: standby.to_string(),
            promotion_document: document.to_string(),
            reason: reason.to_string(),
            failed_at: format_timestamp(self.ports.clock.now()),
            manual_action_required: true,
        });
        let mark = IncidentMark::PromotionFailed { workload: &w.name };
        let events = [event];
        let outcome =
            ledger.tell_incident(&*self.ports.bus, incident, mark, standby, owner, self.ports.clock.epoch(), &events);
        told(outcome.await?, "that the promotion failed")?;
        // Reopened, then launched: the launch pass that takes the reopened claim over reads the
        // server after its write and, if the server is back, releases it: the workload is no
        // longer replaced, its original serves again and fencing leaves it alone.
        let cold = ClaimedLaunch { workload: w.cold(), grounds: claim.grounds, after_failed_promotion: true };
        if !ledger.reopen_for_cold(incident, &w.name, standby, &cold).await? {
            info!("the claim was reopened by another delivery");
        }
        let detected_at = ledger.incident_detected_at(incident).await?.unwrap_or_default();
        let request = RelaunchRequested {
            incident_id: incident.to_string(),
            server_id: w.protected_server.to_string(),
            site_name: None,
            detected_at,
            workloads: vec![cold.workload],
            workloads_read_at_ms: None,
        };
        self.launch_pass(request, owner, false).await.map(|_| true)
    }

    /// After a promotion: a new standby where a destination allows (best effort: the
    /// schedule's next pass does what this cannot).
    async fn restore_standby(&self, w: &Workload, owner: &str) {
        let restored = async {
            let (warm, _) = self.ports.fleet.warm_workloads().await?;
            let Some((current, version)) = warm.into_iter().find(|(c, _)| c.name == w.name) else {
                return Ok(StandbyReport::default());
            };
            self.reconcile_workload(&current, &version, true, owner).await
        };
        match restored.await {
            Ok(r) if !r.launched.is_empty() => info!(launched = ?r.launched, "standby restored after the promotion"),
            Ok(_) => {}
            Err(f) => warn!(failure = %f, "could not restore the standby now; the schedule's next pass does"),
        }
    }
}

fn describe(drift: StandbyDrift, version: &str) -> String {
    match drift {
        StandbyDrift::Missing => "no standby runs".into(),
        StandbyDrift::Stopped => "the standby is stopped: no copy that can take over".into(),
        StandbyDrift::Outdated => {
            format!("the standby runs another launch template version than the current {version}")
        }
        StandbyDrift::WrongServer => "the standby runs on another destination than the one it belongs on".into(),
        StandbyDrift::Extra => "more than one standby runs".into(),
        StandbyDrift::NoDestination => "no destination can hold a standby".into(),
    }
}
