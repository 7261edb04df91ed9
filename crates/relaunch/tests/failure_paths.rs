//! relaunch's failure paths against aws-smithy-mocks: what moto cannot be made to do.

use aws_sdk_dynamodb::operation::delete_item::DeleteItemOutput;
use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
use aws_sdk_ec2::operation::run_instances::RunInstancesOutput;
use aws_sdk_eventbridge::operation::put_events::PutEventsOutput;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use ha_aws::invocation::{HandlerError, NotYet};
use ha_domain::contract::{ProjectEvent, RelaunchRequested};
use ha_domain::model::{ServerId, Workload};
use relaunch::{Clients, Config, Relaunch};

fn ec2_error(code: &str) -> String {
    format!("<Response><Errors><Error><Code>{code}</Code><Message>{code}!</Message></Error></Errors><RequestID>r</RequestID></Response>")
}

fn request(subnets: &[&str]) -> serde_json::Value {
    serde_json::to_value(ProjectEvent::RelaunchRequested(RelaunchRequested {
        incident_id: "inc-1".into(),
        server_id: "op-0123456789abcdef0".into(),
        site_name: None,
        detected_at: "2026-11-22T10:00:00.000Z".into(),
        workloads: vec![Workload {
            name: "pos-db".into(),
            launch_template_id: "lt-0aaaaaaaaaaaaaaa1".into(),
            launch_template_version: "$Default".into(),
            protected_server: ServerId::parse("op-0123456789abcdef0").unwrap(),
            subnets: subnets.iter().map(|s| s.to_string()).collect(),
            lni_subnets: Default::default(),
            priority: 1,
            backup_parameter: None,
            target_groups: Vec::new(),
            on_partition: None,
            probe: None,
            mode: Default::default(),
            promotion_document: None,
        }],
        workloads_read_at_ms: None,
    }))
    .unwrap()
}

/// The ledger holds no claim of the incident (the pass's own are read back after it).
fn no_claims() -> aws_smithy_mocks::Rule {
    mock!(aws_sdk_dynamodb::Client::query)
        .then_output(|| aws_sdk_dynamodb::operation::query::QueryOutput::builder().build())
}

/// The ledger has no such item (no server state, no incident): nothing holds a launch back.
fn no_item() -> aws_smithy_mocks::Rule {
    mock!(aws_sdk_dynamodb::Client::get_item)
        .then_output(|| aws_sdk_dynamodb::operation::get_item::GetItemOutput::builder().build())
}

/// EC2 knows neither the instance type nor an Outpost: capacity is unknown, never blocking.
fn capacity_unknown() -> (aws_smithy_mocks::Rule, aws_smithy_mocks::Rule) {
    (
        mock!(aws_sdk_ec2::Client::describe_launch_template_versions)
            .then_output(|| aws_sdk_ec2::operation::describe_launch_template_versions::DescribeLaunchTemplateVersionsOutput::builder().build()),
        mock!(aws_sdk_ec2::Client::describe_subnets)
            .then_output(|| aws_sdk_ec2::operation::describe_subnets::DescribeSubnetsOutput::builder().build()),
    )
}

fn config() -> Config {
    let env = ha_domain::config::EnvReader::from_pairs(&[
        ("LEDGER_TABLE", "ledger"),
        ("EVENT_BUS_NAME", "bus"),
        ("LAUNCH_CONCURRENCY", "4"),
        ("CLAIM_LEASE_SECONDS", "300"),
        ("STACK_NAME", "test"),
    ]);
    Config::from_env(&env).expect("a valid configuration")
}

