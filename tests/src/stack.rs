//! The project's resources in the emulator, and the router that plays EventBridge → Lambda.

use crate::roles;
use alarm_handler::{AlarmHandler, Outcome};
use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
use backup_scheduler::{BackupReport, BackupScheduler};
use futures::future::join_all;
use ha_aws::invocation::HandlerError;
use relaunch::{Relaunch, Response as RelaunchResponse};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Which function a rule in the template invokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    AlarmHandler,
    Relaunch,
    Notifier,
    BackupScheduler,
}

impl Function {
    fn from_logical_id(id: &str) -> Option<Function> {
        match id {
            "AlarmHandlerFunction" => Some(Function::AlarmHandler),
            "RelaunchFunction" => Some(Function::Relaunch),
            "NotifierFunction" => Some(Function::Notifier),
            "BackupSchedulerFunction" => Some(Function::BackupScheduler),
            _ => None,
        }
    }
}

/// An event rule as the template declares it: on the project's bus, or (`on_project_bus`
/// false) on the default bus, where AWS services' events arrive.
#[derive(Debug, Clone)]
pub struct BusRule {
    pub name: String,
    pub on_project_bus: bool,
    pub pattern: Value,
    pub target: Function,
}

pub fn template_path() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo")).join("../infra/template.yaml")
}

/// The pattern as EventBridge gets it: `!Ref Parameter` resolved to the parameter's default.
fn to_json(v: &serde_norway::Value, parameters: &serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match v {
        Y::Tagged(t) if t.tag == "Ref" || t.tag == "!Ref" => {
            let name = t.value.as_str().expect("!Ref names a parameter or a resource");
            if name == "WitnessProbeDocument" {
                return Value::String(witness_document_name());
            }
            let default = parameters.get(name).and_then(|p| p.get("Default"));
            to_json(default.unwrap_or_else(|| panic!("pattern refers to {name}, which has no default")), parameters)
        }
        Y::Sequence(items) => Value::Array(items.iter().map(|i| to_json(i, parameters)).collect()),
        Y::Mapping(m) => Value::Object(
            m.iter().map(|(k, v)| (k.as_str().expect("string keys").to_string(), to_json(v, parameters))).collect(),
        ),
        other => serde_json::to_value(other).expect("event patterns are plain data"),
    }
}

fn get_att_target(v: &serde_norway::Value) -> Option<String> {
    use serde_norway::Value as Y;
    match v {
        Y::Tagged(t) if t.tag == "GetAtt" || t.tag == "!GetAtt" => match &t.value {
            Y::String(s) => s.split('.').next().map(str::to_string),
            Y::Sequence(parts) => parts.first().and_then(|p| p.as_str()).map(str::to_string),
            _ => None,
        },
        Y::Mapping(m) => m
            .get("Fn::GetAtt")
            .and_then(|p| p.as_sequence())
            .and_then(|p| p.first())
            .and_then(|p| p.as_str())
            .map(str::to_string),
        _ => None,
    }
}

/// relaunch's configuration in the harness: the template's defaults, but a witness that
/// cannot say relaunches (the template's default too), the stack's own probe document and
/// no RunInstances pace (the emulator throttles nothing; the simulator tests the pace).
pub fn relaunch_config(store: &ha_domain::config::IncidentStore, launch_concurrency: usize) -> relaunch::Config {
    relaunch::Config {
        store: store.clone(),
        launch_concurrency,
        run_instances_burst: 1000,
        run_instances_per_second: 1000,
        claim_lease_seconds: 150,
        fencing_policy: ha_domain::fencing::FencingPolicy::Isolate,
        stack_name: STACK_NAME.into(),
        witness_document: witness_document_name(),
        when_unconfirmed: ha_domain::partition::WhenUnconfirmed::Relaunch,
        witness_timeout_seconds: 240,
        wave_breaker: ha_domain::partition::WaveBreaker::new(MASS_OUTAGE_SERVERS, 15).expect("valid"),
        alarm_name_prefix: "outposts-ha-".into(),
        // The tests replay alarms from 2026-11-22, long past any deadline: a report is due
        // here only once every workload settled (ha-domain's tests and the simulator cover
        // the deadline).
        failover_report_seconds: 10 * 365 * 86_400,
    }
}

