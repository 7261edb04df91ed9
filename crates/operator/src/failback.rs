//! `make failback`: a server's stateless workloads moved home once it is back and no
//! incident of it is open. Per live replacement of its workloads: the original is
//! unfenced, registered in the workload's target groups and must be healthy in every one;
//! only then is the replacement marked retiring (no new incident adopts it), taken out and
//! terminated (relaunch's lost job sees an unfenced original home and tells nothing). Each
//! request advances what it can and says what it waits for: repeat it until nothing waits.
//! Stateful workloads are left: their replacement holds the newest data.

use crate::{refused, Operator, Response};
use ha_aws::invocation::HandlerError;
use ha_domain::contract::FailbackRequested;
use ha_domain::error::{AwsFailure, Retry};
use ha_domain::model::{is_replacement, tag, Instance, InstanceState, ServerId, Workload};
use ha_domain::timefmt::format_timestamp;
use ha_ports::register_in;
use serde::Serialize;
use tracing::{info, warn, Instrument};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailbackReport {
    pub server_id: String,
    /// The incidents that launched the replacements found.
    pub incidents: Vec<String>,
    /// Serving from their originals again; their replacements terminated.
    pub moved_home: Vec<MovedHome>,
    /// Originals put back and registered, not yet healthy: run it again.
    pub waiting: Vec<WaitingHome>,
    /// Left on their replacements, each with why.
    pub left: Vec<LeftAway>,
}