#[tokio::test]
async fn throttled_launch_releases_the_claim_and_asks_lambda_to_retry() {
    let claim = mock!(aws_sdk_dynamodb::Client::put_item).then_output(|| PutItemOutput::builder().build());
    let release = mock!(aws_sdk_dynamodb::Client::delete_item).then_output(|| DeleteItemOutput::builder().build());
    let on_workload = |r: &aws_sdk_dynamodb::operation::update_item::UpdateItemInput| {
        r.key().and_then(|k| k.get("sk")).and_then(|v| v.as_s().ok()).is_some_and(|sk| sk.starts_with("WORKLOAD#"))
    };
    let settle = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(on_workload)
        .then_output(|| UpdateItemOutput::builder().build());
    let plan = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(move |r| !on_workload(r))
        .then_output(|| UpdateItemOutput::builder().build());
    let none_yet =
        mock!(aws_sdk_ec2::Client::describe_instances).then_output(|| DescribeInstancesOutput::builder().build());
    let throttled = mock!(aws_sdk_ec2::Client::run_instances)
        .sequence()
        .http_status(503, Some(ec2_error("RequestLimitExceeded")))
        .repeatedly()
        .build();
    let put_events = mock!(aws_sdk_eventbridge::Client::put_events)
        .then_output(|| PutEventsOutput::builder().failed_entry_count(0).build());

    let (no_type, no_outpost) = capacity_unknown();
    let no_item = no_item();
    let handler = Relaunch::from_clients(
        config(),
        Clients {
            dynamodb: mock_client!(
                aws_sdk_dynamodb,
                RuleMode::MatchAny,
                [&claim, &release, &settle, &plan, &no_item, &no_claims()]
            ),
            ec2: mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&none_yet, &throttled, &no_type, &no_outpost]),
            ssm: mock_client!(aws_sdk_ssm, RuleMode::MatchAny, []),
            cloudwatch: mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, []),
            elb: mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, []),
            events: mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&put_events]),
        },
    );
    let err =
        handler.handle(request(&["subnet-0a1b2c3d4e5f60718", "subnet-0f9e8d7c6b5a40312"]), "req-1").await.unwrap_err();
    assert!(matches!(err, HandlerError::PartlyTransient(1)), "{err}");
    assert_eq!(release.num_calls(), 1, "the claim is given back for the retry");
    assert_eq!(settle.num_calls(), 0, "nothing settled");
    assert_eq!(plan.num_calls(), 1, "the pass's plan recorded");
    assert_eq!(put_events.num_calls(), 0, "nothing reported");
    let diagnostic: lambda_runtime::Diagnostic = err.into();
    assert_eq!(diagnostic.error_type, "Transient.PartialFailure");
}

#[tokio::test]
async fn an_unmodeled_ec2_error_moves_to_the_fallback_destination() {
    let claim = mock!(aws_sdk_dynamodb::Client::put_item).then_output(|| PutItemOutput::builder().build());
    let update = mock!(aws_sdk_dynamodb::Client::update_item).then_output(|| UpdateItemOutput::builder().build());
    let none_yet =
        mock!(aws_sdk_ec2::Client::describe_instances).then_output(|| DescribeInstancesOutput::builder().build());
    let refused = mock!(aws_sdk_ec2::Client::run_instances)
        .match_requests(|r| r.subnet_id() == Some("subnet-0a1b2c3d4e5f60718"))
        .sequence()
        .http_status(400, Some(ec2_error("Outpost.SomethingNobodyModeled")))
        .repeatedly()
        .build();
    let accepted = mock!(aws_sdk_ec2::Client::run_instances)
        .match_requests(|r| r.subnet_id() == Some("subnet-0f9e8d7c6b5a40312"))
        .then_output(|| {
            RunInstancesOutput::builder()
                .instances(aws_sdk_ec2::types::Instance::builder().instance_id("i-0fallback").build())
                .build()
        });
    let put_events = mock!(aws_sdk_eventbridge::Client::put_events)
        .match_requests(|r| {
            r.entries().iter().any(|e| {
                e.detail_type() == Some("WorkloadRelaunched")
                    && e.detail()
                        .is_some_and(|d| d.contains("i-0fallback") && d.contains("Outpost.SomethingNobodyModeled"))
            })
        })
        .then_output(|| PutEventsOutput::builder().failed_entry_count(0).build());

    let (no_type, no_outpost) = capacity_unknown();
    let no_item = no_item();
    let handler = Relaunch::from_clients(
        config(),
        Clients {
            dynamodb: mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&claim, &update, &no_item, &no_claims()]),
            ec2: mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&none_yet, &refused, &accepted, &no_type, &no_outpost]),
            ssm: mock_client!(aws_sdk_ssm, RuleMode::MatchAny, []),
            cloudwatch: mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, []),
            elb: mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, []),
            events: mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&put_events]),
        },
    );
    let response =
        handler.handle(request(&["subnet-0a1b2c3d4e5f60718", "subnet-0f9e8d7c6b5a40312"]), "req-1").await.unwrap();
    let report = response.as_launch().expect("a launch report");
    assert_eq!(report.launched, vec!["pos-db".to_string()]);
    assert_eq!((refused.num_calls(), accepted.num_calls(), put_events.num_calls()), (1, 1, 1));
}

