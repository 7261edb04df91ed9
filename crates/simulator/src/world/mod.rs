//! An in-memory AWS world with AWS's documented semantics, behind the same ports as the
//! SDK adapters: DynamoDB conditional writes, EC2 ClientToken idempotency, eventual
//! consistency, instance lifecycle, API token buckets, load balancer health, the bus.
//! Every call takes virtual time (so a crash can land between any two of them) and may
//! fail as the schedule's faults say.

mod alarms;
mod backups;
mod bus;
mod ec2;
mod elb;
mod latency;
mod table;
mod witness;

pub use alarms::SimAlarms;
pub use backups::{time_of, Execution, ImageSource, SimBackups, SimRunbook, DOCUMENT, IMAGE_OUTPUT};
pub use bus::SimBus;
pub use ec2::{SimCapacity, SimFleet};
pub use elb::SimLoadBalancing;
pub use latency::{latency_of, Latency, LatencyModel, SdkRetry, Span, DELIVERY, LATENCIES, OTHER, THROTTLED};
pub use table::SimTable;
pub use witness::{witness_of_server, ProbeCommand, SimHooks, SimWitness, PROBE_DOCUMENT};

use ha_domain::error::{AwsFailure, Retry};
use ha_domain::model::{AttachedInterface, InstanceState, ServerId};
use ha_ports::backups::ImageFacts;
use ha_ports::table::Item;
use ha_ports::Clock;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// The stack every simulated function belongs to.
pub const STACK: &str = "sim";

/// The epoch the simulation's virtual clock starts at (2026-11-21T10:00:00Z).
pub const BASE_EPOCH_MS: i64 = 1_795_255_200_000;

/// What may go wrong, per call, in one schedule.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// A call fails before it takes effect (InternalError, ServiceUnavailable).
    pub transient: f64,
    /// A call takes effect but its answer is an error (the response was lost).
    pub lost_response: f64,
    /// A replacement EC2 accepted terminates while pending (capacity, KMS, pruned AMI).
    pub replacement_dies: f64,
    /// A running replacement is stopped later (by a person, a host failure).
    pub replacement_stops: f64,
    /// Originals whose termination is refused (termination protection).
    pub protected_originals: f64,
    /// How long an instance may stay invisible to Describe after RunInstances.
    pub visibility_lag_ms: u64,
    /// Calls scripted to fail: (API, its n-th call, counting from 1) with this code.
    pub scripted: Vec<(&'static str, u64, &'static str, Retry)>,
    /// A promotion hook's command ends Failed.
    pub hook_fails: f64,
    /// A dead server comes back without an original whose workload has a copy elsewhere
    /// (AWS replaced the box, or the original did not survive its restart): terminated.
    pub original_lost_on_return: f64,
    /// A promotion hook runs for minutes (1 to 30) instead of seconds: its server may be
    /// back before it ends.
    pub hook_slow: f64,
}

/// What a protected server is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerCondition {
    Up,
    /// The box died: its originals are gone with it.
    Dead,
    /// Only the service link is down: the box and its originals run on.
    Partitioned,
}

/// One EC2 instance.
#[derive(Debug, Clone)]
pub struct SimInstance {
    pub id: String,
    pub state: InstanceState,
    pub server: Option<ServerId>,
    pub subnet: String,
    pub vpc: String,
    pub interfaces: Vec<AttachedInterface>,
    pub tags: BTreeMap<String, String>,
    pub visible_at_ms: i64,
    pub protected: bool,
}

/// A launch template: its own tags (the workload's declaration) and the tags it gives
/// the instances launched from it.
#[derive(Debug, Clone)]
pub struct Template {
    pub name: String,
    /// The version its `$Default` resolves to.
    pub version: u32,
    pub tags: BTreeMap<String, String>,
    pub instance_tags: BTreeMap<String, String>,
    /// Its network interfaces (none: the launch names the subnet).
    pub interfaces: Vec<ha_ports::InterfaceSpec>,
}