/// A server's ConnectedStatus alarm, as protected-server.yaml defines it, set to ALARM: its
/// state-change event goes to the default bus, and DescribeAlarms reports it in ALARM.
pub async fn server_alarm_fires(sdk: &aws_config::SdkConfig, alarm: &str, server: &str) {
    use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, StateValue, Statistic};
    let cloudwatch = aws_sdk_cloudwatch::Client::new(sdk);
    cloudwatch
        .put_metric_alarm()
        .alarm_name(alarm)
        .namespace("AWS/Outposts")
        .metric_name("ConnectedStatus")
        .dimensions(Dimension::builder().name("OutpostId").value(server).build())
        .statistic(Statistic::Minimum)
        .period(60)
        .evaluation_periods(3)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::LessThanThreshold)
        .send()
        .await
        .unwrap();
    cloudwatch
        .set_alarm_state()
        .alarm_name(alarm)
        .state_value(StateValue::Alarm)
        .state_reason("the server stopped reporting")
        .send()
        .await
        .unwrap();
}

/// The breaker's threshold in the harness (the template's default).
pub const MASS_OUTAGE_SERVERS: usize = 5;

fn witness_document_name() -> String {
    format!("{STACK_NAME}-witness-probe")
}

/// The stack's witness probe document, created from the template's own content.
async fn create_witness_document(sdk: &aws_config::SdkConfig) -> String {
    let text = std::fs::read_to_string(template_path()).expect("infra/template.yaml");
    let doc: serde_norway::Value = serde_norway::from_str(&text).expect("template parses");
    let content = &doc["Resources"]["WitnessProbeDocument"]["Properties"]["Content"];
    let name = witness_document_name();
    aws_sdk_ssm::Client::new(sdk)
        .create_document()
        .name(&name)
        .document_type(aws_sdk_ssm::types::DocumentType::Command)
        .document_format(aws_sdk_ssm::types::DocumentFormat::Json)
        .content(to_json(content, &serde_norway::Value::Null).to_string())
        .send()
        .await
        .expect("the witness probe document");
    name
}

/// Every rule with an event pattern the template declares, with its pattern and target
/// (schedules never fire in the emulator: tests tick by hand).
pub fn bus_rules_from_template() -> Vec<BusRule> {
    let text = std::fs::read_to_string(template_path()).expect("infra/template.yaml");
    let doc: serde_norway::Value = serde_norway::from_str(&text).expect("template parses");
    let resources = doc.get("Resources").and_then(|r| r.as_mapping()).expect("Resources");
    let parameters = doc.get("Parameters").cloned().unwrap_or(serde_norway::Value::Null);
    let mut rules = Vec::new();
    for (name, resource) in resources {
        if resource.get("Type").and_then(|t| t.as_str()) != Some("AWS::Events::Rule") {
            continue;
        }
        let props = &resource["Properties"];
        if props.get("EventPattern").is_none() {
            continue;
        }
        for target in props["Targets"].as_sequence().into_iter().flatten() {
            let target_id = get_att_target(&target["Arn"]);
            let target_type =
                target_id.as_ref().and_then(|id| resources.get(id.as_str())).and_then(|r| r["Type"].as_str());
            if target_type == Some("AWS::Events::ApiDestination") {
                // Pages go to PagerDuty, not to a function: infra/tests checks their requests.
                continue;
            }
            let function = target_id.and_then(|id| Function::from_logical_id(&id));
            rules.push(BusRule {
                name: name.as_str().unwrap().to_string(),
                on_project_bus: props.get("EventBusName").is_some(),
                pattern: to_json(&props["EventPattern"], &parameters),
                target: function.unwrap_or_else(|| panic!("rule {name:?} targets something other than our functions")),
            });
        }
    }
    rules
}

struct Route {
    queue_url: String,
    target: Function,
}

