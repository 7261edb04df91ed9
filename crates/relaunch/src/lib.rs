//! relaunch: launches every workload of an incident concurrently (bounded, priority
//! order), exactly once per (incident, workload), moving to fallback destinations when
//! one refuses, and reports each outcome on the bus. No polling, no sleeping.

use futures::stream::{self, StreamExt};
use ha_domain::aws::backups::BackupStore;
use ha_domain::aws::bus::EventBus;
use ha_domain::aws::capacity::CapacityProbe;
use ha_domain::aws::fleet::FencingCandidate;
use ha_domain::aws::fleet::{Fleet, LaunchRequest};
use ha_domain::aws::ledger::{ClaimAttempt, Ledger, Settlement};
use ha_domain::aws::serving::LoadBalancing;
use ha_domain::config::{ConfigError, EnvReader, IncidentStore};
use ha_domain::contract::{
    DrillCompleted, DrillRequested, DrillVerdict, IncidentClosed, OriginalFenced, ProjectEvent, RelaunchRequested,
    RestoredFrom, ServerRecovered, WorkloadRelaunchFailed, WorkloadRelaunched, WorkloadServing,
};
use ha_domain::error::{AwsFailure, HandlerError};
use ha_domain::fencing::{
    choose_originals, groups_from_tag, groups_tag_value, policy_for, FenceAction, FencingPolicy, ReplacedWorkload,
};
use ha_domain::incident::{client_token, IncidentId};
use ha_domain::launch::{
    after_launch_failure, decide_on_existing_claim, launch_order, AfterFailure, ClaimDecision, DestinationAttempt,
};
use ha_domain::metrics;
use ha_domain::model::{comma_list, is_replacement, tag, ServerId, Workload};
use ha_domain::timefmt::{format_timestamp, human_duration, now, parse_timestamp};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use tracing::{error, info, warn, Instrument};

#[derive(Debug, Clone)]
pub struct Config {
    pub store: IncidentStore,
    /// RunInstances calls in flight at once.
    pub launch_concurrency: usize,
    /// How long a claim is held before another delivery may take it over; must exceed the
    /// function timeout so a live claimant is never overtaken.
    pub claim_lease_seconds: i64,
    /// The `Stack` dimension of the metrics this function publishes.
    pub stack_name: String,
    /// What happens to originals of replaced workloads when their server comes back,
    /// unless a launch template's `outposts-ha:fencing` tag says otherwise.
    pub fencing_policy: FencingPolicy,
}

impl Config {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &EnvReader<F>) -> Result<Self, ConfigError> {
        Ok(Config {
            store: IncidentStore::from_env(env)?,
            launch_concurrency: env.number("LAUNCH_CONCURRENCY", 10, 1..=100, "expected 1 to 100")?,
            claim_lease_seconds: env.number(
                "CLAIM_LEASE_SECONDS",
                300,
                30..=3600,
                "expected seconds from 30 to 3600",
            )?,
            stack_name: env.optional("STACK_NAME", "outposts-ha"),
            fencing_policy: {
                let text = env.optional("FENCING_POLICY", "isolate");
                FencingPolicy::parse(&text).ok_or(ConfigError::Malformed {
                    name: "FENCING_POLICY",
                    value: text,
                    expected: "expected isolate, terminate or notify",
                })?
            },
        })
    }
}

/// What one delivery did, workload by workload; also the function's response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RelaunchReport {
    pub incident_id: Option<String>,
    pub launched: Vec<String>,
    pub failed: Vec<String>,
    pub already_handled: Vec<String>,
    pub retry_later: Vec<String>,
    pub ignored: Option<String>,
    /// Originals fenced when their server came back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fenced: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub incident_closed: bool,
    /// Workloads whose replacement now serves (registered and healthy).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub serving: Vec<String>,
    /// A drill's verdicts, one per workload (nothing launched).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drill: Vec<DrillVerdict>,
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

pub struct Relaunch {
    config: Config,
    ledger: Ledger,
    fleet: Fleet,
    backups: BackupStore,
    capacity: CapacityProbe,
    load_balancing: LoadBalancing,
    bus: EventBus,
}