/// A security group.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub vpc: String,
    /// The default allow-all egress rule is still there.
    pub egress_open: bool,
}

/// A target group: its registered targets, with when each was registered.
#[derive(Debug, Clone, Default)]
pub struct TargetGroupState {
    pub arn: String,
    pub targets: BTreeMap<String, i64>,
}

/// The token bucket of one API: capacity and refill per second, as EC2 documents them.
#[derive(Debug, Clone)]
pub struct Bucket {
    pub capacity: f64,
    pub refill_per_second: f64,
    pub tokens: f64,
    pub at_ms: i64,
}

impl Bucket {
    pub fn new(capacity: f64, refill_per_second: f64) -> Bucket {
        Bucket { capacity, refill_per_second, tokens: capacity, at_ms: 0 }
    }

    fn take(&mut self, now_ms: i64) -> bool {
        let elapsed = (now_ms - self.at_ms).max(0) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * self.refill_per_second).min(self.capacity);
        self.at_ms = now_ms;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// RunInstances' documented request bucket: capacity, refill per second.
pub const RUN_INSTANCES_BUCKET: (f64, f64) = (5.0, 2.0);

/// EC2's request-rate buckets ("Request throttling for the Amazon EC2 API"): each API
/// has its own bucket; non-mutating (Describe*) actions hold 100 tokens refilled at 20
/// per second, mutating actions 50 at 5 per second, RunInstances 5 at 2 per second (and
/// its resource bucket, 1,000 instances at 2 per second), TerminateInstances' resource
/// bucket 1,000 at 20 per second.
fn ec2_bucket(api: &str) -> Option<Bucket> {
    match api {
        "RunInstances" => Some(Bucket::new(RUN_INSTANCES_BUCKET.0, RUN_INSTANCES_BUCKET.1)),
        "RunInstances.resource" => Some(Bucket::new(1000.0, 2.0)),
        "TerminateInstances.resource" => Some(Bucket::new(1000.0, 20.0)),
        a if a.starts_with("Describe") => Some(Bucket::new(100.0, 20.0)),
        "CreateTags"
        | "DeleteTags"
        | "ModifyNetworkInterfaceAttribute"
        | "TerminateInstances"
        | "CreateSecurityGroup"
        | "RevokeSecurityGroupEgress" => Some(Bucket::new(50.0, 5.0)),
        _ => None,
    }
}

/// Something the world hands to the scheduler: an event on the project bus, an EC2
/// state-change notification.
#[derive(Debug, Clone)]
pub enum Outgoing {
    Project {
        event: Value,
        invocation: Option<String>,
    },
    Ec2StateChange {
        instance_id: String,
        state: InstanceState,
    },
    /// An instance moves to `to` after `after_ms` (EC2's own lifecycle).
    Transition {
        instance_id: String,
        to: InstanceState,
        after_ms: u64,
    },
    /// A backup runbook execution ends after `after_ms`.
    ExecutionEnds {
        execution_id: String,
        after_ms: u64,
    },
    /// A witness probe ends after `after_ms`.
    ProbeEnds {
        command_id: String,
        after_ms: u64,
    },
}

/// One event put on the bus, as the invariants read it.
#[derive(Debug, Clone)]
pub struct Put {
    pub detail_type: String,
    pub detail: Value,
    pub invocation: Option<String>,
    pub at_ms: i64,
    /// Its publisher may not know it was put (it crashed after, or the answer was lost):
    /// a second copy is the price of never losing one.
    pub ambiguous: bool,
}

pub struct World {
    pub rng: ChaCha8Rng,
    pub start: Instant,
    pub faults: Faults,
    pub table: BTreeMap<(String, String), Item>,
    /// When the ledger last saw each server (`SERVER#…`) come back (I11).
    pub seen_up_ms: BTreeMap<String, i64>,
    /// When each workload claim (`INCIDENT#…`, `WORKLOAD#…`) was last taken (I11).
    pub claimed_ms: BTreeMap<(String, String), i64>,
    pub templates: BTreeMap<String, Template>,
    /// Subnet → (server it lives on, VPC).
    pub subnets: BTreeMap<String, (ServerId, String)>,
    /// Subnets whose interfaces at device index 1 are local network interfaces.
    pub lni_subnets: BTreeSet<String>,
    pub servers_down: BTreeSet<ServerId>,
    /// Servers whose service link is down while the box runs (its originals still answer
    /// on the store network).
    pub partitioned: BTreeSet<ServerId>,
    /// Each server's box and link over time: (virtual ms, server, state).
    pub server_history: Vec<(i64, ServerId, ServerCondition)>,
    /// Witness probes by command id.
    pub probes: BTreeMap<String, ProbeCommand>,
    /// A probe address (an original's LNI address) → the server the original runs on.
    pub probe_hosts: BTreeMap<String, ServerId>,
    /// Subnets tagged `outposts-ha:backup-helper`: a Region subnet of each VPC (and one
    /// Outpost subnet tagged by mistake).
    pub helper_subnets: Vec<ha_domain::backup::HelperSubnet>,
    /// Each server alarm's state as CloudWatch holds it: in ALARM, since when (virtual ms).
    pub alarms: BTreeMap<ServerId, (bool, i64)>,
    pub instances: BTreeMap<String, SimInstance>,
    /// ClientToken → (launch parameters, instance).
    pub tokens: BTreeMap<String, (String, String)>,
    pub groups: BTreeMap<String, Group>,
    pub target_groups: BTreeMap<String, TargetGroupState>,
    pub parameters: BTreeMap<String, String>,
    /// PutParameter writes SSM has accepted but not applied yet: (applies at, name, value).
    pub pending_parameters: Vec<(i64, String, String)>,
    pub images: BTreeMap<String, ImageFacts>,
    /// Snapshot → its tags.
    pub snapshots: BTreeMap<String, BTreeMap<String, String>>,
    /// Backup AMIs the runbook made: whose data, from when.
    pub image_sources: BTreeMap<String, ImageSource>,
    pub executions: BTreeMap<String, Execution>,
    /// Originals put back in service: when (virtual ms).
    pub unfenced_at: BTreeMap<String, i64>,
    /// StartAutomationExecution ClientToken → (request, execution).
    pub runbook_tokens: BTreeMap<String, (String, String)>,
    pub buckets: BTreeMap<String, Bucket>,
    pub outbox: Vec<Outgoing>,
    pub puts: Vec<Put>,
    pub trace: Vec<String>,
    pub violations: Vec<String>,
    pub calls: BTreeMap<&'static str, u64>,
    pub throttled: u64,
    /// RunInstances accepted: (incident, workload, virtual ms).
    pub launches: Vec<(String, String, i64)>,
    /// The dispatch benchmark's fixed latencies (every other schedule draws them).
    pub latency: Option<LatencyModel>,
    /// Under a latency model: every call attempt and delivery, timed.
    pub spans: Vec<Span>,
    /// Under a latency model with the Rust SDK's retries: its retry quota.
    pub retry_quota: i64,
    next_id: u64,
}

impl World {
    pub fn new(rng: ChaCha8Rng, faults: Faults) -> World {
        World {
            rng,
            start: Instant::now(),
            faults,
            table: BTreeMap::new(),
            seen_up_ms: BTreeMap::new(),
            claimed_ms: BTreeMap::new(),
            templates: BTreeMap::new(),
            subnets: BTreeMap::new(),
            lni_subnets: BTreeSet::new(),
            servers_down: BTreeSet::new(),
            partitioned: BTreeSet::new(),
            server_history: Vec::new(),
            probes: BTreeMap::new(),
            probe_hosts: BTreeMap::new(),
            helper_subnets: [
                ("subnet-region-store", "vpc-store", false),
                ("subnet-region-standby", "vpc-standby", false),
            ]
            .into_iter()
            // Tagged by mistake: an Outpost's subnet is never the helper's.
            .chain([("subnet-outpost-tagged", "vpc-standby", true)])
            .map(|(subnet, vpc, on_outpost)| ha_domain::backup::HelperSubnet {
                subnet_id: subnet.into(),
                vpc_id: vpc.into(),
                on_outpost,
            })
            .collect(),
            alarms: BTreeMap::new(),
            instances: BTreeMap::new(),
            tokens: BTreeMap::new(),
            groups: BTreeMap::new(),
            target_groups: BTreeMap::new(),
            parameters: BTreeMap::new(),
            pending_parameters: Vec::new(),
            images: BTreeMap::new(),
            snapshots: BTreeMap::new(),
            image_sources: BTreeMap::new(),
            executions: BTreeMap::new(),
            unfenced_at: BTreeMap::new(),
            runbook_tokens: BTreeMap::new(),
            buckets: BTreeMap::new(),
            outbox: Vec::new(),
            puts: Vec::new(),
            trace: Vec::new(),
            violations: Vec::new(),
            calls: BTreeMap::new(),
            throttled: 0,
            launches: Vec::new(),
            latency: None,
            spans: Vec::new(),
            retry_quota: latency::RETRY_QUOTA,
            next_id: 1,
        }
    }

