//! Stateful workloads against moto and the SSM Automation double: scheduled backups move
//! the parameter to the newest good AMI, prune old ones with their snapshots, report
//! failures and staleness, and a relaunch starts from the newest backup.

use backup_scheduler::{BackupReport, BackupScheduler, ExecutionOutcome, TickReport};
use ha_domain::backup::NotStarted;
use ha_domain::model::tag;
use outposts_ha_tests::emulator::Emulator;
use outposts_ha_tests::roles;
use outposts_ha_tests::site::{tag_of, DeclaredWorkload, Site};
use outposts_ha_tests::stack::{alarm_event, backup_config, Stack, STACK_NAME};
use serde_json::json;
use std::collections::BTreeSet;

const SERVER_A: &str = "op-0000000000000000a";
const ALARM_A: &str = "outposts-ha-store-a";
const OUTCOME: &str = "automation-double:outcome";
const SECONDS: &str = "automation-double:seconds";

fn parameter_of(workload: &str) -> String {
    format!("/outposts-ha/{STACK_NAME}/backup/{workload}")
}

struct World {
    _moto: Emulator,
    stack: Stack,
    site: Site,
    ssm: aws_sdk_ssm::Client,
    home: String,
    standby: String,
}

async fn world() -> World {
    let moto = Emulator::start().await;
    let sdk = moto.sdk_config().await;
    let stack = Stack::deploy(&sdk, 8).await;
    let site = Site::create(&sdk).await;
    // The servers' own subnets, as on Outposts servers.
    let home = site.outpost_subnet("10.0.1.0/24", SERVER_A).await;
    let standby = site.outpost_subnet("10.0.2.0/24", "op-0000000000000000b").await;
    World { ssm: aws_sdk_ssm::Client::new(&sdk), _moto: moto, stack, site, home, standby }
}

impl World {
    async fn stateful(&self, name: &str, extra: &[(&str, &str)]) -> (DeclaredWorkload, String) {
        let parameter = parameter_of(name);
        let w = self.site.declare_with(SERVER_A, name, &[&self.standby], 10, Some(&parameter), &[]).await;
        let mut tags = vec![(tag::WORKLOAD, name), (tag::BACKUP_PARAMETER, parameter.as_str())];
        tags.extend_from_slice(extra);
        let instance = self.site.original(&w, &self.home, &tags).await;
        (w, instance)
    }

    /// (value, version) of the parameter, if it exists.
    async fn parameter(&self, name: &str) -> Option<(String, i64)> {
        let p = self.ssm.get_parameter().name(name).send().await.ok()?.parameter().cloned()?;
        Some((p.value().unwrap().to_string(), p.version()))
    }

    /// Backup AMIs of the instance this stack manages, with their snapshots.
    async fn backups_of(&self, instance: &str) -> BTreeSet<(String, Vec<String>)> {
        let out = self
            .site
            .ec2
            .describe_images()
            .owners("self")
            .filters(
                aws_sdk_ec2::types::Filter::builder().name(format!("tag:{}", tag::BACKUP_OF)).values(instance).build(),
            )
            .send()
            .await
            .unwrap();
        out.images()
            .iter()
            .map(|i| {
                let snapshots = i
                    .block_device_mappings()
                    .iter()
                    .filter_map(|m| m.ebs()?.snapshot_id().map(str::to_string))
                    .collect();
                (i.image_id().unwrap().to_string(), snapshots)
            })
            .collect()
    }

    async fn snapshot_exists(&self, id: &str) -> bool {
        self.site.ec2.describe_snapshots().snapshot_ids(id).send().await.is_ok_and(|o| !o.snapshots().is_empty())
    }

    /// One schedule tick, then every execution it started reported.
    async fn cycle(&self, at: &str) -> (TickReport, Vec<ExecutionOutcome>) {
        let BackupReport::Tick(tick) = self.stack.backup_tick(at).await.unwrap() else { panic!("not a tick report") };
        let delivered = self.stack.deliver_backups(tick.started.len()).await;
        assert!(delivered.handler_errors.is_empty(), "{:?}", delivered.handler_errors);
        let outcomes = delivered
            .backup_reports
            .into_iter()
            .filter_map(|r| match r {
                BackupReport::Execution(e) => Some(e.outcome),
                _ => None,
            })
            .collect();
        (tick, outcomes)
    }
}

