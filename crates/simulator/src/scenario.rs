//! A schedule's script, drawn from its seed: servers and their workloads, how each server
//! lives (down, back, flapping, down again after fail-back), what operators do, and what
//! goes wrong.

use crate::world::{Faults, LatencyModel, SdkRetry};
use ha_domain::error::Retry;
use ha_domain::model::ServerId;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub const MINUTE: i64 = 60_000;

/// How events reach functions.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    /// EventBridge delivers a second copy.
    pub duplicate: f64,
    /// A copy is held back up to five minutes (reordering it behind later events).
    pub late: f64,
    /// An invocation dies at a random await point (timeout, out of memory).
    pub crash: f64,
    /// Scripted deaths: (function name, its n-th invocation, dies after this many ms).
    pub scripted_crashes: Vec<(&'static str, u64, u64)>,
    /// Scripted lateness: the n-th event of a detail-type is delivered this many ms late,
    /// or (when `true`) a second copy of it is, the first arriving on time.
    pub scripted_late: Vec<(&'static str, u64, u64, bool)>,
}

#[derive(Debug, Clone)]
pub struct WorkloadPlan {
    pub name: String,
    pub template_id: String,
    pub stateful: bool,
    pub target_groups: Vec<String>,
    pub policy: &'static str,
    pub subnets: Vec<String>,
    /// Termination protection on the original.
    pub protected_original: bool,
    /// Its template declares a primary network interface and a local network interface.
    pub lni: bool,
    /// Warm: a standby runs and is promoted on failure.
    pub warm: bool,
    /// Warm with a promotion hook (an SSM document run on the promoted standby).
    pub hook: bool,
    /// How its standby is found when the schedule starts (warm workloads).
    pub standby: StandbyStart,
}

/// A warm workload's standby when the schedule starts (as a reconciler left it, or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandbyStart {
    Running,
    Missing,
    Stopped,
    /// Launched from an older template version.
    Outdated,
}

#[derive(Debug, Clone)]
pub struct ServerPlan {
    pub id: ServerId,
    pub home_subnet: String,
    pub workloads: Vec<WorkloadPlan>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Down(usize),
    /// The server's service link drops while the box runs on (a store's broadband outage).
    Partition(usize),
    /// An operator releases the server's held workloads (`make release SERVER=…`).
    Release(usize),
    Up(usize),
    /// An operator sets a maintenance window of the server until this virtual time.
    Maintenance(usize, i64),
    /// An operator moves the server's workloads home: the originals are unfenced (forced,
    /// the replacements still run) and then the replacements terminated.
    FailBack(usize),
    /// An operator deletes a workload's launch template.
    DeleteTemplate(usize, usize),
}

/// Who answers a server's alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Responder {
    /// The product: alarm-handler, then relaunch over the bus (every schedule but one).
    #[default]
    Product,
    /// The reference: aws-samples/ec2-outposts-autorestart's Lambda, one RunInstances after
    /// another (crate::reference).
    ReferenceLoop,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub seed: u64,
    pub name: String,
    pub servers: Vec<ServerPlan>,
    pub standby_subnets: Vec<(ServerId, String)>,
    pub faults: Faults,
    pub delivery: Delivery,
    /// (virtual ms from the start, action), in time order.
    pub actions: Vec<(i64, Action)>,
    /// The backup tick's period, when not the template's default.
    pub backup_period_ms: Option<u64>,
    /// Fixed per-operation latencies (the dispatch benchmark); `None`: random ones.
    pub latency: Option<LatencyModel>,
    /// relaunch's LAUNCH_CONCURRENCY (the stack's default is 10).
    pub launch_concurrency: usize,
    /// relaunch's RUN_INSTANCES_BURST and RUN_INSTANCES_PER_SECOND (the stack's defaults
    /// are EC2's documented bucket, 5 and 2).
    pub run_instances_rate: (usize, usize),
    /// EC2 token buckets other than the documented defaults (an account's raised limits):
    /// (API, capacity, refill per second).
    pub buckets: Vec<(&'static str, f64, f64)>,
    pub responder: Responder,
}

pub fn server_id(n: u64) -> ServerId {
    ServerId::parse(&format!("op-{n:017x}")).expect("a valid server id")
}

