//! The unfence job (`make unfence`): fenced originals back in service — their security
//! groups restored from the tag fencing kept them in, the fencing marks removed.

use crate::{Relaunch, Response};
use ha_aws::fleet::FencedSelector;
use ha_aws::invocation::HandlerError;
use ha_domain::contract::UnfenceRequested;
use ha_domain::fencing::{unfence_plan, UnfencePlan};
use ha_domain::model::tag;
use serde::Serialize;
use tracing::{info, warn, Instrument};

/// The originals put back, and those left as they are for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnfenceReport {
    pub restored: Vec<Unfenced>,
    pub left_isolated: Vec<LeftIsolated>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeftIsolated {
    pub instance_id: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unfenced {
    pub instance_id: String,
    /// Empty when it was not isolated (terminate or notify left its groups alone).
    pub security_groups: Vec<String>,
}

impl Relaunch {
    pub(crate) async fn unfence(&self, r: UnfenceRequested) -> Result<Response, HandlerError> {
        let selector = match (r.instance_id.as_deref(), r.incident_id.as_deref()) {
            (Some(instance), None) => FencedSelector::Instance(instance),
            (None, Some(incident)) => FencedSelector::Incident(incident),
            _ => return Ok(Response::Ignored { reason: "name exactly one of instance_id or incident_id".into() }),
        };
        let fenced = self.fleet.fenced_instances(&selector).await?;
        if fenced.is_empty() {
            let named = r.instance_id.or(r.incident_id).unwrap_or_default();
            return Ok(Response::Ignored { reason: format!("no fenced instance found for {named}") });
        }
        let mut report = UnfenceReport { restored: Vec::new(), left_isolated: Vec::new() };
        for instance in fenced {
            let id = instance.instance_id.clone();
            let span = tracing::info_span!("original", instance_id = %id);
            async {
                let groups = match unfence_plan(&instance.tags) {
                    UnfencePlan::CannotRestore => {
                        warn!("isolated with no groups kept; left in quarantine");
                        let reason = "it had no security groups when it was isolated; set its groups by hand, then \
                                      remove its fencing tags"
                            .to_string();
                        report.left_isolated.push(LeftIsolated { instance_id: id.clone(), reason });
                        return Ok::<_, HandlerError>(());
                    }
                    UnfencePlan::Restore(groups) => {
                        self.fleet.set_security_groups(&id, &groups).await?;
                        groups
                    }
                    UnfencePlan::Unmark => Vec::new(),
                };
                self.fleet.untag_instance(&id, &[tag::FENCED, tag::FENCED_GROUPS]).await?;
                info!(security_groups = ?groups, "original unfenced");
                report.restored.push(Unfenced { instance_id: id.clone(), security_groups: groups });
                Ok(())
            }
            .instrument(span)
            .await?;
        }
        Ok(Response::Unfence(report))
    }
}
