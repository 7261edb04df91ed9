//! backup-scheduler: on each schedule tick, starts the backup runbook for the stateful
//! instances that are due (bounded, never two at once per instance) and reports backup
//! age against the RPO; on each finished execution, checks and tags the AMI, moves the
//! workload's parameter to it, prunes old backups and reports what happened.

use futures::stream::{self, StreamExt};
use ha_aws::invocation::{told, HandlerError, NotYet};
use ha_domain::backup::{
    choose_prunable, decide_parameter_move, helper_for, judge_execution, orphan_snapshots, parse_trigger, plan_tick,
    start_token, stateful_instance_from_tags, superseded_copy, BackupAge, BackupImage, BackupTrigger, ExecutionFacts,
    ExecutionVerdict, HelperPlacement, HelperTypes, Host, ImageState, MisdeclaredInstance, NotStarted, ParameterMove,
    ParameterValue, StatefulInstance, TickFacts,
};
use ha_domain::config::{ConfigError, EnvReader, IncidentStore};
use ha_domain::contract::{BackupCompleted, BackupFailed, BackupStale, ProjectEvent, PrunedBackup};
use ha_domain::error::{AwsFailure, Retry};
use ha_domain::ledger::BackupMark;
use ha_domain::metrics;
use ha_domain::model::{tag, Instance, ServerId};
use ha_domain::timefmt::{format_timestamp, human_duration};
use ha_ports::ledger::{Adopted, ParameterRecord, Told};
use ha_ports::{Backups, Bus, Clock, Fleet, Ledger, Runbook};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use tracing::{error, info, warn, Instrument};

pub const DEFAULT_DOCUMENT: &str = "BackupOutpostsServerLinuxInstanceToEBS";

/// Waits between reads of a just-written parameter (7.5 s in all).
const PARAMETER_CHECKS_MS: [u64; 5] = [500, 1_000, 1_500, 2_000, 2_500];

/// An EC2 instance type (`family.size`) of the architecture, from the environment.
fn instance_type<F: Fn(&str) -> Option<String>>(
    env: &EnvReader<F>,
    name: &'static str,
    default: &str,
    graviton: bool,
) -> Result<String, ConfigError> {
    let value = env.optional(name, default);
    let well_formed = value.split_once('.').is_some_and(|(family, size)| {
        let ok = |part: &str| {
            !part.is_empty() && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        };
        ok(family) && ok(size)
    });
    if !well_formed {
        return Err(ConfigError::Malformed { name, value, expected: "expected an EC2 instance type like c5.large" });
    }
    if ha_domain::backup::is_graviton_type(&value) != graviton {
        let expected = if graviton {
            "expected a Graviton (arm64) type like c6g.large"
        } else {
            "expected an x86_64 type like c5.large"
        };
        return Err(ConfigError::Malformed { name, value, expected });
    }
    Ok(value)
}

#[derive(Debug, Clone)]
pub struct Config {
    pub store: IncidentStore,
    pub stack_name: String,
    /// The runbook and how it is called.
    pub document: String,
    /// Extra runbook parameters for every execution (e.g. `TemporaryInstancesType`).
    pub document_parameters: BTreeMap<String, Vec<String>>,
    pub instance_parameter: String,
    /// The runbook parameter that takes the helper instance's subnet (a Region subnet of
    /// the instance's VPC tagged `outposts-ha:backup-helper`); empty: none.
    pub subnet_parameter: String,
    /// The runbook parameter that takes the helper instance's type; empty: none.
    pub helper_type_parameter: String,
    /// The helper's type by the instance's architecture.
    pub helper_types: HelperTypes,
    /// The execution output naming the AMI it made.
    pub image_output: String,
    /// Passed as the runbook's `AssumeRole` when set.
    pub automation_role_arn: Option<String>,
    /// Executions of the runbook in flight at once, across the account.
    pub max_concurrent: usize,
    /// Backups kept per instance.
    pub keep: usize,
    pub rpo_seconds: i64,
    /// How long a completion holds the backup parameter it moves: longer than the
    /// function's timeout, so a holder that died cannot write after it runs out.
    pub parameter_lease_seconds: i64,
}

