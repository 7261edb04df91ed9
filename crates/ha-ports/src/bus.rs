//! The project's event bus.

use async_trait::async_trait;
use ha_domain::contract::ProjectEvent;
use ha_domain::error::AwsFailure;

#[async_trait]
pub trait Bus: Send + Sync {
    /// Puts every event, in order; an error means some may not have been put (the caller
    /// retries the whole list: receivers tolerate duplicates, people are told once by the
    /// ledger's marks).
    async fn publish(&self, events: &[ProjectEvent]) -> Result<(), AwsFailure>;
}
