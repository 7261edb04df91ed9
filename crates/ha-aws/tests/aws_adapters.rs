//! The adapters against aws-smithy-mocks: how real AWS error responses become domain
//! failures, and that the happy paths return what the handlers rely on.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use ha_aws::fleet::Ec2Fleet;
use ha_aws::ledger::DynamoTable;
use ha_domain::error::Retry;
use ha_domain::incident::{IncidentId, ServerLedgerState};
use ha_domain::launch::ClaimRecord;
use ha_domain::model::{ServerId, Workload};
use ha_ports::ledger::ClaimAttempt;
use ha_ports::{Fleet, HookVerdict, LaunchRequest, Ledger};

fn ec2_error(code: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>{code}</Code><Message>{code} happened</Message></Error></Errors><RequestID>req-1</RequestID></Response>"#
    )
}

fn workload() -> Workload {
    Workload {
        name: "pos-db".into(),
        launch_template_id: "lt-0aaaaaaaaaaaaaaa1".into(),
        launch_template_version: "$Default".into(),
        protected_server: ServerId::parse("op-0123456789abcdef0").unwrap(),
        subnets: vec!["subnet-0a1b2c3d4e5f60718".into()],
        lni_subnets: Default::default(),
        priority: 1,
        backup_parameter: None,
        target_groups: Vec::new(),
        on_partition: None,
        probe: None,
        mode: Default::default(),
        promotion_document: None,
    }
}

async fn launch_with_response(status: u16, body: String) -> Result<ha_ports::Launched, ha_domain::error::AwsFailure> {
    let rule =
        mock!(aws_sdk_ec2::Client::run_instances).sequence().http_status(status, Some(body)).repeatedly().build();
    let client = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&rule]);
    let w = workload();
    let incident = IncidentId::from_stored("inc-1");
    Ec2Fleet::new(client)
        .launch(&LaunchRequest {
            workload: &w,
            purpose: ha_ports::LaunchFor::Incident(&incident),
            subnet_id: "subnet-0a1b2c3d4e5f60718",
            interfaces: &[],
            client_token: "t",
            restored_from: None,
            dry_run: false,
        })
        .await
}

#[tokio::test]
async fn ec2_error_responses_are_classified() {
    // EC2 sends capacity shortages as server errors; they must still mean "next destination".
    let table: &[(u16, &str, Retry)] = &[
        (500, "InsufficientInstanceCapacity", Retry::WontHelp),
        (400, "InvalidLaunchTemplateId.NotFound", Retry::WontHelp),
        (400, "UnmodeledCodeFromTheFuture", Retry::WontHelp),
        (403, "UnauthorizedOperation", Retry::WontHelp),
        (503, "RequestLimitExceeded", Retry::CanHelp),
        (500, "InternalError", Retry::CanHelp),
    ];
    for (status, code, retry) in table {
        let failure = launch_with_response(*status, ec2_error(code)).await.unwrap_err();
        assert_eq!(failure.operation, "RunInstances");
        assert_eq!(failure.code, *code);
        assert_eq!(failure.retry, *retry, "{code}");
        assert!(failure.message.contains("happened"), "{failure}");
    }
}

#[tokio::test]
async fn run_instances_returns_the_instance_id() {
    let rule = mock!(aws_sdk_ec2::Client::run_instances)
        .match_requests(|r| {
            r.subnet_id() == Some("subnet-0a1b2c3d4e5f60718")
                && r.client_token() == Some("t")
                && r.min_count() == Some(1)
                && r.max_count() == Some(1)
                && r.tag_specifications()
                    .iter()
                    .flat_map(|s| s.tags())
                    .any(|t| t.key() == Some("outposts-ha:incident") && t.value() == Some("inc-1"))
        })
        .then_output(|| {
            aws_sdk_ec2::operation::run_instances::RunInstancesOutput::builder()
                .instances(aws_sdk_ec2::types::Instance::builder().instance_id("i-0123").build())
                .build()
        });
    let client = mock_client!(aws_sdk_ec2, [&rule]);
    let w = workload();
    let incident = IncidentId::from_stored("inc-1");
    let id = Ec2Fleet::new(client)
        .launch(&LaunchRequest {
            workload: &w,
            purpose: ha_ports::LaunchFor::Incident(&incident),
            subnet_id: "subnet-0a1b2c3d4e5f60718",
            interfaces: &[],
            client_token: "t",
            restored_from: None,
            dry_run: false,
        })
        .await
        .unwrap();
    assert_eq!(id.instance_id, "i-0123");
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn dynamodb_throttling_is_transient() {
    let body =
        r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"slow down"}"#;
    let rule =
        mock!(aws_sdk_dynamodb::Client::put_item).sequence().http_status(400, Some(body.into())).repeatedly().build();
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule]);
    let ledger = Ledger::new(std::sync::Arc::new(DynamoTable::new(client, "ledger")), 90);
    let err =
        ledger.claim_workload(&IncidentId::from_stored("inc-1"), &claimed(), "owner-a", 1_000, 300).await.unwrap_err();
    assert_eq!((err.code.as_str(), err.retry), ("ProvisionedThroughputExceededException", Retry::CanHelp));
}

