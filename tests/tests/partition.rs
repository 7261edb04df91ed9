//! A disconnected server is not a dead one, against moto: a witness on the store network
//! probes the originals (SSM Run Command, its double answering as each original's tags say)
//! before a stateful workload is relaunched; the three verdicts, the operator's release, the
//! server's return after a partition, and the mass-outage breaker.

use ha_domain::contract::{ProjectEvent, ReleaseRequested};
use ha_domain::model::tag;
use outposts_ha_tests::emulator::Emulator;
use outposts_ha_tests::site::{tag_of, DeclaredWorkload, Site};
use outposts_ha_tests::stack::{
    alarm_event, server_alarm_fires, Delivered, Notification, Stack, MASS_OUTAGE_SERVERS, STACK_NAME,
};
use std::time::Duration;

const SERVER_A: &str = "op-0000000000000000a";
const ALARM_A: &str = "outposts-ha-store-a";
const DB_ADDRESS: &str = "192.168.10.21";

/// How the database's original answers on the store network.
#[derive(Clone, Copy, PartialEq)]
enum Original {
    /// The box runs: its port answers the witness.
    Answers,
    /// The box is dead: nothing answers.
    Silent,
}

/// One store: a stateless point of sale and a stateful database, their originals, and a
/// witness on the store network (or none).
struct Store {
    _moto: Emulator,
    sdk: aws_config::SdkConfig,
    stack: Stack,
    site: Site,
    pos: String,
    db: String,
}

async fn open_store(original: Original, witness: &[(&str, &str)]) -> Store {
    let moto = Emulator::start().await;
    let sdk = moto.sdk_config().await;
    let stack = Stack::deploy(&sdk, 8).await;
    let site = Site::create(&sdk).await;
    let home = site.subnet("10.0.1.0/24").await;
    let standby = site.subnet("10.0.2.0/24").await;
    let pos = site.declare(SERVER_A, "pos", &[&standby], 10).await;
    let probe = format!("{DB_ADDRESS}:5432");
    let db = stateful(&site, SERVER_A, &standby, "db", &[(tag::PROBE, &probe)]).await;
    let pos = site.original(&pos, &home, &[(tag::WORKLOAD, "pos")]).await;
    let mut db_tags = vec![(tag::WORKLOAD, "db")];
    if original == Original::Answers {
        db_tags.push(("run-command-double:address", DB_ADDRESS));
    }
    let db = site.original(&db, &home, &db_tags).await;
    if !witness.is_empty() {
        // An instance on the standby server, on the store network.
        let out = site.ec2.run_instances().image_id(&site.image_id).subnet_id(&standby).min_count(1).max_count(1);
        let out = out.send().await.unwrap();
        let id = out.instances()[0].instance_id().unwrap().to_string();
        site.tag(&id, witness).await;
        site.tag(&id, &[(tag::WITNESS_FOR, SERVER_A)]).await;
    }
    Store { _moto: moto, sdk, stack, site, pos, db }
}

