//! A relaunch claimant that died mid-launch (Lambda timeout, crash) is retried safely:
//! its expired claim is taken over, and what it may already have launched is adopted.

use aws_sdk_dynamodb::types::AttributeValue;
use ha_domain::contract::{ProjectEvent, RelaunchRequested};
use ha_domain::incident::IncidentId;
use ha_domain::model::{tag, ServerId, Workload};
use ha_ports::Fleet as _;
use outposts_ha_tests::emulator::Emulator;
use outposts_ha_tests::roles;
use outposts_ha_tests::site::{tag_of, Site};
use outposts_ha_tests::stack::Stack;

const SERVER: &str = "op-0000000000000000c";
const INCIDENT: &str = "inc-00000000000000000000dead";

fn request(workload: &Workload) -> serde_json::Value {
    let event = ProjectEvent::RelaunchRequested(RelaunchRequested {
        incident_id: INCIDENT.into(),
        server_id: SERVER.into(),
        site_name: None,
        detected_at: "2026-11-22T10:00:00.000Z".into(),
        workloads: vec![workload.clone()],
        workloads_read_at_ms: None,
    });
    let mut v = serde_json::to_value(event).unwrap();
    v["source"] = "outposts-ha".into();
    v
}

/// One delivery of the relaunch request, and what the launch pass reports.
async fn deliver(stack: &Stack, workload: &Workload, request_id: &str) -> relaunch::LaunchReport {
    let response = stack.relaunch.handle(request(workload), request_id).await.unwrap();
    response.as_launch().cloned().expect("a launch report")
}

/// Leaves the ledger as a claimant that died after claiming would: status launching,
/// lease already run out.
async fn dead_claim(stack: &Stack, workload: &str) {
    aws_sdk_dynamodb::Client::new(&stack.sdk)
        .put_item()
        .table_name(&stack.table)
        .item("pk", AttributeValue::S(format!("INCIDENT#{INCIDENT}")))
        .item("sk", AttributeValue::S(format!("WORKLOAD#{workload}")))
        .item("status", AttributeValue::S("launching".into()))
        .item("owner", AttributeValue::S("req-that-timed-out".into()))
        .item("lease_until", AttributeValue::N("1".into()))
        .item("reported", AttributeValue::Bool(false))
        .send()
        .await
        .unwrap();
}

async fn setup() -> (Emulator, Stack, Site, Workload) {
    let moto = Emulator::start().await;
    let sdk = moto.sdk_config().await;
    let stack = Stack::deploy(&sdk, 4).await;
    let site = Site::create(&sdk).await;
    let subnet = site.subnet("10.0.3.0/24").await;
    let declared = site.declare(SERVER, "till", &[&subnet], 1).await;
    let workload = Workload {
        name: declared.name.clone(),
        launch_template_id: declared.launch_template_id.clone(),
        launch_template_version: "$Default".into(),
        protected_server: ServerId::parse(SERVER).unwrap(),
        subnets: vec![subnet],
        lni_subnets: Default::default(),
        priority: 1,
        backup_parameter: None,
        target_groups: Vec::new(),
        on_partition: None,
        probe: None,
        mode: Default::default(),
        promotion_document: None,
    };
    (moto, stack, site, workload)
}

#[tokio::test]
async fn a_claimant_that_died_before_launching_is_taken_over_and_launches_once() {
    let (_moto, stack, site, workload) = setup().await;
    dead_claim(&stack, &workload.name).await;

    let report = deliver(&stack, &workload, "req-retry").await;
    assert_eq!(report.launched, vec!["till".to_string()]);
    assert_eq!(site.replacements().await.len(), 1);

    // And the claim is now settled: one more delivery does nothing.
    let again = deliver(&stack, &workload, "req-later").await;
    assert_eq!(again.already_handled, vec!["till".to_string()]);
    assert_eq!(site.replacements().await.len(), 1);
}

