//! Every parser that sees outside input, fed arbitrary and mutated input: no panic, and
//! what parses is well formed. `make test` runs a bounded number of cases; for a long run:
//!   PROPTEST_CASES=1000000 cargo test -p ha-domain --test fuzz_parsers

use ha_domain::alarm::{classify_transition, parse_alarm_notification};
use ha_domain::backup::{parse_trigger, stateful_instance_from_tags, BackupTrigger};
use ha_domain::contract::ProjectEvent;
use ha_domain::model::workload_from_tags;
use ha_domain::timefmt::{format_timestamp, parse_timestamp};
use proptest::prelude::*;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Keys the parsers look for, so random documents reach deep into the real shapes.
const KEYS: &[&str] = &[
    "detail-type",
    "detail",
    "resources",
    "alarmName",
    "state",
    "previousState",
    "value",
    "timestamp",
    "configuration",
    "metrics",
    "metricStat",
    "metric",
    "namespace",
    "name",
    "dimensions",
    "OutpostId",
    "alarmArn",
    "alarmData",
    "Records",
    "Sns",
    "Message",
    "AlarmName",
    "AlarmArn",
    "NewStateValue",
    "OldStateValue",
    "StateChangeTime",
    "Trigger",
    "Metrics",
    "MetricStat",
    "Metric",
    "Dimensions",
    "MetricName",
    "Namespace",
    "incident_id",
    "server_id",
    "workloads",
    "subnets",
    "priority",
    "ExecutionId",
    "Definition",
    "Status",
    "time",
];

const STRINGS: &[&str] = &[
    "CloudWatch Alarm State Change",
    "ALARM",
    "OK",
    "INSUFFICIENT_DATA",
    "AWS/Outposts",
    "ConnectedStatus",
    "op-0123456789abcdef0",
    "outposts-ha-x",
    "Scheduled Event",
    "EC2 Automation Execution Status-change Notification",
    "/outposts-ha/prod/pos",
    "4h",
    "2026-11-22T10:00:00.123+0000",
    "2026-11-22T10:00:00Z",
    "RelaunchRequested",
    "WorkloadRelaunched",
    "ServerRecovered",
    "subnet-0a1b2c3d4e5f60718",
    "",
];

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)),
        prop::sample::select(STRINGS).prop_map(|s| Value::String(s.to_string())),
        ".{0,24}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (prop_oneof![prop::sample::select(KEYS).prop_map(str::to_string), ".{0,8}"], inner.clone()),
                0..8
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
            // An SNS record whose Message is itself a (random) JSON document, as SNS sends it.
            inner.prop_map(|m| serde_json::json!({"Records": [{"Sns": {"Message": m.to_string()}}]})),
        ]
    })
}