    /// Virtual milliseconds since the epoch.
    pub fn now_ms(&self) -> i64 {
        BASE_EPOCH_MS + Instant::now().duration_since(self.start).as_millis() as i64
    }

    pub fn next_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{:017x}", self.next_id)
    }

    pub fn note(&mut self, line: String) {
        let at = (self.now_ms() - BASE_EPOCH_MS) as f64 / 1000.0;
        self.trace.push(format!("{at:>9.3}s {line}"));
    }

    pub fn violation(&mut self, what: String) {
        self.note(format!("VIOLATION {what}"));
        self.violations.push(what);
    }

    fn take_token(&mut self, api: &str) -> bool {
        let now = self.now_ms();
        match self.buckets.get_mut(api) {
            Some(b) => b.take(now),
            None => match ec2_bucket(api) {
                Some(mut b) => {
                    b.at_ms = now;
                    let ok = b.take(now);
                    self.buckets.insert(api.to_string(), b);
                    ok
                }
                None => true,
            },
        }
    }

    /// Every instance Describe sees now (a just-launched one may not be visible yet).
    pub fn described(&self) -> impl Iterator<Item = &SimInstance> {
        let now = self.now_ms();
        self.instances.values().filter(move |i| i.visible_at_ms <= now)
    }

    /// Network interfaces for a new instance: a primary one and, with `lni`, a local network
    /// interface at index 1, each in `groups`.
    pub fn new_interfaces(instance_id: &str, lni: bool, groups: &[String]) -> Vec<AttachedInterface> {
        (0..if lni { 2 } else { 1 })
            .map(|device_index| AttachedInterface {
                interface_id: format!("eni-{}-{device_index}", instance_id.trim_start_matches("i-")),
                device_index,
                groups: groups.to_vec(),
            })
            .collect()
    }

