//! Every handler in these tests runs with its own template role's credentials, and the
//! emulator's IAM double evaluates the role's policies: resources and conditions included.
//! Here: the double refuses what the roles do not allow, and a grant the product needs,
//! taken out of its role, fails the path that uses it.

use aws_sdk_ec2::types::Tag;
use ha_domain::model::tag;
use outposts_ha_tests::emulator::Emulator;
use outposts_ha_tests::roles;
use outposts_ha_tests::site::Site;
use outposts_ha_tests::stack::{alarm_event, Stack};

const SERVER_A: &str = "op-0000000000000000a";

fn refused<T: std::fmt::Debug, E: aws_sdk_ec2::error::ProvideErrorMetadata + std::fmt::Debug>(
    result: Result<T, E>,
    code: &str,
) -> String {
    let e = result.expect_err("IAM must refuse this call");
    assert_eq!(e.code(), Some(code), "{e:?}");
    e.message().unwrap_or_default().to_string()
}

#[tokio::test]
async fn the_emulator_refuses_what_a_function_role_does_not_allow() {
    let moto = Emulator::start().await;
    moto.expect_denials();
    let sdk = moto.sdk_config().await;
    let stack = Stack::deploy(&sdk, 8).await;
    let site = Site::create(&sdk).await;
    let standby = site.subnet("10.0.2.0/24").await;
    let home = site.subnet("10.0.1.0/24").await;
    let pos = site.declare(SERVER_A, "pos", &[&standby], 10).await;
    let original = site.original(&pos, &home, &[(tag::WORKLOAD, "pos")]).await;
    let bystander = site
        .ec2
        .run_instances()
        .image_id(&site.image_id)
        .subnet_id(&home)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap()
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_string();
    let relaunch = aws_sdk_ec2::Client::new(stack.role_sdk(roles::RELAUNCH));

    // aws:ResourceTag: relaunch terminates only workload instances.
    let message =
        refused(relaunch.terminate_instances().instance_ids(&bystander).send().await, "UnauthorizedOperation");
    assert!(message.contains(&format!("instance/{bystander}")), "{message}");
    assert!(message.contains("RelaunchRole"), "the refusal names the caller: {message}");

    // ForAllValues:StringLike on aws:TagKeys: only the fencing keys, and those are allowed.
    let tagging =
        |key: &str| relaunch.create_tags().resources(&original).tags(Tag::builder().key(key).value("x").build());
    refused(tagging("owner").send().await, "UnauthorizedOperation");
    tagging(tag::FENCED).send().await.expect("the fencing mark is relaunch's to set");

    // The quarantine group only: any other group on an interface is refused.
    let described = site.ec2.describe_instances().instance_ids(&original).send().await.unwrap();
    let eni =
        described.reservations()[0].instances()[0].network_interfaces()[0].network_interface_id().unwrap().to_string();
    let open_group = site
        .ec2
        .create_security_group()
        .group_name("open")
        .description("open")
        .vpc_id(&site.vpc_id)
        .send()
        .await
        .unwrap()
        .group_id()
        .unwrap()
        .to_string();
    refused(
        relaunch.modify_network_interface_attribute().network_interface_id(&eni).groups(&open_group).send().await,
        "UnauthorizedOperation",
    );

    // Null on aws:TagKeys: the operator may not delete every tag by naming none.
    let operator = aws_sdk_ec2::Client::new(stack.role_sdk(roles::OPERATOR));
    refused(operator.delete_tags().resources(&original).send().await, "UnauthorizedOperation");
    operator
        .delete_tags()
        .resources(&original)
        .tags(Tag::builder().key(tag::FENCED).build())
        .send()
        .await
        .expect("the operator removes the fencing mark");

    // Resource ARNs: the notifier has no business with the ledger.
    let ddb = aws_sdk_dynamodb::Client::new(stack.role_sdk(roles::NOTIFIER));
    let denied = ddb
        .get_item()
        .table_name(&stack.table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("x".into()))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("x".into()))
        .send()
        .await;
    refused(denied, "AccessDeniedException");

    // aws:ResourceTag on images: backup-scheduler prunes only this stack's backups.
    let scheduler = aws_sdk_ec2::Client::new(stack.role_sdk(roles::BACKUP_SCHEDULER));
    refused(scheduler.deregister_image().image_id(&site.image_id).send().await, "UnauthorizedOperation");

    // An action the double has no resource list for is refused, not waved through.
    let message = refused(relaunch.describe_vpcs().send().await, "UnauthorizedOperation");
    assert!(message.contains("ec2:DescribeVpcs"), "{message}");

    // The harness's own key is not evaluated: setting the scene needs no role.
    site.ec2.terminate_instances().instance_ids(&bystander).send().await.expect("the harness may do anything");

    // A key that is neither the harness's nor issued by IAM or STS is refused outright.
    let stranger = sdk
        .to_builder()
        .credentials_provider(aws_sdk_sqs::config::SharedCredentialsProvider::new(
            aws_sdk_sqs::config::Credentials::new("AKIASTRANGER", "secret", None, None, "stranger"),
        ))
        .build();
    let message = refused(aws_sdk_ec2::Client::new(&stranger).describe_instances().send().await, "AuthFailure");
    assert!(message.contains("security token included in the request is invalid"), "{message}");

    assert_eq!(moto.denials().len(), 8, "each refusal above, and no other: {:#?}", moto.denials());
}