impl Config {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &EnvReader<F>) -> Result<Self, ConfigError> {
        let raw_parameters = env.optional("BACKUP_DOCUMENT_PARAMETERS", "{}");
        let document_parameters = parse_document_parameters(&raw_parameters).map_err(|expected| {
            ConfigError::Malformed { name: "BACKUP_DOCUMENT_PARAMETERS", value: raw_parameters.clone(), expected }
        })?;
        let role = env.optional("BACKUP_AUTOMATION_ROLE_ARN", "");
        let automation_role_arn =
            if role.is_empty() { None } else { Some(env.arn("BACKUP_AUTOMATION_ROLE_ARN", "iam")?) };
        Ok(Config {
            store: IncidentStore::from_env(env)?,
            stack_name: env.required("STACK_NAME")?,
            document: env.optional("BACKUP_DOCUMENT", DEFAULT_DOCUMENT),
            document_parameters,
            instance_parameter: env.optional("BACKUP_INSTANCE_PARAMETER", "InstanceId"),
            // Set but empty means "the runbook takes no subnet".
            subnet_parameter: env.raw("BACKUP_SUBNET_PARAMETER").unwrap_or_else(|| "SubnetId".into()),
            helper_type_parameter: env
                .raw("BACKUP_HELPER_TYPE_PARAMETER")
                .unwrap_or_else(|| "TemporaryInstancesType".into()),
            helper_types: HelperTypes {
                x86_64: instance_type(env, "BACKUP_HELPER_TYPE_X86_64", "c5.large", false)?,
                arm64: instance_type(env, "BACKUP_HELPER_TYPE_ARM64", "c6g.large", true)?,
            },
            image_output: env.optional("BACKUP_IMAGE_OUTPUT", "createAMIFromSnapshot.ImageId"),
            automation_role_arn,
            max_concurrent: env.number(
                "BACKUP_MAX_CONCURRENT",
                10,
                1..=90,
                "expected 1 to 90 (the account allows 100)",
            )?,
            // Two at least: the backup a relaunch just read is never pruned under it.
            keep: env.number("BACKUP_KEEP", 3, 2..=100, "expected 2 to 100 backups per instance")?,
            rpo_seconds: env.number(
                "BACKUP_RPO_SECONDS",
                86_400,
                60..=31_536_000,
                "expected seconds from 60 to a year",
            )?,
            parameter_lease_seconds: env.number(
                "PARAMETER_LEASE_SECONDS",
                330,
                300..=3_600,
                "expected 300 to 3600 seconds, longer than the function's timeout (300 s)",
            )?,
        })
    }
}

/// `{"Name": "value"}` or `{"Name": ["v1", "v2"]}`, as the runbook's parameters.
fn parse_document_parameters(text: &str) -> Result<BTreeMap<String, Vec<String>>, &'static str> {
    const EXPECTED: &str = "expected a JSON object of parameter names to strings or lists of strings";
    let value: Value = serde_json::from_str(text).map_err(|_| EXPECTED)?;
    let object = value.as_object().ok_or(EXPECTED)?;
    let mut parameters = BTreeMap::new();
    for (name, v) in object {
        let values = match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => {
                items.iter().map(|i| i.as_str().map(str::to_string)).collect::<Option<Vec<_>>>().ok_or(EXPECTED)?
            }
            _ => return Err(EXPECTED),
        };
        parameters.insert(name.clone(), values);
    }
    Ok(parameters)
}

/// What a finished backup did to its parameter.
enum Adoption {
    Moved {
        previous: Option<String>,
    },
    AlreadyThere,
    KeepNewer {
        current: String,
    },
    /// A superseded copy (or an instance gone): the parameter is left alone.
    Refused {
        why: String,
    },
}