/// Everything a test needs: handlers wired to the emulator, routes, and the mailbox.
pub struct Stack {
    pub sdk: aws_config::SdkConfig,
    pub table: String,
    pub bus_name: String,
    /// The ledger and bus the handlers were configured with.
    pub store: ha_domain::config::IncidentStore,
    pub topic_arn: String,
    pub alarm_handler: AlarmHandler,
    pub relaunch: Relaunch,
    pub notifier: notifier::Notifier,
    pub backup_scheduler: BackupScheduler,
    /// Operators' commands (nothing routes to it; tests invoke it as an operator would).
    pub operator: operator::Operator,
    sqs: aws_sdk_sqs::Client,
    routes: Vec<Route>,
    mailbox_url: String,
    inbox_url: String,
    facts_url: String,
    invocations: AtomicUsize,
    role_sdks: HashMap<&'static str, roles::RoleSession>,
}

/// What a delivery round did.
#[derive(Debug, Default)]
pub struct Delivered {
    pub relaunch_reports: Vec<RelaunchResponse>,
    pub backup_reports: Vec<BackupReport>,
    pub notifications_published: usize,
    pub handler_errors: Vec<String>,
}

impl Stack {
    pub async fn deploy(sdk: &aws_config::SdkConfig, launch_concurrency: usize) -> Stack {
        Self::deploy_with_handler_sdk(sdk, sdk, launch_concurrency).await
    }

    /// Like [`Stack::deploy`], but the handlers talk to AWS through `handler_sdk` (for
    /// example one that injects faults) while the harness itself uses `sdk`.
    pub async fn deploy_with_handler_sdk(
        sdk: &aws_config::SdkConfig,
        handler_sdk: &aws_config::SdkConfig,
        launch_concurrency: usize,
    ) -> Stack {
        Self::deploy_withholding(sdk, handler_sdk, launch_concurrency, None).await
    }

    /// Like [`Stack::deploy`], with one grant taken out of one function role's policies (an
    /// action, or `action@resource-suffix`; see [`roles::assume_function_role`]): a test
    /// shows that the grant is needed.
    pub async fn deploy_without_grant(sdk: &aws_config::SdkConfig, role: &str, grant: &str) -> Stack {
        Self::deploy_withholding(sdk, sdk, 8, Some((role, grant))).await
    }