fn claimed() -> ha_ports::ledger::ClaimedLaunch {
    ha_ports::ledger::ClaimedLaunch { workload: workload(), grounds: None, after_failed_promotion: false }
}

fn put_loses_to_an_existing_item() -> aws_smithy_mocks::Rule {
    mock!(aws_sdk_dynamodb::Client::put_item).then_error(|| {
        PutItemError::ConditionalCheckFailedException(ConditionalCheckFailedException::builder().build())
    })
}

#[tokio::test]
async fn a_lost_claim_reports_what_holds_it() {
    let put = put_loses_to_an_existing_item();
    let get = mock!(aws_sdk_dynamodb::Client::get_item).then_output(|| {
        aws_sdk_dynamodb::operation::get_item::GetItemOutput::builder()
            .item("status", AttributeValue::S("launching".into()))
            .item("lease_until", AttributeValue::N("1300".into()))
            .build()
    });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&put, &get]);
    let ledger = Ledger::new(std::sync::Arc::new(DynamoTable::new(client, "ledger")), 90);
    let got =
        ledger.claim_workload(&IncidentId::from_stored("inc-1"), &claimed(), "owner-b", 1_000, 300).await.unwrap();
    assert_eq!(
        got,
        ClaimAttempt::Existing {
            record: ClaimRecord::Launching { lease_until: 1300 },
            outcome_event: None,
            launch: None,
            attempted: false
        }
    );
}

#[tokio::test]
async fn a_server_held_by_another_incident_is_a_flap() {
    let put = put_loses_to_an_existing_item();
    let get = mock!(aws_sdk_dynamodb::Client::get_item).then_output(|| {
        aws_sdk_dynamodb::operation::get_item::GetItemOutput::builder()
            .item("incident_id", AttributeValue::S("inc-first".into()))
            .build()
    });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&put, &get]);
    let ledger = Ledger::new(std::sync::Arc::new(DynamoTable::new(client, "ledger")), 90);
    let server = ServerId::parse("op-0123456789abcdef0").unwrap();
    let got = ledger.claim_server(&server, &IncidentId::from_stored("inc-second"), 1_000).await.unwrap();
    assert_eq!(got, ServerLedgerState::HeldByOther(IncidentId::from_stored("inc-first")));
}

#[tokio::test]
async fn a_hook_verdict_once_settled_holds() {
    // A failure ending after the hook succeeded (a duplicate command, or fencing giving up
    // at that moment): DynamoDB refuses the second verdict and the first is returned.
    let update = mock!(aws_sdk_dynamodb::Client::update_item).then_error(|| {
        aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(
            ConditionalCheckFailedException::builder().build(),
        )
    });
    let get = mock!(aws_sdk_dynamodb::Client::get_item).then_output(|| {
        aws_sdk_dynamodb::operation::get_item::GetItemOutput::builder()
            .item("instance_id", AttributeValue::S("i-0standby".into()))
            .item("command_id", AttributeValue::S("cmd-1".into()))
            .item("verdict", AttributeValue::S("succeeded".into()))
            .build()
    });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&update, &get]);
    let ledger = Ledger::new(std::sync::Arc::new(DynamoTable::new(client, "ledger")), 90);
    let incident = IncidentId::from_stored("inc-1");
    let held = ledger.settle_hook(&incident, "db", HookVerdict::Failed, 1_000).await.unwrap();
    assert_eq!(held, HookVerdict::Succeeded);
}

#[tokio::test]
async fn a_first_hook_verdict_is_taken() {
    let update = mock!(aws_sdk_dynamodb::Client::update_item)
        .then_output(|| aws_sdk_dynamodb::operation::update_item::UpdateItemOutput::builder().build());
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&update]);
    let ledger = Ledger::new(std::sync::Arc::new(DynamoTable::new(client, "ledger")), 90);
    let incident = IncidentId::from_stored("inc-1");
    assert_eq!(ledger.settle_hook(&incident, "db", HookVerdict::Failed, 1_000).await.unwrap(), HookVerdict::Failed);
    assert_eq!(update.num_calls(), 1);
}
