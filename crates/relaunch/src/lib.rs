//! relaunch: the incident's hands. One module per job, chosen once at the edge
//! ([`Request`]): `launch` every workload of an incident concurrently (bounded, priority
//! order, exactly once per (incident, workload), fallback destinations), `serve` a running
//! replacement behind its target groups, `drill` a server's workloads, `fence` the
//! originals when the server comes back. No polling; the one wait is RunInstances pacing.

mod drill;
mod fence;
mod launch;
mod lost;
mod report;
mod request;
mod restore;
mod serve;
mod standby;
mod witness;

pub use drill::{DrillReport, FleetDrillReport};
pub use fence::FenceReport;
pub use launch::LaunchReport;
pub use lost::LostReport;
pub use request::Request;
pub use serve::ServeReport;
pub use standby::{HookFinished, PromotionOutcome, PromotionReport, StandbyReport};
pub use witness::{ProbeFinished, COMMAND_STATUS_CHANGE};

use ha_aws::invocation::HandlerError;
use ha_domain::config::{ConfigError, EnvReader, IncidentStore};
use ha_domain::error::AwsFailure;
use ha_domain::fencing::FencingPolicy;
use ha_domain::partition::{WaveBreaker, WhenUnconfirmed};
use ha_ports::{
    AlarmStates, BackupCatalog, Bus, CapacityProbe, Clock, Fleet, Ledger, LoadBalancing, PromotionHooks, Witness,
};
use ha_ports::{LaunchRequest, Launched};
use serde::Serialize;
use serde_json::Value;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tracing::{info, warn, Instrument};

#[derive(Debug, Clone)]
pub struct Config {
    pub store: IncidentStore,
    /// Workloads one invocation works on at once (claim, reads, RunInstances).
    pub launch_concurrency: usize,
    /// RunInstances calls started at once, then per second: the account's RunInstances
    /// request bucket (EC2's default: 5, refilled at 2 per second).
    pub run_instances_burst: usize,
    pub run_instances_per_second: usize,
    /// How long a claim (or a fact being told) is held before another delivery may take it
    /// over: longer than the function's timeout, so a live claimant is never overtaken, and
    /// shorter than the timeout plus Lambda's first retry delay (about a minute), so the
    /// retry of a claimant that timed out takes its work over.
    pub claim_lease_seconds: i64,
    /// The `Stack` dimension of the metrics this function publishes.
    pub stack_name: String,
    /// What happens to originals of replaced workloads when their server comes back,
    /// unless a launch template's `outposts-ha:fencing` tag says otherwise.
    pub fencing_policy: FencingPolicy,
    /// The stack's probe document (SSM Run Command) a witness runs.
    pub witness_document: String,
    /// What happens to a workload that would be held when the witness cannot say.
    pub when_unconfirmed: WhenUnconfirmed,
    /// How long a probe may run before the witness counts as unavailable.
    pub witness_timeout_seconds: i64,
    /// More servers than this down within its window are a wave (WAN or regional event).
    pub wave_breaker: WaveBreaker,
    /// The stack's server alarms (for the wave), by name prefix.
    pub alarm_name_prefix: String,
    /// How long after detection the failover is reported even if workloads are unsettled.
    pub failover_report_seconds: i64,
}

impl Config {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &EnvReader<F>) -> Result<Self, ConfigError> {
        Ok(Config {
            store: IncidentStore::from_env(env)?,
            launch_concurrency: env.number("LAUNCH_CONCURRENCY", 10, 1..=100, "expected 1 to 100")?,
            run_instances_burst: env.number("RUN_INSTANCES_BURST", 5, 1..=1000, "expected 1 to 1000")?,
            run_instances_per_second: env.number("RUN_INSTANCES_PER_SECOND", 2, 1..=1000, "expected 1 to 1000")?,
            claim_lease_seconds: env.number(
                "CLAIM_LEASE_SECONDS",
                150,
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
            witness_document: env.optional("WITNESS_DOCUMENT", "outposts-ha-witness-probe"),
            when_unconfirmed: {
                let text = env.optional("WHEN_WITNESS_UNAVAILABLE", "relaunch");
                WhenUnconfirmed::parse(&text).map_err(|_| ConfigError::Malformed {
                    name: "WHEN_WITNESS_UNAVAILABLE",
                    value: text,
                    expected: "expected relaunch or hold",
                })?
            },
            witness_timeout_seconds: env.number(
                "WITNESS_TIMEOUT_SECONDS",
                240,
                30..=3600,
                "expected seconds from 30 to 3600",
            )?,
            wave_breaker: {
                let servers =
                    env.number::<usize>("MASS_OUTAGE_SERVERS", 5, 1..=10_000, "expected 1 to 10000 servers")?;
                let minutes =
                    env.number::<i64>("MASS_OUTAGE_WINDOW_MINUTES", 15, 1..=1440, "expected 1 to 1440 minutes")?;
                WaveBreaker::new(servers, minutes).map_err(|e| ConfigError::Malformed {
                    name: "MASS_OUTAGE_SERVERS",
                    value: e.to_string(),
                    expected: "a threshold of at least 1 and a window of 1 to 1440 minutes",
                })?
            },
            alarm_name_prefix: env.optional("ALARM_NAME_PREFIX", "outposts-ha-"),
            failover_report_seconds: 60
                * env.number::<i64>("FAILOVER_REPORT_MINUTES", 15, 1..=1440, "expected 1 to 1440 minutes")?,
        })
    }
}