#[tokio::test]
async fn a_rejected_report_is_an_error_so_the_outcome_is_emitted_again() {
    let claim = mock!(aws_sdk_dynamodb::Client::put_item).then_output(|| PutItemOutput::builder().build());
    let update = mock!(aws_sdk_dynamodb::Client::update_item).then_output(|| UpdateItemOutput::builder().build());
    let none_yet =
        mock!(aws_sdk_ec2::Client::describe_instances).then_output(|| DescribeInstancesOutput::builder().build());
    let accepted = mock!(aws_sdk_ec2::Client::run_instances).then_output(|| {
        RunInstancesOutput::builder()
            .instances(aws_sdk_ec2::types::Instance::builder().instance_id("i-1").build())
            .build()
    });
    let rejected = mock!(aws_sdk_eventbridge::Client::put_events).then_output(|| {
        PutEventsOutput::builder()
            .failed_entry_count(1)
            .entries(
                aws_sdk_eventbridge::types::PutEventsResultEntry::builder()
                    .error_code("InternalFailure")
                    .error_message("try later")
                    .build(),
            )
            .build()
    });
    let (no_type, no_outpost) = capacity_unknown();
    let no_item = no_item();
    let handler = Relaunch::from_clients(
        config(),
        Clients {
            dynamodb: mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&claim, &update, &no_item, &no_claims()]),
            ec2: mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&none_yet, &accepted, &no_type, &no_outpost]),
            ssm: mock_client!(aws_sdk_ssm, RuleMode::MatchAny, []),
            cloudwatch: mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, []),
            elb: mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, []),
            events: mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&rejected]),
        },
    );
    let err = handler.handle(request(&["subnet-0a1b2c3d4e5f60718"]), "req-1").await.unwrap_err();
    assert!(matches!(&err, HandlerError::Transient(f) if f.code == "InternalFailure"), "{err}");
    // The plan recorded, settle ran (outcome stored), mark_reported did not, and the report
    // was given back (report_until reset): a retry re-emits it at once.
    assert_eq!(update.num_calls(), 3);
}

#[tokio::test]
async fn a_request_without_destinations_fails_the_workload_instead_of_panicking() {
    let claim = mock!(aws_sdk_dynamodb::Client::put_item).then_output(|| PutItemOutput::builder().build());
    let update = mock!(aws_sdk_dynamodb::Client::update_item).then_output(|| UpdateItemOutput::builder().build());
    let launch = mock!(aws_sdk_ec2::Client::run_instances).then_output(|| RunInstancesOutput::builder().build());
    let none_yet =
        mock!(aws_sdk_ec2::Client::describe_instances).then_output(|| DescribeInstancesOutput::builder().build());
    let put_events = mock!(aws_sdk_eventbridge::Client::put_events)
        .match_requests(|r| {
            r.entries().iter().any(|e| {
                e.detail_type() == Some("WorkloadRelaunchFailed")
                    && e.detail().is_some_and(|d| d.contains("NoDestination"))
            })
        })
        .then_output(|| PutEventsOutput::builder().failed_entry_count(0).build());
    let (no_type, no_outpost) = capacity_unknown();
    let no_item = no_item();
    let handler = Relaunch::from_clients(
        config(),
        Clients {
            dynamodb: mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&claim, &update, &no_item, &no_claims()]),
            ec2: mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&launch, &none_yet, &no_type, &no_outpost]),
            ssm: mock_client!(aws_sdk_ssm, RuleMode::MatchAny, []),
            cloudwatch: mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, []),
            elb: mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, []),
            events: mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&put_events]),
        },
    );
    let response = handler.handle(request(&[]), "req-1").await.unwrap();
    let report = response.as_launch().expect("a launch report");
    assert_eq!(report.failed, vec!["pos-db".to_string()]);
    assert_eq!((launch.num_calls(), put_events.num_calls()), (0, 1));
}

