//! Warm standby against moto, each function under its template role: the reconciler keeps a
//! warm workload's standby present, running, current and in place; on failure the standby is
//! promoted (no hook: it serves at once; a hook: once the hook succeeded; a failed hook: the
//! workload falls back to a cold launch and the standby is kept out of service), N+1 is
//! restored on the next destination, and the originals are fenced on return.

use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, StateValue, Statistic};
use ha_domain::model::tag;
use outposts_ha_tests::emulator::Emulator;
use outposts_ha_tests::site::{tag_of, Site};
use outposts_ha_tests::stack::{alarm_event, Stack, STACK_NAME};
use relaunch::Response;
use serde_json::json;

const SERVER_A: &str = "op-0000000000000000a";
const STANDBY_B: &str = "op-0000000000000000b";
const STANDBY_C: &str = "op-0000000000000000c";
const ALARM_A: &str = "outposts-ha-store-a";

fn reconcile() -> serde_json::Value {
    json!({"detail-type": "StandbyReconcileRequested", "source": "outposts-ha",
        "detail": {"requested_at": "2026-11-22T09:00:00Z"}})
}

async fn standbys(site: &Site, workload: &str) -> Vec<aws_sdk_ec2::types::Instance> {
    let all = site.live_instances_tagged(tag::ROLE, tag::ROLE_STANDBY).await;
    all.into_iter().filter(|i| tag_of(i, tag::WORKLOAD) == Some(workload)).collect()
}

async fn reconciled(stack: &Stack) -> relaunch::StandbyReport {
    match stack.relaunch.handle(reconcile(), "reconcile").await.expect("reconciles") {
        Response::Standbys(r) => r,
        other => panic!("not a reconcile: {other:?}"),
    }
}

