//! Free capacity on a standby Outpost, where AWS says: the `AWS/Outposts`
//! `AvailableInstanceType_Count` metric for the destination's Outpost and the workload's
//! instance type. Anything not known is `None`, and unknown capacity never blocks a launch.

use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use ha_domain::fencing::server_of_outpost_arn;
use ha_domain::model::Workload;
use ha_ports::capacity::{CapacityProbe, DestinationCapacity};
use std::collections::BTreeMap;
use tracing::warn;

/// The metric's recent datapoints: Outposts publishes it every 5 minutes.
const LOOKBACK_SECONDS: u64 = 900;

#[derive(Clone)]
pub struct Ec2CapacityProbe {
    ec2: aws_sdk_ec2::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
}

impl Ec2CapacityProbe {
    pub fn new(ec2: aws_sdk_ec2::Client, cloudwatch: aws_sdk_cloudwatch::Client) -> Self {
        Ec2CapacityProbe { ec2, cloudwatch }
    }
}

#[async_trait]
impl CapacityProbe for Ec2CapacityProbe {
    /// Capacity of each of the workload's destinations. Failures to find out are logged and
    /// read as unknown: a capacity check must never be the reason a failover stops.
    async fn of(&self, w: &Workload, metric: bool) -> BTreeMap<String, DestinationCapacity> {
        // Two round trips at most: the type and the subnets' Outposts together, then the metric.
        let instance_type = async {
            match metric {
                true => self.instance_type(w).await,
                false => None,
            }
        };
        let (instance_type, outposts) =
            tokio::join!(instance_type, futures::future::join_all(w.subnets.iter().map(|s| self.outpost_of(s))));
        let available = futures::future::join_all(outposts.iter().map(|outpost| {
            let instance_type = instance_type.clone();
            async move {
                match (outpost, instance_type) {
                    (Ok(Some(o)), Some(t)) => self.available(o, &t).await,
                    _ => None,
                }
            }
        }))
        .await;
        w.subnets
            .iter()
            .zip(outposts)
            .zip(available)
            .filter_map(|((subnet, outpost), available)| {
                let outpost = outpost.ok()?;
                Some((subnet.clone(), DestinationCapacity { outpost, instance_type: instance_type.clone(), available }))
            })
            .collect()
    }
}

impl Ec2CapacityProbe {
    async fn instance_type(&self, w: &Workload) -> Option<String> {
        let out = self
            .ec2
            .describe_launch_template_versions()
            .launch_template_id(&w.launch_template_id)
            .versions(&w.launch_template_version)
            .send()
            .await
            .inspect_err(|e| warn!(error = %aws_smithy_types::error::display::DisplayErrorContext(e), "instance type unknown; capacity not checked"))
            .ok()?;
        let version = out.launch_template_versions().first()?;
        version.launch_template_data()?.instance_type().map(|t| t.as_str().to_string())
    }

    /// The subnet's Outpost (`Ok(None)`: a Region subnet, or one EC2 does not know); `Err`
    /// when the read failed.
    async fn outpost_of(&self, subnet: &str) -> Result<Option<String>, ()> {
        let out = self.ec2.describe_subnets().subnet_ids(subnet).send().await.map_err(|e| {
            warn!(error = %aws_smithy_types::error::display::DisplayErrorContext(&e), subnet, "subnet unread; its Outpost unknown");
        })?;
        Ok(out.subnets().first().and_then(|s| s.outpost_arn()).and_then(server_of_outpost_arn))
    }

    async fn available(&self, outpost: &str, instance_type: &str) -> Option<f64> {
        let now = std::time::SystemTime::now();
        let query = MetricDataQuery::builder()
            .id("available")
            .metric_stat(
                MetricStat::builder()
                    .metric(
                        Metric::builder()
                            .namespace("AWS/Outposts")
                            .metric_name("AvailableInstanceType_Count")
                            .dimensions(Dimension::builder().name("OutpostId").value(outpost).build())
                            .dimensions(Dimension::builder().name("InstanceType").value(instance_type).build())
                            .build(),
                    )
                    .period(300)
                    .stat("Minimum")
                    .build(),
            )
            .build();
        let out = self
            .cloudwatch
            .get_metric_data()
            .metric_data_queries(query)
            .start_time(aws_smithy_types::DateTime::from(now - std::time::Duration::from_secs(LOOKBACK_SECONDS)))
            .end_time(aws_smithy_types::DateTime::from(now))
            .scan_by(aws_sdk_cloudwatch::types::ScanBy::TimestampDescending)
            .send()
            .await
            .inspect_err(|e| warn!(error = %aws_smithy_types::error::display::DisplayErrorContext(e), "capacity metric unreadable; not checked"))
            .ok()?;
        out.metric_data_results().first()?.values().first().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_known_zero_is_a_shortage() {
        let d = |available| DestinationCapacity {
            outpost: Some("op-0000000000000000b".into()),
            instance_type: Some("m5.large".into()),
            available,
        };
        assert!(d(Some(0.0)).is_short());
        assert!(!d(Some(2.0)).is_short());
        assert!(!d(None).is_short(), "unknown never blocks");
        assert_eq!(
            d(Some(0.0)).shortage(),
            "AvailableInstanceType_Count for m5.large on op-0000000000000000b is 0: no capacity"
        );
    }
}