/// What one invocation did; also the function's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "trigger", rename_all = "snake_case")]
pub enum BackupReport {
    Tick(TickReport),
    Execution(ExecutionReport),
    Ignored { reason: String },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TickReport {
    /// (instance, execution id)
    pub started: Vec<(String, String)>,
    pub not_started: Vec<(String, NotStarted)>,
    pub start_failed: Vec<(String, String)>,
    pub stale: Vec<String>,
    pub misdeclared: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecutionReport {
    pub execution_id: String,
    pub outcome: ExecutionOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionOutcome {
    Completed {
        image_id: String,
        parameter_moved: bool,
        pruned: Vec<String>,
    },
    Failed {
        reason: String,
    },
    /// Already reported by an earlier delivery.
    Duplicate,
    NotOurs {
        reason: String,
    },
}

/// What backup-scheduler acts through.
pub struct Ports {
    pub ledger: Ledger,
    pub backups: Arc<dyn Backups>,
    pub runbook: Arc<dyn Runbook>,
    pub fleet: Arc<dyn Fleet>,
    pub bus: Arc<dyn Bus>,
    pub clock: Arc<dyn Clock>,
}

pub struct BackupScheduler {
    config: Config,
    ports: Ports,
}

impl BackupScheduler {
    pub fn new(config: Config, sdk: &aws_config::SdkConfig) -> Self {
        Self::from_clients(
            config,
            aws_sdk_ec2::Client::new(sdk),
            aws_sdk_ssm::Client::new(sdk),
            aws_sdk_dynamodb::Client::new(sdk),
            aws_sdk_eventbridge::Client::new(sdk),
        )
    }

    pub fn from_clients(
        config: Config,
        ec2: aws_sdk_ec2::Client,
        ssm: aws_sdk_ssm::Client,
        dynamodb: aws_sdk_dynamodb::Client,
        events: aws_sdk_eventbridge::Client,
    ) -> Self {
        let ports = Ports {
            backups: Arc::new(ha_aws::backups::BackupStore::new(ec2.clone(), ssm.clone(), &config.stack_name)),
            runbook: Arc::new(ha_aws::automation::Automation::new(ssm, &config.document)),
            fleet: Arc::new(ha_aws::fleet::Ec2Fleet::new(ec2)),
            ledger: ha_aws::ledger::ledger_of_store(dynamodb, &config.store),
            bus: Arc::new(ha_aws::bus::EventBridgeBus::of_store(events, &config.store)),
            clock: Arc::new(ha_ports::SystemClock),
        };
        BackupScheduler { config, ports }
    }

    pub fn with_ports(config: Config, ports: Ports) -> Self {
        BackupScheduler { config, ports }
    }

    fn now(&self) -> time::OffsetDateTime {
        self.ports.clock.now()
    }

    /// `invocation_id` names this attempt as the teller of what it tells.
    pub async fn handle(&self, event: Value, invocation_id: &str) -> Result<BackupReport, HandlerError> {
        match parse_trigger(&event) {
            Ok(BackupTrigger::Tick { tick }) => {
                let span = tracing::info_span!("backup_tick", tick = %tick);
                self.tick(&tick, invocation_id).instrument(span).await.map(BackupReport::Tick)
            }
            Ok(BackupTrigger::ExecutionChanged { execution_id, document, status }) => {
                if document != self.config.document {
                    info!(%document, "status change of another runbook; ignored");
                    return Ok(BackupReport::Ignored { reason: format!("runbook {document} is not ours") });
                }
                if !ha_domain::backup::is_final_status(&status) {
                    return Ok(BackupReport::Ignored { reason: format!("status {status} is not final") });
                }
                let span = tracing::info_span!("backup_execution", execution_id = %execution_id);
                self.finished(&execution_id, invocation_id).instrument(span).await.map(BackupReport::Execution)
            }
            Err(reason) => {
                warn!(%reason, "not an event backup-scheduler handles");
                Ok(BackupReport::Ignored { reason })
            }
        }
    }

    async fn tick(&self, tick: &str, owner: &str) -> Result<TickReport, HandlerError> {
        let (declared, mut misdeclared) = self.ports.backups.stateful_instances().await?;
        // Each instance's helper: an instance with none is reported, never started.
        // A value set in BackupDocumentParameters is the operator's and is passed as it is.
        let given = |name: &str| name.is_empty() || self.config.document_parameters.contains_key(name);
        let subnets = if given(&self.config.subnet_parameter) {
            None
        } else {
            let vpcs: std::collections::BTreeSet<String> = declared.iter().filter_map(|i| i.vpc_id.clone()).collect();
            Some(self.ports.backups.helper_subnets(&vpcs.into_iter().collect::<Vec<_>>()).await?)
        };
        let types = (!given(&self.config.helper_type_parameter)).then_some(&self.config.helper_types);
        let mut instances = Vec::new();
        let mut helpers: BTreeMap<String, HelperPlacement> = BTreeMap::new();
        for instance in declared {
            match helper_for(&instance, subnets.as_deref(), types) {
                Ok(helper) => {
                    helpers.insert(instance.instance_id.clone(), helper);
                    instances.push(instance);
                }
                Err(m) => misdeclared.push(m),
            }
        }
        let backups = self.ports.backups.backups(None).await?;
        let in_flight = self.ports.runbook.in_flight(&self.config.instance_parameter).await?;
        let now = self.now();
        let plan = plan_tick(&TickFacts {
            instances: &instances,
            backups: &backups,
            in_flight: &in_flight.instances,
            executions_in_flight: in_flight.executions,
            max_concurrent: self.config.max_concurrent,
            rpo_seconds: self.config.rpo_seconds,
            now,
        });
        let mut report = TickReport { not_started: plan.not_started.clone(), ..Default::default() };

        let by_id: BTreeMap<&str, &StatefulInstance> = instances.iter().map(|i| (i.instance_id.as_str(), i)).collect();
        let starts: Vec<(String, Result<String, AwsFailure>)> = stream::iter(plan.start.iter())
            .map(|id| {
                let (instance, helper) = (by_id[id.as_str()], &helpers[id.as_str()]);
                async move { (id.clone(), self.start(instance, helper, tick).await) }
            })
            .buffer_unordered(self.config.max_concurrent)
            .collect()
            .await;
        let mut transient = 0;
        let mut telling_elsewhere = false;
        for (instance_id, result) in starts {
            match result {
                Ok(execution_id) => {
                    info!(%instance_id, %execution_id, "backup started");
                    // A later refusal is news again.
                    self.ports.ledger.clear_backup_mark(&instance_id, BackupMark::NotStarted).await?;
                    report.started.push((instance_id, execution_id));
                }
                Err(f) if f.code == "AutomationExecutionLimitExceededException" => {
                    warn!(%instance_id, "the account's automation limit is reached; the next tick tries again");
                    report.not_started.push((instance_id, NotStarted::Deferred));
                }
                Err(f) if f.retry == Retry::CanHelp => {
                    warn!(%instance_id, failure = %f, "transient failure starting a backup; the tick will be retried");
                    transient += 1;
                    report.start_failed.push((instance_id, f.to_string()));
                }
                Err(f) => {
                    error!(%instance_id, failure = %f, "the backup runbook could not be started");
                    let instance = by_id[instance_id.as_str()];
                    let event = ProjectEvent::BackupFailed(BackupFailed {
                        instance_id: instance_id.clone(),
                        workload: instance.workload.clone(),
                        server_id: instance.server_id.clone(),
                        execution_id: String::new(),
                        status: "NotStarted".into(),
                        failed_step: Some("StartAutomationExecution".into()),
                        reason: f.to_string(),
                        parameter: Some(instance.parameter.clone()),
                        parameter_image_id: None,
                        unused_image_id: None,
                    });
                    // Once per error until a start succeeds, however often ticks retry it.
                    telling_elsewhere |=
                        self.tell_once(&instance_id, BackupMark::NotStarted, &f.code, event, owner).await?;
                    report.start_failed.push((instance_id, f.to_string()));
                }
            }
        }

        for age in &plan.ages {
            if let Some(seconds) = age.age_seconds {
                metrics::publish_for_instance(
                    &self.config.stack_name,
                    &age.instance_id,
                    ("BackupAgeSeconds", seconds as f64, metrics::Unit::Seconds),
                );
            }
            if age.stale {
                let instance = by_id[age.instance_id.as_str()];
                let marker = age.newest.as_ref().map_or("none", |b| b.image_id.as_str());
                let event = self.stale_event(instance, age);
                telling_elsewhere |=
                    self.tell_once(&instance.instance_id, BackupMark::Stale, marker, event, owner).await?;
                report.stale.push(age.instance_id.clone());
            }
        }
        for m in &misdeclared {
            warn!(instance_id = %m.instance_id, reason = %m.reason, "instance tagged for backup cannot be backed up");
            let event = self.misdeclared_event(m);
            telling_elsewhere |= self.tell_once(&m.instance_id, BackupMark::Stale, &m.reason, event, owner).await?;
            report.misdeclared.push(m.instance_id.clone());
        }
        info!(
            declared = instances.len(),
            started = report.started.len(),
            not_started = report.not_started.len(),
            start_failed = report.start_failed.len(),
            stale = report.stale.len(),
            misdeclared = report.misdeclared.len(),
            executions_in_flight = in_flight.executions,
            "backup tick finished"
        );
        if transient > 0 {
            return Err(HandlerError::PartlyTransient(transient));
        }
        if telling_elsewhere {
            return Err(HandlerError::NotYet {
                reason: NotYet::BeingTold,
                detail: "another delivery is telling a backup's staleness".into(),
            });
        }
        Ok(report)
    }

    async fn start(
        &self,
        instance: &StatefulInstance,
        helper: &HelperPlacement,
        tick: &str,
    ) -> Result<String, AwsFailure> {
        let mut parameters = self.config.document_parameters.clone();
        parameters.insert(self.config.instance_parameter.clone(), vec![instance.instance_id.clone()]);
        if let Some(subnet) = &helper.subnet_id {
            parameters.insert(self.config.subnet_parameter.clone(), vec![subnet.clone()]);
        }
        if let Some(instance_type) = &helper.instance_type {
            parameters.insert(self.config.helper_type_parameter.clone(), vec![instance_type.clone()]);
        }
        if let Some(role) = &self.config.automation_role_arn {
            parameters.insert("AssumeRole".into(), vec![role.clone()]);
        }
        let token = start_token(&self.config.stack_name, &instance.instance_id, tick, &parameters);
        let tags = [(tag::STACK, self.config.stack_name.as_str()), (tag::BACKUP_OF, instance.instance_id.as_str())];
        self.ports.runbook.start(&parameters, &token, &tags).await
    }

    /// Tells an instance's `mark` once per marker (a staleness once per newest backup, a
    /// refused start once per error): later ticks stay quiet until the marker changes.
    /// True when another delivery is telling it now.
    async fn tell_once(
        &self,
        instance_id: &str,
        mark: BackupMark,
        marker: &str,
        event: ProjectEvent,
        owner: &str,
    ) -> Result<bool, AwsFailure> {
        let now_epoch = self.now().unix_timestamp();
        let told = self
            .ports
            .ledger
            .tell_backup(&*self.ports.bus, instance_id, mark, marker, owner, now_epoch, &[event])
            .await?;
        Ok(told == Told::ByAnother)
    }

    fn stale_event(&self, instance: &StatefulInstance, age: &BackupAge) -> ProjectEvent {
        let reason = match (&age.newest, age.age_seconds) {
            (Some(b), Some(seconds)) => format!(
                "the newest good backup {} is {} old; the RPO is {}",
                b.image_id,
                human_duration(seconds),
                human_duration(self.config.rpo_seconds)
            ),
            _ => "there is no good backup of this instance yet".into(),
        };
        warn!(instance_id = %instance.instance_id, %reason, "backup is stale");
        ProjectEvent::BackupStale(BackupStale {
            instance_id: instance.instance_id.clone(),
            workload: instance.workload.clone(),
            server_id: instance.server_id.clone(),
            parameter: Some(instance.parameter.clone()),
            newest_image_id: age.newest.as_ref().map(|b| b.image_id.clone()),
            newest_taken_at: age.newest.as_ref().map(|b| format_timestamp(b.taken_at)),
            age_seconds: age.age_seconds,
            rpo_seconds: self.config.rpo_seconds,
            reason,
        })
    }

    fn misdeclared_event(&self, m: &MisdeclaredInstance) -> ProjectEvent {
        ProjectEvent::BackupStale(BackupStale {
            instance_id: m.instance_id.clone(),
            workload: m.workload.clone(),
            server_id: None,
            parameter: None,
            newest_image_id: None,
            newest_taken_at: None,
            age_seconds: None,
            rpo_seconds: self.config.rpo_seconds,
            reason: format!("not backed up: {}", m.reason),
        })
    }

    async fn finished(&self, execution_id: &str, owner: &str) -> Result<ExecutionReport, HandlerError> {
        let report = |outcome| ExecutionReport { execution_id: execution_id.to_string(), outcome };
        if self.ports.ledger.backup_told(execution_id, BackupMark::Reported).await? {
            info!("already reported; duplicate status change ignored");
            return Ok(report(ExecutionOutcome::Duplicate));
        }
        let Some(facts) = self.ports.runbook.execution(execution_id).await? else {
            warn!("SSM does not know this execution; ignored");
            return Ok(report(ExecutionOutcome::NotOurs { reason: "execution not found".into() }));
        };
        let Some(instance_id) = facts.parameters.get(&self.config.instance_parameter).and_then(|v| v.first()).cloned()
        else {
            warn!("the execution names no instance; ignored");
            return Ok(report(ExecutionOutcome::NotOurs {
                reason: format!("no {} parameter", self.config.instance_parameter),
            }));
        };
        let span = tracing::info_span!("backup", instance_id = %instance_id);
        async {
            let (event, outcome) = self.settle(&facts, &instance_id, owner).await?;
            let now_epoch = self.now().unix_timestamp();
            let reported = self
                .ports
                .ledger
                .tell_backup(
                    &*self.ports.bus,
                    execution_id,
                    BackupMark::Reported,
                    "reported",
                    owner,
                    now_epoch,
                    &[event],
                )
                .await?;
            if told(reported, "this execution's report")? {
                Ok(report(outcome))
            } else {
                Ok(report(ExecutionOutcome::Duplicate))
            }
        }
        .instrument(span)
        .await
    }

    /// Does what a finished execution calls for and returns the event that reports it.
    async fn settle(
        &self,
        facts: &ExecutionFacts,
        instance_id: &str,
        owner: &str,
    ) -> Result<(ProjectEvent, ExecutionOutcome), HandlerError> {
        let instance = self.ports.backups.instance(instance_id).await?;
        let live = instance.as_ref().filter(|i| !i.state.is_gone());
        let declared =
            live.map(|i| stateful_instance_from_tags(instance_id, &Host::default(), &i.tags, &self.config.stack_name));
        let tags_of = |i: Option<&Instance>, key: &str| i.and_then(|i| i.tags.get(key).cloned());
        let failed =
            |reason: String, failed_step: Option<String>, unused_image_id: Option<String>, parameter_image_id| {
                error!(%reason, "backup failed; the parameter is left alone");
                let event = ProjectEvent::BackupFailed(BackupFailed {
                    instance_id: instance_id.to_string(),
                    workload: tags_of(instance.as_ref(), tag::WORKLOAD),
                    server_id: tags_of(instance.as_ref(), tag::PROTECTED_SERVER),
                    execution_id: facts.execution_id.clone(),
                    status: facts.status.clone(),
                    failed_step,
                    reason: reason.clone(),
                    parameter: tags_of(instance.as_ref(), tag::BACKUP_PARAMETER),
                    parameter_image_id,
                    unused_image_id,
                });
                (event, ExecutionOutcome::Failed { reason })
            };
        let parameter_now = match tags_of(instance.as_ref(), tag::BACKUP_PARAMETER) {
            Some(p) if ha_domain::model::is_parameter_name(&p) => self.ports.backups.parameter(&p).await?,
            _ => None,
        };

        let image_id = match judge_execution(facts, &self.config.image_output) {
            ExecutionVerdict::Produced { image_id } => image_id,
            ExecutionVerdict::Failed { failed_step, reason } => {
                return Ok(failed(reason, failed_step, None, parameter_now))
            }
            ExecutionVerdict::Unfinished => {
                return Err(AwsFailure {
                    operation: "GetAutomationExecution",
                    code: "ExecutionNotFinal".into(),
                    message: format!("the event said final but the execution is {}", facts.status),
                    retry: Retry::CanHelp,
                }
                .into())
            }
        };
        // An earlier attempt adopted it and died before reporting: report what it did.
        let adopted_before = self.ports.ledger.adoption_of(&facts.execution_id).await?;
        let declared = match (live, declared, &adopted_before) {
            (_, _, Some(a)) => StatefulInstance {
                instance_id: instance_id.to_string(),
                vpc_id: None,
                architecture: None,
                workload: tags_of(instance.as_ref(), tag::WORKLOAD),
                server_id: tags_of(instance.as_ref(), tag::PROTECTED_SERVER),
                parameter: a.parameter.clone(),
                interval_seconds: None,
            },
            (Some(_), Some(Ok(d)), None) => d,
            (_, Some(Err(m)), None) => return Ok(failed(m.reason, None, Some(image_id), parameter_now)),
            _ => {
                let state = instance.as_ref().map_or("gone", |i| i.state.as_str());
                let reason = format!("instance {instance_id} is {state}; its backup {image_id} is not adopted");
                return Ok(failed(reason, None, Some(image_id), parameter_now));
            }
        };
        let image = match self.ports.backups.image(&image_id).await? {
            None => {
                return Ok(failed(format!("the AMI {image_id} it names does not exist"), None, None, parameter_now))
            }
            Some(i) if i.state != ImageState::Available => {
                let reason = format!("the AMI {image_id} is {}, not available", i.state.as_str());
                return Ok(failed(reason, None, Some(image_id), parameter_now));
            }
            Some(i) => i,
        };

        let taken_at = facts.started_at.unwrap_or_else(|| self.now());
        let completed_at = facts.ended_at.unwrap_or_else(|| self.now());
        let taken_at_text = format_timestamp(taken_at);
        let mut resources = vec![image_id.clone()];
        resources.extend(image.snapshot_ids.iter().cloned());
        let mut tags = vec![
            (tag::STACK, self.config.stack_name.as_str()),
            (tag::BACKUP_OF, instance_id),
            (tag::BACKUP_EXECUTION, facts.execution_id.as_str()),
            (tag::BACKUP_TAKEN_AT, taken_at_text.as_str()),
        ];
        if let Some(w) = &declared.workload {
            tags.push((tag::WORKLOAD, w.as_str()));
        }
        let backup = BackupImage {
            image_id: image_id.clone(),
            instance_id: instance_id.to_string(),
            taken_at,
            snapshot_ids: image.snapshot_ids.clone(),
        };

        let now_epoch = self.now().unix_timestamp();
        let lease = self.config.parameter_lease_seconds;
        if !self.ports.ledger.hold_parameter(&declared.parameter, owner, now_epoch, lease).await? {
            return Err(HandlerError::NotYet {
                reason: NotYet::ParameterHeld,
                detail: format!("another delivery is moving {}", declared.parameter),
            });
        }
        let adoption = match &adopted_before {
            Some(a) => self.readopt(a, &backup).await,
            None => self.adopt(&declared, &backup, &facts.execution_id).await,
        };
        self.ports.ledger.free_parameter(&declared.parameter, owner).await?;
        let (parameter_moved, parameter_before) = match adoption? {
            Adoption::Moved { previous } => (true, previous),
            Adoption::AlreadyThere => (false, Some(image_id.clone())),
            Adoption::KeepNewer { current } => (false, Some(current)),
            Adoption::Refused { why } => {
                let reason = format!("{why}: its backup {image_id} is kept, not adopted");
                return Ok(failed(reason, None, Some(image_id), parameter_now));
            }
        };
        // Tagged once adopted: the tags are what the tick measures a backup's age by.
        self.ports.backups.tag(&resources, &tags).await?;
        let in_use = if parameter_moved { Some(image_id.clone()) } else { parameter_before.clone() };
        let pruned = self.prune(instance_id, &backup, in_use.as_deref()).await?;

        let event = ProjectEvent::BackupCompleted(BackupCompleted {
            instance_id: instance_id.to_string(),
            workload: declared.workload.clone(),
            server_id: declared.server_id.clone(),
            execution_id: facts.execution_id.clone(),
            parameter: declared.parameter.clone(),
            image_id: image_id.clone(),
            snapshot_ids: image.snapshot_ids.clone(),
            taken_at: taken_at_text,
            completed_at: format_timestamp(completed_at),
            duration_seconds: (completed_at - taken_at).whole_seconds().max(0),
            backup_age_seconds: (self.now() - taken_at).whole_seconds().max(0),
            parameter_moved,
            previous_image_id: parameter_before,
            pruned: pruned.clone(),
        });
        let outcome = ExecutionOutcome::Completed {
            image_id,
            parameter_moved,
            pruned: pruned.into_iter().map(|p| p.image_id).collect(),
        };
        Ok((event, outcome))
    }

    /// Moves the parameter to `backup` unless it names a newer one or the backup is of a
    /// superseded copy; judged and written while this delivery holds the parameter. The
    /// ledger's record of the last move is the authority: SSM may not show a write yet.
    async fn adopt(
        &self,
        declared: &StatefulInstance,
        backup: &BackupImage,
        execution_id: &str,
    ) -> Result<Adoption, AwsFailure> {
        let parameter = declared.parameter.as_str();
        let record = self.ports.ledger.parameter_record(parameter).await?;
        if let Some(r) = record.as_ref().filter(|r| r.image_id == backup.image_id) {
            // Moved by an earlier attempt that died before it reported; write it again in
            // case that attempt died before PutParameter.
            self.put_parameter(parameter, backup).await?;
            return Ok(Adoption::Moved { previous: r.previous_image_id.clone() });
        }
        // Judged now, just before the write: the original may have been fenced, or its
        // replacement launched, since the backup ended.
        let instance = self.ports.backups.instance(&backup.instance_id).await?;
        let Some(instance) = instance.filter(|i| !i.state.is_gone()) else {
            return Ok(Adoption::Refused { why: format!("instance {} is gone", backup.instance_id) });
        };
        let replacements = match &declared.workload {
            Some(w) if instance.tags.get(tag::ROLE).map(String::as_str) != Some(tag::ROLE_REPLACEMENT) => {
                self.ports.fleet.replacements_of(w).await?
            }
            _ => Vec::new(),
        };
        if let Some(why) = superseded_copy(&instance, &replacements, backup.taken_at) {
            return Ok(Adoption::Refused { why: format!("{why}; it holds superseded data") });
        }
        // A replacement EC2 does not describe yet: the ledger knows the relaunch at once.
        let server =
            instance.server_id.as_deref().or(declared.server_id.as_deref()).and_then(|s| ServerId::parse(s).ok());
        if let (Some(w), Some(server), false) = (
            &declared.workload,
            server,
            instance.tags.get(tag::ROLE).map(String::as_str) == Some(tag::ROLE_REPLACEMENT),
        ) {
            if let Some(incident) = self.ports.ledger.relaunching(&server, w).await? {
                let why = format!(
                    "{} is an original on {server} and incident {incident} relaunched its workload; it holds superseded data",
                    backup.instance_id
                );
                return Ok(Adoption::Refused { why });
            }
        }
        let current = match &record {
            Some(r) => Some(ParameterValue {
                image_id: r.image_id.clone(),
                taken_at: time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(r.taken_ms) * 1_000_000).ok(),
            }),
            // Not moved since the ledger keeps records: what SSM names.
            None => match self.ports.backups.parameter(parameter).await? {
                Some(current) => {
                    let taken_at = self.ports.backups.image(&current).await?.and_then(|i| i.taken_at());
                    Some(ParameterValue { image_id: current, taken_at })
                }
                None => None,
            },
        };
        let previous = current.as_ref().map(|c| c.image_id.clone());
        let record = ParameterRecord {
            image_id: backup.image_id.clone(),
            taken_ms: (backup.taken_at.unix_timestamp_nanos() / 1_000_000) as i64,
            execution_id: execution_id.to_string(),
            previous_image_id: previous.clone(),
        };
        let now_epoch = self.now().unix_timestamp();
        let adopted = |moved: bool, previous: Option<String>| Adopted {
            parameter: parameter.to_string(),
            image_id: backup.image_id.clone(),
            moved,
            previous_image_id: previous,
        };
        let execution = execution_id;
        match decide_parameter_move(current.as_ref(), backup) {
            ParameterMove::Move => {
                if !self.ports.ledger.record_parameter(parameter, &record, now_epoch).await? {
                    warn!(%parameter, "a later backup was recorded meanwhile; the parameter is left there");
                    let newer = self.ports.ledger.parameter_record(parameter).await?.map(|r| r.image_id);
                    self.ports.ledger.record_adoption(execution, &adopted(false, newer.clone()), now_epoch).await?;
                    return Ok(Adoption::KeepNewer { current: newer.unwrap_or_default() });
                }
                self.ports.ledger.record_adoption(execution, &adopted(true, previous.clone()), now_epoch).await?;
                self.put_parameter(parameter, backup).await?;
                info!(%parameter, image_id = %backup.image_id, "parameter moved to the new backup");
                Ok(Adoption::Moved { previous })
            }
            ParameterMove::AlreadyThere => {
                let record = ParameterRecord { previous_image_id: None, ..record };
                self.ports.ledger.record_parameter(parameter, &record, now_epoch).await?;
                self.ports
                    .ledger
                    .record_adoption(execution, &adopted(false, Some(backup.image_id.clone())), now_epoch)
                    .await?;
                Ok(Adoption::AlreadyThere)
            }
            ParameterMove::KeepNewer { current } => {
                warn!(%current, "the parameter already names a newer backup; left there");
                self.ports.ledger.record_adoption(execution, &adopted(false, Some(current.clone())), now_epoch).await?;
                Ok(Adoption::KeepNewer { current })
            }
        }
    }

    /// What an earlier attempt adopted, again: the parameter written once more if the
    /// ledger still names this backup (that attempt may have died before the write).
    async fn readopt(&self, a: &Adopted, backup: &BackupImage) -> Result<Adoption, AwsFailure> {
        let still_newest =
            self.ports.ledger.parameter_record(&a.parameter).await?.is_some_and(|r| r.image_id == a.image_id);
        if a.moved && still_newest {
            self.put_parameter(&a.parameter, backup).await?;
        }
        Ok(match (a.moved, &a.previous_image_id) {
            (true, previous) => Adoption::Moved { previous: previous.clone() },
            (false, Some(current)) if *current != a.image_id => Adoption::KeepNewer { current: current.clone() },
            (false, _) => Adoption::AlreadyThere,
        })
    }

    /// Writes the parameter and waits, briefly, until SSM shows it: SSM validates an
    /// `aws:ec2:image` value after PutParameter answers, and the next holder must not
    /// write before this value is in place (two pending writes may land in either order).
    async fn put_parameter(&self, parameter: &str, backup: &BackupImage) -> Result<(), AwsFailure> {
        let description = format!("Newest good backup of {} (outposts-ha)", backup.instance_id);
        self.ports.backups.put_parameter(parameter, &backup.image_id, &description).await?;
        for wait_ms in PARAMETER_CHECKS_MS {
            if self.ports.backups.parameter(parameter).await?.as_deref() == Some(backup.image_id.as_str()) {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(wait_ms)).await;
        }
        Err(AwsFailure {
            operation: "PutParameter",
            code: "ParameterNotApplied".into(),
            message: format!("{parameter} does not name {} yet (SSM may have refused it)", backup.image_id),
            retry: Retry::CanHelp,
        })
    }

    /// Keeps the newest backups and the one in use; deregisters each other image before
    /// deleting its snapshots, and sweeps snapshots an interrupted prune left behind.
    async fn prune(
        &self,
        instance_id: &str,
        just_made: &BackupImage,
        in_use: Option<&str>,
    ) -> Result<Vec<PrunedBackup>, AwsFailure> {
        let mut backups = self.ports.backups.backups(Some(instance_id)).await?;
        // A listing right after tagging may not show the new backup yet.
        if !backups.iter().any(|b| b.image_id == just_made.image_id) {
            backups.push(just_made.clone());
        }
        let protected: Vec<&str> = in_use.into_iter().chain([just_made.image_id.as_str()]).collect();
        let prunable = choose_prunable(&backups, instance_id, self.config.keep, &protected);
        let mut pruned = Vec::new();
        for b in &prunable {
            self.ports.backups.deregister(&b.image_id).await?;
            for snapshot in &b.snapshot_ids {
                self.ports.backups.delete_snapshot(snapshot).await?;
            }
            info!(image_id = %b.image_id, snapshots = b.snapshot_ids.len(), "old backup pruned");
            pruned.push(PrunedBackup {
                image_id: b.image_id.clone(),
                snapshot_ids: b.snapshot_ids.clone(),
                taken_at: format_timestamp(b.taken_at),
            });
        }
        let kept: Vec<BackupImage> = backups.into_iter().filter(|b| !prunable.contains(b)).collect();
        for snapshot in orphan_snapshots(&self.ports.backups.tagged_snapshots(instance_id).await?, &kept) {
            warn!(snapshot_id = %snapshot, "deleting a backup snapshot whose image is gone");
            self.ports.backups.delete_snapshot(&snapshot).await?;
        }
        Ok(pruned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: [(&str, &str); 3] = [("LEDGER_TABLE", "t"), ("EVENT_BUS_NAME", "b"), ("STACK_NAME", "s")];

    #[test]
    fn defaults_are_the_published_runbook() {
        let c = Config::from_env(&EnvReader::from_pairs(&BASE)).unwrap();
        assert_eq!(c.document, DEFAULT_DOCUMENT);
        assert_eq!((c.instance_parameter.as_str(), c.subnet_parameter.as_str()), ("InstanceId", "SubnetId"));
        assert_eq!(c.image_output, "createAMIFromSnapshot.ImageId");
        assert_eq!((c.max_concurrent, c.keep, c.rpo_seconds), (10, 3, 86_400));
        assert_eq!(c.automation_role_arn, None);
        assert_eq!(c.helper_type_parameter, "TemporaryInstancesType");
        assert_eq!((c.helper_types.x86_64.as_str(), c.helper_types.arm64.as_str()), ("c5.large", "c6g.large"));
    }

    #[test]
    fn document_parameters_accept_strings_and_lists() {
        let mut pairs = BASE.to_vec();
        pairs.push((
            "BACKUP_DOCUMENT_PARAMETERS",
            r#"{"TemporaryInstancesType": "c6id.large", "Exclusions": ["/tmp", "/var/cache"]}"#,
        ));
        pairs.push(("BACKUP_SUBNET_PARAMETER", ""));
        let c = Config::from_env(&EnvReader::from_pairs(&pairs)).unwrap();
        assert_eq!(c.document_parameters["TemporaryInstancesType"], vec!["c6id.large"]);
        assert_eq!(c.document_parameters["Exclusions"], vec!["/tmp", "/var/cache"]);
        assert_eq!(c.subnet_parameter, "");
    }

    #[test]
    fn bad_configuration_names_the_variable() {
        for (name, value) in [
            ("BACKUP_DOCUMENT_PARAMETERS", "[1]"),
            ("BACKUP_DOCUMENT_PARAMETERS", r#"{"A": 5}"#),
            ("BACKUP_MAX_CONCURRENT", "100"),
            ("BACKUP_KEEP", "1"),
            ("PARAMETER_LEASE_SECONDS", "60"),
            ("BACKUP_RPO_SECONDS", "10"),
            ("BACKUP_AUTOMATION_ROLE_ARN", "my-role"),
            ("BACKUP_HELPER_TYPE_ARM64", "graviton"),
            ("BACKUP_HELPER_TYPE_ARM64", "c6i.large"),
            ("BACKUP_HELPER_TYPE_X86_64", "C5.large"),
            ("BACKUP_HELPER_TYPE_X86_64", "m7g.large"),
        ] {
            let mut pairs = BASE.to_vec();
            pairs.push((name, value));
            let err = Config::from_env(&EnvReader::from_pairs(&pairs)).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }
}
