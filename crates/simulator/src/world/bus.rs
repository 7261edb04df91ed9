//! The project bus: the port splits and batches as the SDK adapter does; each PutEvents
//! either puts every entry or fails, and refuses a request over EventBridge's limits (10
//! entries, 256 KB); what it put goes to the scheduler, which delivers it to the rules'
//! targets at least once.

use super::{Outgoing, Put, Sim};
use async_trait::async_trait;
use ha_domain::contract::{put_batches, ProjectEvent, MAX_PUT_BYTES, MAX_PUT_ENTRIES};
use ha_domain::error::{AwsFailure, Retry};
use ha_ports::Bus;
use std::sync::Arc;

/// One function's bus: it knows which invocation publishes, so a duplicate caused by that
/// invocation dying after its publish can be told from a protocol fault.
pub struct SimBus {
    pub sim: Arc<Sim>,
    pub invocation: Option<String>,
}

#[async_trait]
impl Bus for SimBus {
    async fn publish(&self, events: &[ProjectEvent]) -> Result<(), AwsFailure> {
        let batches = put_batches(events).map_err(|e| AwsFailure {
            message: e.to_string(),
            ..super::failure("PutEvents", "EntryTooLarge", Retry::WontHelp)
        })?;
        for batch in &batches {
            self.put(batch).await?;
        }
        Ok(())
    }
}

impl SimBus {
    /// One PutEvents request.
    async fn put(&self, events: &[ProjectEvent]) -> Result<(), AwsFailure> {
        let types: Vec<&str> = events.iter().map(ProjectEvent::detail_type).collect();
        self.sim.enter_labelled("PutEvents", Some(types.join(", "))).await?;
        let bytes: usize = events.iter().map(ProjectEvent::entry_bytes).sum();
        if events.len() > MAX_PUT_ENTRIES || bytes > MAX_PUT_BYTES {
            return Err(super::failure("PutEvents", "ValidationException", Retry::WontHelp));
        }
        let first = {
            let mut w = self.sim.world();
            let first = w.puts.len();
            let at_ms = w.now_ms();
            for e in events {
                let detail: serde_json::Value = serde_json::from_str(&e.detail_json()).unwrap_or_default();
                let fact = crate::invariants::fact_of(e).map(|f| format!(" ({f})")).unwrap_or_default();
                w.note(format!("put {} by {}{fact}", e.detail_type(), self.invocation.as_deref().unwrap_or("-")));
                w.puts.push(Put {
                    detail_type: e.detail_type().to_string(),
                    detail: detail.clone(),
                    invocation: self.invocation.clone(),
                    at_ms,
                    ambiguous: false,
                });
                let event = serde_json::json!({
                    "version": "0",
                    "detail-type": e.detail_type(),
                    "source": ha_domain::contract::EVENT_SOURCE,
                    "detail": detail,
                });
                w.outbox.push(Outgoing::Project { event, invocation: self.invocation.clone() });
            }
            first
        };
        if let Err(e) = self.sim.leave("PutEvents").await {
            let mut w = self.sim.world();
            for p in &mut w.puts[first..first + events.len()] {
                p.ambiguous = true;
            }
            return Err(e);
        }
        Ok(())
    }
}