/// A stateful workload of `server` with a backup to start from.
async fn stateful(
    site: &Site,
    server: &str,
    standby: &str,
    name: &str,
    extra: &[(&'static str, &str)],
) -> DeclaredWorkload {
    let parameter = format!("/outposts-ha/{STACK_NAME}/backup/{name}");
    let w = site.declare_with(server, name, &[standby], 20, Some(&parameter), extra).await;
    site.name_backup(&parameter).await;
    w
}

const WITNESS: &[(&str, &str)] = &[("Name", "witness")];

impl Store {
    /// Delivers until the witness's probe (ended by the double a moment after it is sent)
    /// and everything it drives are handled.
    async fn settle(&self) -> Vec<Delivered> {
        let mut rounds = vec![self.stack.deliver().await];
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            let round = self.stack.deliver().await;
            let idle = round.relaunch_reports.is_empty() && round.notifications_published == 0;
            rounds.push(round);
            if idle {
                break;
            }
        }
        for r in &rounds {
            assert!(r.handler_errors.is_empty(), "{:?}", r.handler_errors);
        }
        rounds
    }

    async fn outage(&self) -> Vec<Notification> {
        self.stack.alarm(&alarm_event(ALARM_A, SERVER_A, "OK", "ALARM", "2026-11-22T10:00:00.000+0000")).await.unwrap();
        self.settle().await;
        self.stack.notifications().await
    }

    async fn back(&self) -> Vec<Notification> {
        self.stack.alarm(&alarm_event(ALARM_A, SERVER_A, "ALARM", "OK", "2026-11-22T10:40:00.000+0000")).await.unwrap();
        self.settle().await;
        self.stack.notifications().await
    }

    async fn replaced(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .site
            .replacements()
            .await
            .iter()
            .filter_map(|r| tag_of(r, tag::WORKLOAD).map(str::to_string))
            .collect();
        names.sort();
        names
    }

    async fn release(&self, servers: &[&str], workload: Option<&str>) -> operator::Response {
        let request = ProjectEvent::ReleaseRequested(ReleaseRequested {
            server_ids: servers.iter().map(|s| s.to_string()).collect(),
            workload: workload.map(str::to_string),
            requested_at: "2026-11-22T10:20:00.000Z".into(),
        });
        let response = self.stack.operator.handle(serde_json::to_value(request).unwrap()).await.unwrap();
        self.settle().await;
        response
    }

    async fn groups_of(&self, instance: &str) -> Vec<String> {
        let out = self.site.ec2.describe_instances().instance_ids(instance).send().await.unwrap();
        let i = &out.reservations()[0].instances()[0];
        i.security_groups().iter().filter_map(|g| g.group_id().map(str::to_string)).collect()
    }
}

fn one<'a>(notes: &'a [Notification], event_type: &str) -> &'a Notification {
    let found: Vec<&Notification> = notes.iter().filter(|n| n.event_type == event_type).collect();
    assert_eq!(found.len(), 1, "one {event_type}: {:#?}", notes.iter().map(|n| &n.subject).collect::<Vec<_>>());
    found[0]
}

#[tokio::test]
async fn a_partitioned_stores_database_is_held_released_on_the_operators_word_and_both_copies_kept_on_return() {
    let store = open_store(Original::Answers, WITNESS).await;
    let notes = store.outage().await;
    assert_eq!(store.replaced().await, ["pos"], "the database is held, the point of sale relaunched");
    let verdict = one(&notes, "WitnessVerdict");
    assert_eq!(verdict.severity, "critical");
    assert!(verdict.subject.contains("op-0000000000000000a: 1 workload(s) HELD"), "{}", verdict.subject);
    assert!(verdict.body.contains(&format!("db at {DB_ADDRESS}:5432: answered")), "{}", verdict.body);
    assert!(verdict.body.contains("make release SERVER=op-0000000000000000a"), "{}", verdict.body);
    // Held is told once: a redelivery of the alarm neither launches nor tells again.
    store.stack.alarm(&alarm_event(ALARM_A, SERVER_A, "OK", "ALARM", "2026-11-22T10:00:00.000+0000")).await.unwrap();
    store.settle().await;
    assert!(store.stack.notifications().await.iter().all(|n| n.event_type != "WitnessVerdict"));
    assert_eq!(store.replaced().await, ["pos"]);

    let response = store.release(&[SERVER_A], None).await;
    assert!(
        matches!(&response, operator::Response::Release { released, skipped } if released.len() == 1 && skipped.is_empty()),
        "{response:?}"
    );
    assert_eq!(store.replaced().await, ["db", "pos"], "released: the database is relaunched");

    let db_groups = store.groups_of(&store.db).await;
    let notes = store.back().await;
    // Mailed: the original kept beside its replacement; the isolated one is in the closing.
    let fenced: Vec<&Notification> = notes.iter().filter(|n| n.event_type == "OriginalFenced").collect();
    assert_eq!(fenced.len(), 1, "{fenced:#?}");
    let kept = fenced.iter().find(|n| n.body.contains(&store.db)).expect("the database's original is told");
    assert_eq!(kept.severity, "critical");
    assert!(kept.subject.ends_with("db: both copies kept"), "{}", kept.subject);
    assert_eq!(store.groups_of(&store.db).await, db_groups, "the database's original is never isolated");
    assert_ne!(store.groups_of(&store.pos).await, store.groups_of(&store.db).await, "the point of sale's is");
    one(&notes, "IncidentClosed");
}

