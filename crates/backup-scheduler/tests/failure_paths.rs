//! backup-scheduler's failure paths against aws-smithy-mocks: what the emulator cannot be
//! made to do (a throttled parameter write, a full account).

use aws_sdk_dynamodb::operation::delete_item::DeleteItemOutput;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_ec2::operation::create_tags::CreateTagsOutput;
use aws_sdk_ec2::operation::describe_images::DescribeImagesOutput;
use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
use aws_sdk_ec2::operation::describe_subnets::DescribeSubnetsOutput;
use aws_sdk_ec2::types::{
    ArchitectureValues, BlockDeviceMapping, EbsBlockDevice, Image, ImageState, Instance, InstanceState,
    InstanceStateName, Reservation, Subnet, Tag,
};
use aws_sdk_eventbridge::operation::put_events::PutEventsOutput;
use aws_sdk_ssm::operation::describe_automation_executions::DescribeAutomationExecutionsOutput;
use aws_sdk_ssm::operation::get_automation_execution::GetAutomationExecutionOutput;
use aws_sdk_ssm::types::{AutomationExecution, AutomationExecutionStatus};
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use backup_scheduler::{BackupReport, BackupScheduler, Config};
use ha_aws::invocation::HandlerError;
use ha_domain::backup::NotStarted;
use ha_domain::config::EnvReader;
use ha_domain::model::tag;

const INSTANCE: &str = "i-0123456789abcdef0";
const VPC: &str = "vpc-0a1b2c3d4e5f60718";
const PARAMETER: &str = "/outposts-ha/test/backup/pos-db";

fn config() -> Config {
    Config::from_env(&EnvReader::from_pairs(&[
        ("LEDGER_TABLE", "ledger"),
        ("EVENT_BUS_NAME", "bus"),
        ("STACK_NAME", "test"),
    ]))
    .unwrap()
}

fn json_error(code: &str) -> String {
    format!(r#"{{"__type": "{code}", "message": "{code}!"}}"#)
}

fn declared_instance() -> DescribeInstancesOutput {
    let tags = [(tag::WORKLOAD, "pos-db"), (tag::BACKUP_PARAMETER, PARAMETER)];
    DescribeInstancesOutput::builder()
        .reservations(
            Reservation::builder()
                .instances(
                    Instance::builder()
                        .instance_id(INSTANCE)
                        .subnet_id("subnet-0a1b2c3d4e5f60718")
                        .vpc_id(VPC)
                        .architecture(ArchitectureValues::X8664)
                        .state(InstanceState::builder().name(InstanceStateName::Running).build())
                        .set_tags(Some(tags.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build()).collect()))
                        .build(),
                )
                .build(),
        )
        .build()
}

