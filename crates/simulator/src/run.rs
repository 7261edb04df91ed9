//! The scheduler: one schedule on a single-threaded runtime with tokio's paused clock, so
//! virtual time jumps to the next timer and every interleaving comes from the seed. The
//! real handlers run against the world; EventBridge delivers at least once (duplicates,
//! delays, reordering), Lambda retries an asynchronous invocation as the template
//! configures it and then gives up to the failed-events queue, and an invocation may die at
//! any await point.

use crate::invariants;
use crate::scenario::{Action, Responder, Scenario, StandbyStart, MINUTE};
use crate::template::{Function, TemplateFacts};
use crate::world::{
    time_of, Bucket, Outgoing, ServerCondition, Sim, SimAlarms, SimBackups, SimBus, SimCapacity, SimClock, SimFleet,
    SimHooks, SimInstance, SimLoadBalancing, SimRunbook, SimTable, SimWitness, Span, Template, World, BASE_EPOCH_MS,
    DOCUMENT, IMAGE_OUTPUT, PROBE_DOCUMENT, STACK,
};
use ha_domain::config::IncidentStore;
use ha_domain::fencing::FencingPolicy;
use ha_domain::model::{tag, InstanceState};
use ha_domain::partition::{WaveBreaker, WhenUnconfirmed};
use ha_domain::timefmt::format_timestamp;
use ha_ports::backups::ImageFacts;
use ha_ports::{Clock, Ledger};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// What one schedule did and what it broke.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub seed: u64,
    pub name: String,
    pub violations: Vec<String>,
    pub trace: Vec<String>,
    pub invocations: u64,
    pub dead_letters: usize,
    pub calls: u64,
    pub throttled: u64,
    /// Virtual ms from each server's alarm to each RunInstances its incident made.
    pub alarm_to_launch_ms: Vec<i64>,
    /// Virtual ms from the first alarm to each workload told serving: (workload, ms).
    pub alarm_to_serving_ms: Vec<(String, i64)>,
    pub incidents: usize,
    pub virtual_ms: i64,
    /// Backups that ended well and were kept from the parameter: their instance was a
    /// fenced or replaced original.
    pub superseded_backups: usize,
    /// Originals told partly isolated (isolating one interface failed for good).
    pub partly_isolated: usize,
    /// Backups told as refused at their start.
    pub not_started_told: usize,
    /// Parameter writes.
    pub parameter_moves: u64,
    /// Workloads told held (by their incident's witness verdict).
    pub held_told: usize,
    /// Waves of outages told.
    pub waves_told: usize,
    /// Originals kept beside their replacement on return (both may hold writes).
    pub kept_both: usize,
    /// Failover reports told, and of those, told with every workload settled.
    pub failovers_told: usize,
    pub failovers_complete: usize,
    /// Originals an operator's fail-back put back to move their workload home.
    pub moving_home: usize,
    /// Under a latency model: every call attempt and delivery, timed (epoch ms).
    pub spans: Vec<Span>,
    /// When the first server's alarm went to ALARM (epoch ms).
    pub first_alarm_ms: Option<i64>,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Everything a schedule's tasks share.
pub(crate) struct Ctx {
    pub sim: Arc<Sim>,
    pub facts: TemplateFacts,
    pub scenario: Scenario,
    pending: Cell<usize>,
    invocations: Cell<u64>,
    per_function: RefCell<BTreeMap<&'static str, u64>>,
    per_detail_type: RefCell<BTreeMap<String, u64>>,
    pub dead_letters: RefCell<Vec<(Function, Value)>>,
    /// Per server: is its alarm in ALARM, and when did it last change.
    pub alarm_down: RefCell<Vec<bool>>,
    pub alarm_times: RefCell<Vec<Vec<(bool, i64)>>>,
    /// Scheduled rules tick until this virtual time (epoch ms).
    pub ticks_until_ms: Cell<i64>,
}

fn store() -> IncidentStore {
    IncidentStore { ledger_table: "ledger".into(), event_bus_name: "bus".into(), retention_days: 90 }
}

impl Ctx {
    fn ledger(&self) -> Ledger {
        Ledger::new(Arc::new(SimTable(self.sim.clone())), 90)
    }

    fn clock(&self) -> Arc<dyn Clock> {
        Arc::new(SimClock(self.sim.clone()))
    }

    fn note(&self, line: String) {
        self.sim.world().note(line);
    }

    fn now_ms(&self) -> i64 {
        self.sim.world().now_ms()
    }

    fn draw(&self, p: f64) -> bool {
        p > 0.0 && self.sim.world().rng.gen_bool(p)
    }

    fn range(&self, low: u64, high: u64) -> u64 {
        self.sim.world().rng.gen_range(low..high)
    }

