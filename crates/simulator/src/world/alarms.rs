//! CloudWatch's DescribeAlarms: each server alarm's current state and when it entered it.

use super::Sim;
use async_trait::async_trait;
use ha_domain::alarm::{AlarmState, AlarmTransition, PayloadShape, WatchedMetric};
use ha_domain::error::AwsFailure;
use ha_ports::{AlarmLabels, AlarmStates};
use std::sync::Arc;

pub struct SimAlarms(pub Arc<Sim>);

/// The alarm the simulation gives each server.
pub fn alarm_name(server: &str) -> String {
    format!("outposts-ha-{server}")
}

pub fn alarm_arn(server: &str) -> String {
    format!("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{}", alarm_name(server))
}

#[async_trait]
impl AlarmStates for SimAlarms {
    async fn current(&self, name_prefix: &str) -> Result<Vec<AlarmTransition>, AwsFailure> {
        self.0.enter("DescribeAlarms").await?;
        let w = self.0.world();
        Ok(w.alarms
            .iter()
            .filter(|(server, _)| alarm_name(server.as_str()).starts_with(name_prefix))
            .map(|(server, (down, at_ms))| AlarmTransition {
                shape: PayloadShape::CurrentState,
                alarm_arn: alarm_arn(server.as_str()),
                alarm_name: alarm_name(server.as_str()),
                new_state: if *down { AlarmState::Alarm } else { AlarmState::Ok },
                old_state: None,
                state_change_time: time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(*at_ms) * 1_000_000)
                    .expect("in range"),
                reason: "current state".into(),
                metrics: vec![WatchedMetric {
                    namespace: Some("AWS/Outposts".into()),
                    name: Some("ConnectedStatus".into()),
                    dimensions: [("OutpostId".to_string(), server.to_string())].into(),
                }],
            })
            .collect())
    }

    async fn labels(&self, alarm_arn: &str) -> Result<AlarmLabels, AwsFailure> {
        self.0.enter_labelled("ListTagsForResource", Some("(the alarm's site name)".into())).await?;
        let site_name = alarm_arn.rsplit(':').next().map(|name| format!("Site of {name}"));
        Ok(AlarmLabels { site_name, stack: Some(super::STACK.to_string()) })
    }
}
