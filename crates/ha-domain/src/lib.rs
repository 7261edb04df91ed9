//! Outposts HA domain: the vocabulary of DESIGN.md, the event contract between the
//! functions, pure decisions (no SDK types) and the thin AWS adapters the handlers use.

pub mod alarm;
pub mod aws;
pub mod backup;
pub mod config;
pub mod contract;
pub mod error;
pub mod fencing;
pub mod incident;
pub mod launch;
pub mod metrics;
pub mod model;
pub mod runtime;
pub mod timefmt;
