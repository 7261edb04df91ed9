//! Back in service against moto: a running replacement is registered with its workload's
//! target group, and the original leaves the group only after the replacement is healthy.

use ha_domain::model::tag;
use outposts_ha_tests::emulator::Emulator;
use outposts_ha_tests::faults::{CallLog, Delay, FaultyClient};
use outposts_ha_tests::site::Site;
use outposts_ha_tests::stack::{alarm_event, instance_running_event as running, Stack};
use std::sync::Arc;
use std::time::Duration;

const SERVER_A: &str = "op-0000000000000000a";
const ALARM_A: &str = "outposts-ha-store-a";

#[tokio::test]
async fn a_healthy_replacement_is_registered_before_the_original_is_deregistered() {
    let moto = Emulator::start().await;
    let sdk = moto.sdk_config().await;
    let log = Arc::new(CallLog::default());
    let handler_sdk = FaultyClient::new(Delay::new(Duration::ZERO, log.clone())).into_sdk_config(&sdk);
    let stack = Stack::deploy_with_handler_sdk(&sdk, &handler_sdk, 8).await;
    let site = Site::create(&sdk).await;
    let home = site.subnet("10.0.1.0/24").await;
    let standby = site.subnet("10.0.2.0/24").await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
    let group = site.target_group(&elb, "pos-web").await;
    let pos = site.declare_with(SERVER_A, "pos", &[&standby], 10, None, &[(tag::TARGET_GROUPS, "pos-web")]).await;
    let original = site.original(&pos, &home, &[(tag::WORKLOAD, "pos")]).await;
    let target = |id: &str| aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder().id(id).build();
    elb.register_targets().target_group_arn(&group).targets(target(&original)).send().await.unwrap();
    let registered = || async {
        let out = elb.describe_target_health().target_group_arn(&group).send().await.unwrap();
        let mut v: Vec<(String, String)> = out
            .target_health_descriptions()
            .iter()
            .map(|d| {
                let id = d.target().unwrap().id().unwrap().to_string();
                (id, d.target_health().unwrap().state().unwrap().as_str().to_string())
            })
            .collect();
        v.sort();
        v
    };

    stack.alarm(&alarm_event(ALARM_A, SERVER_A, "OK", "ALARM", "2026-11-22T10:00:00.000+0000")).await.unwrap();
    stack.deliver().await;
    let replacement = site.replacements().await[0].instance_id().unwrap().to_string();
    assert_eq!(
        site.replacements().await[0]
            .tags()
            .iter()
            .find(|t| t.key() == Some(tag::TARGET_GROUPS))
            .and_then(|t| t.value()),
        Some("pos-web")
    );
    stack.notifications().await;

    // moto reports a registered, running target healthy at once; the not-yet-healthy path
    // (initial health checks) is covered with mocks in relaunch's failure_paths.
    stack.relaunch.handle(running(&replacement), "serve-2").await.unwrap();
    assert_eq!(registered().await, vec![(replacement.clone(), "healthy".to_string())]);
    let sequence = log.sequence.lock().unwrap().clone();
    let register = sequence.iter().position(|op| op == "RegisterTargets").unwrap();
    let deregister = sequence.iter().position(|op| op == "DeregisterTargets").unwrap();
    assert!(register < deregister, "{sequence:?}");

    // Redelivered, and another instance's state change: nothing new.
    stack.relaunch.handle(running(&replacement), "serve-3").await.unwrap();
    let ignored = stack.relaunch.handle(running(&original), "serve-4").await.unwrap();
    assert_eq!(ignored.ignored(), Some("not a replacement"));
    stack.deliver().await;
    let facts = stack.told().await;
    let serving: Vec<_> = facts.iter().filter(|n| n.event_type == "WorkloadServing").collect();
    assert_eq!(serving.len(), 1, "{facts:#?}");
    let serving: serde_json::Value = serde_json::from_str(&serving[0].body).unwrap();
    assert_eq!(serving["deregistered"], serde_json::json!([original]), "{serving}");
    assert!(serving["detection_to_serving_seconds"].is_f64(), "{serving}");

    let item = aws_sdk_dynamodb::Client::new(&sdk)
        .query()
        .table_name(&stack.table)
        .key_condition_expression("begins_with(sk, :w) AND pk = :pk")
        .expression_attribute_values(":w", aws_sdk_dynamodb::types::AttributeValue::S("WORKLOAD#pos".into()))
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!(
                "INCIDENT#{}",
                site.replacements().await[0]
                    .tags()
                    .iter()
                    .find(|t| t.key() == Some(tag::INCIDENT))
                    .unwrap()
                    .value()
                    .unwrap()
            )),
        )
        .send()
        .await
        .unwrap();
    assert!(item.items()[0].contains_key("serving_at"), "the ledger records it");
}
