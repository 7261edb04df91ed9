//! The project's EventBridge bus.

use crate::failure;
use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use ha_domain::contract::{put_batches, ProjectEvent, EVENT_SOURCE};
use ha_domain::error::{AwsFailure, Retry};
use ha_ports::Bus;

#[derive(Clone)]
pub struct EventBridgeBus {
    client: aws_sdk_eventbridge::Client,
    bus_name: String,
}

impl EventBridgeBus {
    pub fn new(client: aws_sdk_eventbridge::Client, bus_name: impl Into<String>) -> Self {
        EventBridgeBus { client, bus_name: bus_name.into() }
    }

    /// The project bus a function's configuration names.
    pub fn of_store(client: aws_sdk_eventbridge::Client, store: &ha_domain::config::IncidentStore) -> Self {
        EventBridgeBus::new(client, &store.event_bus_name)
    }
}

#[async_trait]
impl Bus for EventBridgeBus {
    /// Puts every event, split and batched within PutEvents' limits; an entry EventBridge
    /// rejects is an error the caller can retry.
    async fn publish(&self, events: &[ProjectEvent]) -> Result<(), AwsFailure> {
        let batches = put_batches(events).map_err(|e| AwsFailure {
            operation: "PutEvents",
            code: "EntryTooLarge".into(),
            message: e.to_string(),
            retry: Retry::WontHelp,
        })?;
        for chunk in &batches {
            let entries = chunk
                .iter()
                .map(|e| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus_name)
                        .source(EVENT_SOURCE)
                        .detail_type(e.detail_type())
                        .detail(e.detail_json())
                        .build()
                })
                .collect();
            let out = self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| failure("PutEvents", &e))?;
            if out.failed_entry_count() > 0 {
                let first = out.entries().iter().find(|e| e.error_code().is_some());
                return Err(AwsFailure {
                    operation: "PutEvents",
                    code: first.and_then(|e| e.error_code()).unwrap_or("FailedEntry").to_string(),
                    message: format!(
                        "{} of {} entries rejected: {}",
                        out.failed_entry_count(),
                        chunk.len(),
                        first.and_then(|e| e.error_message()).unwrap_or("no message")
                    ),
                    retry: Retry::CanHelp,
                });
            }
        }
        Ok(())
    }
}