#[tokio::test]
async fn a_claimant_that_died_after_launching_is_adopted_not_launched_twice() {
    let (_moto, stack, site, workload) = setup().await;
    dead_claim(&stack, &workload.name).await;
    // The dead claimant's RunInstances (relaunch's, under its role) went through before it died.
    let fleet = ha_aws::fleet::Ec2Fleet::new(aws_sdk_ec2::Client::new(stack.role_sdk(roles::RELAUNCH)));
    let incident = IncidentId::from_stored(INCIDENT);
    let token = ha_domain::incident::client_token(&incident, &workload.name, 0);
    let first = fleet
        .launch(&ha_ports::LaunchRequest {
            workload: &workload,
            purpose: ha_ports::LaunchFor::Incident(&incident),
            subnet_id: &workload.subnets[0],
            interfaces: &[],
            client_token: &token,
            restored_from: None,
            dry_run: false,
        })
        .await
        .unwrap();

    let report = deliver(&stack, &workload, "req-retry").await;
    assert_eq!(report.launched, vec!["till".to_string()]);
    let replacements = site.replacements().await;
    assert_eq!(replacements.len(), 1, "adopted, not launched again");
    assert_eq!(replacements[0].instance_id(), Some(first.instance_id.as_str()));
    assert_eq!(tag_of(&replacements[0], tag::INCIDENT), Some(INCIDENT));

    let notes = stack.deliver().await;
    assert!(notes.handler_errors.is_empty());
    let adopted = stack.told().await.into_iter().find(|n| n.event_type == "WorkloadRelaunched").unwrap();
    assert!(adopted.body.contains("\"adopted\":true"), "{}", adopted.body);
}

#[tokio::test]
async fn a_live_claim_is_left_to_its_owner() {
    let (_moto, stack, site, workload) = setup().await;
    aws_sdk_dynamodb::Client::new(&stack.sdk)
        .put_item()
        .table_name(&stack.table)
        .item("pk", AttributeValue::S(format!("INCIDENT#{INCIDENT}")))
        .item("sk", AttributeValue::S(format!("WORKLOAD#{}", workload.name)))
        .item("status", AttributeValue::S("launching".into()))
        .item("owner", AttributeValue::S("req-still-running".into()))
        .item("lease_until", AttributeValue::N(i64::MAX.to_string()))
        .send()
        .await
        .unwrap();
    // Left to its owner, and retried (NotYet) so the work is taken over should the owner die.
    let err = stack.relaunch.handle(request(&workload), "req-redelivered").await.unwrap_err();
    assert!(
        matches!(
            &err,
            ha_aws::invocation::HandlerError::NotYet { reason: ha_aws::invocation::NotYet::RelaunchInProgress, .. }
        ),
        "{err}"
    );
    assert!(site.replacements().await.is_empty());
}

#[tokio::test]
async fn the_emulator_keeps_client_tokens_and_termination_protection_as_ec2_does() {
    let moto = Emulator::start().await;
    let site = Site::create(&moto.sdk_config().await).await;
    let subnet = site.subnet("10.0.1.0/24").await;
    let code = |e: &dyn aws_smithy_types::error::metadata::ProvideErrorMetadata| e.code().map(str::to_string);
    let launch = |token: &'static str, subnet: String, protected: bool| {
        site.ec2
            .run_instances()
            .image_id(&site.image_id)
            .subnet_id(subnet)
            .client_token(token)
            .disable_api_termination(protected)
            .min_count(1)
            .max_count(1)
            .send()
    };
    // The same token and request: the instance the first call launched, not a second.
    let first = launch("token-1", subnet.clone(), false).await.unwrap();
    let again = launch("token-1", subnet.clone(), false).await.unwrap();
    assert_eq!(first.instances()[0].instance_id(), again.instances()[0].instance_id());
    // The same token with another request: refused.
    let other = site.subnet("10.0.2.0/24").await;
    let mismatch = launch("token-1", other, false).await.unwrap_err();
    assert_eq!(code(&mismatch).as_deref(), Some("IdempotentParameterMismatch"), "{mismatch:?}");
    let live = site.ec2.describe_instances().send().await.unwrap();
    assert_eq!(live.reservations().iter().map(|r| r.instances().len()).sum::<usize>(), 1);
    // Termination protection: TerminateInstances is refused.
    let protected = launch("token-2", subnet, true).await.unwrap();
    let id = protected.instances()[0].instance_id().unwrap();
    let refused = site.ec2.terminate_instances().instance_ids(id).send().await.unwrap_err();
    assert_eq!(code(&refused).as_deref(), Some("OperationNotPermitted"), "{refused:?}");
}