    /// Whether every network interface of the instance is in quarantine groups only.
    pub fn is_isolated(&self, i: &SimInstance) -> bool {
        !i.interfaces.is_empty()
            && i.interfaces.iter().all(|n| !n.groups.is_empty() && n.groups.iter().all(|g| self.is_quarantine(g)))
    }

    /// Whether the group is a quarantine group (fencing's, by its name).
    /// The security group of that name in the VPC (names are unique in a VPC).
    pub fn group_named(&self, name: &str, vpc_id: &str) -> Option<(&str, &Group)> {
        self.groups.iter().find(|(_, g)| g.name == name && g.vpc == vpc_id).map(|(id, g)| (id.as_str(), g))
    }

    pub fn is_quarantine(&self, group_id: &str) -> bool {
        self.groups.get(group_id).is_some_and(|g| g.name.ends_with("-quarantine"))
    }

    /// The instance as Describe sees it now (a just-launched one may not be visible yet).
    pub fn visible(&self, id: &str) -> Option<&SimInstance> {
        let now = self.now_ms();
        self.instances.get(id).filter(|i| i.visible_at_ms <= now)
    }

    /// EC2 moves an instance to `to`, and says so on the default bus.
    pub fn transition(&mut self, id: &str, to: InstanceState) {
        let Some(i) = self.instances.get_mut(id) else { return };
        if i.state == to || i.state == InstanceState::Terminated {
            return;
        }
        i.state = to.clone();
        self.note(format!("{id} is {}", to.as_str()));
        self.outbox.push(Outgoing::Ec2StateChange { instance_id: id.to_string(), state: to });
    }