impl Scenario {
    /// The world every schedule starts from: `servers` protected servers with
    /// `workloads` workloads each, two standby servers with a subnet each.
    pub fn fleet(seed: u64, name: &str, servers: usize, workloads: usize) -> Scenario {
        let standby_subnets: Vec<(ServerId, String)> =
            (0..2).map(|i| (server_id(0xf00 + i), format!("subnet-{:017x}", 0xf00 + i))).collect();
        let servers = (0..servers)
            .map(|s| ServerPlan {
                id: server_id(0xa00 + s as u64),
                home_subnet: format!("subnet-{:017x}", 0xa00 + s as u64),
                workloads: (0..workloads)
                    .map(|k| WorkloadPlan {
                        // Every store calls its first workload `pos`.
                        name: if k == 0 { "pos".into() } else { format!("app{k}-{s}") },
                        template_id: format!("lt-{:017x}", (s * 100 + k) as u64 + 1),
                        stateful: false,
                        target_groups: Vec::new(),
                        policy: "isolate",
                        subnets: standby_subnets.iter().map(|(_, subnet)| subnet.clone()).collect(),
                        protected_original: false,
                        lni: false,
                        warm: false,
                        hook: false,
                        standby: StandbyStart::Running,
                    })
                    .collect(),
            })
            .collect();
        Scenario {
            seed,
            name: name.to_string(),
            servers,
            standby_subnets,
            faults: Faults::default(),
            delivery: Delivery::default(),
            actions: Vec::new(),
            backup_period_ms: None,
            latency: None,
            launch_concurrency: 10,
            run_instances_rate: (5, 2),
            buckets: Vec::new(),
            responder: Responder::Product,
        }
    }