fn sample(name: &str) -> Value {
    let path = format!("{}/../../events/{name}", std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Replaces the value at a random path of `doc` with `replacement`.
fn mutate(doc: &mut Value, mut path: Vec<usize>, replacement: Value) {
    let Some(step) = path.pop() else {
        *doc = replacement;
        return;
    };
    match doc {
        Value::Object(m) if !m.is_empty() => {
            let key = m.keys().nth(step % m.len()).cloned().unwrap();
            mutate(m.get_mut(&key).unwrap(), path, replacement)
        }
        Value::Array(a) if !a.is_empty() => {
            let n = a.len();
            mutate(&mut a[step % n], path, replacement)
        }
        _ => *doc = replacement,
    }
}

const SAMPLES: &[&str] = &[
    "alarm/eventbridge-server-down.json",
    "alarm/sns-single-metric-server-down.json",
    "alarm/sns-metric-math-server-down.json",
    "alarm/lambda-action-server-down.json",
    "contract/RelaunchRequested.json",
    "contract/WorkloadRelaunched.json",
    "contract/BackupCompleted.json",
    "backup/scheduled-tick.json",
    "backup/execution-status-change.json",
];

proptest! {
    #[test]
    fn alarm_parsing_never_panics_on_any_json(doc in json()) {
        if let Ok(transitions) = parse_alarm_notification(&doc) {
            for t in transitions {
                prop_assert!(!t.alarm_arn.is_empty());
                let _ = classify_transition(&t, "outposts-ha-");
            }
        }
    }

    #[test]
    fn mutated_real_payloads_never_panic_any_parser(
        which in 0..SAMPLES.len(),
        path in prop::collection::vec(any::<usize>(), 0..7),
        replacement in json(),
    ) {
        let mut doc = sample(SAMPLES[which]);
        mutate(&mut doc, path, replacement);
        if let Ok(transitions) = parse_alarm_notification(&doc) {
            for t in transitions {
                let _ = classify_transition(&t, "outposts-ha-");
            }
        }
        if let Ok(BackupTrigger::ExecutionChanged { execution_id, .. }) = parse_trigger(&doc) {
            prop_assert!(!execution_id.is_empty());
        }
        if let Ok(event) = serde_json::from_value::<ProjectEvent>(doc) {
            // What parses must serialize back to a parseable event.
            let again: Value = serde_json::from_str(&event.detail_json()).unwrap();
            prop_assert!(again.is_object());
        }
    }

    #[test]
    fn timestamps_never_panic(text in prop_oneof![
        ".{0,40}",
        "(9999|0000|[0-9]{4})-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9](\\.[0-9]{1,9})?(Z|[+-][0-2][0-9]:?[0-5][0-9])",
    ]) {
        if let Some(t) = parse_timestamp(&text) {
            let canonical = format_timestamp(t);
            prop_assert!(canonical.ends_with('Z'), "{canonical}");
        }
    }

    #[test]
    fn workload_tags_never_panic(tags in prop::collection::btree_map(
        prop_oneof![prop::sample::select(&[
            "outposts-ha:protected-server", "outposts-ha:subnets", "outposts-ha:priority",
            "outposts-ha:workload", "outposts-ha:launch-template-version",
            "outposts-ha:backup-parameter", "outposts-ha:backup-interval",
        ][..]).prop_map(str::to_string), ".{0,12}"],
        prop_oneof![prop::sample::select(STRINGS).prop_map(str::to_string), "[ -~]{0,60}"],
        0..6,
    )) {
        let tags: BTreeMap<String, String> = tags;
        if let Ok(w) = workload_from_tags("lt-1", "name", &tags) {
            prop_assert!(!w.subnets.is_empty() && w.subnets.len() <= ha_domain::model::MAX_DESTINATIONS);
        }
        if let Ok(s) = stateful_instance_from_tags("i-1", &ha_domain::backup::Host::default(), &tags, "prod") {
            prop_assert!(s.parameter.starts_with("/outposts-ha/prod/"));
            prop_assert!(s.interval_seconds.is_none_or(|i| i >= 60));
        }
    }

    #[test]
    fn the_partition_policy_tag_is_relaunch_hold_or_the_default(
        value in prop::option::of(prop_oneof![
            prop::sample::select(&["relaunch", "hold", "HOLD", " Relaunch ", "", "holds"][..]).prop_map(str::to_string),
            "[ -~]{0,20}",
        ]),
        stateful in any::<bool>(),
    ) {
        use ha_domain::partition::OnPartition;
        let parsed = OnPartition::from_tag(value.as_deref(), stateful);
        let word = value.as_deref().map(|v| v.trim().to_ascii_lowercase()).unwrap_or_default();
        match word.as_str() {
            "" => prop_assert_eq!(parsed, Ok(if stateful { OnPartition::Hold } else { OnPartition::Relaunch })),
            "relaunch" => prop_assert_eq!(parsed, Ok(OnPartition::Relaunch)),
            "hold" => prop_assert_eq!(parsed, Ok(OnPartition::Hold)),
            _ => prop_assert!(parsed.is_err()),
        }
    }
}