/// What one invocation did: one report per job.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum Response {
    Launch(LaunchReport),
    Serve(ServeReport),
    Drill(DrillReport),
    FleetDrill(FleetDrillReport),
    Fence(FenceReport),
    Lost(LostReport),
    Standbys(StandbyReport),
    Promotion(PromotionReport),
    Ignored { reason: String },
}

impl Response {
    pub fn as_launch(&self) -> Option<&LaunchReport> {
        match self {
            Response::Launch(r) => Some(r),
            _ => None,
        }
    }

    pub fn as_drill(&self) -> Option<&DrillReport> {
        match self {
            Response::Drill(r) => Some(r),
            _ => None,
        }
    }

    pub fn as_fence(&self) -> Option<&FenceReport> {
        match self {
            Response::Fence(r) => Some(r),
            _ => None,
        }
    }

    /// Why nothing was done, when nothing was.
    pub fn ignored(&self) -> Option<&str> {
        match self {
            Response::Ignored { reason } => Some(reason),
            _ => None,
        }
    }
}

/// The ports every job acts through.
#[derive(Clone)]
pub struct Ports {
    pub ledger: Ledger,
    pub fleet: Arc<dyn Fleet>,
    pub backups: Arc<dyn BackupCatalog>,
    pub capacity: Arc<dyn CapacityProbe>,
    pub load_balancing: Arc<dyn LoadBalancing>,
    pub bus: Arc<dyn Bus>,
    pub clock: Arc<dyn Clock>,
    pub witness: Arc<dyn Witness>,
    pub alarms: Arc<dyn AlarmStates>,
    pub hooks: Arc<dyn PromotionHooks>,
}

/// The SDK clients relaunch's AWS ports are built on.
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub events: aws_sdk_eventbridge::Client,
}

impl Clients {
    pub fn new(sdk: &aws_config::SdkConfig) -> Clients {
        Clients {
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            ec2: aws_sdk_ec2::Client::new(sdk),
            ssm: aws_sdk_ssm::Client::new(sdk),
            cloudwatch: aws_sdk_cloudwatch::Client::new(sdk),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(sdk),
            events: aws_sdk_eventbridge::Client::new(sdk),
        }
    }
}

impl Ports {
    pub fn aws(config: &Config, c: Clients) -> Ports {
        Ports {
            ledger: ha_aws::ledger::ledger_of_store(c.dynamodb, &config.store),
            backups: Arc::new(ha_aws::backups::BackupStore::new(c.ec2.clone(), c.ssm.clone(), &config.stack_name)),
            witness: Arc::new(ha_aws::witness::SsmWitness::new(c.ec2.clone(), c.ssm.clone(), &config.witness_document)),
            hooks: Arc::new(ha_aws::promotion::SsmPromotionHooks::new(c.ssm)),
            alarms: Arc::new(ha_aws::alarms::CloudWatchAlarms::new(c.cloudwatch.clone())),
            capacity: Arc::new(ha_aws::capacity::Ec2CapacityProbe::new(c.ec2.clone(), c.cloudwatch)),
            load_balancing: Arc::new(ha_aws::serving::ElbLoadBalancing::new(c.elb)),
            fleet: Arc::new(ha_aws::fleet::Ec2Fleet::new(c.ec2)),
            bus: Arc::new(ha_aws::bus::EventBridgeBus::of_store(c.events, &config.store)),
            clock: Arc::new(ha_ports::SystemClock),
        }
    }
}

pub struct Relaunch {
    config: Config,
    ports: Ports,
    /// Paces this process's RunInstances calls to the account's request bucket: a burst
    /// beyond it is refused (RequestLimitExceeded) and the SDK's backoff leaves the bucket
    /// idle while calls wait, so 100 launches took twice the bucket's own pace. Started at
    /// the first call (full, as the account's bucket is when relaunch is its only user).
    run_instances: OnceLock<leaky_bucket::RateLimiter>,
}

impl Relaunch {
    pub fn new(config: Config, sdk: &aws_config::SdkConfig) -> Self {
        Self::from_clients(config, Clients::new(sdk))
    }

    pub fn from_clients(config: Config, clients: Clients) -> Self {
        let ports = Ports::aws(&config, clients);
        Self::with_ports(config, ports)
    }

    pub fn with_ports(config: Config, ports: Ports) -> Self {
        Relaunch { config, ports, run_instances: OnceLock::new() }
    }