    async fn deploy_withholding(
        sdk: &aws_config::SdkConfig,
        handler_sdk: &aws_config::SdkConfig,
        launch_concurrency: usize,
        withheld: Option<(&str, &str)>,
    ) -> Stack {
        let name = STACK_NAME;
        let table = format!("{name}-ledger");
        let ddb = aws_sdk_dynamodb::Client::new(sdk);
        ddb.create_table()
            .table_name(&table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("pk")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("sk")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build().unwrap())
            .key_schema(KeySchemaElement::builder().attribute_name("sk").key_type(KeyType::Range).build().unwrap())
            .send()
            .await
            .unwrap();

        let events = aws_sdk_eventbridge::Client::new(sdk);
        let bus_name = format!("{name}-events");
        events.create_event_bus().name(&bus_name).send().await.unwrap();

        let sqs = aws_sdk_sqs::Client::new(sdk);
        let mut routes = Vec::new();
        for rule in bus_rules_from_template() {
            let (queue_url, queue_arn) = queue(&sqs, &format!("rule-{}", rule.name)).await;
            let bus = if rule.on_project_bus { bus_name.as_str() } else { "default" };
            events
                .put_rule()
                .name(&rule.name)
                .event_bus_name(bus)
                .event_pattern(rule.pattern.to_string())
                .send()
                .await
                .unwrap();
            events
                .put_targets()
                .rule(&rule.name)
                .event_bus_name(bus)
                .targets(aws_sdk_eventbridge::types::Target::builder().id("target").arn(queue_arn).build().unwrap())
                .send()
                .await
                .unwrap();
            routes.push(Route { queue_url, target: rule.target });
        }

        // Every fact on the project bus, for tests of what was told (most never become mail).
        let (facts_url, facts_arn) = queue(&sqs, "facts").await;
        events
            .put_rule()
            .name("facts-tap")
            .event_bus_name(&bus_name)
            .event_pattern(serde_json::json!({"source": [ha_domain::contract::EVENT_SOURCE]}).to_string())
            .send()
            .await
            .unwrap();
        events
            .put_targets()
            .rule("facts-tap")
            .event_bus_name(&bus_name)
            .targets(aws_sdk_eventbridge::types::Target::builder().id("tap").arn(facts_arn).build().unwrap())
            .send()
            .await
            .unwrap();

        let sns = aws_sdk_sns::Client::new(sdk);
        let topic_arn = sns
            .create_topic()
            .name(format!("{name}-notifications"))
            .send()
            .await
            .unwrap()
            .topic_arn()
            .unwrap()
            .to_string();
        let (mailbox_url, mailbox_arn) = queue(&sqs, "mailbox").await;
        sns.subscribe().topic_arn(&topic_arn).protocol("sqs").endpoint(mailbox_arn).send().await.unwrap();
        // What the stack's email subscription receives: its filter policy at the default.
        let (inbox_url, inbox_arn) = queue(&sqs, "inbox").await;
        sns.subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(inbox_arn)
            .attributes("FilterPolicyScope", "MessageAttributes")
            .attributes("FilterPolicy", email_filter_policy("warning").to_string())
            .send()
            .await
            .unwrap();

        let witness_document = create_witness_document(sdk).await;
        let store = ha_domain::config::IncidentStore {
            ledger_table: table.clone(),
            event_bus_name: bus_name.clone(),
            retention_days: 90,
        };
        // Each handler runs with its own template role's credentials.
        let values = roles::TemplateValues {
            stack_name: STACK_NAME.into(),
            parameters: [
                ("BackupAutomationRoleArn".to_string(), backup_config(&store).automation_role_arn.unwrap_or_default()),
                // Paging on: the notifier puts its pages on the bus.
                ("PagerDutyRoutingKey".to_string(), "R0UT1NGKEY0123456789".to_string()),
            ]
            .into(),
            refs: [
                ("NotificationTopic".to_string(), topic_arn.clone()),
                ("WitnessProbeDocument".to_string(), witness_document.clone()),
            ]
            .into(),
            arns: [
                (
                    "LedgerTable".to_string(),
                    format!("arn:aws:dynamodb:{}:{}:table/{table}", roles::REGION, roles::ACCOUNT),
                ),
                (
                    "EventBus".to_string(),
                    format!("arn:aws:events:{}:{}:event-bus/{bus_name}", roles::REGION, roles::ACCOUNT),
                ),
            ]
            .into(),
        };
        let mut role_sdks = HashMap::new();
        for role in roles::FUNCTION_ROLES {
            let without = withheld.filter(|(r, _)| *r == role).map(|(_, action)| action);
            role_sdks.insert(role, roles::assume_function_role(sdk, handler_sdk, role, &values, without).await);
        }
        let handler_sdk_of = |role: &str| role_sdks[role].sdk.clone();
        let alarm_handler = AlarmHandler::new(
            alarm_handler::Config {
                store: store.clone(),
                alarm_name_prefix: "outposts-ha-".into(),
                stack_name: STACK_NAME.into(),
            },
            &handler_sdk_of(roles::ALARM_HANDLER),
        );
        let relaunch = Relaunch::new(relaunch_config(&store, launch_concurrency), &handler_sdk_of(roles::RELAUNCH));
        let notifier = notifier::Notifier::new(
            notifier::Config {
                topic_arn: topic_arn.clone(),
                chat_topic_arn: None,
                event_bus_name: Some(bus_name.clone()),
                presentation: notifier::presentation::Presentation::new("UTC", RUNBOOK_URL, "").expect("UTC is a zone"),
            },
            &handler_sdk_of(roles::NOTIFIER),
        );
        let backup_scheduler = BackupScheduler::new(backup_config(&store), &handler_sdk_of(roles::BACKUP_SCHEDULER));
        let operator = operator::Operator::new(
            operator::Config { store: store.clone(), stack_name: STACK_NAME.into() },
            &handler_sdk_of(roles::OPERATOR),
        );
        Stack {
            sdk: sdk.clone(),
            table,
            bus_name,
            store,
            topic_arn,
            alarm_handler,
            relaunch,
            notifier,
            backup_scheduler,
            operator,
            sqs,
            routes,
            mailbox_url,
            inbox_url,
            facts_url,
            invocations: AtomicUsize::new(0),
            role_sdks,
        }
    }