#[tokio::test]
async fn a_dead_stores_database_is_relaunched_and_its_original_fenced_on_return() {
    let store = open_store(Original::Silent, WITNESS).await;
    let notes = store.outage().await;
    assert_eq!(store.replaced().await, ["db", "pos"]);
    let verdict = one(&notes, "WitnessVerdict");
    assert_eq!(verdict.severity, "info");
    assert!(verdict.body.contains(&format!("db at {DB_ADDRESS}:5432: no reply")), "{}", verdict.body);
    assert!(verdict.body.contains("db: its original did not answer"), "{}", verdict.body);

    let db_groups = store.groups_of(&store.db).await;
    let notes = store.back().await;
    let kept =
        notes.iter().filter(|n| n.event_type == "OriginalFenced" && n.subject.contains("both copies kept")).count();
    assert_eq!(kept, 0, "the witness heard nothing: fenced as any dead server's");
    assert_ne!(store.groups_of(&store.db).await, db_groups, "the database's original is isolated");
}

#[tokio::test]
async fn a_witness_that_cannot_run_the_probe_is_an_unconfirmed_verdict_the_stack_relaunches_on() {
    // The harness's stack relaunches when the witness cannot say (the template's default).
    let store = open_store(Original::Answers, &[("run-command-double:offline", "true")]).await;
    let notes = store.outage().await;
    assert_eq!(store.replaced().await, ["db", "pos"]);
    let verdict = one(&notes, "WitnessVerdict");
    assert_eq!(verdict.severity, "warning");
    assert!(verdict.body.contains("NOT confirmed") && verdict.body.contains("cannot run commands"), "{}", verdict.body);

    // Its original may have taken writes: kept on return, never fenced.
    let notes = store.back().await;
    assert!(
        notes.iter().any(|n| n.event_type == "OriginalFenced" && n.subject.contains("both copies kept")),
        "{notes:#?}"
    );
}

#[tokio::test]
async fn a_store_without_a_witness_is_an_unconfirmed_verdict() {
    let store = open_store(Original::Answers, &[]).await;
    let notes = store.outage().await;
    let verdict = one(&notes, "WitnessVerdict");
    assert!(verdict.body.contains("no witness is declared"), "{}", verdict.body);
}

#[tokio::test]
async fn a_control_address_the_probe_document_refuses_is_an_unconfirmed_verdict_that_says_why() {
    let store = open_store(Original::Answers, &[(tag::WITNESS_CONTROL, "gateway.store.local")]).await;
    let notes = store.outage().await;
    let verdict = one(&notes, "WitnessVerdict");
    assert!(verdict.body.contains("InvalidParameters"), "{}", verdict.body);
}

#[tokio::test]
async fn a_release_names_what_it_cannot_release() {
    let store = open_store(Original::Answers, WITNESS).await;
    let no_incident = store.release(&[SERVER_A], None).await;
    assert!(no_incident.refused().is_some_and(|r| r.contains("nothing is held")), "{no_incident:?}");
    let bad = store.release(&["op-12"], None).await;
    assert!(bad.refused().is_some_and(|r| r.contains("op-12")), "{bad:?}");
    let nothing = store.release(&[], None).await;
    assert!(nothing.refused().is_some(), "{nothing:?}");
    // One workload, found by its original's server.
    store.outage().await;
    let one_workload = store.release(&[], Some("db")).await;
    assert!(
        matches!(&one_workload, operator::Response::Release { released, .. } if released[0].workload.as_deref() == Some("db")),
        "{one_workload:?}"
    );
    assert_eq!(store.replaced().await, ["db", "pos"]);
}