    fn spawn(self: &Rc<Self>, after_ms: u64, work: impl std::future::Future<Output = ()> + 'static) {
        self.pending.set(self.pending.get() + 1);
        let ctx = self.clone();
        tokio::task::spawn_local(async move {
            tokio::time::sleep(Duration::from_millis(after_ms)).await;
            work.await;
            ctx.pending.set(ctx.pending.get() - 1);
            ctx.sim.wake.notify_one();
        });
    }

    /// Runs one invocation of a function on the real handler.
    async fn call(&self, f: Function, event: Value, id: &str) -> Result<String, String> {
        let bus = Arc::new(SimBus { sim: self.sim.clone(), invocation: Some(id.to_string()) });
        match f {
            Function::AlarmHandler => {
                let config = alarm_handler::Config {
                    store: store(),
                    alarm_name_prefix: "outposts-ha-".into(),
                    stack_name: STACK.into(),
                };
                let ports = alarm_handler::Ports {
                    ledger: self.ledger(),
                    fleet: Arc::new(SimFleet(self.sim.clone())),
                    bus,
                    alarms: Arc::new(SimAlarms(self.sim.clone())),
                    clock: self.clock(),
                };
                let handler = alarm_handler::AlarmHandler::with_ports(config, ports);
                handler.handle(event, id).await.map(|o| format!("{o:?}")).map_err(|e| e.to_string())
            }
            Function::Relaunch => {
                let config = relaunch::Config {
                    store: store(),
                    launch_concurrency: self.scenario.launch_concurrency,
                    run_instances_burst: self.scenario.run_instances_rate.0,
                    run_instances_per_second: self.scenario.run_instances_rate.1,
                    claim_lease_seconds: self.facts.claim_lease_seconds,
                    stack_name: STACK.into(),
                    fencing_policy: FencingPolicy::Isolate,
                    witness_document: PROBE_DOCUMENT.into(),
                    // Both of the stack's choices, by schedule (invariant I8 reads the same).
                    when_unconfirmed: if self.scenario.seed % 2 == 0 {
                        WhenUnconfirmed::Hold
                    } else {
                        WhenUnconfirmed::Relaunch
                    },
                    witness_timeout_seconds: 240,
                    wave_breaker: WaveBreaker::new(5, 15).expect("valid"),
                    alarm_name_prefix: "outposts-ha-".into(),
                    failover_report_seconds: 900,
                };
                let ports = relaunch::Ports {
                    ledger: self.ledger(),
                    fleet: Arc::new(SimFleet(self.sim.clone())),
                    backups: Arc::new(SimBackups(self.sim.clone())),
                    capacity: Arc::new(SimCapacity(self.sim.clone())),
                    load_balancing: Arc::new(SimLoadBalancing(self.sim.clone())),
                    bus,
                    clock: self.clock(),
                    witness: Arc::new(SimWitness(self.sim.clone())),
                    alarms: Arc::new(SimAlarms(self.sim.clone())),
                    hooks: Arc::new(SimHooks(self.sim.clone())),
                };
                let handler = relaunch::Relaunch::with_ports(config, ports);
                handler.handle(event, id).await.map(|r| format!("{r:?}")).map_err(|e| e.to_string())
            }
            Function::BackupScheduler => {
                let handler = backup_scheduler_on(&self.sim, &self.facts, Some(id.to_string()));
                handler.handle(event, id).await.map(|r| format!("{r:?}")).map_err(|e| e.to_string())
            }
            Function::Notifier => Ok("read off the bus".into()),
        }
    }

    fn operator(&self) -> operator::Operator {
        operator::Operator::with_ports(operator::Ports {
            ledger: self.ledger(),
            fleet: Arc::new(SimFleet(self.sim.clone())),
            backups: Arc::new(SimBackups(self.sim.clone())),
            load_balancing: Arc::new(SimLoadBalancing(self.sim.clone())),
            bus: Arc::new(SimBus { sim: self.sim.clone(), invocation: None }),
            clock: self.clock(),
        })
    }