    /// The SDK configuration a function's handler uses: its template role's credentials
    /// (`role` is one of [`roles::FUNCTION_ROLES`]).
    pub fn role_sdk(&self, role: &str) -> &aws_config::SdkConfig {
        &self.role_sdks[role].sdk
    }

    /// The role's credentials as a function's environment carries them.
    pub fn role_environment(&self, role: &str) -> &[(String, String)] {
        &self.role_sdks[role].environment
    }

    /// An alarm notification arriving at alarm-handler (as the alarm rule or action delivers it).
    pub async fn alarm(&self, event: &Value) -> Result<Vec<Outcome>, HandlerError> {
        let request_id = format!("req-{}", self.invocations.fetch_add(1, Ordering::SeqCst));
        self.alarm_handler.handle(event.clone(), &request_id).await
    }

    /// Carries events from the bus to their functions until no rule has anything queued.
    /// Each batch is handled concurrently, like parallel Lambda invocations; a failed
    /// invocation is retried twice, like Lambda's asynchronous retries.
    pub async fn deliver(&self) -> Delivered {
        let mut delivered = Delivered::default();
        loop {
            let mut batch = Vec::new();
            for route in &self.routes {
                for body in self.receive_all(&route.queue_url).await {
                    batch.push((route.target, serde_json::from_str::<Value>(&body).unwrap()));
                }
            }
            if batch.is_empty() {
                return delivered;
            }
            let results = join_all(batch.into_iter().map(|(target, body)| self.invoke(target, body))).await;
            for r in results {
                match r {
                    Invocation::Relaunch(report) => delivered.relaunch_reports.push(report),
                    Invocation::Backup(report) => delivered.backup_reports.push(report),
                    Invocation::Notified(published) => delivered.notifications_published += usize::from(published),
                    Invocation::Failed(e) => delivered.handler_errors.push(e),
                }
            }
        }
    }

    async fn invoke(&self, target: Function, body: Value) -> Invocation {
        let mut last_error = String::new();
        // Lambda retries twice, a minute and two minutes later; waiting on another delivery
        // (NotYet) here gets a few more, shorter waits (the reconcile pass would also come).
        let mut attempt = 0u64;
        while attempt < 3 || (attempt < 6 && last_error.contains("not yet")) {
            if attempt > 0 && last_error.contains("not yet") {
                tokio::time::sleep(std::time::Duration::from_secs(2 * attempt)).await;
            }
            attempt += 1;
            let request_id = format!("req-{}", self.invocations.fetch_add(1, Ordering::SeqCst));
            let result = match target {
                Function::Relaunch => self.relaunch.handle(body.clone(), &request_id).await.map(Invocation::Relaunch),
                Function::Notifier => self
                    .notifier
                    .handle(body.clone())
                    .await
                    .map(|o| Invocation::Notified(matches!(o, notifier::NotifyOutcome::Published { .. }))),
                Function::BackupScheduler => {
                    self.backup_scheduler.handle(body.clone(), &request_id).await.map(Invocation::Backup)
                }
                Function::AlarmHandler => {
                    self.alarm_handler.handle(body.clone(), &request_id).await.map(|_| Invocation::Notified(false))
                }
            };
            match result {
                Ok(i) => return i,
                Err(e) => last_error = format!("{target:?}: {e}"),
            }
        }
        Invocation::Failed(last_error)
    }