    /// A random schedule: its shape and its faults come from `seed` alone.
    pub fn random(seed: u64) -> Scenario {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_5eed);
        let servers = rng.gen_range(1..=3);
        let workloads = rng.gen_range(1..=3);
        let mut s = Scenario::fleet(seed, "random", servers, workloads);
        for server in &mut s.servers {
            for w in &mut server.workloads {
                w.stateful = rng.gen_bool(0.3);
                w.policy = if rng.gen_bool(0.3) { "terminate" } else { "isolate" };
                if rng.gen_bool(0.4) {
                    w.target_groups.push(format!("tg-{}", w.name));
                    if rng.gen_bool(0.2) {
                        w.target_groups.push("tg-typo".into());
                    }
                }
                if rng.gen_bool(0.1) {
                    w.subnets.insert(0, server.home_subnet.clone());
                }
                w.subnets.shuffle(&mut rng);
                w.protected_original = rng.gen_bool(0.05);
                w.lni = rng.gen_bool(0.3);
            }
        }
        // Most schedules keep the template's hourly tick; some back up every 30 or 10 minutes
        // (their interleavings with incidents; d10 ticks every minute).
        let periods = [None, None, None, Some(30 * MINUTE as u64), Some(30 * MINUTE as u64), Some(10 * MINUTE as u64)];
        s.backup_period_ms = periods[rng.gen_range(0..periods.len())];
        s.faults = Faults {
            transient: [0.0, 0.002, 0.01][rng.gen_range(0..3)],
            lost_response: [0.0, 0.002, 0.005][rng.gen_range(0..3)],
            replacement_dies: [0.0, 0.0, 0.1][rng.gen_range(0..3)],
            replacement_stops: [0.0, 0.0, 0.05][rng.gen_range(0..3)],
            protected_originals: 0.0,
            visibility_lag_ms: [0, 2_000, 10_000][rng.gen_range(0..3)],
            scripted: Vec::new(),
            hook_fails: 0.0,
            original_lost_on_return: 0.0,
            hook_slow: 0.0,
        };
        s.delivery = Delivery {
            duplicate: [0.0, 0.05, 0.2][rng.gen_range(0..3)],
            late: [0.0, 0.05, 0.2][rng.gen_range(0..3)],
            crash: [0.0, 0.03, 0.1][rng.gen_range(0..3)],
            scripted_crashes: Vec::new(),
            scripted_late: Vec::new(),
        };
        for i in 0..servers {
            if rng.gen_bool(0.15) {
                continue;
            }
            let down = rng.gen_range(0..2 * MINUTE);
            if rng.gen_bool(0.1) {
                s.actions.push((down - MINUTE / 2, Action::Maintenance(i, down + 60 * MINUTE)));
            }
            // A quarter of outages are the store's uplink, not the box.
            let partition = rng.gen_bool(0.25);
            s.actions.push((down, if partition { Action::Partition(i) } else { Action::Down(i) }));
            // Sometimes an operator releases the server's held workloads (or one who believes
            // it is dead does, whatever it is).
            if rng.gen_bool(if partition { 0.3 } else { 0.05 }) {
                s.actions.push((down + rng.gen_range(5..15) * MINUTE, Action::Release(i)));
            }
            if rng.gen_bool(0.1) {
                s.actions.push((down + 4 * MINUTE, Action::Maintenance(i, down + 60 * MINUTE)));
            }
            if rng.gen_bool(0.05) {
                let k = rng.gen_range(0..s.servers[i].workloads.len());
                s.actions.push((down + 6 * MINUTE, Action::DeleteTemplate(i, k)));
            }
            match rng.gen_range(0..4) {
                0 => {}
                1 => s.actions.push((down + rng.gen_range(10..40) * MINUTE, Action::Up(i))),
                2 => {
                    let up = down + rng.gen_range(5..9) * MINUTE;
                    let again = up + rng.gen_range(1..4) * MINUTE;
                    s.actions.push((up, Action::Up(i)));
                    s.actions.push((again, Action::Down(i)));
                    s.actions.push((again + rng.gen_range(10..20) * MINUTE, Action::Up(i)));
                }
                _ => {
                    let up = down + rng.gen_range(10..20) * MINUTE;
                    s.actions.push((up, Action::Up(i)));
                    s.actions.push((up + 20 * MINUTE, Action::FailBack(i)));
                    let again = up + 40 * MINUTE;
                    s.actions.push((again, Action::Down(i)));
                    if rng.gen_bool(0.5) {
                        s.actions.push((again + 20 * MINUTE, Action::Up(i)));
                    }
                }
            }
        }
        // Drawn last, from their own stream, so the schedules above stay as they were.
        let mut warm_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0077_a4d0);
        for server in &mut s.servers {
            let home = server.home_subnet.clone();
            for w in &mut server.workloads {
                // A warm workload needs a destination off its own server.
                w.warm = warm_rng.gen_bool(0.35) && w.subnets.iter().any(|d| *d != home);
                w.hook = w.warm && warm_rng.gen_bool(0.5);
                let starts = [
                    StandbyStart::Running,
                    StandbyStart::Running,
                    StandbyStart::Running,
                    StandbyStart::Missing,
                    StandbyStart::Stopped,
                    StandbyStart::Outdated,
                ];
                w.standby = starts[warm_rng.gen_range(0..starts.len())];
            }
        }
        s.faults.hook_fails = [0.0, 0.3, 1.0][warm_rng.gen_range(0..3)];
        let mut return_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x00b0_c4ed);
        s.faults.original_lost_on_return = [0.0, 0.0, 0.5][return_rng.gen_range(0..3)];
        s.faults.hook_slow = [0.0, 0.0, 0.5][return_rng.gen_range(0..3)];
        s.actions.sort_by_key(|(at, _)| *at);
        s
    }

    /// A regional event: `servers` servers with `workloads` workloads each go down within
    /// one minute; nothing fails but what EC2's token buckets refuse.
    pub fn mass_outage(seed: u64, servers: usize, workloads: usize) -> Scenario {
        let mut s = Scenario::fleet(seed, "mass-outage", servers, workloads);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        s.actions = (0..servers).map(|i| (rng.gen_range(0..MINUTE), Action::Down(i))).collect();
        s.actions.sort_by_key(|(at, _)| *at);
        s
    }

    /// The dispatch benchmark's world: one server whose `workloads` stateless workloads have
    /// one destination each (the same standby subnet), down at 0 and never back; nothing
    /// fails; every call takes its documented (or assumed) time (`world::LATENCIES`) and the
    /// functions' SDK retries a throttled call as configured.
    pub fn dispatch(workloads: usize) -> Scenario {
        let mut s = Scenario::fleet(1, "dispatch", 1, workloads);
        let standby = s.standby_subnets[0].1.clone();
        for w in &mut s.servers[0].workloads {
            w.subnets = vec![standby.clone()];
        }
        s.actions = vec![(0, Action::Down(0))];
        s.latency = Some(LatencyModel::documented(SdkRetry::RustStandard { max_attempts: 6 }));
        s
    }

    /// Recovery time per mode: `warm` and `cold`, stateless, one destination, the latency
    /// model's world; `warm` finds its standby running (as the reconciler keeps it).
    pub fn recovery(target_group: bool) -> Scenario {
        let mut s = Scenario::dispatch(2);
        s.name = "recovery".into();
        for (k, w) in s.servers[0].workloads.iter_mut().enumerate() {
            w.name = if k == 0 { "warm".into() } else { "cold".into() };
            w.warm = k == 0;
            if target_group {
                w.target_groups = vec![format!("tg-{}", w.name)];
            }
        }
        s
    }

    /// The same world answered by the reference loop instead of the product, its calls
    /// retried as boto3 does by default (whatever the product's SDK does).
    pub fn answered_by_the_loop(mut self) -> Scenario {
        self.responder = Responder::ReferenceLoop;
        self.name = format!("{}-loop", self.name);
        if let Some(m) = &mut self.latency {
            m.sdk = SdkRetry::BotocoreLegacy;
        }
        self
    }

    /// Every call of `api` numbered `nth` fails with `code`.
    pub fn failing(mut self, api: &'static str, nth: u64, code: &'static str, retry: Retry) -> Scenario {
        self.faults.scripted.push((api, nth, code, retry));
        self
    }

    /// The `nth` invocation of `function` dies `after_ms` into its run.
    pub fn crashing(mut self, function: &'static str, nth: u64, after_ms: u64) -> Scenario {
        self.delivery.scripted_crashes.push((function, nth, after_ms));
        self
    }

    /// The `nth` event of `detail_type` arrives `late_ms` late (or a late second copy does).
    pub fn late(mut self, detail_type: &'static str, nth: u64, late_ms: u64, copy: bool) -> Scenario {
        self.delivery.scripted_late.push((detail_type, nth, late_ms, copy));
        self
    }

    pub fn at(mut self, at: i64, action: Action) -> Scenario {
        self.actions.push((at, action));
        self.actions.sort_by_key(|(at, _)| *at);
        self
    }
}
