//! `make unfence`: fenced originals back in service — each network interface's security
//! groups restored from the tag fencing kept them in, the fencing marks removed, and each one told
//! (`OriginalUnfenced`). An original whose incident is still open or whose workload's
//! replacement still runs stays fenced unless the operator forces it: never two live
//! copies unasked. One original's failure does not stop the others; it is reported.

use crate::{refused, Operator, Response};
use ha_aws::invocation::HandlerError;
use ha_domain::contract::{OriginalUnfenced, ProjectEvent, UnfenceRequested};
use ha_domain::error::AwsFailure;
use ha_domain::fencing::{fencing_tag_keys, unfence_plan, UnfenceFacts, UnfencePlan};
use ha_domain::incident::IncidentId;
use ha_domain::launch::adoptable;
use ha_domain::ledger::{IncidentMark, IncidentStatus};
use ha_domain::model::{is_instance_id, tag, Instance, ServerId};
use ha_domain::timefmt::format_timestamp;
use ha_ports::FencedSelector;
use serde::Serialize;
use tracing::{info, warn, Instrument};

/// The originals put back, and those left as they are with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnfenceReport {
    pub restored: Vec<Unfenced>,
    pub left_isolated: Vec<LeftIsolated>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unfenced {
    pub instance_id: String,
    /// Its primary interface's; empty when it was not isolated (terminate or notify left
    /// its groups alone).
    pub security_groups: Vec<String>,
    /// Each network interface's.
    pub interface_groups: Vec<ha_domain::fencing::InterfaceGroups>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeftIsolated {
    pub instance_id: String,
    pub reason: String,
}

impl Operator {
    pub(crate) async fn unfence(&self, r: UnfenceRequested) -> Result<Response, HandlerError> {
        let selector = match (r.instance_id.as_deref(), r.incident_id.as_deref()) {
            (Some(instance), None) if is_instance_id(instance) => FencedSelector::Instance(instance),
            (None, Some(incident)) if IncidentId::parse(incident).is_some() => FencedSelector::Incident(incident),
            (Some(bad), None) => return refused(format!("'{bad}' is not an instance id (i- and 8 or 17 hex digits)")),
            (None, Some(bad)) => return refused(format!("'{bad}' is not an incident id (inc- and 24 hex digits)")),
            _ => return refused("name exactly one of instance_id or incident_id"),
        };
        let fenced = self.ports.fleet.fenced_instances(&selector).await?;
        if fenced.is_empty() {
            let named = r.instance_id.or(r.incident_id).unwrap_or_default();
            return refused(format!("no fenced instance found for {named}"));
        }
        let mut report = UnfenceReport { restored: Vec::new(), left_isolated: Vec::new() };
        for instance in &fenced {
            let span = tracing::info_span!("original", instance_id = %instance.instance_id);
            match self.unfence_one(instance, r.force, false).instrument(span).await {
                Ok(Ok(event)) => report.restored.push(Unfenced {
                    instance_id: event.instance_id.clone(),
                    security_groups: event.security_groups.clone(),
                    interface_groups: event.interface_groups.clone(),
                }),
                Ok(Err(reason)) => {
                    report.left_isolated.push(LeftIsolated { instance_id: instance.instance_id.clone(), reason })
                }
                Err(f) => report.left_isolated.push(LeftIsolated {
                    instance_id: instance.instance_id.clone(),
                    reason: format!("{f}; run the command again"),
                }),
            }
        }
        Ok(Response::Unfence(report))
    }

    /// One original: put back (the event telling it), or the reason it stays fenced. Told
    /// before its marks are removed: a failure in between leaves it fenced, and the rerun
    /// (idempotent) tells it again rather than never.
    pub(crate) async fn unfence_one(
        &self,
        instance: &Instance,
        force: bool,
        moving_home: bool,
    ) -> Result<Result<OriginalUnfenced, String>, AwsFailure> {
        let incident = instance.tags.get(tag::FENCED).cloned().unwrap_or_default();
        let incident_id = IncidentId::from_stored(incident.as_str());
        // A mark that is no incident id (set by hand) names no ledger story and no mark.
        let in_ledger = IncidentId::parse(&incident).is_some();
        let workload = instance.tags.get(tag::WORKLOAD).cloned();
        let story = if in_ledger { self.ports.ledger.story_of(&incident_id).await? } else { None };
        let incident_open = story.as_ref().is_some_and(|s| s.status == IncidentStatus::Open);
        let server = instance
            .server_id
            .as_deref()
            .or(story.as_ref().map(|s| s.server_id.as_str()))
            .and_then(|s| ServerId::parse(s).ok());
        let live_replacement = match (&workload, &server) {
            (Some(name), Some(server)) => {
                let found = self.ports.fleet.replacements_of(name).await?;
                adoptable(&found, incident_id.as_str(), server.as_str(), self.ports.clock.epoch())
                    .map(|r| r.instance_id.clone())
            }
            _ => None,
        };
        let facts = UnfenceFacts {
            tags: &instance.tags,
            interfaces: &instance.interfaces,
            incident_open,
            live_replacement: live_replacement.as_deref(),
            force,
        };
        let restored = match unfence_plan(&facts) {
            UnfencePlan::Refuse(why) => {
                warn!(reason = %why, "left fenced");
                return Ok(Err(why.to_string()));
            }
            UnfencePlan::Restore(kept) => {
                for interface in &kept {
                    self.ports.fleet.set_interface_groups(&interface.interface_id, &interface.groups).await?;
                }
                kept
            }
            UnfencePlan::Unmark => Vec::new(),
        };
        let forced = force && (incident_open || live_replacement.is_some());
        let event = OriginalUnfenced {
            incident_id: incident.clone(),
            server_id: instance.server_id.clone(),
            workload,
            instance_id: instance.instance_id.clone(),
            security_groups: restored
                .iter()
                .find(|i| i.device_index == 0)
                .map(|i| i.groups.clone())
                .unwrap_or_default(),
            interface_groups: restored,
            forced,
            replacement_instance_id: live_replacement,
            moving_home,
            unfenced_at: format_timestamp(self.ports.clock.now()),
        };
        self.ports.bus.publish(&[ProjectEvent::OriginalUnfenced(event.clone())]).await?;
        // Before the fencing marks go, so no backup can see it neither fenced nor put back.
        self.ports.fleet.tag_instance(&instance.instance_id, &[(tag::UNFENCED_AT, &event.unfenced_at)]).await?;
        let marks = fencing_tag_keys(&instance.tags);
        let marks: Vec<&str> = marks.iter().map(String::as_str).collect();
        self.ports.fleet.untag_instance(&instance.instance_id, &marks).await?;
        if in_ledger {
            let mark = IncidentMark::Fenced { instance_id: &instance.instance_id };
            self.ports.ledger.clear_incident_mark(&incident_id, mark).await?;
        }
        if forced && !moving_home {
            warn!(replacement = ?event.replacement_instance_id, "original put back by force: two copies may run");
        } else {
            info!(security_groups = ?event.security_groups, "original unfenced");
        }
        Ok(Ok(event))
    }
}