    /// Lambda's asynchronous invocation: the attempt, then retries about one and two
    /// minutes after each failure, then the failed-events queue.
    fn invoke(self: &Rc<Self>, f: Function, event: Value, attempt: u32, after_ms: u64) {
        let ctx = self.clone();
        self.spawn(after_ms, async move {
            let n = {
                let mut per = ctx.per_function.borrow_mut();
                let n = per.entry(f.name()).or_default();
                *n += 1;
                *n
            };
            ctx.invocations.set(ctx.invocations.get() + 1);
            let id = format!("{}-{n}", f.name());
            let scripted =
                ctx.scenario.delivery.scripted_crashes.iter().find(|(name, nth, _)| *name == f.name() && *nth == n);
            let dies_after = match scripted {
                Some((_, _, ms)) => Some(*ms),
                None if ctx.draw(ctx.scenario.delivery.crash) => Some(ctx.range(1, 400)),
                None => None,
            };
            let timeout_ms = ctx.facts.timeout_seconds.get(&f).copied().unwrap_or(30) * 1000;
            let limit = Duration::from_millis(dies_after.unwrap_or(timeout_ms).min(timeout_ms));
            let kind = event.get("detail-type").and_then(Value::as_str).unwrap_or("?").to_string();
            ctx.note(format!("{id} starts ({kind}, attempt {attempt})"));
            let result = match tokio::time::timeout(limit, ctx.call(f, event.clone(), &id)).await {
                Ok(r) => r,
                Err(_) => Err(format!("died after {} ms", limit.as_millis())),
            };
            if result.is_err() {
                // It put events and then failed: its retry cannot know they were put.
                let mut w = ctx.sim.world();
                for p in w.puts.iter_mut().filter(|p| p.invocation.as_deref() == Some(id.as_str())) {
                    p.ambiguous = true;
                }
            }
            match result {
                Ok(summary) => ctx.note(format!("{id} ok: {}", summary.chars().take(160).collect::<String>())),
                Err(e) => {
                    ctx.note(format!("{id} failed: {e}"));
                    let retries = ctx.facts.retries.get(&f).copied().unwrap_or(2);
                    if attempt < retries {
                        let delay = 60_000 * u64::from(attempt + 1) + ctx.range(0, 5_000);
                        ctx.invoke(f, event, attempt + 1, delay);
                    } else {
                        ctx.note(format!("{id}: retries exhausted, event to the failed-events queue"));
                        ctx.dead_letters.borrow_mut().push((f, event));
                    }
                }
            }
        });
    }

    /// Under a latency model: the delivery's fixed time, recorded as a span from now.
    fn delivery_ms(&self, what: &str) -> u64 {
        let ms = self.scenario.latency.as_ref().map_or(0, |m| m.delivery_ms);
        let mut w = self.sim.world();
        let now = w.now_ms();
        w.spans.push(Span { what: what.to_string(), start_ms: now, end_ms: now + ms as i64, throttled: false });
        ms
    }

    /// EventBridge: every rule target gets the event at least once, soon or late.
    fn deliver(self: &Rc<Self>, event: Value) {
        let detail_type = event.get("detail-type").and_then(Value::as_str).unwrap_or_default().to_string();
        let nth = {
            let mut per = self.per_detail_type.borrow_mut();
            let n = per.entry(detail_type.clone()).or_default();
            *n += 1;
            *n
        };
        let scripted =
            self.scenario.delivery.scripted_late.iter().find(|(dt, n, _, _)| *dt == detail_type && *n == nth);
        if self.scenario.responder == Responder::ReferenceLoop {
            // Only the reference tool is deployed: it answers the alarm, nothing else listens.
            let alarm = event.pointer("/detail/state/value").and_then(Value::as_str) == Some("ALARM");
            if detail_type == "CloudWatch Alarm State Change" && alarm {
                let delay = self.delivery_ms(&format!("{detail_type} → ec2-outposts-autorestart"));
                let server = self.scenario.servers.iter().position(|s| {
                    event.pointer("/detail/alarmName").and_then(Value::as_str)
                        == Some(format!("outposts-ha-{}", s.id).as_str())
                });
                if let Some(server) = server {
                    let (sim, scenario) = (self.sim.clone(), self.scenario.clone());
                    self.spawn(delay, async move { crate::reference::autorestart(&sim, &scenario, server).await });
                }
            }
            return;
        }
        for f in self.facts.targets_of(&event) {
            if f == Function::Notifier {
                continue;
            }
            let copies = if self.draw(self.scenario.delivery.duplicate) { 2 } else { 1 };
            for _ in 0..copies {
                let mut delay = match self.scenario.latency {
                    Some(_) => self.delivery_ms(&format!("{detail_type} → {}", f.name())),
                    None => self.range(20, 1_500),
                };
                if self.draw(self.scenario.delivery.late) {
                    delay += self.range(0, 5 * MINUTE as u64);
                }
                if let Some((_, _, late, false)) = scripted {
                    delay += late;
                }
                self.invoke(f, event.clone(), 0, delay);
            }
            if let Some((_, _, late, true)) = scripted {
                self.note(format!("a late copy of {detail_type} #{nth} comes in {} s", late / 1000));
                self.invoke(f, event.clone(), 0, *late);
            }
        }
    }