#[tokio::test]
async fn a_known_capacity_shortage_goes_to_the_next_destination_without_trying_it() {
    use aws_sdk_cloudwatch::types::MetricDataResult;
    use aws_sdk_ec2::types::{InstanceType, LaunchTemplateVersion, ResponseLaunchTemplateData, Subnet};
    const FULL: &str = "subnet-0a1b2c3d4e5f60718";
    const FREE: &str = "subnet-0f9e8d7c6b5a40312";
    let claim = mock!(aws_sdk_dynamodb::Client::put_item).then_output(|| PutItemOutput::builder().build());
    let update = mock!(aws_sdk_dynamodb::Client::update_item).then_output(|| UpdateItemOutput::builder().build());
    let none_yet =
        mock!(aws_sdk_ec2::Client::describe_instances).then_output(|| DescribeInstancesOutput::builder().build());
    let instance_type = mock!(aws_sdk_ec2::Client::describe_launch_template_versions).then_output(|| {
        aws_sdk_ec2::operation::describe_launch_template_versions::DescribeLaunchTemplateVersionsOutput::builder()
            .launch_template_versions(
                LaunchTemplateVersion::builder()
                    .launch_template_data(
                        ResponseLaunchTemplateData::builder().instance_type(InstanceType::M5Large).build(),
                    )
                    .build(),
            )
            .build()
    });
    let outpost_of = |subnet: &'static str, outpost: &'static str| {
        mock!(aws_sdk_ec2::Client::describe_subnets)
            .match_requests(move |r| r.subnet_ids() == [subnet.to_string()])
            .then_output(move || {
                aws_sdk_ec2::operation::describe_subnets::DescribeSubnetsOutput::builder()
                    .subnets(
                        Subnet::builder()
                            .subnet_id(subnet)
                            .outpost_arn(format!("arn:aws:outposts:eu-west-1:123456789012:outpost/{outpost}"))
                            .build(),
                    )
                    .build()
            })
    };
    let (full_outpost, free_outpost) =
        (outpost_of(FULL, "op-000000000000000f1"), outpost_of(FREE, "op-000000000000000f2"));
    let metric = |outpost: &'static str, value: f64| {
        mock!(aws_sdk_cloudwatch::Client::get_metric_data)
            .match_requests(move |r| {
                r.metric_data_queries().iter().any(|q| {
                    q.metric_stat()
                        .and_then(|s| s.metric())
                        .is_some_and(|m| m.dimensions().iter().any(|d| d.value() == Some(outpost)))
                })
            })
            .then_output(move || {
                aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput::builder()
                    .metric_data_results(MetricDataResult::builder().id("available").values(value).build())
                    .build()
            })
    };
    let (none_left, three_left) = (metric("op-000000000000000f1", 0.0), metric("op-000000000000000f2", 3.0));
    let launched_on_full = mock!(aws_sdk_ec2::Client::run_instances)
        .match_requests(|r| r.subnet_id() == Some(FULL))
        .then_output(|| RunInstancesOutput::builder().build());
    let launched_on_free =
        mock!(aws_sdk_ec2::Client::run_instances).match_requests(|r| r.subnet_id() == Some(FREE)).then_output(|| {
            RunInstancesOutput::builder()
                .instances(aws_sdk_ec2::types::Instance::builder().instance_id("i-0free").build())
                .build()
        });
    let put_events = mock!(aws_sdk_eventbridge::Client::put_events)
        .match_requests(|r| {
            r.entries().iter().any(|e| {
                e.detail().is_some_and(|d| {
                    d.contains("i-0free")
                        && d.contains("KnownCapacityShortage")
                        && d.contains("AvailableInstanceType_Count for m5.large on op-000000000000000f1 is 0")
                })
            })
        })
        .then_output(|| PutEventsOutput::builder().failed_entry_count(0).build());

    let no_item = no_item();
    let handler = Relaunch::from_clients(
        config(),
        Clients {
            dynamodb: mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&claim, &update, &no_item, &no_claims()]),
            ec2: mock_client!(
                aws_sdk_ec2,
                RuleMode::MatchAny,
                [&none_yet, &instance_type, &full_outpost, &free_outpost, &launched_on_full, &launched_on_free]
            ),
            ssm: mock_client!(aws_sdk_ssm, RuleMode::MatchAny, []),
            cloudwatch: mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&none_left, &three_left]),
            elb: mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, []),
            events: mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&put_events]),
        },
    );
    let response = handler.handle(request(&[FULL, FREE]), "req-1").await.unwrap();
    let report = response.as_launch().expect("a launch report");
    assert_eq!(report.launched, vec!["pos-db".to_string()]);
    assert_eq!(launched_on_full.num_calls(), 0, "a known shortage is not tried");
    assert_eq!((launched_on_free.num_calls(), put_events.num_calls()), (1, 1), "the report names the shortage");
}