/// An emulator and the stack, with `withheld` (a grant, see [`Stack::deploy_without_grant`])
/// taken out of `role`: the refusals that follow are expected.
async fn deployed(role: &str, withheld: Option<&str>) -> (Emulator, aws_config::SdkConfig, Stack) {
    let moto = Emulator::start().await;
    let sdk = moto.sdk_config().await;
    let stack = match withheld {
        Some(grant) => {
            moto.expect_denials();
            Stack::deploy_without_grant(&sdk, role, grant).await
        }
        None => Stack::deploy(&sdk, 8).await,
    };
    (moto, sdk, stack)
}

/// An alarm inside a maintenance window, with alarm-handler's role less `withheld`.
async fn outage_in_a_maintenance_window(withheld: Option<&str>) -> Result<Vec<alarm_handler::Outcome>, String> {
    let (_moto, sdk, stack) = deployed(roles::ALARM_HANDLER, withheld).await;
    let site = Site::create(&sdk).await;
    let standby = site.subnet("10.0.2.0/24").await;
    site.declare(SERVER_A, "pos", &[&standby], 10).await;
    let now = time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let rfc3339 = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap();
    let window = serde_json::json!({
        "detail-type": "MaintenanceRequested", "source": "outposts-ha",
        "detail": {"server_id": SERVER_A, "until": rfc3339(now + time::Duration::hours(4)), "reason": "firmware",
                   "requested_at": rfc3339(now)}
    });
    stack.operator.handle(window).await.expect("the window is set");
    let form = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].000+0000");
    let at = (now - time::Duration::minutes(1)).format(&form).unwrap();
    stack.alarm(&alarm_event("outposts-ha-store-a", SERVER_A, "OK", "ALARM", &at)).await.map_err(|e| e.to_string())
}

/// alarm-handler's dynamodb:DeleteItem (a grant once missing): an outage inside a
/// maintenance window gives the server back at once, and fails without it.
#[tokio::test]
async fn an_outage_in_a_maintenance_window_needs_alarm_handlers_delete_item_grant() {
    let granted = outage_in_a_maintenance_window(None).await.expect("suppressed with the template's role");
    assert!(matches!(&granted[0], alarm_handler::Outcome::Suppressed { .. }), "{granted:?}");

    let error = outage_in_a_maintenance_window(Some("dynamodb:DeleteItem")).await.expect_err("DeleteItem withheld");
    assert!(error.contains("DeleteItem") && error.contains("AccessDenied"), "{error}");
}

/// alarm-handler's reconcile pass reads the server alarms (cloudwatch:DescribeAlarms on the
/// stack's alarm prefix): a server whose alarm is in ALARM gets its relaunch requested.
async fn reconcile(withheld: Option<&str>) -> (Result<Vec<alarm_handler::Outcome>, String>, Vec<String>) {
    let (moto, sdk, stack) = deployed(roles::ALARM_HANDLER, withheld).await;
    let site = Site::create(&sdk).await;
    let standby = site.subnet("10.0.2.0/24").await;
    site.declare(SERVER_A, "pos", &[&standby], 10).await;
    outposts_ha_tests::stack::server_alarm_fires(&sdk, "outposts-ha-store-a", SERVER_A).await;
    let tick = outposts_ha_tests::stack::scheduled_event("2026-12-01T00:00:00Z");
    let outcome = stack.alarm_handler.handle(tick, "req-reconcile").await.map_err(|e| e.to_string());
    (outcome, moto.denials())
}