/// `servers` stores down at once, each with a stateful workload whose box is dead, as
/// CloudWatch tells it (the alarms in ALARM are what relaunch counts).
async fn wave(servers: usize) -> (Store, Vec<String>) {
    let store = open_store(Original::Silent, WITNESS).await;
    let standby = store.site.subnet("10.0.3.0/24").await;
    let mut ids = vec![SERVER_A.to_string()];
    for n in 1..servers {
        let server = format!("op-00000000000000{n:03x}");
        stateful(&store.site, &server, &standby, &format!("db{n}"), &[]).await;
        ids.push(server);
    }
    for (n, server) in ids.iter().enumerate() {
        let alarm = if n == 0 { ALARM_A.to_string() } else { format!("outposts-ha-store-{n}") };
        server_alarm_fires(&store.sdk, &alarm, server).await;
    }
    store.settle().await;
    (store, ids)
}

#[tokio::test]
async fn a_wave_above_the_breakers_threshold_holds_every_stateful_workload_until_released() {
    let (store, servers) = wave(MASS_OUTAGE_SERVERS + 1).await;
    let notes = store.stack.notifications().await;
    assert!(
        store.replaced().await.iter().all(|w| w == "pos"),
        "no stateful workload relaunched: {:?}",
        store.replaced().await
    );
    let outage = one(&notes, "MassOutage");
    assert_eq!(outage.severity, "critical");
    assert!(outage.subject.contains(&format!("{} servers down", servers.len())), "{}", outage.subject);
    let mut all: Vec<&str> = servers.iter().map(String::as_str).collect();
    all.sort();
    assert!(outage.body.contains(&format!("make release SERVER={}", all.join(","))), "{}", outage.body);

    store.release(&all, None).await;
    let replaced = store.replaced().await;
    assert_eq!(replaced.iter().filter(|w| w.starts_with("db")).count(), servers.len(), "{replaced:?}");
}

#[tokio::test]
async fn a_wave_at_the_breakers_threshold_is_no_wave() {
    let (store, servers) = wave(MASS_OUTAGE_SERVERS).await;
    let notes = store.stack.notifications().await;
    assert!(notes.iter().all(|n| n.event_type != "MassOutage"));
    let replaced = store.replaced().await;
    assert_eq!(replaced.iter().filter(|w| w.starts_with("db")).count(), servers.len(), "{replaced:?}");
}

async fn drill_db(store: &Store) -> ha_domain::contract::DrillVerdict {
    let request = ProjectEvent::DrillRequested(ha_domain::contract::DrillRequested {
        server_id: SERVER_A.into(),
        requested_at: "2026-11-22T09:00:00.000Z".into(),
    });
    let response = store.stack.relaunch.handle(serde_json::to_value(request).unwrap(), "drill").await.unwrap();
    let report = response.as_drill().expect("a drill report").clone();
    let pos = report.verdicts.iter().find(|v| v.workload == "pos").unwrap();
    assert_eq!(pos.witness, None, "the point of sale relaunches whatever the witness says");
    report.verdicts.into_iter().find(|v| v.workload == "db").unwrap()
}

#[tokio::test]
async fn the_drill_reports_each_stateful_workloads_witness() {
    let store = open_store(Original::Answers, WITNESS).await;
    let db = drill_db(&store).await;
    assert!(db.ready, "{db:?}");
    let witness = db.witness.expect("the database's witness is reported");
    assert!(witness.starts_with("i-") && witness.ends_with(&format!("probes {DB_ADDRESS}:5432")), "{witness}");

    let without = open_store(Original::Answers, &[]).await;
    let db = drill_db(&without).await;
    assert!(db.ready, "the stack relaunches when the witness cannot say: {db:?}");
    assert!(db.witness.as_deref().is_some_and(|w| w.contains("no running witness")), "{db:?}");
}
