//! The witness: an instance on a server's store network that probes the server's originals
//! at their local network interface addresses (docs/design.md: witness). The probe runs as
//! an SSM command; its completion arrives as an event, or is read on a later delivery.

use async_trait::async_trait;
use ha_domain::error::AwsFailure;
use ha_domain::incident::IncidentId;
use ha_domain::model::ServerId;

/// A running instance declared as a server's witness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessInstance {
    pub instance_id: String,
    /// The address it must reach for its silence to count; none: its default gateway.
    pub control: Option<String>,
}

/// How sending the probe went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    /// The command was accepted; its id.
    Sent(String),
    /// SSM cannot run commands on the witness (not managed, agent offline, not running).
    Offline(String),
    /// SSM refused the command for good (its parameters, the document, a permission): why.
    Refused(String),
}

/// Where the probe command stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeStatus {
    /// Still pending or running.
    Running,
    /// Finished: its standard output.
    Finished(String),
    /// Ended without an answer (failed, timed out, cancelled, undeliverable): why.
    Failed(String),
}

#[async_trait]
pub trait Witness: Send + Sync {
    /// The running instance tagged as `server`'s witness, if there is one.
    async fn witness_of(&self, server: &ServerId) -> Result<Option<WitnessInstance>, AwsFailure>;
    /// Sends the probe (`targets` as [`ha_domain::partition::probe_targets`] writes them).
    async fn ask(&self, witness: &WitnessInstance, incident: &IncidentId, targets: &str) -> Result<Asked, AwsFailure>;
    async fn status(&self, command_id: &str, witness: &str) -> Result<ProbeStatus, AwsFailure>;
}
