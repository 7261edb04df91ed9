//! What the deployed template says about delivery, read from `infra/template.yaml` itself:
//! which rule routes which event to which function, each function's timeout, Lambda's
//! asynchronous retry policy, the relaunch claim lease, and whether anything watches the
//! failed-events queue. The simulator delivers as the template configures, so changing the
//! template changes what the simulator checks.

use serde_json::Value;
use serde_norway::Value as Yaml;
use std::collections::BTreeMap;

const TEMPLATE: &str = include_str!("../../../infra/template.yaml");

/// The functions the simulator runs (the notifier's input is read off the bus instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Function {
    AlarmHandler,
    Relaunch,
    Notifier,
    BackupScheduler,
}

impl Function {
    fn logical_id(self) -> &'static str {
        match self {
            Function::AlarmHandler => "AlarmHandlerFunction",
            Function::Relaunch => "RelaunchFunction",
            Function::Notifier => "NotifierFunction",
            Function::BackupScheduler => "BackupSchedulerFunction",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Function::AlarmHandler => "alarm-handler",
            Function::Relaunch => "relaunch",
            Function::Notifier => "notifier",
            Function::BackupScheduler => "backup-scheduler",
        }
    }
}

/// One rule's pattern, as far as the project's rules use patterns.
#[derive(Debug, Clone)]
struct Rule {
    /// On the project's own bus (else the account's default bus, where AWS services put).
    project_bus: bool,
    detail_types: Vec<Yaml>,
    states: Option<Vec<String>>,
    targets: Vec<Function>,
}

#[derive(Debug, Clone)]
pub struct TemplateFacts {
    rules: Vec<Rule>,
    /// Scheduled rules: (period in ms, targets).
    /// (period, targets, the rule's input template if it has one: `<time>` is the tick's).
    pub schedules: Vec<(u64, Vec<Function>, Option<String>)>,
    pub retries: BTreeMap<Function, u32>,
    pub timeout_seconds: BTreeMap<Function, u64>,
    pub claim_lease_seconds: i64,
    /// How long a backup completion holds the parameter it moves.
    pub parameter_lease_seconds: i64,
    /// An alarm with actions watches the failed-events queue.
    pub failed_events_alarmed: bool,
}