    /// A schedule tick of the backup schedule, as EventBridge Scheduler's rule delivers it.
    pub async fn backup_tick(&self, at: &str) -> Result<BackupReport, HandlerError> {
        let request_id = format!("req-{}", self.invocations.fetch_add(1, Ordering::SeqCst));
        self.backup_scheduler.handle(scheduled_event(at), &request_id).await
    }

    /// Delivers events until `executions` backup executions were handled (the SSM
    /// Automation double ends each one a moment after it started), or panics after 30 s.
    pub async fn deliver_backups(&self, executions: usize) -> Delivered {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut all = Delivered::default();
        loop {
            let d = self.deliver().await;
            all.relaunch_reports.extend(d.relaunch_reports);
            all.notifications_published += d.notifications_published;
            all.handler_errors.extend(d.handler_errors);
            all.backup_reports.extend(d.backup_reports);
            let handled = all.backup_reports.iter().filter(|r| matches!(r, BackupReport::Execution(_))).count();
            if handled >= executions {
                return all;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "only {handled} of {executions} executions reported: {all:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Takes every event queued for `target` without invoking it, for tests that invoke
    /// the handler themselves (with faults, say).
    pub async fn take_queued(&self, target: Function) -> Vec<Value> {
        let mut taken = Vec::new();
        for route in self.routes.iter().filter(|r| r.target == target) {
            for body in self.receive_all(&route.queue_url).await {
                taken.push(serde_json::from_str(&body).unwrap());
            }
        }
        taken
    }

    /// Every message waiting in the queue, removed from it.
    async fn receive_all(&self, queue_url: &str) -> Vec<String> {
        let mut bodies = Vec::new();
        loop {
            let out = self.sqs.receive_message().queue_url(queue_url).max_number_of_messages(10).send().await.unwrap();
            if out.messages().is_empty() {
                return bodies;
            }
            for m in out.messages() {
                self.sqs
                    .delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
                bodies.push(m.body().unwrap_or_default().to_string());
            }
        }
    }

    /// Facts put on the project bus since the last call, as [`Notification`]s without a
    /// subject (the body is the event's detail JSON): what was told, mailed or not.
    pub async fn told(&self) -> Vec<Notification> {
        let mut all = Vec::new();
        for body in self.receive_all(&self.facts_url).await {
            let event: Value = serde_json::from_str(&body).unwrap();
            let detail = &event["detail"];
            all.push(Notification {
                subject: String::new(),
                body: detail.to_string(),
                event_type: event["detail-type"].as_str().unwrap_or_default().to_string(),
                severity: String::new(),
                server_id: detail["server_id"].as_str().unwrap_or_default().to_string(),
            });
        }
        all
    }

    /// Notifications that reached the topic's SQS subscriber, oldest first.
    pub async fn notifications(&self) -> Vec<Notification> {
        self.messages(&self.mailbox_url).await
    }

    /// What an email subscriber of the stack receives (the template's filter policy at its
    /// default, warning and above), oldest first.
    pub async fn inbox(&self) -> Vec<Notification> {
        self.messages(&self.inbox_url).await
    }

    async fn messages(&self, queue_url: &str) -> Vec<Notification> {
        let mut all = Vec::new();
        for body in self.receive_all(queue_url).await {
            let envelope: Value = serde_json::from_str(&body).unwrap();
            let attribute =
                |k: &str| envelope["MessageAttributes"][k]["Value"].as_str().unwrap_or_default().to_string();
            all.push(Notification {
                subject: envelope["Subject"].as_str().unwrap_or_default().to_string(),
                body: envelope["Message"].as_str().unwrap_or_default().to_string(),
                event_type: attribute("event_type"),
                severity: attribute("severity"),
                server_id: attribute("server_id"),
            });
        }
        all
    }
}

enum Invocation {
    Relaunch(RelaunchResponse),
    Backup(BackupReport),
    Notified(bool),
    Failed(String),
}

/// One message as an email subscriber (or a filter policy) sees it.
#[derive(Debug, Clone)]
pub struct Notification {
    pub subject: String,
    pub body: String,
    pub event_type: String,
    pub severity: String,
    pub server_id: String,
}

async fn queue(sqs: &aws_sdk_sqs::Client, name: &str) -> (String, String) {
    let url = sqs.create_queue().queue_name(name).send().await.unwrap().queue_url().unwrap().to_string();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn).cloned())
        .unwrap();
    (url, arn)
}

/// The email subscription's filter policy as the template builds it for `minimum`
/// (EmailMinimumSeverity): the severities its mapping lists, an incident's thread, or no
/// severity at all (a test in infra/tests holds the template to this shape).
pub fn email_filter_policy(minimum: &str) -> Value {
    let template: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(template_path()).unwrap()).unwrap();
    let severities = &template["Mappings"]["SeverityFilter"][minimum]["Severities"];
    let severities: Vec<String> = serde_norway::from_value(severities.clone()).expect("a list of severities");
    serde_json::json!({"$or": [
        {"severity": severities},
        {"event_type": ["IncidentOpened", "FailoverCompleted", "IncidentClosed"]},
        {"severity": [{"exists": false}]},
    ]})
}