    fn alarm_event(&self, server: usize, down: bool, at_ms: i64) -> Value {
        let id = &self.scenario.servers[server].id;
        let name = format!("outposts-ha-{id}");
        let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000).expect("in range");
        let stamp = at.format(&time::format_description::well_known::Rfc3339).expect("formats");
        let (value, previous) = if down { ("ALARM", "OK") } else { ("OK", "ALARM") };
        json!({
            "version": "0",
            "id": format!("alarm-{server}-{at_ms}"),
            "detail-type": "CloudWatch Alarm State Change",
            "source": "aws.cloudwatch",
            "account": "123456789012",
            "time": stamp,
            "region": "eu-west-1",
            "resources": [format!("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}")],
            "detail": {
                "alarmName": name,
                "configuration": {"metrics": [{"id": "m1", "metricStat": {"metric": {
                    "namespace": "AWS/Outposts", "name": "ConnectedStatus", "dimensions": {"OutpostId": id.as_str()}},
                    "period": 60, "stat": "Minimum"}, "returnData": true}]},
                "previousState": {"reason": "previous", "timestamp": stamp, "value": previous},
                "state": {"reason": "simulated", "timestamp": stamp, "value": value}
            }
        })
    }

    /// CloudWatch moves the server's alarm after its evaluation periods; EventBridge tells
    /// alarm-handler.
    fn server_changes(self: &Rc<Self>, server: usize, down: bool, condition: ServerCondition) {
        {
            let mut w = self.sim.world();
            let id = self.scenario.servers[server].id.clone();
            let now = w.now_ms();
            let was_dead = w.servers_down.contains(&id);
            w.server_history.push((now, id.clone(), condition));
            w.partitioned.remove(&id);
            w.servers_down.remove(&id);
            match condition {
                ServerCondition::Dead => {
                    w.interrupt_backups(id.as_str());
                    w.servers_down.insert(id);
                }
                ServerCondition::Partitioned => {
                    w.partitioned.insert(id);
                }
                ServerCondition::Up if was_dead => w.lose_originals_on_return(&id),
                ServerCondition::Up => {}
            }
        }
        let evaluation = if down { 3 * MINUTE } else { MINUTE } as u64;
        let ctx = self.clone();
        self.spawn(evaluation, async move {
            if ctx.alarm_down.borrow()[server] == down {
                return;
            }
            ctx.alarm_down.borrow_mut()[server] = down;
            let at = ctx.now_ms();
            let id = ctx.scenario.servers[server].id.clone();
            ctx.sim.world().alarms.insert(id, (down, at));
            ctx.alarm_times.borrow_mut()[server].push((down, at));
            ctx.note(format!("alarm of server {server} goes {}", if down { "ALARM" } else { "OK" }));
            let event = ctx.alarm_event(server, down, at);
            ctx.deliver(event);
        });
    }

    /// An operator's `make failback`: each pass advances the move home; repeated every 30 s
    /// while it waits for originals to be healthy (at most 20 passes).
    fn fail_back(self: &Rc<Self>, i: usize, pass: u32, after_ms: u64) {
        let ctx = self.clone();
        self.spawn(after_ms, async move {
            let event = json!({"detail-type": "FailbackRequested", "detail": {
                "server_id": ctx.scenario.servers[i].id.as_str(),
                "requested_at": format_timestamp(ctx.clock().now())}});
            let answer = ctx.operator().handle(event).await;
            ctx.note(format!("operator: fail-back pass {pass} of server {i}: {answer:?}"));
            let waiting = matches!(&answer, Ok(operator::Response::Failback(r)) if !r.done());
            if waiting && pass < 20 {
                ctx.fail_back(i, pass + 1, 30_000);
            }
        });
    }

    async fn act(self: &Rc<Self>, action: Action) {
        match action {
            Action::Down(i) => self.server_changes(i, true, ServerCondition::Dead),
            Action::Partition(i) => self.server_changes(i, true, ServerCondition::Partitioned),
            Action::Up(i) => self.server_changes(i, false, ServerCondition::Up),
            Action::Maintenance(i, until_ms) => {
                let until = format_timestamp(
                    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(BASE_EPOCH_MS + until_ms) * 1_000_000)
                        .expect("in range"),
                );
                let event = json!({"detail-type": "MaintenanceRequested", "detail": {
                    "server_id": self.scenario.servers[i].id.as_str(), "until": until,
                    "reason": "simulated maintenance", "requested_at": format_timestamp(self.clock().now())}});
                let answer = self.operator().handle(event).await;
                self.note(format!("operator: maintenance of server {i}: {answer:?}"));
            }
            Action::Release(i) => {
                let event = json!({"detail-type": "ReleaseRequested", "detail": {
                    "server_ids": [self.scenario.servers[i].id.as_str()],
                    "requested_at": format_timestamp(self.clock().now())}});
                let answer = self.operator().handle(event).await;
                self.note(format!("operator: release of server {i}: {answer:?}"));
            }
            Action::FailBack(i) => self.fail_back(i, 1, 0),
            Action::DeleteTemplate(i, k) => {
                let id = &self.scenario.servers[i].workloads[k].template_id;
                let mut w = self.sim.world();
                w.templates.remove(id);
                w.note(format!("operator deletes launch template {id}"));
            }
        }
    }
}