fn status_change(execution_id: &str, status: &str) -> serde_json::Value {
    json!({
        "version": "0", "id": "dup", "detail-type": "EC2 Automation Execution Status-change Notification",
        "source": "aws.ssm", "account": "123456789012", "time": "2026-11-22T12:00:00Z", "region": "eu-west-1",
        "resources": [], "detail": {"ExecutionId": execution_id, "Definition": backup_scheduler::DEFAULT_DOCUMENT, "Status": status}
    })
}

fn produced(outcome: &ExecutionOutcome) -> &str {
    match outcome {
        ExecutionOutcome::Completed { image_id, .. } => image_id,
        other => panic!("expected a completed backup, got {other:?}"),
    }
}

#[tokio::test]
async fn three_cycles_keep_the_parameter_on_the_newest_ami_and_two_backups_and_a_failed_fourth_changes_nothing() {
    let w = world().await;
    let (_, instance) = w.stateful("pos-db", &[]).await;
    let stateless = w.site.declare(SERVER_A, "kiosk", &[&w.standby], 20).await;
    w.site.original(&stateless, &w.home, &[(tag::WORKLOAD, "kiosk")]).await;
    // A fenced original of another stateful workload: its data is stale, never backed up.
    w.stateful("old-db", &[(tag::FENCED, "inc-earlier")]).await;
    let parameter = parameter_of("pos-db");

    let mut amis: Vec<String> = Vec::new();
    let mut executions = Vec::new();
    for (k, at) in ["2026-11-22T09:00:00Z", "2026-11-22T10:00:00Z", "2026-11-22T11:00:00Z"].iter().enumerate() {
        let (tick, outcomes) = w.cycle(at).await;
        assert_eq!(tick.started.len(), 1, "only the live stateful instance is backed up: {tick:?}");
        assert_eq!(tick.started[0].0, instance);
        executions.push(tick.started[0].1.clone());
        assert_eq!(outcomes.len(), 1);
        let ami = produced(&outcomes[0]).to_string();
        assert_eq!(w.parameter(&parameter).await.unwrap(), (ami.clone(), k as i64 + 1), "moved once per cycle");
        amis.push(ami);
    }

    // K = 2: the two newest remain with their snapshots; the oldest is gone, snapshot too.
    let remaining = w.backups_of(&instance).await;
    let remaining_ids: BTreeSet<&str> = remaining.iter().map(|(i, _)| i.as_str()).collect();
    assert_eq!(remaining_ids, BTreeSet::from([amis[1].as_str(), amis[2].as_str()]));
    for (_, snapshots) in &remaining {
        assert_eq!(snapshots.len(), 1);
        assert!(w.snapshot_exists(&snapshots[0]).await);
    }
    let tagged_snapshots = w
        .site
        .ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(
            aws_sdk_ec2::types::Filter::builder().name(format!("tag:{}", tag::BACKUP_OF)).values(&instance).build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(tagged_snapshots.snapshots().len(), 2, "no orphan snapshots");
    let newest = w.site.ec2.describe_images().image_ids(&amis[2]).send().await.unwrap();
    let newest_tags = newest.images()[0].tags();
    let tag_value =
        |k: &str| newest_tags.iter().find(|t| t.key() == Some(k)).and_then(|t| t.value()).map(str::to_string);
    assert_eq!(tag_value(tag::BACKUP_OF).as_deref(), Some(instance.as_str()));
    assert_eq!(tag_value(tag::WORKLOAD).as_deref(), Some("pos-db"));
    assert_eq!(tag_value(tag::BACKUP_EXECUTION).as_deref(), Some(executions[2].as_str()));
    assert!(tag_value(tag::BACKUP_TAKEN_AT).is_some());

    // Duplicate completion events change nothing.
    for execution in &executions {
        let report =
            w.stack.backup_scheduler.handle(status_change(execution, "Success"), "req-duplicate").await.unwrap();
        assert!(
            matches!(&report, BackupReport::Execution(e) if e.outcome == ExecutionOutcome::Duplicate),
            "{report:?}"
        );
    }
    assert_eq!(w.parameter(&parameter).await.unwrap(), (amis[2].clone(), 3));
    assert_eq!(w.backups_of(&instance).await, remaining);

    // A failing fourth cycle leaves the parameter alone and says why.
    w.site.tag(&instance, &[(OUTCOME, "Failed")]).await;
    let (_, outcomes) = w.cycle("2026-11-22T12:00:00Z").await;
    assert!(
        matches!(&outcomes[..], [ExecutionOutcome::Failed { reason }] if reason.contains("createSnapshots")),
        "{outcomes:?}"
    );
    assert_eq!(w.parameter(&parameter).await.unwrap(), (amis[2].clone(), 3));
    assert_eq!(w.backups_of(&instance).await, remaining);

    // Every backup is told on the bus; only the failure is mailed.
    let facts = w.stack.told().await;
    let completed: Vec<_> = facts.iter().filter(|n| n.event_type == "BackupCompleted").collect();
    assert_eq!(completed.len(), 3, "{facts:#?}");
    assert!(completed[2].body.contains(&amis[2]), "{}", completed[2].body);
    let pruned: serde_json::Value = serde_json::from_str(&completed[2].body).unwrap();
    assert_eq!(pruned["pruned"][0]["image_id"].as_str(), Some(amis[0].as_str()), "{pruned}");
    let notes = w.stack.notifications().await;
    let failed: Vec<_> = notes.iter().filter(|n| n.event_type == "BackupFailed").collect();
    assert_eq!(failed.len(), 1, "{notes:#?}");
    assert!(notes.iter().all(|n| n.event_type != "BackupCompleted"), "a good backup mails nobody: {notes:#?}");
    assert!(failed[0].body.contains("Failing step: createSnapshots."), "{}", failed[0].body);
    assert!(failed[0].body.contains(&format!("still names the previous backup {}", amis[2])), "{}", failed[0].body);
    assert_eq!(failed[0].server_id, SERVER_A);
}

#[tokio::test]
async fn in_flight_instances_are_skipped_and_the_concurrency_bound_holds() {
    let w = world().await;
    let mut instances = Vec::new();
    for name in ["db-1", "db-2", "db-3"] {
        instances.push(w.stateful(name, &[(SECONDS, "1.5")]).await.1);
    }
    let mut config = backup_config(&w.stack.store);
    config.max_concurrent = 2;
    let scheduler = BackupScheduler::new(config, w.stack.role_sdk(roles::BACKUP_SCHEDULER));
    let tick = |at: &'static str| {
        let scheduler = &scheduler;
        async move {
            match scheduler.handle(outposts_ha_tests::stack::scheduled_event(at), at).await.unwrap() {
                BackupReport::Tick(t) => t,
                other => panic!("{other:?}"),
            }
        }
    };

    let first = tick("2026-11-22T09:00:00Z").await;
    assert_eq!(first.started.len(), 2, "{first:?}");
    let deferred: Vec<_> = first.not_started.iter().filter(|(_, r)| *r == NotStarted::Deferred).collect();
    assert_eq!(deferred.len(), 1);

    // The same tick redelivered, and the next tick, while both executions still run.
    for at in ["2026-11-22T09:00:00Z", "2026-11-22T09:05:00Z"] {
        let again = tick(at).await;
        assert!(again.started.is_empty(), "{again:?}");
        let in_flight: BTreeSet<&str> =
            again.not_started.iter().filter(|(_, r)| *r == NotStarted::InFlight).map(|(i, _)| i.as_str()).collect();
        assert_eq!(in_flight, first.started.iter().map(|(i, _)| i.as_str()).collect());
    }

    w.stack.deliver_backups(2).await;
    let later = tick("2026-11-22T10:00:00Z").await;
    assert_eq!(later.started.len(), 2, "the deferred one goes first, then one more: {later:?}");
    assert!(later.started.iter().any(|(i, _)| *i == deferred[0].0), "{later:?}");
}

