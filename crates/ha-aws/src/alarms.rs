//! CloudWatch: the current state of the stack's server alarms (DescribeAlarms, by name
//! prefix, metric alarms only).

use crate::failure;
use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{AlarmType, Dimension, MetricAlarm};
use ha_domain::alarm::{AlarmState, AlarmTransition, PayloadShape, WatchedMetric};
use ha_domain::error::AwsFailure;
use ha_domain::model::tag;
use ha_ports::{AlarmLabels, AlarmStates};

#[derive(Clone)]
pub struct CloudWatchAlarms {
    client: aws_sdk_cloudwatch::Client,
}

impl CloudWatchAlarms {
    pub fn new(client: aws_sdk_cloudwatch::Client) -> Self {
        CloudWatchAlarms { client }
    }
}

fn dimensions(d: &[Dimension]) -> std::collections::BTreeMap<String, String> {
    d.iter().filter_map(|d| Some((d.name()?.to_string(), d.value()?.to_string()))).collect()
}

fn transition(a: &MetricAlarm) -> Option<AlarmTransition> {
    let at = a.state_transitioned_timestamp().or(a.state_updated_timestamp())?;
    let state_change_time = time::OffsetDateTime::from_unix_timestamp_nanos(at.as_nanos()).ok()?;
    let mut metrics = Vec::new();
    if a.metric_name().is_some() {
        metrics.push(WatchedMetric {
            namespace: a.namespace().map(str::to_string),
            name: a.metric_name().map(str::to_string),
            dimensions: dimensions(a.dimensions()),
        });
    }
    for q in a.metrics() {
        if let Some(m) = q.metric_stat().and_then(|s| s.metric()) {
            metrics.push(WatchedMetric {
                namespace: m.namespace().map(str::to_string),
                name: m.metric_name().map(str::to_string),
                dimensions: dimensions(m.dimensions()),
            });
        }
    }
    Some(AlarmTransition {
        shape: PayloadShape::CurrentState,
        alarm_arn: a.alarm_arn()?.to_string(),
        alarm_name: a.alarm_name()?.to_string(),
        new_state: AlarmState::parse(a.state_value()?.as_str()),
        old_state: None,
        state_change_time,
        reason: a.state_reason().unwrap_or_default().to_string(),
        metrics,
    })
}

#[async_trait]
impl AlarmStates for CloudWatchAlarms {
    async fn current(&self, name_prefix: &str) -> Result<Vec<AlarmTransition>, AwsFailure> {
        let mut pages = self
            .client
            .describe_alarms()
            .alarm_name_prefix(name_prefix)
            .alarm_types(AlarmType::MetricAlarm)
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| failure("DescribeAlarms", &e))?;
            found.extend(page.metric_alarms().iter().filter_map(transition));
        }
        Ok(found)
    }

    async fn labels(&self, alarm_arn: &str) -> Result<AlarmLabels, AwsFailure> {
        let out = self
            .client
            .list_tags_for_resource()
            .resource_arn(alarm_arn)
            .send()
            .await
            .map_err(|e| failure("ListTagsForResource", &e))?;
        let value = |key: &str| {
            out.tags()
                .iter()
                .find(|t| t.key() == Some(key))
                .and_then(|t| t.value())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        Ok(AlarmLabels { site_name: value(tag::SITE_NAME), stack: value(tag::STACK) })
    }
}
