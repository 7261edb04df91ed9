//! `make maintenance`: the window is judged here, then written to the ledger; a refused
//! request writes nothing and says why.

use crate::{refused, Operator, Response};
use ha_aws::invocation::HandlerError;
use ha_domain::contract::MaintenanceRequested;
use ha_domain::incident::maintenance_window;
use tracing::info;

impl Operator {
    pub(crate) async fn maintenance(&self, request: MaintenanceRequested) -> Result<Response, HandlerError> {
        let change = match maintenance_window(&request, self.ports.clock.now()) {
            Ok(change) => change,
            Err(e) => return refused(e.to_string()),
        };
        self.ports.ledger.set_maintenance(&change.server, &change.window).await?;
        let w = change.window;
        info!(until = %w.until, reason = %w.reason, ended = change.ended, "maintenance window set");
        Ok(Response::Maintenance {
            server_id: change.server.to_string(),
            until: w.until,
            reason: w.reason,
            ended: change.ended,
        })
    }
}