    fn pacer(&self) -> &leaky_bucket::RateLimiter {
        self.run_instances.get_or_init(|| {
            let per_second = self.config.run_instances_per_second.max(1) as u64;
            leaky_bucket::RateLimiter::builder()
                .max(self.config.run_instances_burst)
                .initial(self.config.run_instances_burst)
                .refill(1)
                // Whole milliseconds, rounded up: never faster than the bucket refills.
                .interval(Duration::from_millis(1000_u64.div_ceil(per_second)))
                .build()
        })
    }

    /// A RunInstances token taken at once, if the bucket has one.
    fn try_pace(&self) -> bool {
        self.pacer().try_acquire(1)
    }

    /// Waits for a RunInstances token.
    async fn pace(&self) {
        self.pacer().acquire_one().await
    }

    /// One RunInstances, when the request bucket has a token for it.
    async fn run_instances(&self, request: &LaunchRequest<'_>) -> Result<Launched, AwsFailure> {
        self.pace().await;
        self.ports.fleet.launch(request).await
    }

    /// `invocation_id` identifies this attempt as a claim owner (the Lambda request id).
    pub async fn handle(&self, event: Value, invocation_id: &str) -> Result<Response, HandlerError> {
        if event.get("detail-type").and_then(Value::as_str) == Some(COMMAND_STATUS_CHANGE) {
            let Some(probe) = ProbeFinished::parse(&event, &self.config.witness_document) else {
                if let Some(hook) = HookFinished::parse(&event, &self.config.witness_document) {
                    let span =
                        tracing::info_span!("hook", command_id = %hook.command_id, instance_id = %hook.instance_id);
                    return self.hook_finished(hook, invocation_id).instrument(span).await;
                }
                info!("not a finished probe or promotion hook; ignored");
                return Ok(Response::Ignored { reason: "not a finished probe or promotion hook".into() });
            };
            let span =
                tracing::info_span!("probe_finished", incident_id = %probe.incident_id, command_id = %probe.command_id);
            return self.probe_finished(probe, invocation_id).instrument(span).await;
        }
        match Request::parse(event) {
            Request::Launch(r) => {
                let span = tracing::info_span!("relaunch", incident_id = %r.incident_id, server_id = %r.server_id);
                self.launch(r, invocation_id).instrument(span).await.map(Response::Launch)
            }
            Request::Serve { instance_id } => {
                let span = tracing::info_span!("serve", instance_id = %instance_id);
                self.serve(&instance_id, invocation_id).instrument(span).await
            }
            Request::Drill(r) => {
                let span = tracing::info_span!("drill", server_id = %r.server_id);
                self.drill(r).instrument(span).await
            }
            Request::FleetDrill(r) => {
                let span = tracing::info_span!("fleet_drill", requested_at = %r.requested_at);
                self.fleet_drill(r, invocation_id).instrument(span).await
            }
            Request::Lost { instance_id, state } => {
                let span = tracing::info_span!("lost", instance_id = %instance_id);
                self.lost(&instance_id, state, invocation_id).instrument(span).await
            }
            Request::Fence(r) => {
                let span = tracing::info_span!("fence", incident_id = %r.incident_id, server_id = %r.server_id);
                self.fence(r, invocation_id).instrument(span).await
            }
            Request::ReconcileStandbys(r) => {
                let span = tracing::info_span!("reconcile_standbys", requested_at = %r.requested_at);
                self.reconcile_standbys(r, invocation_id).instrument(span).await
            }
            Request::Promoted(p) => {
                let span = tracing::info_span!("promoted", incident_id = %p.incident_id, workload = %p.workload, instance_id = %p.instance_id);
                self.standby_promoted(p, invocation_id).instrument(span).await
            }
            Request::Ignore(reason) => {
                info!(%reason, "nothing for relaunch; ignored");
                Ok(Response::Ignored { reason })
            }
            Request::Malformed(reason) => {
                warn!(%reason, "rejected a malformed request");
                Ok(Response::Ignored { reason: format!("malformed: {reason}") })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_bounds_are_enforced_with_the_variable_named() {
        let base = [("LEDGER_TABLE", "t"), ("EVENT_BUS_NAME", "b")];
        let c = Config::from_env(&EnvReader::from_pairs(&base)).unwrap();
        assert_eq!((c.launch_concurrency, c.claim_lease_seconds), (10, 150));
        // EC2's documented RunInstances request bucket.
        assert_eq!((c.run_instances_burst, c.run_instances_per_second), (5, 2));
        for (name, value) in [
            ("LAUNCH_CONCURRENCY", "0"),
            ("LAUNCH_CONCURRENCY", "ten"),
            ("CLAIM_LEASE_SECONDS", "5"),
            ("RUN_INSTANCES_BURST", "0"),
            ("RUN_INSTANCES_PER_SECOND", "1001"),
        ] {
            let mut pairs = base.to_vec();
            pairs.push((name, value));
            let err = Config::from_env(&EnvReader::from_pairs(&pairs)).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }
}