#[tokio::test]
async fn stale_and_misdeclared_backups_are_reported_once() {
    let w = world().await;
    // A backup from 3 h ago and a 1 d interval: not due, but older than the 1 h RPO.
    let (_, old) = w.stateful("ledger", &[(tag::BACKUP_INTERVAL, "1d")]).await;
    let image = w
        .site
        .ec2
        .create_image()
        .instance_id(&old)
        .name("ledger-backup")
        .send()
        .await
        .unwrap()
        .image_id()
        .unwrap()
        .to_string();
    let three_hours_ago = ha_domain::timefmt::format_timestamp(ha_domain::timefmt::now() - time::Duration::hours(3));
    w.site
        .tag(
            &image,
            &[(tag::STACK, STACK_NAME), (tag::BACKUP_OF, old.as_str()), (tag::BACKUP_TAKEN_AT, &three_hours_ago)],
        )
        .await;
    // Never backed up, and not allowed to be: its parameter is outside the stack's path.
    let rogue = w.site.declare(SERVER_A, "rogue", &[&w.standby], 30).await;
    let misdeclared = w
        .site
        .original(&rogue, &w.home, &[(tag::WORKLOAD, "rogue"), (tag::BACKUP_PARAMETER, "/elsewhere/rogue")])
        .await;

    for at in ["2026-11-22T09:00:00Z", "2026-11-22T10:00:00Z"] {
        let BackupReport::Tick(tick) = w.stack.backup_tick(at).await.unwrap() else { panic!() };
        assert!(tick.started.is_empty(), "{tick:?}");
        assert_eq!(tick.stale, vec![old.clone()]);
        assert_eq!(tick.misdeclared, vec![misdeclared.clone()]);
        w.stack.deliver().await;
    }
    let notes = w.stack.notifications().await;
    let stale: Vec<_> = notes.iter().filter(|n| n.event_type == "BackupStale").collect();
    assert_eq!(stale.len(), 2, "one per instance, not one per tick: {notes:#?}");
    let about = |id: &str| stale.iter().find(|n| n.body.contains(id)).unwrap_or_else(|| panic!("nothing about {id}"));
    assert!(about(&old).body.contains(&format!("the newest good backup {image} is 3 h old; the RPO is 1 h")));
    assert!(about(&misdeclared).body.contains("it must name an SSM parameter under /outposts-ha/outposts-ha-test/"));
}