    pub fn instance_view(i: &SimInstance) -> ha_domain::model::Instance {
        ha_domain::model::Instance {
            instance_id: i.id.clone(),
            state: i.state.clone(),
            server_id: i.server.as_ref().map(ToString::to_string),
            vpc_id: Some(i.vpc.clone()),
            private_ip: Some(format!("10.0.{}.{}", i.id.len() % 250, i.id.as_bytes()[i.id.len() - 1])),
            interfaces: i.interfaces.clone(),
            tags: i.tags.clone(),
        }
    }
}

/// The world, shared by every port and the scheduler.
pub struct Sim {
    world: Mutex<World>,
    /// Wakes the scheduler when something may have reached the outbox.
    pub wake: tokio::sync::Notify,
}

pub fn failure(operation: &'static str, code: &str, retry: Retry) -> AwsFailure {
    AwsFailure { operation, code: code.to_string(), message: format!("simulated {code}"), retry }
}

impl Sim {
    pub fn new(world: World) -> Arc<Sim> {
        Arc::new(Sim { world: Mutex::new(world), wake: tokio::sync::Notify::new() })
    }

    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A call's way in: its latency, the API's token bucket, an injected fault.
    pub async fn enter(&self, api: &'static str) -> Result<(), AwsFailure> {
        self.enter_labelled(api, None).await
    }

    /// `enter`, with what the call is about (a table item's key) for the timed spans of a
    /// latency model; without one, the same as `enter`.
    pub async fn enter_labelled(&self, api: &'static str, label: Option<String>) -> Result<(), AwsFailure> {
        let model = self.world().latency.clone();
        if let Some(model) = model {
            return self.enter_modelled(api, label, &model).await;
        }
        let latency = self.world().rng.gen_range(3..40);
        tokio::time::sleep(Duration::from_millis(latency)).await;
        let mut w = self.world();
        let n = {
            let n = w.calls.entry(api).or_default();
            *n += 1;
            *n
        };
        if let Some((_, _, code, retry)) = w.faults.scripted.iter().find(|(a, nth, _, _)| *a == api && *nth == n) {
            let (code, retry) = (*code, *retry);
            w.note(format!("{api} #{n} fails (scripted {code})"));
            return Err(failure(api, code, retry));
        }
        if !w.take_token(api) {
            w.throttled += 1;
            return Err(failure(api, "RequestLimitExceeded", Retry::CanHelp));
        }
        let p = w.faults.transient;
        if p > 0.0 && w.rng.gen_bool(p) {
            w.note(format!("{api} #{n} fails (InternalError)"));
            return Err(failure(api, "InternalError", Retry::CanHelp));
        }
        Ok(())
    }