#[tokio::test]
async fn the_reconcile_pass_reads_the_server_alarms_under_alarm_handlers_role() {
    let (outcomes, _) = reconcile(None).await;
    let outcomes = outcomes.expect("the reconcile pass runs under the template's role");
    assert!(matches!(&outcomes[..], [alarm_handler::Outcome::Relaunching { new_incident: true, .. }]), "{outcomes:?}");
}

#[tokio::test]
async fn the_reconcile_pass_needs_describe_alarms() {
    let (outcome, denials) = reconcile(Some("cloudwatch:DescribeAlarms")).await;
    let error = outcome.expect_err("DescribeAlarms withheld");
    assert!(error.contains("DescribeAlarms") && error.contains("AccessDenied"), "{error}");
    let expected = "cloudwatch:DescribeAlarms on resource: arn:aws:cloudwatch:eu-west-1:123456789012:alarm:*";
    assert!(matches!(&denials[..], [d] if d.contains(expected)), "{denials:#?}");
}

/// A workload whose template names an instance profile, a key pair, and tags for the
/// volumes and interfaces it creates: relaunch passes the role (iam:PassRole, only roles
/// under the instance role path, only to EC2), uses the key pair and tags at launch.
async fn failover_with_an_instance_profile(withheld: Option<&str>) -> (usize, Vec<String>) {
    use aws_sdk_ec2::types::{
        LaunchTemplateIamInstanceProfileSpecificationRequest, LaunchTemplateTagSpecificationRequest, ResourceType,
    };
    let (moto, sdk, stack) = deployed(roles::RELAUNCH, withheld).await;
    let site = Site::create(&sdk).await;
    let standby = site.subnet("10.0.2.0/24").await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    iam.create_role()
        .role_name("pos-instance")
        .path("/outposts-ha/")
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap();
    iam.create_instance_profile().instance_profile_name("pos-profile").send().await.unwrap();
    iam.add_role_to_instance_profile()
        .instance_profile_name("pos-profile")
        .role_name("pos-instance")
        .send()
        .await
        .unwrap();
    site.ec2.create_key_pair().key_name("store-key").send().await.unwrap();
    let tags = |kind: ResourceType| {
        LaunchTemplateTagSpecificationRequest::builder()
            .resource_type(kind)
            .tags(Tag::builder().key(tag::WORKLOAD).value("pos").build())
            .build()
    };
    site.declare_customized(SERVER_A, "pos", &[&standby], 10, None, &[], |data| {
        data.key_name("store-key")
            .iam_instance_profile(
                LaunchTemplateIamInstanceProfileSpecificationRequest::builder().name("pos-profile").build(),
            )
            .tag_specifications(tags(ResourceType::Volume))
            .tag_specifications(tags(ResourceType::NetworkInterface))
    })
    .await;
    stack
        .alarm(&alarm_event("outposts-ha-store-a", SERVER_A, "OK", "ALARM", "2026-12-01T00:00:00.000+0000"))
        .await
        .unwrap();
    stack.deliver().await;
    (site.replacements().await.len(), moto.denials())
}

#[tokio::test]
async fn a_template_with_an_instance_profile_a_key_pair_and_tags_launches_under_relaunchs_role() {
    let (launched, denials) = failover_with_an_instance_profile(None).await;
    assert_eq!((launched, denials), (1, vec![]));
}

/// The grant taken out, and the refusal that names it (the launch then fails).
async fn launch_needs(withheld: &str, refused: &str) {
    let (launched, denials) = failover_with_an_instance_profile(Some(withheld)).await;
    assert_eq!(launched, 0, "without {withheld}");
    assert!(denials.iter().any(|d| d.contains(refused)), "without {withheld}: {denials:#?}");
}

#[tokio::test]
async fn the_launch_needs_to_pass_the_instance_role() {
    launch_needs("iam:PassRole", "iam:PassRole on resource: arn:aws:iam::123456789012:role/outposts-ha/pos-instance")
        .await;
}

#[tokio::test]
async fn the_launch_needs_to_tag_the_volumes_it_creates() {
    launch_needs("ec2:CreateTags@:volume/*", "ec2:CreateTags on resource: arn:aws:ec2:eu-west-1:123456789012:volume/*")
        .await;
}

#[tokio::test]
async fn the_launch_needs_the_key_pair() {
    launch_needs(
        "ec2:RunInstances@:key-pair/*",
        "ec2:RunInstances on resource: arn:aws:ec2:eu-west-1:123456789012:key-pair/store-key",
    )
    .await;
}
