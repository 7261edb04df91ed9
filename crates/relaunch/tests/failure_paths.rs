//! relaunch's failure paths against aws-smithy-mocks: what moto cannot be made to do.

use aws_sdk_dynamodb::operation::delete_item::DeleteItemOutput;
use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
use aws_sdk_ec2::operation::run_instances::RunInstancesOutput;
use aws_sdk_eventbridge::operation::put_events::PutEventsOutput;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use ha_domain::contract::{ProjectEvent, RelaunchRequested};
use ha_domain::error::HandlerError;
use ha_domain::model::{ServerId, Workload};
use relaunch::{Config, Relaunch};

fn ec2_error(code: &str) -> String {
    format!("<Response><Errors><Error><Code>{code}</Code><Message>{code}!</Message></Error></Errors><RequestID>r</RequestID></Response>")
}

fn request(subnets: &[&str]) -> serde_json::Value {
    serde_json::to_value(ProjectEvent::RelaunchRequested(RelaunchRequested {
        incident_id: "inc-1".into(),
        server_id: "op-0123456789abcdef0".into(),
        detected_at: "2026-11-22T10:00:00.000Z".into(),
        workloads: vec![Workload {
            name: "pos-db".into(),
            launch_template_id: "lt-0aaaaaaaaaaaaaaa1".into(),
            launch_template_version: "$Default".into(),
            protected_server: ServerId::parse("op-0123456789abcdef0").unwrap(),
            subnets: subnets.iter().map(|s| s.to_string()).collect(),
            priority: 1,
            backup_parameter: None,
        }],
    }))
    .unwrap()
}

fn config() -> Config {
    Config {
        store: ha_domain::config::IncidentStore {
            ledger_table: "ledger".into(),
            event_bus_name: "bus".into(),
            retention_days: 90,
        },
        launch_concurrency: 4,
        claim_lease_seconds: 300,
        fencing_policy: ha_domain::fencing::FencingPolicy::Isolate,
        stack_name: "test".into(),
    }
}

#[tokio::test]
async fn throttled_launch_releases_the_claim_and_asks_lambda_to_retry() {
    let claim = mock!(aws_sdk_dynamodb::Client::put_item).then_output(|| PutItemOutput::builder().build());
    let release = mock!(aws_sdk_dynamodb::Client::delete_item).then_output(|| DeleteItemOutput::builder().build());
    let settle = mock!(aws_sdk_dynamodb::Client::update_item).then_output(|| UpdateItemOutput::builder().build());
    let none_yet =
        mock!(aws_sdk_ec2::Client::describe_instances).then_output(|| DescribeInstancesOutput::builder().build());
    let throttled = mock!(aws_sdk_ec2::Client::run_instances)
        .sequence()
        .http_status(503, Some(ec2_error("RequestLimitExceeded")))
        .repeatedly()
        .build();
    let put_events = mock!(aws_sdk_eventbridge::Client::put_events)
        .then_output(|| PutEventsOutput::builder().failed_entry_count(0).build());

    let handler = Relaunch::from_clients(
        config(),
        mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&claim, &release, &settle]),
        mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&none_yet, &throttled]),
        mock_client!(aws_sdk_ssm, RuleMode::MatchAny, []),
        mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&put_events]),
    );
    let err =
        handler.handle(request(&["subnet-0a1b2c3d4e5f60718", "subnet-0f9e8d7c6b5a40312"]), "req-1").await.unwrap_err();
    assert!(matches!(err, HandlerError::PartlyTransient(1)), "{err}");
    assert_eq!(release.num_calls(), 1, "the claim is given back for the retry");
    assert_eq!(settle.num_calls(), 0, "nothing settled");
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

    let handler = Relaunch::from_clients(
        config(),
        mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&claim, &update]),
        mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&none_yet, &refused, &accepted]),
        mock_client!(aws_sdk_ssm, RuleMode::MatchAny, []),
        mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&put_events]),
    );
    let report =
        handler.handle(request(&["subnet-0a1b2c3d4e5f60718", "subnet-0f9e8d7c6b5a40312"]), "req-1").await.unwrap();
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
    let handler = Relaunch::from_clients(
        config(),
        mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&claim, &update]),
        mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&none_yet, &accepted]),
        mock_client!(aws_sdk_ssm, RuleMode::MatchAny, []),
        mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&rejected]),
    );
    let err = handler.handle(request(&["subnet-0a1b2c3d4e5f60718"]), "req-1").await.unwrap_err();
    assert!(matches!(&err, HandlerError::Transient(f) if f.code == "InternalFailure"), "{err}");
    // settle ran (outcome stored), mark_reported did not: a retry re-emits it.
    assert_eq!(update.num_calls(), 1);
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
    let handler = Relaunch::from_clients(
        config(),
        mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&claim, &update]),
        mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&launch, &none_yet]),
        mock_client!(aws_sdk_ssm, RuleMode::MatchAny, []),
        mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&put_events]),
    );
    let report = handler.handle(request(&[]), "req-1").await.unwrap();
    assert_eq!(report.failed, vec!["pos-db".to_string()]);
    assert_eq!((launch.num_calls(), put_events.num_calls()), (0, 1));
}