async fn hook_document(sdk: &aws_config::SdkConfig, name: &str) {
    let content = json!({"schemaVersion": "2.2", "description": "promote", "mainSteps": [
        {"action": "aws:runShellScript", "name": "promote", "inputs": {"runCommand": ["echo promoted"]}}]});
    aws_sdk_ssm::Client::new(sdk)
        .create_document()
        .name(name)
        .document_type(aws_sdk_ssm::types::DocumentType::Command)
        .document_format(aws_sdk_ssm::types::DocumentFormat::Json)
        .content(content.to_string())
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn standbys_are_reconciled_promoted_restored_and_the_originals_fenced() {
    let moto = Emulator::start().await;
    let sdk = moto.sdk_config().await;
    let stack = Stack::deploy(&sdk, 8).await;
    let site = Site::create(&sdk).await;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&sdk);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
    let home = site.outpost_subnet("10.0.1.0/24", SERVER_A).await;
    let on_b = site.outpost_subnet("10.0.2.0/24", STANDBY_B).await;
    let on_c = site.outpost_subnet("10.0.3.0/24", STANDBY_C).await;

    // The server's alarm, OK and labelled with this stack (the reconciler's servers).
    cloudwatch
        .put_metric_alarm()
        .alarm_name(ALARM_A)
        .namespace("AWS/Outposts")
        .metric_name("ConnectedStatus")
        .dimensions(Dimension::builder().name("OutpostId").value(SERVER_A).build())
        .statistic(Statistic::Minimum)
        .period(60)
        .evaluation_periods(3)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::LessThanThreshold)
        .tags(aws_sdk_cloudwatch::types::Tag::builder().key(tag::STACK).value(STACK_NAME).build())
        .send()
        .await
        .unwrap();
    let alarm_state = |state: StateValue| {
        let cloudwatch = cloudwatch.clone();
        async move {
            cloudwatch
                .set_alarm_state()
                .alarm_name(ALARM_A)
                .state_value(state)
                .state_reason("test")
                .send()
                .await
                .unwrap();
        }
    };
    alarm_state(StateValue::Ok).await;

    let group = site.target_group(&elb, "pos-web").await;
    hook_document(&sdk, "outposts-ha-promote-kiosk").await;
    hook_document(&sdk, "outposts-ha-promote-db").await;

    let warm = |extra: &'static [(&'static str, &'static str)]| {
        let mut tags = vec![(tag::MODE, "warm")];
        tags.extend_from_slice(extra);
        tags
    };
    let pos =
        site.declare_with(SERVER_A, "pos", &[&on_b, &on_c], 10, None, &warm(&[(tag::TARGET_GROUPS, "pos-web")])).await;
    let kiosk = site
        .declare_with(
            SERVER_A,
            "kiosk",
            &[&on_b],
            20,
            None,
            &warm(&[(tag::PROMOTION_DOCUMENT, "outposts-ha-promote-kiosk")]),
        )
        .await;
    let db = site
        .declare_with(
            SERVER_A,
            "pos-db",
            &[&on_b, &on_c],
            30,
            None,
            &warm(&[(tag::PROMOTION_DOCUMENT, "outposts-ha-promote-db")]),
        )
        .await;
    let api = site.declare(SERVER_A, "api", &[&on_b], 40).await;
    let mut originals = Vec::new();
    for w in [&pos, &kiosk, &db, &api] {
        originals.push(site.original(w, &home, &[(tag::WORKLOAD, w.name.as_str())]).await);
    }

    // Missing: each warm workload gets one standby on its first destination, none for api.
    let first = reconciled(&stack).await;
    assert_eq!(first.launched.len(), 3, "{first:?}");
    assert!(standbys(&site, "api").await.is_empty(), "a cold workload has no standby");
    let pos_standby = standbys(&site, "pos").await;
    assert_eq!(pos_standby.len(), 1);
    assert_eq!(pos_standby[0].subnet_id(), Some(on_b.as_str()));
    assert_eq!(tag_of(&pos_standby[0], tag::STANDBY_VERSION), Some("1"));
    assert_eq!(tag_of(&pos_standby[0], tag::SOURCE_SERVER), Some(SERVER_A));
    let drifts: Vec<_> = stack.told().await.into_iter().filter(|n| n.event_type == "StandbyDrifted").collect();
    assert_eq!(drifts.len(), 3, "each drift told once");
    let again = reconciled(&stack).await;
    assert!(again.launched.is_empty() && again.retired.is_empty(), "nothing to do: {again:?}");

    // Stopped: retired and replaced in one pass.
    let stopped = standbys(&site, "kiosk").await[0].instance_id().unwrap().to_string();
    site.ec2.stop_instances().instance_ids(&stopped).send().await.unwrap();
    let pass = reconciled(&stack).await;
    assert_eq!(pass.retired, vec![format!("kiosk: {stopped} (stopped)")]);
    assert_eq!(pass.launched.len(), 1);

    // Outdated: a new default template version; the successor first, then the old retired.
    let outdated = standbys(&site, "pos").await[0].instance_id().unwrap().to_string();
    site.ec2
        .create_launch_template_version()
        .launch_template_id(&pos.launch_template_id)
        .source_version("1")
        .launch_template_data(aws_sdk_ec2::types::RequestLaunchTemplateData::builder().build())
        .send()
        .await
        .unwrap();
    site.ec2
        .modify_launch_template()
        .launch_template_id(&pos.launch_template_id)
        .default_version("2")
        .send()
        .await
        .unwrap();
    let pass = reconciled(&stack).await;
    assert_eq!(pass.launched.len(), 1, "{pass:?}");
    assert!(pass.retired.is_empty(), "the only copy stays until its successor runs: {pass:?}");
    let pass = reconciled(&stack).await;
    assert_eq!(pass.retired, vec![format!("pos: {outdated} (outdated)")]);
    let current = standbys(&site, "pos").await;
    assert_eq!(current.len(), 1);
    assert_eq!(tag_of(&current[0], tag::STANDBY_VERSION), Some("2"));

    // Wrong server: a standby on a destination it does not belong on is retired.
    let misplaced = site
        .ec2
        .run_instances()
        .image_id(&site.image_id)
        .subnet_id(&on_c)
        .min_count(1)
        .max_count(1)
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
                .tags(aws_sdk_ec2::types::Tag::builder().key(tag::WORKLOAD).value("pos-db").build())
                .tags(aws_sdk_ec2::types::Tag::builder().key(tag::ROLE).value(tag::ROLE_STANDBY).build())
                .tags(aws_sdk_ec2::types::Tag::builder().key(tag::SOURCE_SERVER).value(SERVER_A).build())
                .tags(aws_sdk_ec2::types::Tag::builder().key(tag::STANDBY_VERSION).value("1").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let misplaced = misplaced.instances()[0].instance_id().unwrap().to_string();
    let pass = reconciled(&stack).await;
    assert_eq!(pass.retired, vec![format!("pos-db: {misplaced} (wrong_server)")]);

    // The db's hook will fail; the kiosk's succeeds.
    let db_standby = standbys(&site, "pos-db").await[0].instance_id().unwrap().to_string();
    site.tag(&db_standby, &[("run-command-double:outcome", "Failed")]).await;
    let pos_standby = standbys(&site, "pos").await[0].instance_id().unwrap().to_string();
    let kiosk_standby = standbys(&site, "kiosk").await[0].instance_id().unwrap().to_string();

    // The outage.
    alarm_state(StateValue::Alarm).await;
    stack.alarm(&alarm_event(ALARM_A, SERVER_A, "OK", "ALARM", "2026-11-22T10:00:00.000+0000")).await.unwrap();
    let mut errors = stack.deliver().await.handler_errors;
    // The hooks end a moment later, on the default bus.
    for _ in 0..3 {
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        errors.extend(stack.deliver().await.handler_errors);
    }
    assert!(errors.is_empty(), "{errors:?}");

    let replacements = site.replacements().await;
    let replacement_of = |name: &str| {
        replacements
            .iter()
            .filter(|r| tag_of(r, tag::WORKLOAD) == Some(name))
            .map(|r| r.instance_id().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(replacement_of("pos"), vec![pos_standby.clone()], "pos: its standby promoted, nothing launched");
    assert_eq!(replacement_of("kiosk"), vec![kiosk_standby.clone()]);
    let db_cold = replacement_of("pos-db");
    assert_eq!(db_cold.len(), 1, "the failed promotion fell back to one cold launch");
    assert_ne!(db_cold[0], db_standby);
    assert_eq!(replacement_of("api").len(), 1, "the cold workload launched");

    // Serving: pos behind its group at once; the failed standby kept, out of service.
    let health = elb.describe_target_health().target_group_arn(&group).send().await.unwrap();
    let targets: Vec<&str> = health.target_health_descriptions().iter().filter_map(|d| d.target()?.id()).collect();
    assert_eq!(targets, vec![pos_standby.as_str()]);
    let kept = site.ec2.describe_instances().instance_ids(&db_standby).send().await.unwrap();
    let kept = &kept.reservations()[0].instances()[0];
    assert_eq!(tag_of(kept, tag::ROLE), Some(tag::ROLE_PROMOTION_FAILED));
    assert_eq!(kept.state().and_then(|s| s.name()).map(|n| n.as_str()), Some("running"), "kept for a person");
    let kiosk_tags = site.ec2.describe_instances().instance_ids(&kiosk_standby).send().await.unwrap();
    assert_eq!(tag_of(&kiosk_tags.reservations()[0].instances()[0], tag::PROMOTION_HOOK), Some(tag::HOOK_SUCCEEDED));

    let told = stack.told().await;
    let of = |kind: &str| told.iter().filter(|n| n.event_type == kind).count();
    assert_eq!(of("PromotionFailed"), 1, "told once");
    let served: Vec<String> = told
        .iter()
        .filter(|n| n.event_type == "WorkloadServing")
        .filter_map(|n| {
            serde_json::from_str::<serde_json::Value>(&n.body).ok()?["workload"].as_str().map(str::to_string)
        })
        .collect();
    for w in ["pos", "kiosk"] {
        assert!(served.iter().any(|s| s == w), "{w} serves: {served:?}");
    }

    // N+1: pos's new standby on the next destination (its replacement holds the first).
    let restored = standbys(&site, "pos").await;
    assert_eq!(restored.len(), 1, "N+1 restored");
    assert_eq!(restored[0].subnet_id(), Some(on_c.as_str()));
    assert!(standbys(&site, "kiosk").await.is_empty(), "no second destination: none, and told");

    // The server comes back: every original fenced, the promoted standbys counting as copies.
    alarm_state(StateValue::Ok).await;
    stack.alarm(&alarm_event(ALARM_A, SERVER_A, "ALARM", "OK", "2026-11-22T10:30:00.000+0000")).await.unwrap();
    let errors = stack.deliver().await.handler_errors;
    assert!(errors.is_empty(), "{errors:?}");
    let fenced = stack.told().await;
    for original in &originals {
        assert!(
            fenced.iter().any(|n| n.event_type == "OriginalFenced" && n.body.contains(original.as_str())),
            "{original} fenced"
        );
    }
}
