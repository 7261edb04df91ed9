//! Outposts HA's core: the vocabulary (docs/design.md), the event contract between the
//! functions, the ledger's layout, pure decisions and time. No SDK, no async runtime.

pub mod alarm;
pub mod backup;
pub mod config;
pub mod contract;
pub mod error;
pub mod failover;
pub mod fencing;
pub mod incident;
pub mod launch;
pub mod ledger;
pub mod metrics;
pub mod model;
pub mod partition;
pub mod standby;
pub mod timefmt;