#[tokio::test]
async fn unusable_results_fail_clearly_and_leave_the_parameter_alone() {
    let w = world().await;
    let (_, no_output) = w.stateful("no-output", &[(OUTCOME, "NoOutput")]).await;
    let (_, unavailable) = w.stateful("unavailable", &[(OUTCOME, "UnavailableImage")]).await;
    let (_, doomed) = w.stateful("doomed", &[(SECONDS, "1")]).await;
    let BackupReport::Tick(tick) = w.stack.backup_tick("2026-11-22T09:00:00Z").await.unwrap() else { panic!() };
    assert_eq!(tick.started.len(), 3);
    w.site.ec2.terminate_instances().instance_ids(&doomed).send().await.unwrap();
    w.stack.deliver_backups(3).await;

    let notes = w.stack.notifications().await;
    let failure_about = |id: &str| {
        notes
            .iter()
            .find(|n| n.event_type == "BackupFailed" && n.body.contains(id))
            .unwrap_or_else(|| panic!("no BackupFailed about {id}: {notes:#?}"))
            .body
            .clone()
    };
    assert!(failure_about(&no_output).contains("has no output createAMIFromSnapshot.ImageId"));
    assert!(failure_about(&unavailable).contains("is failed, not available"));
    assert!(failure_about(&doomed).contains(&format!("instance {doomed} is terminated")));
    assert!(failure_about(&doomed).contains("was NOT adopted"));
    for name in ["no-output", "unavailable", "doomed"] {
        assert_eq!(w.parameter(&parameter_of(name)).await, None, "{name}: parameter untouched");
    }
    assert!(w.stack.told().await.iter().all(|n| n.event_type != "BackupCompleted"));
}

#[tokio::test]
async fn a_relaunch_after_backups_starts_from_the_newest_and_says_how_old_it_is() {
    let w = world().await;
    let (pos, instance) = w.stateful("pos-db", &[]).await;
    let never =
        w.site.declare_with(SERVER_A, "ledger-db", &[&w.standby], 20, Some(&parameter_of("ledger-db")), &[]).await;
    let mut newest = String::new();
    for at in ["2026-11-22T09:00:00Z", "2026-11-22T10:00:00Z"] {
        let (_, outcomes) = w.cycle(at).await;
        newest = produced(&outcomes[0]).to_string();
    }
    w.stack.notifications().await;

    w.stack.alarm(&alarm_event(ALARM_A, SERVER_A, "OK", "ALARM", "2026-11-22T10:30:00.000+0000")).await.unwrap();
    let delivered = w.stack.deliver().await;
    assert!(delivered.handler_errors.is_empty(), "{:?}", delivered.handler_errors);

    let replacements = w.site.replacements().await;
    let restored: Vec<_> = replacements.iter().filter(|r| tag_of(r, tag::WORKLOAD) == Some(&pos.name)).collect();
    assert_eq!(restored.len(), 1, "{replacements:#?}");
    assert_eq!(restored[0].image_id(), Some(newest.as_str()), "launched from the newest backup");
    assert_eq!(tag_of(restored[0], tag::RESTORED_FROM), Some(newest.as_str()));
    assert!(tag_of(restored[0], tag::BACKUP_TAKEN_AT).is_some());
    assert_ne!(restored[0].instance_id(), Some(instance.as_str()));
    assert!(replacements.iter().all(|r| tag_of(r, tag::WORKLOAD) != Some(&never.name)), "no backup, no launch");

    let facts = w.stack.told().await;
    let relaunched = facts.iter().find(|n| n.event_type == "WorkloadRelaunched").expect("relaunch told");
    let relaunched: serde_json::Value = serde_json::from_str(&relaunched.body).unwrap();
    assert_eq!(relaunched["restored_from"]["image_id"].as_str(), Some(newest.as_str()), "{relaunched}");
    assert!(relaunched["restored_from"]["age_seconds"].is_i64(), "{relaunched}");
    let notes = w.stack.notifications().await;
    let failed = notes.iter().find(|n| n.event_type == "WorkloadRelaunchFailed").expect("no-backup notification");
    assert!(failed.subject.ends_with("ledger-db has no usable backup"), "{}", failed.subject);
    assert!(failed.body.contains("does not exist: no backup to restore from"), "{}", failed.body);
}

