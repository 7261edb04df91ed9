//! CloudWatch alarm notifications in their three real shapes, reduced to one
//! [`AlarmTransition`], and the pure verdict on what it means for a protected server.

use crate::model::ServerId;
use crate::timefmt::parse_timestamp;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use thiserror::Error;
use time::OffsetDateTime;

pub const OUTPOSTS_NAMESPACE: &str = "AWS/Outposts";
pub const CONNECTED_STATUS: &str = "ConnectedStatus";
pub const OUTPOST_ID_DIMENSION: &str = "OutpostId";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlarmState {
    Ok,
    Alarm,
    InsufficientData,
    Other(String),
}

impl AlarmState {
    pub fn parse(s: &str) -> Self {
        match s {
            "OK" => AlarmState::Ok,
            "ALARM" => AlarmState::Alarm,
            "INSUFFICIENT_DATA" => AlarmState::InsufficientData,
            other => AlarmState::Other(other.to_string()),
        }
    }
}

/// Which of the three delivery paths the notification came by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadShape {
    EventBridge,
    Sns,
    AlarmAction,
    /// Not a delivery: the alarm's current state, read by a reconcile pass.
    CurrentState,
}

/// A metric an alarm watches, as far as the payload says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WatchedMetric {
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub dimensions: BTreeMap<String, String>,
}

/// One alarm state change, whatever shape it arrived in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmTransition {
    pub shape: PayloadShape,
    pub alarm_arn: String,
    pub alarm_name: String,
    pub new_state: AlarmState,
    pub old_state: Option<AlarmState>,
    pub state_change_time: OffsetDateTime,
    pub reason: String,
    pub metrics: Vec<WatchedMetric>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum AlarmParseError {
    #[error("not a CloudWatch alarm notification (no EventBridge alarm event, SNS record or alarm action payload)")]
    UnknownShape,
    #[error("{shape:?} alarm payload is malformed: {reason}")]
    Malformed { shape: PayloadShape, reason: String },
}

// --- EventBridge and alarm-action payloads share the alarm detail block. ---

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlarmDetail {
    alarm_name: String,
    state: StateBlock,
    previous_state: Option<StateBlock>,
    #[serde(default)]
    configuration: Option<Configuration>,
}