impl Relaunch {
    pub fn new(config: Config, sdk: &aws_config::SdkConfig) -> Self {
        Self::from_clients(
            config,
            aws_sdk_dynamodb::Client::new(sdk),
            aws_sdk_ec2::Client::new(sdk),
            aws_sdk_ssm::Client::new(sdk),
            aws_sdk_cloudwatch::Client::new(sdk),
            aws_sdk_elasticloadbalancingv2::Client::new(sdk),
            aws_sdk_eventbridge::Client::new(sdk),
        )
    }

    pub fn from_clients(
        config: Config,
        dynamodb: aws_sdk_dynamodb::Client,
        ec2: aws_sdk_ec2::Client,
        ssm: aws_sdk_ssm::Client,
        cloudwatch: aws_sdk_cloudwatch::Client,
        elb: aws_sdk_elasticloadbalancingv2::Client,
        events: aws_sdk_eventbridge::Client,
    ) -> Self {
        Relaunch {
            ledger: Ledger::new(dynamodb, &config.store.ledger_table, config.store.retention_days),
            backups: BackupStore::new(ec2.clone(), ssm, &config.stack_name),
            capacity: CapacityProbe::new(ec2.clone(), cloudwatch),
            load_balancing: LoadBalancing::new(elb),
            fleet: Fleet::new(ec2),
            bus: EventBus::new(events, &config.store.event_bus_name),
            config,
        }
    }

    /// `invocation_id` identifies this attempt as a claim owner (the Lambda request id).
    pub async fn handle(&self, event: Value, invocation_id: &str) -> Result<RelaunchReport, HandlerError> {
        if event.get("detail-type").and_then(Value::as_str) == Some(EC2_STATE_CHANGE) {
            let instance = event["detail"]["instance-id"].as_str().unwrap_or_default().to_string();
            let state = event["detail"]["state"].as_str().unwrap_or_default();
            if state != "running" || instance.is_empty() {
                return Ok(RelaunchReport { ignored: Some(format!("instance state {state}")), ..Default::default() });
            }
            let span = tracing::info_span!("serve", instance_id = %instance);
            return self.serve(&instance).instrument(span).await;
        }
        let request = match serde_json::from_value::<ProjectEvent>(event) {
            Ok(ProjectEvent::RelaunchRequested(r)) => r,
            Ok(ProjectEvent::DrillRequested(r)) => {
                let span = tracing::info_span!("drill", server_id = %r.server_id);
                return self.drill(r).instrument(span).await;
            }
            Ok(ProjectEvent::ServerRecovered(r)) => {
                let span = tracing::info_span!("fence", incident_id = ?r.incident_id, server_id = %r.server_id);
                return self.fence(r).instrument(span).await;
            }
            Ok(other) => {
                info!(detail_type = other.detail_type(), "not a relaunch request; ignored");
                return Ok(RelaunchReport { ignored: Some(other.detail_type().into()), ..Default::default() });
            }
            Err(e) => {
                warn!(reason = %e, "rejected a malformed relaunch request");
                return Ok(RelaunchReport { ignored: Some(format!("malformed: {e}")), ..Default::default() });
            }
        };
        let span = tracing::info_span!("relaunch", incident_id = %request.incident_id, server_id = %request.server_id);
        self.relaunch_all(request, invocation_id).instrument(span).await
    }

