//! Fail-back against moto, as docs/runbook.md says it: a stateless workload moves home with
//! `make failback` (original unfenced, in its target group and healthy, then the
//! replacement out and terminated, and nothing told as lost); a stateful one is left to the
//! written procedure, which this test follows step by step: back up the replacement,
//! launch the workload home from that backup, terminate the replacement, and the next
//! backup is of the home copy.

use ha_domain::model::tag;
use operator::Response;
use outposts_ha_tests::emulator::Emulator;
use outposts_ha_tests::site::{tag_of, Site};
use outposts_ha_tests::stack::{alarm_event, instance_running_event, Stack, STACK_NAME};
use serde_json::json;

const SERVER_A: &str = "op-0000000000000000a";
const STANDBY: &str = "op-0000000000000000b";
const ALARM_A: &str = "outposts-ha-store-a";

async fn instance(site: &Site, id: &str) -> aws_sdk_ec2::types::Instance {
    let out = site.ec2.describe_instances().instance_ids(id).send().await.unwrap();
    out.reservations()[0].instances()[0].clone()
}

fn state(i: &aws_sdk_ec2::types::Instance) -> String {
    i.state().and_then(|s| s.name()).map(|n| n.as_str().to_string()).unwrap_or_default()
}

fn failback() -> serde_json::Value {
    json!({"detail-type": "FailbackRequested", "detail": {"server_id": SERVER_A, "requested_at": "2026-11-22T11:00:00Z"}})
}