    /// Under a latency model: the bucket is asked on arrival (a refusal comes back at once),
    /// an accepted call takes its whole round trip before it takes effect (so `leave` adds
    /// nothing), and a throttled call is retried as the caller's SDK would.
    async fn enter_modelled(
        &self,
        api: &'static str,
        label: Option<String>,
        model: &LatencyModel,
    ) -> Result<(), AwsFailure> {
        let mut attempt = 1;
        // The retry quota a retry holds until it succeeds (the Rust SDK's permit).
        let mut held = 0;
        loop {
            let (start, refused) = {
                let mut w = self.world();
                let n = {
                    let n = w.calls.entry(api).or_default();
                    *n += 1;
                    *n
                };
                if let Some((_, _, code, retry)) =
                    w.faults.scripted.iter().find(|(a, nth, _, _)| *a == api && *nth == n)
                {
                    let (code, retry) = (*code, *retry);
                    w.note(format!("{api} #{n} fails (scripted {code})"));
                    return Err(failure(api, code, retry));
                }
                let refused = !w.take_token(api);
                if refused {
                    w.throttled += 1;
                }
                (w.now_ms(), refused)
            };
            let took = if refused { model.throttled_ms } else { latency_of(api) };
            tokio::time::sleep(Duration::from_millis(took)).await;
            let wait = {
                let mut w = self.world();
                let end = w.now_ms();
                let mut what = label.as_ref().map_or_else(|| api.to_string(), |l| format!("{api} {l}"));
                if attempt > 1 {
                    what.push_str(&format!(" (attempt {attempt})"));
                }
                w.spans.push(Span { what, start_ms: start, end_ms: end, throttled: refused });
                let rust = matches!(model.sdk, SdkRetry::RustStandard { .. });
                if !refused {
                    if held > 0 {
                        w.retry_quota += held;
                    } else if rust && attempt == 1 {
                        w.retry_quota = (w.retry_quota + 1).min(latency::RETRY_QUOTA);
                    }
                    let p = w.faults.transient;
                    if p > 0.0 && w.rng.gen_bool(p) {
                        w.note(format!("{api} fails (InternalError)"));
                        return Err(failure(api, "InternalError", Retry::CanHelp));
                    }
                    return Ok(());
                }
                let out_of_quota = rust && w.retry_quota < latency::RETRY_COST;
                if attempt >= model.sdk.max_attempts() || out_of_quota {
                    // The operation ends: the permit its last retry held goes back.
                    w.retry_quota += held;
                    let why = match (model.sdk, out_of_quota) {
                        (SdkRetry::None, _) => "no SDK retry",
                        (_, true) => "the SDK's retry quota is spent",
                        (_, false) => "the SDK's attempts are spent",
                    };
                    w.note(format!("{api} throttled and not retried: {why}"));
                    return Err(failure(api, "RequestLimitExceeded", Retry::CanHelp));
                }
                if rust {
                    // A new permit replaces (and forgets) the one the last retry held.
                    w.retry_quota -= latency::RETRY_COST;
                    held = latency::RETRY_COST;
                }
                let ceiling = model.sdk.backoff_ceiling_ms(attempt);
                (w.rng.gen::<f64>() * ceiling as f64) as u64
            };
            tokio::time::sleep(Duration::from_millis(wait)).await;
            attempt += 1;
        }
    }

    /// A call's way out after it took effect: the answer's latency, and maybe its loss.
    pub async fn leave(&self, api: &'static str) -> Result<(), AwsFailure> {
        self.wake.notify_one();
        if self.world().latency.is_some() {
            // The round trip was taken on the way in.
            let lost = {
                let mut w = self.world();
                let p = w.faults.lost_response;
                p > 0.0 && w.rng.gen_bool(p)
            };
            if lost {
                self.world().note(format!("{api} took effect but its answer was lost"));
                return Err(failure(api, "RequestTimeout", Retry::CanHelp));
            }
            return Ok(());
        }
        let (latency, lost) = {
            let mut w = self.world();
            let p = w.faults.lost_response;
            (w.rng.gen_range(2..30), p > 0.0 && w.rng.gen_bool(p))
        };
        tokio::time::sleep(Duration::from_millis(latency)).await;
        if lost {
            self.world().note(format!("{api} took effect but its answer was lost"));
            return Err(failure(api, "RequestTimeout", Retry::CanHelp));
        }
        Ok(())
    }
}

/// The virtual clock every handler reads.
pub struct SimClock(pub Arc<Sim>);

impl Clock for SimClock {
    fn now(&self) -> time::OffsetDateTime {
        let ms = self.0.world().now_ms();
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).expect("in range")
    }
}
