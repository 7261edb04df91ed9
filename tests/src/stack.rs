//! The project's resources in the emulator, and the router that plays EventBridge → Lambda.

use alarm_handler::{AlarmHandler, Outcome};
use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
use futures::future::join_all;
use ha_domain::error::HandlerError;
use relaunch::{Relaunch, RelaunchReport};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Which function a rule in the template invokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    AlarmHandler,
    Relaunch,
    Notifier,
}

impl Function {
    fn from_logical_id(id: &str) -> Option<Function> {
        match id {
            "AlarmHandlerFunction" => Some(Function::AlarmHandler),
            "RelaunchFunction" => Some(Function::Relaunch),
            "NotifierFunction" => Some(Function::Notifier),
            _ => None,
        }
    }
}

/// A rule on the project's bus, as the template declares it.
#[derive(Debug, Clone)]
pub struct BusRule {
    pub name: String,
    pub pattern: Value,
    pub target: Function,
}

pub fn template_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml")
}

fn to_json(v: &serde_norway::Value) -> Value {
    serde_json::to_value(v).expect("event patterns are plain data")
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

/// Every rule the template puts on the project's bus, with its pattern and target.
pub fn bus_rules_from_template() -> Vec<BusRule> {
    let text = std::fs::read_to_string(template_path()).expect("infra/template.yaml");
    let doc: serde_norway::Value = serde_norway::from_str(&text).expect("template parses");
    let resources = doc.get("Resources").and_then(|r| r.as_mapping()).expect("Resources");
    let mut rules = Vec::new();
    for (name, resource) in resources {
        if resource.get("Type").and_then(|t| t.as_str()) != Some("AWS::Events::Rule") {
            continue;
        }
        let props = &resource["Properties"];
        if props.get("EventBusName").is_none() {
            continue; // the default bus: AWS services' events, delivered to the handler directly in tests
        }
        for target in props["Targets"].as_sequence().into_iter().flatten() {
            let function = get_att_target(&target["Arn"]).and_then(|id| Function::from_logical_id(&id));
            rules.push(BusRule {
                name: name.as_str().unwrap().to_string(),
                pattern: to_json(&props["EventPattern"]),
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
    sqs: aws_sdk_sqs::Client,
    routes: Vec<Route>,
    mailbox_url: String,
    invocations: AtomicUsize,
}

/// What a delivery round did.
#[derive(Debug, Default)]
pub struct Delivered {
    pub relaunch_reports: Vec<RelaunchReport>,
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
        let name = "outposts-ha-test";
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
            events
                .put_rule()
                .name(&rule.name)
                .event_bus_name(&bus_name)
                .event_pattern(rule.pattern.to_string())
                .send()
                .await
                .unwrap();
            events
                .put_targets()
                .rule(&rule.name)
                .event_bus_name(&bus_name)
                .targets(aws_sdk_eventbridge::types::Target::builder().id("target").arn(queue_arn).build().unwrap())
                .send()
                .await
                .unwrap();
            routes.push(Route { queue_url, target: rule.target });
        }

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

        let store = ha_domain::config::IncidentStore {
            ledger_table: table.clone(),
            event_bus_name: bus_name.clone(),
            retention_days: 90,
        };
        let alarm_handler = AlarmHandler::new(
            alarm_handler::Config {
                store: store.clone(),
                alarm_name_prefix: "outposts-ha-".into(),
                stack_name: "outposts-ha-test".into(),
            },
            handler_sdk,
        );
        let relaunch = Relaunch::new(
            relaunch::Config {
                store: store.clone(),
                launch_concurrency,
                claim_lease_seconds: 300,
                stack_name: "outposts-ha-test".into(),
            },
            handler_sdk,
        );
        let notifier = notifier::Notifier::new(notifier::Config { topic_arn: topic_arn.clone() }, handler_sdk);
        Stack {
            sdk: sdk.clone(),
            table,
            bus_name,
            store,
            topic_arn,
            alarm_handler,
            relaunch,
            notifier,
            sqs,
            routes,
            mailbox_url,
            invocations: AtomicUsize::new(0),
        }
    }

    /// An alarm notification arriving at alarm-handler (as the alarm rule or action delivers it).
    pub async fn alarm(&self, event: &Value) -> Result<Vec<Outcome>, HandlerError> {
        self.alarm_handler.handle(event.clone()).await
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
                    Invocation::Notified(published) => delivered.notifications_published += usize::from(published),
                    Invocation::Failed(e) => delivered.handler_errors.push(e),
                }
            }
        }
    }

    async fn invoke(&self, target: Function, body: Value) -> Invocation {
        let mut last_error = String::new();
        for _attempt in 0..3 {
            let request_id = format!("req-{}", self.invocations.fetch_add(1, Ordering::SeqCst));
            let result = match target {
                Function::Relaunch => self.relaunch.handle(body.clone(), &request_id).await.map(Invocation::Relaunch),
                Function::Notifier => self
                    .notifier
                    .handle(body.clone())
                    .await
                    .map(|o| Invocation::Notified(matches!(o, notifier::NotifyOutcome::Published { .. }))),
                Function::AlarmHandler => {
                    self.alarm_handler.handle(body.clone()).await.map(|_| Invocation::Notified(false))
                }
            };
            match result {
                Ok(i) => return i,
                Err(e) => last_error = format!("{target:?}: {e}"),
            }
        }
        Invocation::Failed(last_error)
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

    /// Notifications that reached the topic's SQS subscriber, oldest first.
    pub async fn notifications(&self) -> Vec<Notification> {
        let mut all = Vec::new();
        for body in self.receive_all(&self.mailbox_url).await {
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
    Relaunch(RelaunchReport),
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

/// A ConnectedStatus alarm transition for `server_id`, in the EventBridge shape.
pub fn alarm_event(alarm_name: &str, server_id: &str, from: &str, to: &str, at: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events/alarm/eventbridge-server-down.json");
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