/// backup-scheduler on the simulated world, configured as the template deploys it.
pub fn backup_scheduler_on(
    sim: &Arc<Sim>,
    facts: &TemplateFacts,
    invocation: Option<String>,
) -> backup_scheduler::BackupScheduler {
    let config = backup_scheduler::Config {
        store: store(),
        stack_name: STACK.into(),
        document: DOCUMENT.into(),
        document_parameters: BTreeMap::new(),
        instance_parameter: "InstanceId".into(),
        subnet_parameter: "SubnetId".into(),
        helper_type_parameter: "TemporaryInstancesType".into(),
        helper_types: ha_domain::backup::HelperTypes { x86_64: "c5.large".into(), arm64: "c6g.large".into() },
        image_output: IMAGE_OUTPUT.into(),
        automation_role_arn: None,
        max_concurrent: 10,
        keep: 2,
        rpo_seconds: 86_400,
        parameter_lease_seconds: facts.parameter_lease_seconds,
    };
    let ports = backup_scheduler::Ports {
        ledger: Ledger::new(Arc::new(SimTable(sim.clone())), 90),
        backups: Arc::new(SimBackups(sim.clone())),
        runbook: Arc::new(SimRunbook(sim.clone())),
        fleet: Arc::new(SimFleet(sim.clone())),
        bus: Arc::new(SimBus { sim: sim.clone(), invocation }),
        clock: Arc::new(SimClock(sim.clone())),
    };
    backup_scheduler::BackupScheduler::with_ports(config, ports)
}

/// The LNI subnet beside a standby subnet (`subnet-0…` → `subnet-1…`).
fn lni_subnet_of(subnet: &str) -> String {
    format!("subnet-1{}", subnet.get("subnet-0".len()..).unwrap_or_default())
}

/// A template's network interfaces: a primary one and, with `lni`, the LNI at index 1.
fn interfaces(lni: bool) -> Vec<ha_ports::InterfaceSpec> {
    if !lni {
        return Vec::new();
    }
    let primary = ha_ports::InterfaceSpec {
        device_index: 0,
        groups: vec!["sg-app".into()],
        delete_on_termination: Some(true),
        ..Default::default()
    };
    vec![primary, ha_ports::InterfaceSpec { device_index: 1, ..Default::default() }]
}