#[tokio::test]
async fn a_replacement_still_in_its_initial_health_checks_keeps_the_originals_and_is_rechecked() {
    use aws_sdk_elasticloadbalancingv2::types::{
        TargetDescription, TargetGroup, TargetHealth, TargetHealthDescription, TargetHealthStateEnum, TargetTypeEnum,
    };
    let replacement = mock!(aws_sdk_ec2::Client::describe_instances).then_output(|| {
        let tags = [
            ("outposts-ha:role", "replacement"),
            ("outposts-ha:incident", "inc-1"),
            ("outposts-ha:workload", "pos"),
            ("outposts-ha:source-server", "op-0123456789abcdef0"),
            ("outposts-ha:target-groups", "pos-web"),
        ];
        DescribeInstancesOutput::builder()
            .reservations(
                aws_sdk_ec2::types::Reservation::builder()
                    .instances(
                        aws_sdk_ec2::types::Instance::builder()
                            .instance_id("i-0new")
                            .set_tags(Some(
                                tags.iter()
                                    .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(*k).value(*v).build())
                                    .collect(),
                            ))
                            .build(),
                    )
                    .build(),
            )
            .build()
    });
    let group = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_groups).then_output(|| {
        aws_sdk_elasticloadbalancingv2::operation::describe_target_groups::DescribeTargetGroupsOutput::builder()
            .target_groups(
                TargetGroup::builder()
                    .target_group_name("pos-web")
                    .target_group_arn("arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/pos-web/1")
                    .target_type(TargetTypeEnum::Instance)
                    .build(),
            )
            .build()
    });
    let register = mock!(aws_sdk_elasticloadbalancingv2::Client::register_targets).then_output(|| {
        aws_sdk_elasticloadbalancingv2::operation::register_targets::RegisterTargetsOutput::builder().build()
    });
    let initial = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_health).then_output(|| {
        aws_sdk_elasticloadbalancingv2::operation::describe_target_health::DescribeTargetHealthOutput::builder()
            .target_health_descriptions(
                TargetHealthDescription::builder()
                    .target(TargetDescription::builder().id("i-0new").build())
                    .target_health(TargetHealth::builder().state(TargetHealthStateEnum::Initial).build())
                    .build(),
            )
            .build()
    });
    let deregister = mock!(aws_sdk_elasticloadbalancingv2::Client::deregister_targets).then_output(|| {
        aws_sdk_elasticloadbalancingv2::operation::deregister_targets::DeregisterTargetsOutput::builder().build()
    });
    let no_item = no_item();
    let waiting = mock!(aws_sdk_dynamodb::Client::update_item).then_output(|| UpdateItemOutput::builder().build());
    let handler = Relaunch::from_clients(
        config(),
        Clients {
            dynamodb: mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&no_item, &waiting]),
            ec2: mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&replacement]),
            ssm: mock_client!(aws_sdk_ssm, RuleMode::MatchAny, []),
            cloudwatch: mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, []),
            elb: mock_client!(
                aws_sdk_elasticloadbalancingv2,
                RuleMode::MatchAny,
                [&group, &register, &initial, &deregister]
            ),
            events: mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, []),
        },
    );
    let event = serde_json::json!({
        "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2",
        "detail": {"instance-id": "i-0new", "state": "running"}
    });
    let err = handler.handle(event, "req-1").await.unwrap_err();
    assert!(matches!(&err, HandlerError::NotYet { reason: NotYet::TargetNotHealthy, .. }), "{err}");
    assert_eq!((register.num_calls(), deregister.num_calls()), (1, 0), "registered; the originals stay");
    assert_eq!(waiting.num_calls(), 1, "what it waits for is recorded for the failover report");
}