impl FailbackReport {
    /// Nothing left to wait for (what is left needs a person).
    pub fn done(&self) -> bool {
        self.waiting.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MovedHome {
    pub workload: String,
    pub original_instance_id: String,
    pub replacement_instance_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaitingHome {
    pub workload: String,
    pub original_instance_id: String,
    pub waiting_for: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeftAway {
    pub workload: String,
    pub reason: String,
}

/// Where one workload's move home stands.
enum Step {
    Home(MovedHome),
    Waiting(WaitingHome),
    Left(String),
}

impl Operator {
    pub(crate) async fn failback(&self, r: FailbackRequested) -> Result<Response, HandlerError> {
        let Ok(server) = ServerId::parse(&r.server_id) else {
            return refused(format!("'{}' is not an Outposts server id", r.server_id));
        };
        if let Some(why) = self.away_from_home(&server).await? {
            return refused(why);
        }
        // What runs away from home, as EC2 says: every live replacement of the server's
        // workloads, whichever incident launched it.
        let (declared, _) = self.ports.fleet.workloads_of(&server).await?;
        let mut report = FailbackReport {
            server_id: server.to_string(),
            incidents: Vec::new(),
            moved_home: Vec::new(),
            waiting: Vec::new(),
            left: Vec::new(),
        };
        for w in &declared {
            let live: Vec<_> = self
                .ports
                .fleet
                .replacements_of(&w.name)
                .await?
                .into_iter()
                .filter(|r| r.source_server.as_deref() == Some(server.as_str()) && !r.state.is_gone())
                .collect();
            for replacement in live {
                if let Some(incident) = replacement.incident.clone().filter(|i| !report.incidents.contains(i)) {
                    report.incidents.push(incident);
                }
                let span = tracing::info_span!("workload", workload = %w.name, replacement = %replacement.instance_id);
                let step = match self.move_home(&server, w, &replacement.instance_id).instrument(span).await {
                    Ok(step) => step,
                    Err(f) if f.retry == Retry::WontHelp => Step::Left(format!("{f}")),
                    Err(f) => Step::Waiting(WaitingHome {
                        workload: w.name.clone(),
                        original_instance_id: String::new(),
                        waiting_for: format!("{f}; the next pass tries again"),
                    }),
                };
                match step {
                    Step::Home(h) => report.moved_home.push(h),
                    Step::Waiting(h) => report.waiting.push(h),
                    Step::Left(reason) => report.left.push(LeftAway { workload: w.name.clone(), reason }),
                }
            }
        }
        info!(
            moved_home = report.moved_home.len(),
            waiting = report.waiting.len(),
            left = report.left.len(),
            "fail-back pass"
        );
        Ok(Response::Failback(report))
    }

    /// Why nothing may move home now: the server is in an incident, or down.
    async fn away_from_home(&self, server: &ServerId) -> Result<Option<String>, AwsFailure> {
        let ledger = &self.ports.ledger;
        if let Some(open) = ledger.open_incident_of(server).await? {
            return Ok(Some(format!(
                "{server} is in incident {open}: fail back once it is back and the incident closed"
            )));
        }
        if ledger.server_is_up(server).await? == Some(false) {
            return Ok(Some(format!("{server}'s alarm says it is down: fail back once it is back")));
        }
        Ok(None)
    }

    /// One workload: its original put back and healthy, then its replacement out.
    async fn move_home(&self, server: &ServerId, w: &Workload, replacement_id: &str) -> Result<Step, AwsFailure> {
        let fleet = &self.ports.fleet;
        let Some(replacement) = fleet.instance(replacement_id).await?.filter(|r| !r.state.is_gone()) else {
            return Ok(Step::Left(format!("its replacement {replacement_id} is gone already")));
        };
        // Stateful as launched (the template may have changed since): its data is newer
        // than the original's, and only the written procedure moves it.
        let launched_stateful =
            replacement.tags.contains_key(tag::RESTORED_FROM) || replacement.tags.contains_key(tag::BACKUP_PARAMETER);
        if w.is_stateful() || launched_stateful {
            return Ok(Step::Left(format!(
                "stateful: its replacement {replacement_id} holds the newest data; follow the runbook's stateful fail-back"
            )));
        }
        if replacement.tags.get(tag::ROLE).map(String::as_str) != Some(tag::ROLE_REPLACEMENT) {
            return Ok(Step::Left(format!("{replacement_id} is not tagged as a replacement: terminate it by hand")));
        }
        // On the server, as EC2 names it (as relaunch's lost job reads "home").
        let candidates = fleet.instances_of(std::slice::from_ref(&w.name)).await?;
        let home = |i: &Instance| !is_replacement(&i.tags) && i.server_id.as_deref() == Some(server.as_str());
        let original = candidates
            .iter()
            .filter(|i| home(i) && matches!(i.state, InstanceState::Running))
            .min_by_key(|i| !i.tags.contains_key(tag::FENCED));
        let Some(original) = original else {
            let why = match candidates.iter().find(|i| home(i)) {
                Some(o) if o.state.is_gone() => {
                    format!(
                        "its original {} is {}: its replacement {replacement_id} stays",
                        o.instance_id,
                        o.state.as_str()
                    )
                }
                Some(o) => format!(
                    "its original {} is {}: start it, then run fail-back again",
                    o.instance_id,
                    o.state.as_str()
                ),
                None => format!("no original of it runs on {server}: its replacement {replacement_id} stays"),
            };
            return Ok(Step::Left(why));
        };
        let home = MovedHome {
            workload: w.name.clone(),
            original_instance_id: original.instance_id.clone(),
            replacement_instance_id: replacement_id.to_string(),
        };
        if original.tags.contains_key(tag::FENCED) {
            if let Err(why) = self.unfence_one(original, true, true).await? {
                return Ok(Step::Left(format!("its original {} stays fenced: {why}", original.instance_id)));
            }
        }
        let lb = &self.ports.load_balancing;
        let (groups, missing) = lb.target_groups(&w.target_groups).await?;
        if !missing.is_empty() {
            return Ok(Step::Left(format!(
                "target group(s) {} do not exist: it stays on its replacement",
                missing.join(", ")
            )));
        }
        let unhealthy = register_in(&**lb, &groups, original, "original").await?;
        if !unhealthy.is_empty() {
            info!(original = %original.instance_id, ?unhealthy, "original registered; waiting for it to be healthy");
            return Ok(Step::Waiting(WaitingHome {
                workload: w.name.clone(),
                original_instance_id: original.instance_id.clone(),
                waiting_for: format!("{} healthy in {}", original.instance_id, unhealthy.join("; ")),
            }));
        }
        // Marked before the last look at the server: a new incident either sees the mark
        // and launches its own replacement, or is open by now and this one stays.
        let now = format_timestamp(self.ports.clock.now());
        fleet.tag_instance(replacement_id, &[(tag::RETIRING, &now)]).await?;
        if let Some(why) = self.away_from_home(server).await? {
            fleet.untag_instance(replacement_id, &[tag::RETIRING]).await?;
            return Ok(Step::Left(format!("{why}; {replacement_id} keeps serving")));
        }
        let mut taken_out = Vec::new();
        for group in &groups {
            let registered: Vec<String> = lb.targets(group).await?.into_iter().map(|(t, _)| t).collect();
            if let Some(target) = group.target_of(&replacement).filter(|t| registered.contains(t)) {
                lb.deregister(group, std::slice::from_ref(&target)).await?;
                taken_out.push((group, target));
            }
        }
        if let Err(f) = fleet.terminate(replacement_id).await {
            // Given back as it was (registered, unmarked): a pass that stops here leaves a
            // replacement that serves and can be adopted, not one half taken out.
            for (group, target) in &taken_out {
                lb.register(group, target).await?;
            }
            fleet.untag_instance(replacement_id, &[tag::RETIRING]).await?;
            return Err(f);
        }
        warn!(original = %original.instance_id, replacement = %replacement_id, "moved home; replacement terminated");
        Ok(Step::Home(home))
    }
}