#[derive(Deserialize)]
struct StateBlock {
    value: String,
    timestamp: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct Configuration {
    #[serde(default)]
    metrics: Vec<MetricQuery>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetricQuery {
    metric_stat: Option<MetricStat>,
}

#[derive(Deserialize)]
struct MetricStat {
    metric: DetailMetric,
}

#[derive(Deserialize)]
struct DetailMetric {
    namespace: Option<String>,
    name: Option<String>,
    #[serde(default)]
    dimensions: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct EventBridgeAlarm {
    #[serde(default)]
    resources: Vec<String>,
    detail: AlarmDetail,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlarmAction {
    alarm_arn: String,
    alarm_data: AlarmDetail,
}

// --- The SNS message body (PascalCase, dimensions as name/value lists). ---

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsAlarmMessage {
    alarm_name: String,
    alarm_arn: String,
    new_state_value: String,
    old_state_value: Option<String>,
    state_change_time: String,
    #[serde(default)]
    new_state_reason: Option<String>,
    #[serde(default)]
    trigger: Option<SnsTrigger>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsTrigger {
    metric_name: Option<String>,
    namespace: Option<String>,
    #[serde(default)]
    dimensions: Vec<SnsDimension>,
    #[serde(default)]
    metrics: Vec<SnsMetricQuery>,
}

#[derive(Deserialize)]
struct SnsDimension {
    #[serde(alias = "Name")]
    name: String,
    #[serde(alias = "Value")]
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsMetricQuery {
    metric_stat: Option<SnsMetricStat>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsMetricStat {
    metric: SnsMetric,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsMetric {
    metric_name: Option<String>,
    namespace: Option<String>,
    #[serde(default)]
    dimensions: Vec<SnsDimension>,
}

fn dims(list: Vec<SnsDimension>) -> BTreeMap<String, String> {
    list.into_iter().map(|d| (d.name, d.value)).collect()
}

fn malformed(shape: PayloadShape, reason: impl std::fmt::Display) -> AlarmParseError {
    AlarmParseError::Malformed { shape, reason: reason.to_string() }
}

fn time_of(shape: PayloadShape, text: Option<&str>) -> Result<OffsetDateTime, AlarmParseError> {
    let text = text.ok_or_else(|| malformed(shape, "state timestamp missing"))?;
    parse_timestamp(text).ok_or_else(|| malformed(shape, format!("state timestamp '{text}' is not a time")))
}

fn from_detail(shape: PayloadShape, alarm_arn: String, d: AlarmDetail) -> Result<AlarmTransition, AlarmParseError> {
    if alarm_arn.is_empty() {
        return Err(malformed(shape, "alarm ARN missing"));
    }
    let state_change_time = time_of(shape, d.state.timestamp.as_deref())?;
    let metrics = d
        .configuration
        .unwrap_or_default()
        .metrics
        .into_iter()
        .filter_map(|q| q.metric_stat)
        .map(|s| WatchedMetric { namespace: s.metric.namespace, name: s.metric.name, dimensions: s.metric.dimensions })
        .collect();
    Ok(AlarmTransition {
        shape,
        alarm_arn,
        alarm_name: d.alarm_name,
        new_state: AlarmState::parse(&d.state.value),
        old_state: d.previous_state.map(|p| AlarmState::parse(&p.value)),
        state_change_time,
        reason: d.state.reason.unwrap_or_default(),
        metrics,
    })
}

fn from_sns_message(message: &str) -> Result<AlarmTransition, AlarmParseError> {
    let shape = PayloadShape::Sns;
    let m: SnsAlarmMessage = serde_json::from_str(message).map_err(|e| malformed(shape, e))?;
    let state_change_time = time_of(shape, Some(&m.state_change_time))?;
    let mut metrics = Vec::new();
    if let Some(t) = m.trigger {
        if t.metric_name.is_some() || t.namespace.is_some() || !t.dimensions.is_empty() {
            metrics.push(WatchedMetric { namespace: t.namespace, name: t.metric_name, dimensions: dims(t.dimensions) });
        }
        metrics.extend(t.metrics.into_iter().filter_map(|q| q.metric_stat).map(|s| WatchedMetric {
            namespace: s.metric.namespace,
            name: s.metric.metric_name,
            dimensions: dims(s.metric.dimensions),
        }));
    }
    if m.alarm_arn.is_empty() {
        return Err(malformed(shape, "AlarmArn missing"));
    }
    Ok(AlarmTransition {
        shape,
        alarm_arn: m.alarm_arn,
        alarm_name: m.alarm_name,
        new_state: AlarmState::parse(&m.new_state_value),
        old_state: m.old_state_value.as_deref().map(AlarmState::parse),
        state_change_time,
        reason: m.new_state_reason.unwrap_or_default(),
        metrics,
    })
}

/// Reads any of the three shapes. An SNS delivery may in principle carry several records,
/// so the result is a list; every other shape yields one transition.
pub fn parse_alarm_notification(event: &Value) -> Result<Vec<AlarmTransition>, AlarmParseError> {
    if event.get("detail-type").and_then(Value::as_str) == Some("CloudWatch Alarm State Change") {
        let shape = PayloadShape::EventBridge;
        let e: EventBridgeAlarm = serde_json::from_value(event.clone()).map_err(|e| malformed(shape, e))?;
        let arn = e.resources.into_iter().next().unwrap_or_default();
        return Ok(vec![from_detail(shape, arn, e.detail)?]);
    }
    if event.get("alarmData").is_some() {
        let shape = PayloadShape::AlarmAction;
        let a: AlarmAction = serde_json::from_value(event.clone()).map_err(|e| malformed(shape, e))?;
        return Ok(vec![from_detail(shape, a.alarm_arn, a.alarm_data)?]);
    }
    if let Some(records) = event.get("Records").and_then(Value::as_array) {
        let shape = PayloadShape::Sns;
        if records.is_empty() {
            return Err(malformed(shape, "no records"));
        }
        return records
            .iter()
            .map(|r| {
                let message = r
                    .pointer("/Sns/Message")
                    .and_then(Value::as_str)
                    .ok_or_else(|| malformed(shape, "record without Sns.Message"))?;
                from_sns_message(message)
            })
            .collect();
    }
    Err(AlarmParseError::UnknownShape)
}

/// What a transition means for us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlarmVerdict {
    /// Into ALARM from a non-ALARM state: open (or continue) an incident.
    ServerDown(ServerId),
    /// ALARM → OK: the server is back.
    ServerBack(ServerId),
    Ignore(IgnoreReason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgnoreReason {
    /// Not one of our alarms (name lacks the configured prefix).
    Unrelated,
    /// One of ours by name, but not a ConnectedStatus alarm with a valid OutpostId.
    UnexpectedShape(String),
    /// A state change that is not a server going down or coming back.
    NotAServerTransition { from: Option<AlarmState>, to: AlarmState },
}

impl IgnoreReason {
    /// Our own alarm in a shape we do not understand is a deployment problem worth a warning.
    pub fn is_suspicious(&self) -> bool {
        matches!(self, IgnoreReason::UnexpectedShape(_))
    }
}

impl std::fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IgnoreReason::Unrelated => f.write_str("not an Outposts HA alarm"),
            IgnoreReason::UnexpectedShape(why) => write!(f, "Outposts HA alarm in an unexpected shape: {why}"),
            IgnoreReason::NotAServerTransition { from, to } => {
                write!(f, "state change {from:?} -> {to:?} is neither server down nor server back")
            }
        }
    }
}

/// The server an alarm watches, from its `AWS/Outposts` `ConnectedStatus` `OutpostId`
/// dimension (never from the alarm's name).
pub fn watched_server(t: &AlarmTransition) -> Result<ServerId, String> {
    let connected: Vec<&WatchedMetric> = t
        .metrics
        .iter()
        .filter(|m| m.name.as_deref() == Some(CONNECTED_STATUS))
        .filter(|m| m.namespace.as_deref().is_none_or(|ns| ns == OUTPOSTS_NAMESPACE))
        .collect();
    let ids: std::collections::BTreeSet<&String> =
        connected.iter().filter_map(|m| m.dimensions.get(OUTPOST_ID_DIMENSION)).collect();
    match ids.len() {
        0 if connected.is_empty() => Err(format!("no {OUTPOSTS_NAMESPACE} {CONNECTED_STATUS} metric")),
        0 => Err(format!("{CONNECTED_STATUS} metric without an {OUTPOST_ID_DIMENSION} dimension")),
        1 => ServerId::parse(ids.into_iter().next().expect("one id")).map_err(|e| e.to_string()),
        n => Err(format!("{n} different {OUTPOST_ID_DIMENSION} values in one alarm")),
    }
}

/// Pure verdict: is this our alarm, which server, and which way did it go?
pub fn classify_transition(t: &AlarmTransition, alarm_name_prefix: &str) -> AlarmVerdict {
    if !t.alarm_name.starts_with(alarm_name_prefix) {
        return AlarmVerdict::Ignore(IgnoreReason::Unrelated);
    }
    let server = match watched_server(t) {
        Ok(s) => s,
        Err(why) => return AlarmVerdict::Ignore(IgnoreReason::UnexpectedShape(why)),
    };
    match (&t.old_state, &t.new_state) {
        (Some(AlarmState::Alarm), AlarmState::Alarm) => AlarmVerdict::Ignore(IgnoreReason::NotAServerTransition {
            from: t.old_state.clone(),
            to: t.new_state.clone(),
        }),
        (_, AlarmState::Alarm) => AlarmVerdict::ServerDown(server),
        // From INSUFFICIENT_DATA too: a server that stopped reporting during an outage and
        // then reports connected is back.
        (_, AlarmState::Ok) => AlarmVerdict::ServerBack(server),
        _ => AlarmVerdict::Ignore(IgnoreReason::NotAServerTransition {
            from: t.old_state.clone(),
            to: t.new_state.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timefmt::format_timestamp;

    const OP: &str = "op-0123456789abcdef0";

    fn transition(
        name: &str,
        from: Option<AlarmState>,
        to: AlarmState,
        metrics: Vec<WatchedMetric>,
    ) -> AlarmTransition {
        AlarmTransition {
            shape: PayloadShape::EventBridge,
            alarm_arn: format!("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}"),
            alarm_name: name.into(),
            new_state: to,
            old_state: from,
            state_change_time: parse_timestamp("2026-11-22T10:00:00.000Z").unwrap(),
            reason: String::new(),
            metrics,
        }
    }

    fn connected(outpost: Option<&str>) -> WatchedMetric {
        WatchedMetric {
            namespace: Some(OUTPOSTS_NAMESPACE.into()),
            name: Some(CONNECTED_STATUS.into()),
            dimensions: outpost.map(|o| (OUTPOST_ID_DIMENSION.to_string(), o.to_string())).into_iter().collect(),
        }
    }

    #[test]
    fn verdict_table() {
        use AlarmState::*;
        let server = ServerId::parse(OP).unwrap();
        let down = AlarmVerdict::ServerDown(server.clone());
        let back = AlarmVerdict::ServerBack(server.clone());
        let not = |from: Option<AlarmState>, to: AlarmState| {
            AlarmVerdict::Ignore(IgnoreReason::NotAServerTransition { from, to })
        };
        let cases: Vec<(Option<AlarmState>, AlarmState, AlarmVerdict)> = vec![
            (Some(Ok), Alarm, down.clone()),
            (Some(InsufficientData), Alarm, down.clone()),
            (None, Alarm, down.clone()),
            (Some(Alarm), Alarm, not(Some(Alarm), Alarm)),
            (Some(Alarm), Ok, back.clone()),
            (Some(InsufficientData), Ok, back.clone()),
            (Some(Ok), InsufficientData, not(Some(Ok), InsufficientData)),
            (Some(Alarm), InsufficientData, not(Some(Alarm), InsufficientData)),
        ];
        for (from, to, want) in cases {
            let t = transition("outposts-ha-store-17", from.clone(), to.clone(), vec![connected(Some(OP))]);
            assert_eq!(classify_transition(&t, "outposts-ha-"), want, "{from:?} -> {to:?}");
        }
    }

    #[test]
    fn server_comes_from_the_dimension_not_the_name() {
        let t = transition(
            "outposts-ha-op-99999999999999999",
            Some(AlarmState::Ok),
            AlarmState::Alarm,
            vec![connected(Some(OP))],
        );
        assert_eq!(classify_transition(&t, "outposts-ha-"), AlarmVerdict::ServerDown(ServerId::parse(OP).unwrap()));
    }

    #[test]
    fn unrelated_and_unexpected_shapes() {
        let other = transition("cpu-high", Some(AlarmState::Ok), AlarmState::Alarm, vec![connected(Some(OP))]);
        assert_eq!(classify_transition(&other, "outposts-ha-"), AlarmVerdict::Ignore(IgnoreReason::Unrelated));

        let shapes = [
            vec![],
            vec![connected(None)],
            vec![connected(Some("not-an-outpost"))],
            vec![connected(Some(OP)), connected(Some("op-0123456789abcdef1"))],
            vec![WatchedMetric {
                namespace: Some("AWS/EC2".into()),
                name: Some("CPUUtilization".into()),
                dimensions: BTreeMap::new(),
            }],
        ];
        for metrics in shapes {
            let t = transition("outposts-ha-x", Some(AlarmState::Ok), AlarmState::Alarm, metrics.clone());
            match classify_transition(&t, "outposts-ha-") {
                AlarmVerdict::Ignore(r) => assert!(r.is_suspicious(), "{metrics:?}: {r}"),
                v => panic!("{metrics:?} gave {v:?}"),
            }
        }
    }

    #[test]
    fn unknown_and_malformed_inputs_are_errors_not_panics() {
        let inputs = [
            serde_json::json!(null),
            serde_json::json!([]),
            serde_json::json!({}),
            serde_json::json!({"detail-type": "CloudWatch Alarm State Change"}),
            serde_json::json!({"detail-type": "CloudWatch Alarm State Change", "resources": [], "detail": {"alarmName": "a", "state": {"value": "ALARM", "timestamp": "2026-11-22T10:00:00Z"}}}),
            serde_json::json!({"detail-type": "CloudWatch Alarm State Change", "resources": ["arn"], "detail": {"alarmName": "a", "state": {"value": "ALARM", "timestamp": "soon"}}}),
            serde_json::json!({"Records": []}),
            serde_json::json!({"Records": [{"Sns": {"Message": "not json"}}]}),
            serde_json::json!({"Records": [{"Sns": {}}]}),
            serde_json::json!({"alarmData": {}, "alarmArn": "x"}),
        ];
        for input in inputs {
            assert!(parse_alarm_notification(&input).is_err(), "{input}");
        }
    }

    #[test]
    fn sns_metric_math_dimensions_are_read() {
        let message = serde_json::json!({
            "AlarmName": "outposts-ha-a", "AlarmArn": "arn:aws:cloudwatch:eu-west-1:1:alarm:outposts-ha-a",
            "NewStateValue": "ALARM", "OldStateValue": "OK", "StateChangeTime": "2026-11-22T10:00:00.123+0000",
            "Trigger": {"Metrics": [
                {"Id": "e1", "Expression": "m1", "ReturnData": true},
                {"Id": "m1", "MetricStat": {"Metric": {"Namespace": "AWS/Outposts", "MetricName": "ConnectedStatus",
                  "Dimensions": [{"value": OP, "name": "OutpostId"}]}, "Period": 60, "Stat": "Minimum"}, "ReturnData": false}
            ]}
        });
        let event = serde_json::json!({"Records": [{"Sns": {"Message": message.to_string()}}]});
        let t = parse_alarm_notification(&event).unwrap().remove(0);
        assert_eq!(watched_server(&t).unwrap().as_str(), OP);
        assert_eq!(format_timestamp(t.state_change_time), "2026-11-22T10:00:00.123Z");
    }
}
