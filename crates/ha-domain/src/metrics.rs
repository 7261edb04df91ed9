//! CloudWatch metrics as Embedded Metric Format log lines: a function prints one JSON
//! object and CloudWatch Logs turns it into metrics, with no API call on the hot path.

use serde_json::{json, Map, Value};

/// Namespace of every metric the project publishes.
pub const NAMESPACE: &str = "OutpostsHA";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Seconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Seconds => "Seconds",
        }
    }
}

/// One EMF document: every metric is published once per dimension set, and the
/// dimension values ride along as top-level fields, as the format requires.
pub fn emf_line(
    dimension_sets: &[&[&str]],
    dimensions: &[(&str, &str)],
    metrics: &[(&str, f64, Unit)],
    timestamp_ms: i64,
) -> String {
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": dimension_sets,
                "Metrics": metrics.iter().map(|(name, _, unit)| json!({"Name": name, "Unit": unit.as_str()})).collect::<Vec<_>>(),
            }],
        }),
    );
    for (k, v) in dimensions {
        doc.insert((*k).into(), Value::String((*v).into()));
    }
    for (name, value, _) in metrics {
        doc.insert((*name).into(), json!(value));
    }
    Value::Object(doc).to_string()
}

/// Prints the document on its own line, where the Lambda log pipeline picks it up.
pub fn publish(line: &str) {
    println!("{line}");
}

/// Publishes one metric of a protected server with the project's dimensions, `Stack` and
/// `Stack`+`ServerId`, which the stack's dashboard charts.
pub fn publish_for_server(stack: &str, server_id: &str, metric: (&str, f64, Unit)) {
    publish_per("ServerId", stack, server_id, metric);
}

/// Publishes one metric of a stateful instance with dimensions `Stack` and `Stack`+`InstanceId`.
pub fn publish_for_instance(stack: &str, instance_id: &str, metric: (&str, f64, Unit)) {
    publish_per("InstanceId", stack, instance_id, metric);
}

fn publish_per(dimension: &str, stack: &str, value: &str, metric: (&str, f64, Unit)) {
    let now_ms = crate::timefmt::now().unix_timestamp() * 1000;
    publish(&emf_line(
        &[&["Stack"], &["Stack", dimension]],
        &[("Stack", stack), (dimension, value)],
        &[metric],
        now_ms,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_document_names_its_metrics_dimensions_and_values() {
        let line = emf_line(
            &[&["Stack"], &["Stack", "ServerId"]],
            &[("Stack", "oha"), ("ServerId", "op-0123456789abcdef0")],
            &[("DetectionToLaunchSeconds", 12.5, Unit::Seconds)],
            1_700_000_000_000,
        );
        let doc: Value = serde_json::from_str(&line).unwrap();
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["Stack"], ["Stack", "ServerId"]]));
        assert_eq!(directive["Metrics"], json!([{"Name": "DetectionToLaunchSeconds", "Unit": "Seconds"}]));
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000i64);
        assert_eq!((doc["Stack"].as_str(), doc["ServerId"].as_str()), (Some("oha"), Some("op-0123456789abcdef0")));
        assert_eq!(doc["DetectionToLaunchSeconds"], 12.5);
        assert!(!line.contains('\n'));
    }
}