fn text(v: &Yaml) -> String {
    match v {
        Yaml::String(s) => s.clone(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Tagged(t) => text(&t.value),
        other => format!("{other:?}"),
    }
}

/// `rate(5 minutes)` in milliseconds.
fn rate_ms(expression: &str) -> u64 {
    let inner = expression.trim_start_matches("rate(").trim_end_matches(')');
    let mut parts = inner.split_whitespace();
    let n: u64 = parts.next().and_then(|n| n.parse().ok()).unwrap_or(5);
    let unit = match parts.next().unwrap_or("minutes").trim_end_matches('s') {
        "second" => 1_000,
        "hour" => 3_600_000,
        "day" => 86_400_000,
        _ => 60_000,
    };
    n * unit
}

fn mentions(v: &Yaml, what: &str) -> bool {
    format!("{v:?}").contains(what)
}

impl TemplateFacts {
    /// The template's facts, read once per process.
    pub fn read() -> TemplateFacts {
        static FACTS: std::sync::OnceLock<TemplateFacts> = std::sync::OnceLock::new();
        FACTS.get_or_init(TemplateFacts::parse).clone()
    }

    fn parse() -> TemplateFacts {
        let doc: Yaml = serde_norway::from_str(TEMPLATE).expect("infra/template.yaml parses");
        let resources = doc.get("Resources").and_then(Yaml::as_mapping).expect("the template has resources");
        let functions = [Function::AlarmHandler, Function::Relaunch, Function::Notifier, Function::BackupScheduler];
        let parameters = doc.get("Parameters").cloned().unwrap_or(Yaml::Null);
        // A `!Ref` to a template parameter reads as its default.
        let resolved = |v: &Yaml| match v {
            Yaml::Tagged(t) if t.tag == "Ref" => {
                parameters.get(text(&t.value)).and_then(|p| p.get("Default")).map(text).unwrap_or_else(|| text(v))
            }
            other => text(other),
        };
        let variable = |props: &Yaml, name: &str| {
            props.get("Environment").and_then(|e| e.get("Variables")).and_then(|v| v.get(name)).map(text)
        };
        let mut facts = TemplateFacts {
            rules: Vec::new(),
            schedules: Vec::new(),
            retries: BTreeMap::new(),
            timeout_seconds: BTreeMap::new(),
            claim_lease_seconds: 0,
            parameter_lease_seconds: 0,
            failed_events_alarmed: false,
        };
        for (name, resource) in resources {
            let name = text(name);
            let kind = resource.get("Type").map(text).unwrap_or_default();
            let props = resource.get("Properties").cloned().unwrap_or(Yaml::Null);
            match kind.as_str() {
                "AWS::Events::Rule" => {
                    let pattern = props.get("EventPattern").cloned().unwrap_or(Yaml::Null);
                    let detail_types =
                        pattern.get("detail-type").and_then(Yaml::as_sequence).cloned().unwrap_or_default();
                    let states = pattern
                        .get("detail")
                        .and_then(|d| d.get("state"))
                        .and_then(Yaml::as_sequence)
                        .map(|s| s.iter().map(text).collect());
                    let targets: Vec<Function> = props
                        .get("Targets")
                        .and_then(Yaml::as_sequence)
                        .map(|ts| {
                            ts.iter()
                                .filter_map(|t| {
                                    let arn = t.get("Arn")?;
                                    functions.into_iter().find(|f| mentions(arn, f.logical_id()))
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    let project_bus = props.get("EventBusName").is_some_and(|b| mentions(b, "EventBus"));
                    let input = props.get("Targets").and_then(Yaml::as_sequence).and_then(|ts| {
                        ts.iter().find_map(|t| t.get("InputTransformer")?.get("InputTemplate").map(text))
                    });
                    match props.get("ScheduleExpression").map(resolved) {
                        // An empty expression: the rule's condition leaves it out.
                        Some(expression) if !targets.is_empty() && !expression.is_empty() => {
                            facts.schedules.push((rate_ms(&expression), targets, input))
                        }
                        Some(_) => {}
                        None => facts.rules.push(Rule { project_bus, detail_types, states, targets }),
                    }
                }
                "AWS::Lambda::EventInvokeConfig" => {
                    let function = props.get("FunctionName").cloned().unwrap_or(Yaml::Null);
                    if let Some(f) = functions.into_iter().find(|f| mentions(&function, f.logical_id())) {
                        let retries = props.get("MaximumRetryAttempts").map(text).and_then(|t| t.parse().ok());
                        facts.retries.insert(f, retries.unwrap_or(2));
                    }
                }
                "AWS::Lambda::Function" => {
                    if let Some(f) = functions.into_iter().find(|f| f.logical_id() == name) {
                        let timeout = props.get("Timeout").map(text).and_then(|t| t.parse().ok());
                        facts.timeout_seconds.insert(f, timeout.unwrap_or(3));
                        if f == Function::Relaunch {
                            let lease = variable(&props, "CLAIM_LEASE_SECONDS").and_then(|t| t.parse().ok());
                            facts.claim_lease_seconds = lease.unwrap_or(150);
                        }
                        if f == Function::BackupScheduler {
                            let lease = variable(&props, "PARAMETER_LEASE_SECONDS").and_then(|t| t.parse().ok());
                            facts.parameter_lease_seconds = lease.unwrap_or(330);
                        }
                    }
                }
                "AWS::CloudWatch::Alarm" => {
                    let watches_queue = props.get("Dimensions").is_some_and(|d| mentions(d, "FailedEventsQueue"));
                    let acts = props.get("AlarmActions").and_then(Yaml::as_sequence).is_some_and(|a| !a.is_empty());
                    facts.failed_events_alarmed |= watches_queue && acts;
                }
                _ => {}
            }
        }
        facts
    }

    /// The functions the template's rules deliver this event to.
    pub fn targets_of(&self, event: &Value) -> Vec<Function> {
        let detail_type = event.get("detail-type").and_then(Value::as_str).unwrap_or_default();
        let state = event.get("detail").and_then(|d| d.get("state")).and_then(Value::as_str);
        let project_bus = event.get("source").and_then(Value::as_str) == Some(ha_domain::contract::EVENT_SOURCE);
        let mut targets = Vec::new();
        for rule in self.rules.iter().filter(|r| r.project_bus == project_bus) {
            let type_matches = rule.detail_types.iter().any(|p| match p {
                Yaml::String(s) => s == detail_type,
                other => other
                    .get("anything-but")
                    .and_then(Yaml::as_sequence)
                    .is_some_and(|not| !not.iter().any(|n| text(n) == detail_type)),
            });
            let state_matches = match (&rule.states, state) {
                (None, _) => true,
                (Some(states), Some(s)) => states.iter().any(|x| x == s),
                (Some(_), None) => false,
            };
            if type_matches && state_matches {
                targets.extend(rule.targets.iter().copied());
            }
        }
        targets.sort();
        targets.dedup();
        targets
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_template_routes_and_retries_as_deployed() {
        let t = TemplateFacts::read();
        let ev = |dt: &str| json!({"detail-type": dt, "source": "outposts-ha", "detail": {}});
        assert_eq!(t.targets_of(&ev("RelaunchRequested")), vec![Function::Relaunch]);
        assert_eq!(t.targets_of(&ev("ServerRecovered")), vec![Function::Notifier]);
        assert_eq!(t.targets_of(&ev("FenceRequested")), vec![Function::Relaunch]);
        assert_eq!(t.targets_of(&ev("IncidentOpened")), vec![Function::Notifier]);
        let running = json!({"detail-type": "EC2 Instance State-change Notification", "detail": {"state": "running"}});
        assert_eq!(t.targets_of(&running), vec![Function::Relaunch]);
        let pending = json!({"detail-type": "EC2 Instance State-change Notification", "detail": {"state": "pending"}});
        assert!(t.targets_of(&pending).is_empty());
        assert_eq!(t.retries.get(&Function::Relaunch), Some(&2));
        let has = |period: u64, f: Function| t.schedules.iter().any(|(p, fs, _)| *p == period && fs == &vec![f]);
        assert!(has(300_000, Function::AlarmHandler), "the reconcile pass");
        assert!(has(3_600_000, Function::BackupScheduler), "the backup tick's default");
        assert!(
            t.schedules.iter().any(|(p, fs, input)| *p == 300_000
                && fs == &vec![Function::Relaunch]
                && input.as_deref().is_some_and(|i| i.contains("StandbyReconcileRequested"))),
            "the standby reconcile pass, with its input"
        );
        let ended = json!({"detail-type": "EC2 Automation Execution Status-change Notification", "source": "aws.ssm",
            "detail": {"Status": "Success"}});
        assert_eq!(t.targets_of(&ended), vec![Function::BackupScheduler]);
        assert!(t.claim_lease_seconds > i64::try_from(t.timeout_seconds[&Function::Relaunch]).unwrap());
        let backup_timeout = i64::try_from(t.timeout_seconds[&Function::BackupScheduler]).unwrap();
        assert!(t.parameter_lease_seconds > backup_timeout, "a parameter's holder dies before its hold runs out");
    }
}
