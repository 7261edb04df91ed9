//! Free capacity at a workload's destinations.

use async_trait::async_trait;
use ha_domain::model::Workload;
use std::collections::BTreeMap;

/// What is known of one destination.
#[derive(Debug, Clone, PartialEq)]
pub struct DestinationCapacity {
    pub outpost: Option<String>,
    pub instance_type: Option<String>,
    /// Instances of the type that still fit, by the newest datapoint.
    pub available: Option<f64>,
}

impl DestinationCapacity {
    /// A known shortage: the metric says none fit. Unknown never blocks.
    pub fn is_short(&self) -> bool {
        self.available.is_some_and(|n| n < 1.0)
    }

    pub fn shortage(&self) -> String {
        format!(
            "AvailableInstanceType_Count for {} on {} is {}: no capacity",
            self.instance_type.as_deref().unwrap_or("?"),
            self.outpost.as_deref().unwrap_or("?"),
            self.available.unwrap_or_default()
        )
    }
}

#[async_trait]
pub trait CapacityProbe: Send + Sync {
    /// Capacity of each of the workload's destinations, by subnet. Failures to find out
    /// read as unknown: a capacity check is never the reason a failover stops. A destination
    /// whose subnet could not be read has no entry (its Outpost unknown, not absent). Without
    /// `metric`, only each destination's Outpost is read (one round trip, not two).
    async fn of(&self, w: &Workload, metric: bool) -> BTreeMap<String, DestinationCapacity>;
}

/// Whether a launch reads the capacity metric first: only to choose between destinations.
/// With one, the metric cannot change where the launch goes (RunInstances answers a
/// shortage itself), so the failover does not wait for it.
pub fn metric_chooses(w: &Workload) -> bool {
    w.subnets.len() > 1
}