/// Builds the world the scenario describes: templates, originals, subnets, backups.
fn build(s: &Scenario) -> World {
    let mut w = World::new(ChaCha8Rng::seed_from_u64(s.seed), s.faults.clone());
    w.latency = s.latency.clone();
    for (api, capacity, refill) in &s.buckets {
        w.buckets.insert(api.to_string(), Bucket::new(*capacity, *refill));
    }
    for (server, subnet) in &s.standby_subnets {
        w.subnets.insert(subnet.clone(), (server.clone(), "vpc-standby".into()));
        w.subnets.insert(lni_subnet_of(subnet), (server.clone(), "vpc-standby".into()));
        w.lni_subnets.insert(lni_subnet_of(subnet));
    }
    for server in &s.servers {
        w.subnets.insert(server.home_subnet.clone(), (server.id.clone(), "vpc-store".into()));
        for wl in &server.workloads {
            // An LNI workload names the first standby's separate LNI subnet; elsewhere its LNI
            // shares the destination's subnet.
            let destinations: Vec<String> = wl
                .subnets
                .iter()
                .map(|s| {
                    if wl.lni && w.lni_subnets.contains(&lni_subnet_of(s)) && s.ends_with("f00") {
                        format!("{s}+{}", lni_subnet_of(s))
                    } else {
                        s.clone()
                    }
                })
                .collect();
            let mut tags: BTreeMap<String, String> = [
                (tag::PROTECTED_SERVER, server.id.to_string()),
                (tag::SUBNETS, destinations.join(",")),
                (tag::WORKLOAD, wl.name.clone()),
                (tag::FENCING, wl.policy.to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            if wl.warm {
                tags.insert(tag::MODE.into(), "warm".into());
                if wl.hook {
                    tags.insert(tag::PROMOTION_DOCUMENT.into(), "outposts-ha-promote-sim".into());
                }
            }
            if !wl.target_groups.is_empty() {
                tags.insert(tag::TARGET_GROUPS.into(), wl.target_groups.join(","));
                for g in wl.target_groups.iter().filter(|g| !g.contains("typo")) {
                    let arn = format!("arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/{g}/1");
                    w.target_groups.entry(g.clone()).or_default().arn = arn;
                }
            }
            let mut instance_tags: BTreeMap<String, String> = [(tag::WORKLOAD.to_string(), wl.name.clone())].into();
            if wl.stateful {
                // Its original's LNI address, where the server's witness probes it.
                let host = format!("10.{}.{}.5", w.probe_hosts.len() / 250, w.probe_hosts.len() % 250);
                tags.insert(tag::PROBE.into(), format!("{host}:5432"));
                w.probe_hosts.insert(host, server.id.clone());
                let parameter = format!("/outposts-ha/{STACK}/{}/{}", server.id, wl.name);
                instance_tags.insert(tag::BACKUP_PARAMETER.into(), parameter.clone());
                instance_tags.insert(tag::PROTECTED_SERVER.into(), server.id.to_string());
                let image = format!("ami-{:017x}", wl.template_id.len() as u64 * 7919 + w.images.len() as u64);
                tags.insert(tag::BACKUP_PARAMETER.into(), parameter.clone());
                w.parameters.insert(parameter, image.clone());
                w.images.insert(
                    image.clone(),
                    ImageFacts {
                        image_id: image,
                        state: ha_domain::backup::ImageState::Available,
                        snapshot_ids: Vec::new(),
                        // Taken an hour before the schedule starts.
                        creation_date: Some("2026-11-21T09:00:00Z".into()),
                        tags: BTreeMap::new(),
                    },
                );
            }
            w.templates.insert(
                wl.template_id.clone(),
                Template {
                    name: wl.name.clone(),
                    version: 1,
                    tags,
                    instance_tags: instance_tags.clone(),
                    interfaces: interfaces(wl.lni),
                },
            );
            if wl.warm && wl.standby != StandbyStart::Missing {
                // As the reconciler left it before the schedule starts.
                let subnet = wl.subnets.iter().find(|d| **d != server.home_subnet).expect("warm has one").clone();
                let (on, vpc) = w.subnets[&subnet].clone();
                let id = w.next_id("i");
                let mut standby_tags = instance_tags.clone();
                for (k, v) in [
                    (tag::ROLE, tag::ROLE_STANDBY.to_string()),
                    (tag::SOURCE_SERVER, server.id.to_string()),
                    (tag::STANDBY_VERSION, if wl.standby == StandbyStart::Outdated { "0" } else { "1" }.to_string()),
                ] {
                    standby_tags.insert(k.to_string(), v);
                }
                if !wl.target_groups.is_empty() {
                    standby_tags.insert(tag::TARGET_GROUPS.into(), wl.target_groups.join(","));
                }
                let state =
                    if wl.standby == StandbyStart::Stopped { InstanceState::Stopped } else { InstanceState::Running };
                w.instances.insert(
                    id.clone(),
                    SimInstance {
                        interfaces: World::new_interfaces(&id, wl.lni, &["sg-app".into()]),
                        id,
                        state,
                        server: Some(on),
                        subnet,
                        vpc,
                        tags: standby_tags,
                        visible_at_ms: 0,
                        protected: false,
                    },
                );
            }
            let id = w.next_id("i");
            let registered = wl.target_groups.iter().filter(|g| !g.contains("typo")).cloned().collect::<Vec<_>>();
            for g in registered {
                w.target_groups.entry(g).or_default().targets.insert(id.clone(), 0);
            }
            w.instances.insert(
                id.clone(),
                SimInstance {
                    interfaces: World::new_interfaces(&id, wl.lni, &["sg-app".into()]),
                    id,
                    state: InstanceState::Running,
                    server: Some(server.id.clone()),
                    subnet: server.home_subnet.clone(),
                    vpc: "vpc-store".into(),
                    tags: instance_tags,
                    visible_at_ms: 0,
                    protected: wl.protected_original,
                },
            );
        }
    }
    w
}

async fn drive(s: Scenario) -> Outcome {
    let sim = Sim::new(build(&s));
    let servers = s.servers.len();
    let ctx = Rc::new(Ctx {
        sim: sim.clone(),
        facts: TemplateFacts::read(),
        scenario: s.clone(),
        pending: Cell::new(0),
        invocations: Cell::new(0),
        per_function: RefCell::new(BTreeMap::new()),
        per_detail_type: RefCell::new(BTreeMap::new()),
        dead_letters: RefCell::new(Vec::new()),
        alarm_down: RefCell::new(vec![false; servers]),
        alarm_times: RefCell::new(vec![Vec::new(); servers]),
        ticks_until_ms: Cell::new(0),
    });
    for (at, action) in s.actions.clone() {
        let c = ctx.clone();
        ctx.spawn(at.max(0) as u64, async move { c.act(action).await });
    }
    // Scheduled rules tick until well after the last action.
    let horizon = s.actions.iter().map(|(at, _)| *at).max().unwrap_or(0).max(0) as u64 + 45 * MINUTE as u64;
    ctx.ticks_until_ms.set(BASE_EPOCH_MS + horizon as i64);
    // The reference tool has no scheduled rules (and nothing of the product is deployed).
    let schedules = match s.responder {
        Responder::Product => ctx.facts.schedules.clone(),
        Responder::ReferenceLoop => Vec::new(),
    };
    for (period, targets, input) in schedules.clone() {
        for f in targets {
            // Operators choose the backup tick (BackupSchedule); a schedule may pick a faster one.
            let period = match (f, s.backup_period_ms) {
                (Function::BackupScheduler, Some(p)) => p,
                _ => period,
            };
            let mut at = period;
            while at <= horizon {
                let time = format_timestamp(time_of(BASE_EPOCH_MS + at as i64));
                let tick = match &input {
                    Some(template) => serde_json::from_str(&template.replace("<time>", &format!("\"{time}\"")))
                        .expect("the rule's input template is JSON"),
                    None => json!({"version": "0", "detail-type": "Scheduled Event", "source": "aws.events",
                        "time": time, "detail": {}}),
                };
                ctx.invoke(f, tick, 0, at);
                at += period;
            }
        }
    }
    drain(&ctx, &sim).await;
    if s.responder == Responder::ReferenceLoop {
        return reference_outcome(&ctx);
    }
    // The reconcile never stops: one more pass on a quiet world does what the next tick
    // would after the last one ran out of retries.
    {
        let mut w = sim.world();
        w.faults = crate::world::Faults::default();
    }
    for (period, targets, _) in schedules {
        for f in targets.into_iter().filter(|f| *f == Function::AlarmHandler) {
            let time = format_timestamp(time_of(sim.world().now_ms() + period as i64));
            let tick = json!({"version": "0", "detail-type": "Scheduled Event", "source": "aws.events",
                "time": time, "detail": {}});
            ctx.invoke(f, tick, 0, period);
        }
    }
    drain(&ctx, &sim).await;
    sim.world().apply_parameters(true);
    let mut outcome = invariants::check(&ctx);
    let w = sim.world();
    outcome.seed = s.seed;
    outcome.name = s.name.clone();
    outcome.trace = w.trace.clone();
    outcome.invocations = ctx.invocations.get();
    outcome.dead_letters = ctx.dead_letters.borrow().len();
    outcome.calls = w.calls.values().sum();
    outcome.throttled = w.throttled;
    outcome.parameter_moves = w.calls.get("PutParameter").copied().unwrap_or(0);
    outcome.virtual_ms = w.now_ms() - BASE_EPOCH_MS;
    outcome.spans = w.spans.clone();
    outcome.first_alarm_ms = ctx.alarm_times.borrow().iter().flatten().find(|(down, _)| *down).map(|(_, at)| *at);
    if let Some(alarm) = outcome.first_alarm_ms {
        outcome.alarm_to_serving_ms = w
            .puts
            .iter()
            .filter(|p| p.detail_type == "WorkloadServing")
            .filter_map(|p| Some((p.detail["workload"].as_str()?.to_string(), p.at_ms - alarm)))
            .collect();
    }
    outcome
}

/// What the reference loop did: its launches, timed from the server's first alarm (the
/// product's invariants are not its promise, and are not checked).
fn reference_outcome(ctx: &Ctx) -> Outcome {
    let w = ctx.sim.world();
    let alarm = ctx.alarm_times.borrow().iter().flatten().find(|(down, _)| *down).map(|(_, at)| *at);
    Outcome {
        seed: ctx.scenario.seed,
        name: ctx.scenario.name.clone(),
        trace: w.trace.clone(),
        calls: w.calls.values().sum(),
        throttled: w.throttled,
        alarm_to_launch_ms: alarm.map_or_else(Vec::new, |at| w.launches.iter().map(|(_, _, t)| t - at).collect()),
        virtual_ms: w.now_ms() - BASE_EPOCH_MS,
        spans: w.spans.clone(),
        first_alarm_ms: alarm,
        ..Outcome::default()
    }
}

/// Delivers what the world hands out until nothing is pending.
async fn drain(ctx: &Rc<Ctx>, sim: &Arc<Sim>) {
    loop {
        let out = std::mem::take(&mut sim.world().outbox);
        for o in out {
            match o {
                Outgoing::Project { event, .. } => ctx.deliver(event),
                Outgoing::Ec2StateChange { instance_id, state } => ctx.deliver(json!({
                    "version": "0",
                    "detail-type": "EC2 Instance State-change Notification",
                    "source": "aws.ec2",
                    "detail": {"instance-id": instance_id, "state": state.as_str()}
                })),
                Outgoing::Transition { instance_id, to, after_ms } => {
                    let world = sim.clone();
                    ctx.spawn(after_ms, async move { world.world().transition(&instance_id, to) });
                }
                Outgoing::ProbeEnds { command_id, after_ms } => {
                    let c = ctx.clone();
                    ctx.spawn(after_ms, async move {
                        let ended = c.sim.world().end_probe(&command_id);
                        if let Some(event) = ended {
                            c.deliver(event);
                        }
                    });
                }
                Outgoing::ExecutionEnds { execution_id, after_ms } => {
                    let c = ctx.clone();
                    ctx.spawn(after_ms, async move {
                        let ended = c.sim.world().end_execution(&execution_id);
                        if let Some(event) = ended {
                            c.deliver(event);
                        }
                    });
                }
            }
        }
        if ctx.pending.get() == 0 && sim.world().outbox.is_empty() {
            break;
        }
        sim.wake.notified().await;
    }
}

/// Runs one schedule to quiescence and checks the invariants.
pub fn run(s: &Scenario) -> Outcome {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().expect("a runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, drive(s.clone()))
}

/// Two completions for one parameter: the older backup's and the newer one's, delivered
/// at once, or the newer first and the older right after it (while SSM has not applied
/// the newer write yet). Each is retried like Lambda when it answers "not yet"; the
/// parameter must end on the newer backup without ever moving back (I6).
pub fn backup_race(seed: u64, newer_first: bool) -> Outcome {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().expect("a runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let mut w = World::new(ChaCha8Rng::seed_from_u64(seed), crate::world::Faults::default());
        let server = crate::scenario::server_id(0xa00);
        let parameter = format!("/outposts-ha/{STACK}/db");
        let tags: BTreeMap<String, String> = [
            (tag::WORKLOAD, "db"),
            (tag::BACKUP_PARAMETER, parameter.as_str()),
            (tag::PROTECTED_SERVER, server.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        w.instances.insert(
            "i-db".into(),
            SimInstance {
                id: "i-db".into(),
                state: InstanceState::Running,
                server: Some(server),
                subnet: "subnet-a".into(),
                vpc: "vpc-store".into(),
                interfaces: World::new_interfaces("i-db", false, &["sg-app".into()]),
                tags,
                visible_at_ms: 0,
                protected: false,
            },
        );
        let now = w.now_ms();
        let mut events = Vec::new();
        for (id, minutes_ago) in [("exec-older", 30), ("exec-newer", 10)] {
            w.executions.insert(
                id.into(),
                crate::world::Execution {
                    instance_id: "i-db".into(),
                    parameters: [("InstanceId".to_string(), vec!["i-db".to_string()])].into(),
                    started_ms: now - minutes_ago * MINUTE,
                    status: "InProgress".into(),
                    ended_ms: None,
                    image_id: None,
                    interrupted: false,
                },
            );
            events.push(w.end_execution(id).expect("it was in progress"));
        }
        let newest = w.executions["exec-newer"].image_id.clone();
        let sim = Sim::new(w);
        let facts = TemplateFacts::read();
        if newer_first {
            events.reverse();
        }
        let deliveries = events.into_iter().enumerate().map(|(n, event)| {
            let (sim, facts) = (sim.clone(), facts.clone());
            async move {
                if newer_first {
                    tokio::time::sleep(Duration::from_millis(n as u64 * 400)).await;
                }
                for attempt in 0..3 {
                    let id = format!("backup-scheduler-{n}-{attempt}");
                    let answer = backup_scheduler_on(&sim, &facts, Some(id.clone())).handle(event.clone(), &id).await;
                    sim.world().note(format!("{id}: {answer:?}"));
                    if answer.is_ok() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_secs(60 * (attempt + 1))).await;
                }
            }
        });
        futures::future::join_all(deliveries).await;
        let mut w = sim.world();
        w.apply_parameters(true);
        let mut violations = w.violations.clone();
        if w.parameters.get(&parameter) != newest.as_ref() {
            violations.push(format!(
                "I6: {parameter} names {:?}, not the newest backup {newest:?}",
                w.parameters.get(&parameter)
            ));
        }
        Outcome {
            seed,
            name: "backup-race".into(),
            violations,
            trace: w.trace.clone(),
            parameter_moves: w.calls.get("PutParameter").copied().unwrap_or(0),
            ..Outcome::default()
        }
    })
}