#[tokio::test]
async fn a_stateless_workload_moves_home_and_a_stateful_one_follows_the_runbook() {
    let moto = Emulator::start().await;
    let sdk = moto.sdk_config().await;
    let stack = Stack::deploy(&sdk, 8).await;
    let site = Site::create(&sdk).await;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
    let home = site.outpost_subnet("10.0.1.0/24", SERVER_A).await;
    let standby = site.outpost_subnet("10.0.2.0/24", STANDBY).await;
    let group = site.target_group(&elb, "pos-web").await;
    let targets = || async {
        let out = elb.describe_target_health().target_group_arn(&group).send().await.unwrap();
        let mut ids: Vec<String> =
            out.target_health_descriptions().iter().filter_map(|d| d.target()?.id().map(str::to_string)).collect();
        ids.sort();
        ids
    };

    let pos = site.declare_with(SERVER_A, "pos", &[&standby], 10, None, &[(tag::TARGET_GROUPS, "pos-web")]).await;
    let parameter = format!("/outposts-ha/{STACK_NAME}/backup/pos-db");
    let db = site.declare_with(SERVER_A, "pos-db", &[&standby], 20, Some(&parameter), &[]).await;
    let pos_original = site.original(&pos, &home, &[(tag::WORKLOAD, "pos")]).await;
    let db_tags = [(tag::WORKLOAD, "pos-db"), (tag::BACKUP_PARAMETER, parameter.as_str())];
    let db_original = site.original(&db, &home, &db_tags).await;
    elb.register_targets()
        .target_group_arn(&group)
        .targets(aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder().id(&pos_original).build())
        .send()
        .await
        .unwrap();
    stack.backup_tick("2026-11-22T09:00:00Z").await.unwrap();
    assert!(stack.deliver_backups(1).await.handler_errors.is_empty());

    // The outage: both replaced; the return: both originals fenced, the incident closed.
    stack.alarm(&alarm_event(ALARM_A, SERVER_A, "OK", "ALARM", "2026-11-22T10:00:00.000+0000")).await.unwrap();
    assert!(stack.deliver().await.handler_errors.is_empty());
    let replacement = |name: &'static str| {
        let site = &site;
        async move {
            let found = site.replacements().await;
            let r = found.iter().find(|r| tag_of(r, tag::WORKLOAD) == Some(name)).expect("replaced");
            r.instance_id().unwrap().to_string()
        }
    };
    let (pos_replacement, db_replacement) = (replacement("pos").await, replacement("pos-db").await);
    for running in [&pos_replacement, &db_replacement] {
        stack.relaunch.handle(instance_running_event(running), "serve").await.unwrap();
    }
    assert_eq!(targets().await, vec![pos_replacement.clone()], "the replacement serves; the original is out");
    let refused = stack.operator.handle(failback()).await.unwrap();
    assert!(refused.refused().is_some_and(|r| r.contains("is in incident")), "{refused:?}");
    stack.alarm(&alarm_event(ALARM_A, SERVER_A, "ALARM", "OK", "2026-11-22T10:20:00.000+0000")).await.unwrap();
    assert!(stack.deliver().await.handler_errors.is_empty());
    assert!(tag_of(&instance(&site, &pos_original).await, tag::FENCED).is_some());
    stack.told().await;

    // make failback: pos home; pos-db left to the procedure. Repeated, it changes nothing.
    let Response::Failback(report) = stack.operator.handle(failback()).await.unwrap() else { panic!("a failback") };
    assert!(report.done(), "{report:?}");
    assert_eq!(
        report.moved_home.iter().map(|h| (h.workload.as_str(), h.original_instance_id.as_str())).collect::<Vec<_>>(),
        vec![("pos", pos_original.as_str())]
    );
    assert_eq!(report.left.len(), 1, "{report:?}");
    assert!(report.left[0].reason.starts_with("stateful"), "{report:?}");
    assert_eq!(targets().await, vec![pos_original.clone()], "the original serves again, alone");
    let original = instance(&site, &pos_original).await;
    assert_eq!((state(&original).as_str(), tag_of(&original, tag::FENCED)), ("running", None));
    assert!(matches!(state(&instance(&site, &pos_replacement).await).as_str(), "shutting-down" | "terminated"));
    let mut ended = instance_running_event(&pos_replacement);
    ended["detail"]["state"] = json!("terminated");
    let lost = format!("{:?}", stack.relaunch.handle(ended, "lost").await.unwrap());
    assert!(lost.contains("runs on its original again"), "{lost}");
    let told: Vec<_> = stack.told().await.into_iter().map(|n| n.event_type).collect();
    assert_eq!(told, vec!["OriginalUnfenced"], "moving home is told once; the replacement's end is not a loss");
    let Response::Failback(again) = stack.operator.handle(failback()).await.unwrap() else { panic!("a failback") };
    assert!(again.moved_home.iter().all(|h| h.workload == "pos") && again.done(), "{again:?}");
    assert_eq!(targets().await, vec![pos_original.clone()]);

    // The stateful procedure. 3: back up the replacement (it carries the backup tags).
    let (_, taken) = {
        stack.backup_tick("2026-11-22T11:00:00Z").await.unwrap();
        let delivered = stack.deliver_backups(1).await;
        assert!(delivered.handler_errors.is_empty(), "{:?}", delivered.handler_errors);
        let value = ssm.get_parameter().name(&parameter).send().await.unwrap();
        ((), value.parameter().unwrap().value().unwrap().to_string())
    };
    let image = site.ec2.describe_images().image_ids(&taken).send().await.unwrap();
    let backup_of = image.images()[0].tags().iter().find(|t| t.key() == Some(tag::BACKUP_OF)).and_then(|t| t.value());
    assert_eq!(backup_of, Some(db_replacement.as_str()), "the parameter names the replacement's backup");
    // 4: launch the workload home from that backup (its template, the parameter's image).
    let home_copy = site
        .ec2
        .run_instances()
        .launch_template(
            aws_sdk_ec2::types::LaunchTemplateSpecification::builder()
                .launch_template_id(&db.launch_template_id)
                .build(),
        )
        .image_id(&taken)
        .subnet_id(&home)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap();
    let home_copy = home_copy.instances()[0].instance_id().unwrap().to_string();
    site.tag(&home_copy, &[(tag::PROTECTED_SERVER, SERVER_A)]).await;
    // 6 and 7: the replacement and the old original terminated.
    site.ec2.terminate_instances().instance_ids(&db_replacement).instance_ids(&db_original).send().await.unwrap();
    // The next backup is of the home copy, and a drill would relaunch from it.
    stack.backup_tick("2026-11-22T12:00:00Z").await.unwrap();
    assert!(stack.deliver_backups(1).await.handler_errors.is_empty());
    let newest =
        ssm.get_parameter().name(&parameter).send().await.unwrap().parameter().unwrap().value().unwrap().to_string();
    let image = site.ec2.describe_images().image_ids(&newest).send().await.unwrap();
    let backup_of = image.images()[0].tags().iter().find(|t| t.key() == Some(tag::BACKUP_OF)).and_then(|t| t.value());
    assert_eq!(backup_of, Some(home_copy.as_str()), "backups follow the home copy");
    let drill = json!({"detail-type": "DrillRequested", "detail": {"server_id": SERVER_A, "requested_at": "2026-11-22T12:30:00Z"}});
    let drilled = stack.relaunch.handle(drill, "drill-1").await.unwrap();
    let verdicts = &drilled.as_drill().unwrap().verdicts;
    let db_verdict = verdicts.iter().find(|v| v.workload == "pos-db").unwrap();
    assert!(db_verdict.ready, "{verdicts:?}");
    assert_eq!(db_verdict.restored_from.as_ref().map(|r| r.image_id.as_str()), Some(newest.as_str()));
}