#[tokio::test]
async fn a_throttled_parameter_write_reports_nothing_and_asks_lambda_to_retry() {
    let not_reported = mock!(aws_sdk_dynamodb::Client::get_item).then_output(|| GetItemOutput::builder().build());
    let sort_key = |sk: &'static str| move |item: &std::collections::HashMap<String, AttributeValue>| matches!(item.get("sk"), Some(AttributeValue::S(s)) if s == sk);
    let (is_hold, is_report) = (sort_key("HOLD"), sort_key("REPORTED"));
    let hold = mock!(aws_sdk_dynamodb::Client::put_item)
        .match_requests(move |r| r.item().is_some_and(is_hold))
        .then_output(|| PutItemOutput::builder().build());
    let free = mock!(aws_sdk_dynamodb::Client::delete_item).then_output(|| DeleteItemOutput::builder().build());
    let mark_reported = mock!(aws_sdk_dynamodb::Client::put_item)
        .match_requests(move |r| r.item().is_some_and(is_report))
        .then_output(|| PutItemOutput::builder().build());
    // The parameter's record and the execution's adoption, written before the write.
    let recorded = mock!(aws_sdk_dynamodb::Client::put_item).then_output(|| PutItemOutput::builder().build());
    let execution = mock!(aws_sdk_ssm::Client::get_automation_execution).then_output(|| {
        GetAutomationExecutionOutput::builder()
            .automation_execution(
                AutomationExecution::builder()
                    .automation_execution_status(AutomationExecutionStatus::Success)
                    .parameters("InstanceId", vec![INSTANCE.into()])
                    .outputs("createAMIFromSnapshot.ImageId", vec!["ami-0c1d2e3f4a5b6c7d8".into()])
                    .build(),
            )
            .build()
    });
    let no_parameter_yet = mock!(aws_sdk_ssm::Client::get_parameter).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
            aws_smithy_types::body::SdkBody::from(json_error("ParameterNotFound")),
        )
    });
    let throttled = mock!(aws_sdk_ssm::Client::put_parameter)
        .sequence()
        .http_status(400, Some(json_error("ThrottlingException")))
        .repeatedly()
        .build();
    let instance = mock!(aws_sdk_ec2::Client::describe_instances).then_output(declared_instance);
    let image = mock!(aws_sdk_ec2::Client::describe_images).then_output(|| {
        DescribeImagesOutput::builder()
            .images(
                Image::builder()
                    .image_id("ami-0c1d2e3f4a5b6c7d8")
                    .state(ImageState::Available)
                    .block_device_mappings(
                        BlockDeviceMapping::builder()
                            .ebs(EbsBlockDevice::builder().snapshot_id("snap-0a1b2c3d4e5f60718").build())
                            .build(),
                    )
                    .build(),
            )
            .build()
    });
    let tagged = mock!(aws_sdk_ec2::Client::create_tags).then_output(|| CreateTagsOutput::builder().build());
    let put_events = mock!(aws_sdk_eventbridge::Client::put_events)
        .then_output(|| PutEventsOutput::builder().failed_entry_count(0).build());

    let scheduler = BackupScheduler::from_clients(
        config(),
        mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&instance, &image, &tagged]),
        mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&execution, &no_parameter_yet, &throttled]),
        mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&not_reported, &hold, &free, &mark_reported, &recorded]),
        mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&put_events]),
    );
    let event: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sample("execution-status-change.json")).unwrap()).unwrap();
    let err = scheduler.handle(event, "req-1").await.unwrap_err();
    assert_eq!((hold.num_calls(), free.num_calls()), (1, 1), "the parameter is held for the write and let go");
    assert!(matches!(&err, HandlerError::Transient(f) if f.code == "ThrottlingException"), "{err}");
    assert!(throttled.num_calls() >= 1);
    assert_eq!(recorded.num_calls(), 2, "the move was recorded, so the retry writes the parameter again");
    assert_eq!(tagged.num_calls(), 0, "tagged only once adopted: the tags are what backup age is measured by");
    assert_eq!(put_events.num_calls(), 0, "nothing reported before the parameter moved");
    assert_eq!(mark_reported.num_calls(), 0, "not marked reported: the retry does the work again");
}

#[tokio::test]
async fn a_full_account_defers_the_backup_to_the_next_tick() {
    let instances = mock!(aws_sdk_ec2::Client::describe_instances).then_output(declared_instance);
    let no_backups =
        mock!(aws_sdk_ec2::Client::describe_images).then_output(|| DescribeImagesOutput::builder().build());
    let helper = mock!(aws_sdk_ec2::Client::describe_subnets).then_output(|| {
        let subnet = Subnet::builder().subnet_id("subnet-0b1c2d3e4f5a60719").vpc_id(VPC).build();
        DescribeSubnetsOutput::builder().subnets(subnet).build()
    });
    let none_in_flight = mock!(aws_sdk_ssm::Client::describe_automation_executions)
        .then_output(|| DescribeAutomationExecutionsOutput::builder().build());
    let limit = mock!(aws_sdk_ssm::Client::start_automation_execution).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
            aws_smithy_types::body::SdkBody::from(json_error("AutomationExecutionLimitExceededException")),
        )
    });
    let stale_marker = mock!(aws_sdk_dynamodb::Client::put_item).then_output(|| PutItemOutput::builder().build());
    let stale_told = mock!(aws_sdk_dynamodb::Client::update_item)
        .then_output(|| aws_sdk_dynamodb::operation::update_item::UpdateItemOutput::builder().build());
    let put_events = mock!(aws_sdk_eventbridge::Client::put_events)
        .then_output(|| PutEventsOutput::builder().failed_entry_count(0).build());

    let scheduler = BackupScheduler::from_clients(
        config(),
        mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&instances, &no_backups, &helper]),
        mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&none_in_flight, &limit]),
        mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&stale_marker, &stale_told]),
        mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&put_events]),
    );
    let tick: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sample("scheduled-tick.json")).unwrap()).unwrap();
    let report = scheduler.handle(tick, "req-1").await.unwrap();
    let BackupReport::Tick(tick) = report else { panic!("{report:?}") };
    assert!(tick.started.is_empty() && tick.start_failed.is_empty(), "{tick:?}");
    assert_eq!(tick.not_started, vec![(INSTANCE.to_string(), NotStarted::Deferred)]);
    assert_eq!(tick.stale, vec![INSTANCE.to_string()], "never backed up is stale");
    assert_eq!(put_events.num_calls(), 1, "the BackupStale, and no BackupFailed");
    assert_eq!((stale_marker.num_calls(), stale_told.num_calls()), (1, 1), "marked as being told, then as told");
}

/// A sample payload from `events/backup/`, found from the checkout the tests run in.
fn sample(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"))
        .join("../../events/backup")
        .join(name)
}