/// The runbook link every message ends with in the tests.
pub const RUNBOOK_URL: &str = "https://github.com/outposts-ha/outposts-ha/blob/main/docs/runbook.md";

/// The stack name the harness deploys as (and the backup parameters' path segment).
pub const STACK_NAME: &str = "outposts-ha-test";

/// backup-scheduler as the tests run it: the published runbook, two backups kept, a 1 h RPO.
pub fn backup_config(store: &ha_domain::config::IncidentStore) -> backup_scheduler::Config {
    backup_scheduler::Config {
        store: store.clone(),
        stack_name: STACK_NAME.into(),
        document: backup_scheduler::DEFAULT_DOCUMENT.into(),
        document_parameters: [("MaxThroughput".to_string(), vec!["125".to_string()])].into(),
        instance_parameter: "InstanceId".into(),
        subnet_parameter: "SubnetId".into(),
        helper_type_parameter: "TemporaryInstancesType".into(),
        helper_types: ha_domain::backup::HelperTypes { x86_64: "c5.large".into(), arm64: "c6g.large".into() },
        image_output: "createAMIFromSnapshot.ImageId".into(),
        automation_role_arn: Some("arn:aws:iam::123456789012:role/outposts-ha-test-backup-automation".into()),
        max_concurrent: 10,
        keep: 2,
        rpo_seconds: 3600,
        parameter_lease_seconds: 330,
    }
}

/// A tick of the backup schedule, in the shape EventBridge delivers it.
pub fn scheduled_event(at: &str) -> Value {
    serde_json::json!({
        "version": "0", "id": format!("tick-{at}"), "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": at, "region": "eu-west-1",
        "resources": ["arn:aws:events:eu-west-1:123456789012:rule/outposts-ha-test-BackupScheduleRule"], "detail": {}
    })
}

/// EC2's "instance is running" event, as the template's rule delivers it to relaunch.
pub fn instance_running_event(instance_id: &str) -> Value {
    let path = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"))
        .join("../events/ec2/instance-running.json");
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    event["resources"][0] = Value::String(format!("arn:aws:ec2:eu-west-1:123456789012:instance/{instance_id}"));
    event["detail"]["instance-id"] = Value::String(instance_id.into());
    event
}

/// A ConnectedStatus alarm transition for `server_id`, in the EventBridge shape.
pub fn alarm_event(alarm_name: &str, server_id: &str, from: &str, to: &str, at: &str) -> Value {
    let path = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"))
        .join("../events/alarm/eventbridge-server-down.json");
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    event["resources"][0] = Value::String(format!("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{alarm_name}"));
    event["detail"]["alarmName"] = Value::String(alarm_name.into());
    event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"]["OutpostId"] =
        Value::String(server_id.into());
    event["detail"]["previousState"]["value"] = Value::String(from.into());
    event["detail"]["state"]["value"] = Value::String(to.into());
    event["detail"]["state"]["timestamp"] = Value::String(at.into());
    event
}