#[tokio::test]
async fn the_runbooks_helper_runs_in_the_regions_subnet_of_the_vpc_with_the_instances_architecture() {
    let w = world().await;
    let (_, instance) = w.stateful("pos-db", &[]).await;
    let (tick, outcomes) = w.cycle("2026-11-22T09:00:00Z").await;
    assert_eq!(tick.started.len(), 1, "{tick:?}");
    produced(&outcomes[0]);
    let execution = w.ssm.get_automation_execution().automation_execution_id(&tick.started[0].1).send().await.unwrap();
    let parameters = execution.automation_execution().unwrap().parameters().unwrap().clone();
    let first = |name: &str| parameters.get(name).and_then(|v| v.first()).cloned();
    assert_eq!(first("InstanceId").as_deref(), Some(instance.as_str()));
    assert_eq!(first("SubnetId"), Some(w.site.helper_subnet.clone()), "not the instance's own (Outpost) subnet");
    assert_eq!(first("TemporaryInstancesType").as_deref(), Some("c5.large"), "x86_64 like the instance");

    // The helper subnet's tag moved to an Outpost subnet by mistake: nothing is started,
    // and the reason is told.
    w.site
        .ec2
        .delete_tags()
        .resources(&w.site.helper_subnet)
        .tags(aws_sdk_ec2::types::Tag::builder().key(tag::BACKUP_HELPER).build())
        .send()
        .await
        .unwrap();
    w.site.tag(&w.home, &[(tag::BACKUP_HELPER, "by mistake")]).await;
    let (tick, _) = w.cycle("2026-11-22T10:00:00Z").await;
    assert!(tick.started.is_empty(), "{tick:?}");
    assert_eq!(tick.misdeclared, vec![instance.clone()], "{tick:?}");
    let stale: Vec<_> =
        w.stack.notifications().await.into_iter().filter(|n| n.body.contains("is an Outpost's subnet")).collect();
    assert_eq!(stale.len(), 1, "told once: {stale:#?}");
}

#[tokio::test]
async fn the_emulator_fails_a_runbook_whose_helper_is_on_an_outpost_or_of_another_architecture() {
    let w = world().await;
    let (_, instance) = w.stateful("pos-db", &[]).await;
    let cases = [
        (w.home.clone(), "c5.large", "is an Outpost's subnet"),
        (w.site.helper_subnet.clone(), "c6g.large", "is not x86_64"),
        (w.site.helper_subnet.clone(), "c5.large", ""),
    ];
    for (subnet, helper_type, refusal) in cases {
        let started = w
            .ssm
            .start_automation_execution()
            .document_name(backup_scheduler::DEFAULT_DOCUMENT)
            .parameters("InstanceId", vec![instance.clone()])
            .parameters("SubnetId", vec![subnet.clone()])
            .parameters("TemporaryInstancesType", vec![helper_type.to_string()])
            .send()
            .await
            .unwrap();
        let id = started.automation_execution_id().unwrap().to_string();
        let execution = loop {
            let out = w.ssm.get_automation_execution().automation_execution_id(&id).send().await.unwrap();
            let e = out.automation_execution().unwrap().clone();
            if e.automation_execution_status().is_some_and(|s| s.as_str() != "InProgress") {
                break e;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        let status = execution.automation_execution_status().unwrap().as_str().to_string();
        if refusal.is_empty() {
            assert_eq!(status, "Success", "{execution:?}");
            continue;
        }
        assert_eq!(status, "Failed", "{subnet} {helper_type}");
        let step = &execution.step_executions()[0];
        assert_eq!(step.step_name(), Some("stageCreateHelperInstanceAutomation"));
        assert!(step.failure_message().unwrap_or_default().contains(refusal), "{step:?}");
    }
}