    async fn relaunch_all(&self, request: RelaunchRequested, owner: &str) -> Result<RelaunchReport, HandlerError> {
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

        let mut report = RelaunchReport { incident_id: Some(request.incident_id.clone()), ..Default::default() };
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
                    let ha_domain::launch::ClaimRecord::Launching { lease_until } = record else {
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
            let event =
                cannot_launch(req, w, "NoDestination", "the relaunch request lists no subnet for this workload");
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
            Some(Err((code, message))) => {
                error!(parameter = ?w.backup_parameter, %code, %message, "no usable backup: manual action required");
                let event = cannot_launch(req, w, code, &message);
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
                Some(c) => Err(AwsFailure {
                    operation: "CapacityPreflight",
                    code: "KnownCapacityShortage".into(),
                    message: c.shortage(),
                    retry: ha_domain::error::Retry::WontHelp,
                }),
                None => self.fleet.launch(&launch).await,
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
                Err(f) => {
                    warn!(subnet_id = %subnet, code = %f.code, message = %f.message, "destination refused the launch");
                    match after_launch_failure(index, w.subnets.len(), f.retry) {
                        AfterFailure::NextDestination(next) => {
                            tried.push(attempt_failed(subnet, &f));
                            index = next;
                        }
                        AfterFailure::RetryLater => return Err(f),
                        AfterFailure::Exhausted => {
                            tried.push(attempt_failed(subnet, &f));
                            error!(code = %f.code, "every destination refused: manual action required");
                            let event = ProjectEvent::WorkloadRelaunchFailed(WorkloadRelaunchFailed {
                                incident_id: req.incident_id.clone(),
                                server_id: req.server_id.clone(),
                                workload: w.name.clone(),
                                launch_template_id: w.launch_template_id.clone(),
                                error_code: f.code.clone(),
                                error_message: f.message.clone(),
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

    /// A replacement reached `running`: register it with its workload's target groups, and
    /// once it is healthy in every one, take the originals out. Not healthy yet fails the
    /// invocation, so Lambda's asynchronous retries re-check it (a bounded re-check, no
    /// polling here); registering again changes nothing.
    async fn serve(&self, instance_id: &str) -> Result<RelaunchReport, HandlerError> {
        let mut report = RelaunchReport::default();
        let Some(replacement) = self.fleet.instance(instance_id).await? else {
            report.ignored = Some("instance not found".into());
            return Ok(report);
        };
        let tags = &replacement.tags;
        let (Some(role), Some(incident), Some(workload), Some(server)) =
            (tags.get(tag::ROLE), tags.get(tag::INCIDENT), tags.get(tag::WORKLOAD), tags.get(tag::SOURCE_SERVER))
        else {
            report.ignored = Some("not a replacement".into());
            return Ok(report);
        };
        if role != tag::ROLE_REPLACEMENT {
            report.ignored = Some("not a replacement".into());
            return Ok(report);
        }
        let incident = IncidentId::from_stored(incident.as_str());
        report.incident_id = Some(incident.to_string());
        let names = tags.get(tag::TARGET_GROUPS).map(|v| comma_list(v)).unwrap_or_default();
        let groups = if names.is_empty() { Vec::new() } else { self.load_balancing.target_groups(&names).await? };
        let target_of = |by_ip: bool, id: &str, ip: Option<&String>| -> Option<String> {
            if by_ip {
                ip.cloned()
            } else {
                Some(id.to_string())
            }
        };
        let mut unhealthy = Vec::new();
        for group in &groups {
            let Some(target) = target_of(group.by_ip, instance_id, replacement.private_ip.as_ref()) else {
                unhealthy.push(format!("{}: the replacement has no private address", group.name));
                continue;
            };
            self.load_balancing.register(group, &target).await?;
            let state =
                self.load_balancing.targets(group).await?.into_iter().find(|(id, _)| *id == target).map(|(_, s)| s);
            if state.as_deref() != Some("healthy") {
                unhealthy.push(format!("{}: {}", group.name, state.unwrap_or_else(|| "not listed".into())));
            }
        }
        if !unhealthy.is_empty() {
            info!(waiting_for = ?unhealthy, "registered; originals stay until the replacement is healthy");
            return Err(HandlerError::Transient(AwsFailure {
                operation: "Serve",
                code: "TargetNotHealthyYet".into(),
                message: unhealthy.join("; "),
                retry: ha_domain::error::Retry::CanHelp,
            }));
        }

        // Healthy everywhere: now the originals may go.
        let originals: Vec<FencingCandidate> = if groups.is_empty() {
            Vec::new()
        } else {
            self.fleet
                .instances_of(std::slice::from_ref(workload))
                .await?
                .into_iter()
                .filter(|c| !is_replacement(&c.original.tags))
                .collect()
        };
        let mut deregistered = Vec::new();
        for group in &groups {
            let registered: BTreeSet<String> =
                self.load_balancing.targets(group).await?.into_iter().map(|(id, _)| id).collect();
            let leaving: Vec<String> = originals
                .iter()
                .filter_map(|c| target_of(group.by_ip, &c.original.instance_id, c.private_ip.as_ref()))
                .filter(|t| registered.contains(t))
                .collect();
            if !leaving.is_empty() {
                self.load_balancing.deregister(group, &leaving).await?;
                info!(target_group = %group.name, targets = ?leaving, "originals deregistered");
                deregistered.extend(leaving);
            }
        }

        let serving_at = format_timestamp(now());
        self.ledger.record_serving(&incident, workload, &serving_at).await?;
        let detected_at = self.ledger.incident_detected_at(&incident).await?.unwrap_or_default();
        let seconds = parse_timestamp(&detected_at)
            .zip(parse_timestamp(&serving_at))
            .map(|(d, s)| (s - d).as_seconds_f64().max(0.0));
        let first = self
            .ledger
            .mark_incident(&incident, &format!("SERVING#{workload}"), instance_id, now().unix_timestamp())
            .await?;
        if first {
            self.bus
                .publish(&[ProjectEvent::WorkloadServing(WorkloadServing {
                    incident_id: incident.to_string(),
                    server_id: server.clone(),
                    workload: workload.clone(),
                    replacement_instance_id: instance_id.to_string(),
                    target_groups: names,
                    deregistered,
                    detected_at,
                    serving_at,
                    detection_to_serving_seconds: seconds,
                })])
                .await?;
            if let Some(s) = seconds {
                metrics::publish_for_server(
                    &self.config.stack_name,
                    server,
                    ("DetectionToServingSeconds", s, metrics::Unit::Seconds),
                );
            }
        }
        report.serving.push(workload.clone());
        Ok(report)
    }

    /// Dry-runs every workload of the server: permissions, parameters, backup resolution and
    /// destinations, as a real relaunch would meet them; launches nothing.
    async fn drill(&self, r: DrillRequested) -> Result<RelaunchReport, HandlerError> {
        let mut report = RelaunchReport::default();
        let Ok(server) = ServerId::parse(&r.server_id) else {
            report.ignored = Some(format!("'{}' is not an Outposts server id", r.server_id));
            return Ok(report);
        };
        let (workloads, rejected) = self.fleet.workloads_of(&server).await?;
        let mut verdicts: Vec<DrillVerdict> = stream::iter(launch_order(workloads))
            .map(|w| async move {
                let span = tracing::info_span!("workload", workload = %w.name);
                self.drill_one(&w).instrument(span).await
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
        }));
        verdicts.sort_by(|a, b| a.workload.cmp(&b.workload));
        let ready = verdicts.iter().filter(|v| v.ready).count();
        info!(ready, not_ready = verdicts.len() - ready, "drill finished; nothing launched");
        self.bus
            .publish(&[ProjectEvent::DrillCompleted(DrillCompleted {
                server_id: server.to_string(),
                requested_at: r.requested_at.clone(),
                verdicts: verdicts.clone(),
            })])
            .await?;
        report.drill = verdicts;
        Ok(report)
    }

    async fn drill_one(&self, w: &Workload) -> Result<DrillVerdict, AwsFailure> {
        let mut verdict = DrillVerdict {
            workload: w.name.clone(),
            launch_template_id: w.launch_template_id.clone(),
            ready: false,
            destination: None,
            restored_from: None,
            problems: Vec::new(),
        };
        if let Some(parameter) = &w.backup_parameter {
            match self.newest_backup(parameter).await? {
                Ok(r) => verdict.restored_from = Some(r),
                Err((code, message)) => {
                    verdict.problems.push(format!("{code}: {message}"));
                    return Ok(verdict);
                }
            }
        }
        let incident = IncidentId::from_stored("drill");
        let capacity = self.capacity.of(w).await;
        for subnet in &w.subnets {
            if !self.fleet.subnet_exists(subnet).await? {
                verdict.problems.push(format!("{subnet}: does not exist"));
                continue;
            }
            if let Some(c) = capacity.get(subnet).filter(|c| c.is_short()) {
                verdict.problems.push(format!("{subnet}: {}", c.shortage()));
                continue;
            }
            let launch = LaunchRequest {
                workload: w,
                incident: &incident,
                subnet_id: subnet,
                client_token: "",
                restored_from: verdict.restored_from.as_ref(),
                dry_run: true,
            };
            match self.fleet.launch(&launch).await {
                Err(f) if f.code == "DryRunOperation" => {
                    verdict.ready = true;
                    verdict.destination = Some(subnet.clone());
                    return Ok(verdict);
                }
                Err(f) if f.retry == ha_domain::error::Retry::CanHelp => return Err(f),
                Err(f) => verdict.problems.push(format!("{subnet}: {}: {}", f.code, f.message)),
                Ok(instance_id) => {
                    // EC2 never launches on DryRun; if something did, say so loudly.
                    error!(%instance_id, "a dry-run launch returned an instance");
                    verdict.problems.push(format!("{subnet}: a dry run launched {instance_id}; terminate it"));
                }
            }
        }
        Ok(verdict)
    }

    /// The server is back: fence the originals of the workloads this incident replaced,
    /// per policy, then close the incident. Redelivery finds them fenced and does nothing.
    async fn fence(&self, r: ServerRecovered) -> Result<RelaunchReport, HandlerError> {
        let mut report = RelaunchReport { incident_id: r.incident_id.clone(), ..Default::default() };
        let (Some(incident), Ok(server)) = (r.incident_id.as_deref(), ServerId::parse(&r.server_id)) else {
            info!("no open incident for the server: nothing to fence");
            report.ignored = Some("no open incident".into());
            return Ok(report);
        };
        let incident = IncidentId::from_stored(incident);
        let mut replaced = Vec::new();
        for (status, outcome) in self.ledger.outcomes_of(&incident).await? {
            if status == "launching" {
                // A launch still in flight would leave its original unfenced: come back later.
                return Err(HandlerError::Transient(AwsFailure {
                    operation: "Fence",
                    code: "RelaunchInProgress".into(),
                    message: "a workload of the incident is still being launched".into(),
                    retry: ha_domain::error::Retry::CanHelp,
                }));
            }
            if let Some(ProjectEvent::WorkloadRelaunched(w)) = outcome.and_then(|o| serde_json::from_str(&o).ok()) {
                replaced.push(w);
            }
        }
        let template_ids: Vec<String> =
            replaced.iter().map(|w| w.launch_template_id.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        let template_tags = self.fleet.template_tags(&template_ids).await?;
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
        let names: Vec<String> = replaced_workloads.iter().map(|w| w.workload.clone()).collect();
        let candidates = if names.is_empty() { Vec::new() } else { self.fleet.instances_of(&names).await? };
        let originals: Vec<_> = candidates.iter().map(|c| c.original.clone()).collect();
        let actions = choose_originals(incident.as_str(), server.as_str(), &replaced_workloads, &originals);

        let mut events = Vec::new();
        for action in &actions {
            let span = tracing::info_span!("original", workload = %action.workload, instance_id = %action.instance_id);
            let candidate = candidates.iter().find(|c| c.original.instance_id == action.instance_id);
            let fenced = self.fence_one(&incident, action, candidate).instrument(span).await?;
            let marker = format!("FENCED#{}", action.instance_id);
            let first =
                self.ledger.mark_incident(&incident, &marker, fenced.action.as_str(), now().unix_timestamp()).await?;
            if first {
                events.push(ProjectEvent::OriginalFenced(OriginalFenced {
                    incident_id: incident.to_string(),
                    server_id: server.to_string(),
                    workload: action.workload.clone(),
                    instance_id: action.instance_id.clone(),
                    replacement_instance_id: action.replacement_instance_id.clone(),
                    policy: action.policy,
                    action: fenced.action,
                    previous_security_groups: fenced.previous_groups,
                    quarantine_security_group: fenced.quarantine,
                }));
            }
            report.fenced.push(action.instance_id.clone());
        }

        let summary = format!(
            "{} workload(s) replaced; {} original(s) fenced on {} ({})",
            replaced.len(),
            actions.len(),
            r.recovered_at,
            actions.iter().map(|a| format!("{} {}", a.instance_id, a.policy.as_str())).collect::<Vec<_>>().join(", ")
        );
        if self.ledger.close_incident(&incident, &server, &summary, now().unix_timestamp()).await? {
            info!(%summary, "incident closed");
            events.push(ProjectEvent::IncidentClosed(IncidentClosed {
                incident_id: incident.to_string(),
                server_id: server.to_string(),
                recovered_at: r.recovered_at.clone(),
                replaced: replaced.iter().map(|w| w.workload.clone()).collect(),
                fenced: actions.iter().map(|a| a.instance_id.clone()).collect(),
                summary,
            }));
        }
        report.incident_closed = true;
        self.bus.publish(&events).await?;
        Ok(report)
    }

    async fn fence_one(
        &self,
        incident: &IncidentId,
        action: &FenceAction,
        candidate: Option<&FencingCandidate>,
    ) -> Result<Fenced, AwsFailure> {
        let id = action.instance_id.as_str();
        let fenced = match (action.policy, candidate.and_then(|c| c.vpc_id.as_deref().map(|v| (c, v)))) {
            (FencingPolicy::Isolate, Some((c, vpc))) => {
                let quarantine = self.fleet.quarantine_group(vpc, &self.config.stack_name).await?;
                // The groups are kept before they are swapped, and never overwritten by a retry
                // that would only see the quarantine group.
                let previous = match c.original.tags.get(tag::FENCED_GROUPS) {
                    Some(kept) => groups_from_tag(kept),
                    None => {
                        let groups = c.security_groups.clone();
                        self.fleet.tag_instance(id, &[(tag::FENCED_GROUPS, &groups_tag_value(&groups))]).await?;
                        groups
                    }
                };
                self.fleet.set_security_groups(id, std::slice::from_ref(&quarantine)).await?;
                warn!(%quarantine, previous = ?previous, "original isolated");
                Fenced { action: "isolated".into(), previous_groups: previous, quarantine: Some(quarantine) }
            }
            (FencingPolicy::Terminate, _) => {
                self.fleet.terminate(id).await?;
                warn!("original terminated");
                return Ok(Fenced { action: "terminated".into(), previous_groups: Vec::new(), quarantine: None });
            }
            (FencingPolicy::Isolate, None) => {
                error!("original has no VPC to isolate it in; left running");
                Fenced {
                    action: "left running (no VPC to isolate in)".into(),
                    previous_groups: Vec::new(),
                    quarantine: None,
                }
            }
            (FencingPolicy::Notify, _) => {
                warn!("original left running (policy notify)");
                Fenced { action: "left running".into(), previous_groups: Vec::new(), quarantine: None }
            }
        };
        self.fleet.tag_instance(id, &[(tag::FENCED, incident.as_str())]).await?;
        Ok(fenced)
    }

    /// The backup the parameter names, checked to exist and be available; otherwise the
    /// error code and message the failure report carries.
    async fn newest_backup(&self, parameter: &str) -> Result<Result<RestoredFrom, (&'static str, String)>, AwsFailure> {
        let Some(image_id) = self.backups.parameter(parameter).await? else {
            return Ok(Err((
                "NoBackup",
                format!("the backup parameter {parameter} does not exist: no backup to restore from"),
            )));
        };
        let image = match self.backups.image(&image_id).await? {
            None => {
                return Ok(Err(("BackupImageMissing", format!("{parameter} names {image_id}, which does not exist"))));
            }
            Some(i) if i.state != "available" => {
                let message = format!("{parameter} names {image_id}, which is {}", i.state);
                return Ok(Err(("BackupImageUnavailable", message)));
            }
            Some(i) => i,
        };
        let taken_at = image.taken_at();
        let age_seconds = taken_at.map(|t| (now() - t).whole_seconds().max(0));
        info!(%image_id, age = %age_seconds.map(human_duration).unwrap_or_else(|| "unknown".into()), "restoring from backup");
        Ok(Ok(RestoredFrom {
            image_id,
            parameter: parameter.to_string(),
            taken_at: taken_at.map(format_timestamp),
            age_seconds,
        }))
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

/// EventBridge's detail-type for EC2 instance state changes.
const EC2_STATE_CHANGE: &str = "EC2 Instance State-change Notification";

/// What fencing did to one original.
struct Fenced {
    action: String,
    previous_groups: Vec<String>,
    quarantine: Option<String>,
}

/// A workload that cannot be launched at all (no destination, no backup).
fn cannot_launch(req: &RelaunchRequested, w: &Workload, code: &str, message: &str) -> ProjectEvent {
    ProjectEvent::WorkloadRelaunchFailed(WorkloadRelaunchFailed {
        incident_id: req.incident_id.clone(),
        server_id: req.server_id.clone(),
        workload: w.name.clone(),
        launch_template_id: w.launch_template_id.clone(),
        error_code: code.into(),
        error_message: message.into(),
        destinations_tried: Vec::new(),
        manual_action_required: true,
        detected_at: req.detected_at.clone(),
    })
}

fn attempt_failed(subnet: &str, f: &AwsFailure) -> DestinationAttempt {
    DestinationAttempt {
        subnet_id: subnet.to_string(),
        error_code: Some(f.code.clone()),
        error_message: Some(f.message.clone()),
    }
}

#[allow(clippy::too_many_arguments)]
fn relaunched(
    req: &RelaunchRequested,
    w: &Workload,
    instance_id: &str,
    subnet: &str,
    tried: Vec<DestinationAttempt>,
    requested_at: &str,
    accepted_at: &str,
    adopted: bool,
) -> ProjectEvent {
    ProjectEvent::WorkloadRelaunched(WorkloadRelaunched {
        incident_id: req.incident_id.clone(),
        server_id: req.server_id.clone(),
        workload: w.name.clone(),
        launch_template_id: w.launch_template_id.clone(),
        replacement_instance_id: instance_id.to_string(),
        subnet_id: subnet.to_string(),
        destinations_tried: tried,
        detected_at: req.detected_at.clone(),
        launch_requested_at: requested_at.to_string(),
        launch_accepted_at: accepted_at.to_string(),
        adopted,
        restored_from: None,
        already_replaced_in: None,
    })
}

/// The metric one settled outcome contributes: how long from detection until EC2 accepted
/// the replacement, or one relaunch failure.
fn outcome_metric(e: &ProjectEvent) -> Option<(&'static str, f64, metrics::Unit)> {
    match e {
        ProjectEvent::WorkloadRelaunched(r) if r.already_replaced_in.is_none() => {
            let detected = parse_timestamp(&r.detected_at)?;
            let accepted = parse_timestamp(&r.launch_accepted_at)?;
            Some(("DetectionToLaunchSeconds", (accepted - detected).as_seconds_f64().max(0.0), metrics::Unit::Seconds))
        }
        ProjectEvent::WorkloadRelaunchFailed(_) => Some(("RelaunchFailures", 1.0, metrics::Unit::Count)),
        _ => None,
    }
}

fn workload_of(e: &ProjectEvent) -> Option<&str> {
    match e {
        ProjectEvent::WorkloadRelaunched(r) => Some(&r.workload),
        ProjectEvent::WorkloadRelaunchFailed(f) => Some(&f.workload),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_fresh_outcome_is_one_metric() {
        let path = format!("{}/../../events/contract/", std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"));
        let load = |name: &str| -> ProjectEvent {
            serde_json::from_str(&std::fs::read_to_string(format!("{path}{name}.json")).unwrap()).unwrap()
        };
        let (name, seconds, unit) = outcome_metric(&load("WorkloadRelaunched")).unwrap();
        assert_eq!((name, unit), ("DetectionToLaunchSeconds", metrics::Unit::Seconds));
        assert!((seconds - 1.789).abs() < 1e-9, "{seconds}");
        assert_eq!(
            outcome_metric(&load("WorkloadRelaunchFailed")),
            Some(("RelaunchFailures", 1.0, metrics::Unit::Count))
        );
        assert_eq!(outcome_metric(&load("ServerRecovered")), None);
    }

    #[test]
    fn config_bounds_are_enforced_with_the_variable_named() {
        let base = [("LEDGER_TABLE", "t"), ("EVENT_BUS_NAME", "b")];
        let c = Config::from_env(&EnvReader::from_pairs(&base)).unwrap();
        assert_eq!((c.launch_concurrency, c.claim_lease_seconds), (10, 300));
        for (name, value) in [("LAUNCH_CONCURRENCY", "0"), ("LAUNCH_CONCURRENCY", "ten"), ("CLAIM_LEASE_SECONDS", "5")]
        {
            let mut pairs = base.to_vec();
            pairs.push((name, value));
            let err = Config::from_env(&EnvReader::from_pairs(&pairs)).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }
}
