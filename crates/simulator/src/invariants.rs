//! The promise, checked when a schedule has quiesced (I2 and I3 are checked by the world
//! at the moment of the call):
//! - I1 every workload of a server that is down has exactly one live replacement, or a
//!   person was told it could not be relaunched; every workload of a server that is back
//!   has exactly one live copy (unless a person was told two run);
//! - I4 each fact a person needs is put on the bus once (a second copy only when the
//!   first one's publisher could not know it was put) and never lost;
//! - I5 every incident of a server that is back is closed, and the server is free;
//! - I6 (checked by the world at each parameter write) a backup parameter only moves
//!   forward, never to a backup of a fenced or replaced original, and never loses its AMI;
//! - I7 nothing lands in the failed-events queue unless an alarm watches it;
//! - I8 a stateful workload is never launched while its original answers the witness
//!   (its server only partitioned), unless an operator released it; a held workload counts
//!   for I1 once a person was told it is held;
//! - I9 the original of a stateful workload launched while its server only lost its link
//!   is never isolated or terminated.
//! - I10 a failover report counts as serving, failed, launched or held only what the facts
//!   told before it say (each distinct report once: I4);

use crate::run::{Ctx, Outcome};
use crate::world::ServerCondition;
use ha_domain::contract::{FenceOutcome, ProjectEvent, RelaunchFailure};
use ha_domain::incident::IncidentId;
use ha_domain::ledger::{server_key, IncidentStatus, META, OPEN_INCIDENT, RELEASED, WITNESS, WORKLOAD_PREFIX};
use ha_domain::model::{tag, InstanceState, ServerId};
use ha_domain::partition::WitnessFinding;
use ha_domain::timefmt::parse_timestamp;
use ha_ports::table::Value;
use std::collections::BTreeMap;

fn text(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::S(s)) => Some(s.clone()),
        _ => None,
    }
}

/// The fact a put tells, as a key: two puts with one key tell one fact twice.
pub(crate) fn fact_of(e: &ProjectEvent) -> Option<String> {
    Some(match e {
        ProjectEvent::IncidentOpened(e) => format!("opened {}", e.incident_id),
        // A promotion whose hook failed is followed by the cold launch's outcome: two facts.
        ProjectEvent::WorkloadRelaunched(e) if e.promoted_standby => {
            format!("promoted {} {} {}", e.incident_id, e.workload, e.replacement_instance_id)
        }
        ProjectEvent::WorkloadRelaunched(e) => format!("outcome {} {}", e.incident_id, e.workload),
        ProjectEvent::PromotionFailed(e) => format!("promotion failed {} {}", e.incident_id, e.workload),
        ProjectEvent::StandbyDrifted(e) => format!(
            "drift {} {} {} {:?} {:?} {}",
            e.server_id,
            e.workload,
            e.drift.as_str(),
            e.standby_instance_id,
            e.launched_instance_id,
            e.action
        ),
        ProjectEvent::WorkloadRelaunchFailed(e) if e.error_code == RelaunchFailure::ReplacementLost => {
            format!("lost {} {} {}", e.incident_id, e.workload, e.error_message)
        }
        ProjectEvent::WorkloadRelaunchFailed(e) => format!("outcome {} {}", e.incident_id, e.workload),
        ProjectEvent::OriginalFenced(e) => format!("fenced {} {}", e.incident_id, e.instance_id),
        ProjectEvent::IncidentClosed(e) => format!("closed {}", e.incident_id),
        ProjectEvent::ServerRecovered(e) => format!("recovered {:?} {}", e.incident_id, e.recovered_at),
        ProjectEvent::RelaunchSuppressed(e) => format!("suppressed {} {}", e.incident_id, e.maintenance_until),
        ProjectEvent::IncidentContinued(e) => format!("continued {} {}", e.incident_id, e.realarmed_at),
        // A second replacement serving (the first was lost) is a new fact.
        ProjectEvent::WorkloadServing(e) => {
            format!("serving {} {} {}", e.incident_id, e.workload, e.replacement_instance_id)
        }
        ProjectEvent::WitnessVerdict(e) => format!("witness {}", e.incident_id),
        ProjectEvent::MassOutage(e) => format!("wave {}", e.started_at),
        ProjectEvent::FailoverCompleted(e) => format!("failover {} {} {:?}", e.incident_id, e.complete, e.held),
        ProjectEvent::BackupCompleted(e) => format!("backup {}", e.execution_id),
        ProjectEvent::BackupFailed(e) if !e.execution_id.is_empty() => format!("backup {}", e.execution_id),
        _ => return None,
    })
}

/// Whether `server` was partitioned at `at_ms` and never dead since its outage began (the
/// alarm fires three minutes after the box or its link goes).
fn only_partitioned(history: &[(i64, ServerId, ServerCondition)], server: &str, detected_ms: i64, at_ms: i64) -> bool {
    let from = detected_ms - 3 * 60_000 - 1;
    let mine: Vec<_> = history.iter().filter(|(_, s, _)| s.as_str() == server).collect();
    let at_launch = mine.iter().rev().find(|(at, _, _)| *at <= at_ms).map(|(_, _, c)| *c);
    let died = mine.iter().any(|(at, _, c)| *at > from && *at <= at_ms && *c == ServerCondition::Dead);
    at_launch == Some(ServerCondition::Partitioned) && !died
}

pub(crate) fn check(ctx: &Ctx) -> Outcome {
    let w = ctx.sim.world();
    let mut violations = w.violations.clone();
    let mut outcome = Outcome::default();

    // What was told, by fact.
    let mut told: BTreeMap<String, Vec<bool>> = BTreeMap::new();
    let mut drift_told = BTreeMap::new();
    let mut events = Vec::new();
    for p in &w.puts {
        let wrapped = serde_json::json!({"detail-type": p.detail_type, "detail": p.detail});
        let Ok(e) = serde_json::from_value::<ProjectEvent>(wrapped) else { continue };
        if matches!(&e, ProjectEvent::BackupFailed(f) if f.reason.contains("superseded data")) {
            outcome.superseded_backups += 1;
        }
        if matches!(&e, ProjectEvent::BackupFailed(f) if f.status == "NotStarted") {
            outcome.not_started_told += 1;
        }
        if matches!(&e, ProjectEvent::OriginalFenced(f) if f.action == ha_domain::contract::FenceOutcome::PartlyIsolatedFenceFailed)
        {
            outcome.partly_isolated += 1;
        }
        match &e {
            ProjectEvent::WitnessVerdict(v) => outcome.held_told += v.held.len(),
            ProjectEvent::MassOutage(_) => outcome.waves_told += 1,
            ProjectEvent::OriginalFenced(f) if f.action == FenceOutcome::KeptBothCopies => outcome.kept_both += 1,
            ProjectEvent::OriginalUnfenced(u) if u.moving_home => outcome.moving_home += 1,
            ProjectEvent::FailoverCompleted(f) => {
                outcome.failovers_told += 1;
                outcome.failovers_complete += usize::from(f.complete);
            }
            _ => {}
        }
        if let Some(mut fact) = fact_of(&e) {
            // A drift told again after its subject changed (missing, then launched, then
            // missing again when that standby died) is a new fact; only a repeat is a copy.
            if let ProjectEvent::StandbyDrifted(d) = &e {
                let subject = (d.server_id.clone(), d.workload.clone(), d.drift, d.standby_instance_id.clone());
                let (last, generation) = drift_told.entry(subject).or_insert_with(|| (String::new(), 0));
                if *last != fact {
                    *generation += 1;
                    last.clone_from(&fact);
                }
                fact = format!("{fact} #{generation}");
            }
            told.entry(fact).or_default().push(p.ambiguous);
        }
        events.push(e);
    }
    for (fact, copies) in &told {
        // A second copy is the price of never losing one only when an earlier copy's
        // publisher could not know it was put.
        // Each extra copy needs its own excuse.
        let excused = copies[..copies.len() - 1].iter().filter(|ambiguous| **ambiguous).count();
        if copies.len() - 1 > excused {
            violations.push(format!("I4: told {} times: {fact}", copies.len()));
        }
    }
    let was_told = |fact: &str| told.contains_key(fact);
    // (I4) An incident's recovery and closing are told only of an incident told opened.
    for e in &events {
        let incident = match e {
            ProjectEvent::IncidentClosed(c) => Some(&c.incident_id),
            ProjectEvent::ServerRecovered(r) => r.incident_id.as_ref(),
            _ => None,
        };
        if let Some(id) = incident.filter(|id| !was_told(&format!("opened {id}"))) {
            violations.push(format!("I4: {} told of incident {id}, never told opened", e.detail_type()));
        }
    }

    // I10: a failover report tells only what was told before it: a workload it counts
    // serving was told serving (or adopted from an earlier incident), one it counts failed
    // was told failed or lost, one launched and not serving was told launched, one held was
    // never launched.
    for (k, e) in events.iter().enumerate() {
        let ProjectEvent::FailoverCompleted(f) = e else { continue };
        let id = f.incident_id.as_str();
        let before = &events[..k];
        let relaunched = |w: &str| {
            before.iter().find_map(|e| match e {
                ProjectEvent::WorkloadRelaunched(r) if r.incident_id == id && r.workload == w => Some(r),
                _ => None,
            })
        };
        let served = |w: &str| {
            before
                .iter()
                .any(|e| matches!(e, ProjectEvent::WorkloadServing(s) if s.incident_id == id && s.workload == w))
        };
        let failed = |w: &str| {
            before
                .iter()
                .any(|e| matches!(e, ProjectEvent::WorkloadRelaunchFailed(x) if x.incident_id == id && x.workload == w))
        };
        for w in &f.serving {
            if !served(w) && relaunched(w).is_none_or(|r| r.already_replaced_in.is_none()) {
                violations.push(format!("I10: the failover of {id} counts {w} serving before it was told serving"));
            }
        }
        for x in &f.failed {
            if !failed(&x.workload) {
                violations.push(format!("I10: the failover of {id} counts {} failed before it was told", x.workload));
            }
        }
        for n in &f.not_serving {
            if relaunched(&n.workload).is_none() {
                violations.push(format!("I10: the failover of {id} counts {} launched before it was told", n.workload));
            }
        }
        for w in &f.held {
            if relaunched(w).is_some() || failed(w) {
                violations.push(format!("I10: the failover of {id} counts {w} held though it was launched"));
            }
        }
    }

    // The ledger's incidents, by server.
    let mut incidents: BTreeMap<String, Vec<(IncidentId, IncidentStatus)>> = BTreeMap::new();
    for ((pk, sk), item) in &w.table {
        let Some(id) = pk.strip_prefix("INCIDENT#") else { continue };
        let incident = IncidentId::from_stored(id);
        if sk == META {
            let status = IncidentStatus::parse(text(item.get("status")).as_deref()).unwrap_or(IncidentStatus::Open);
            let server = text(item.get("server_id")).unwrap_or_default();
            if !was_told(&format!("opened {id}")) {
                violations.push(format!("I4: incident {id} opened and never told"));
            }
            if status == IncidentStatus::Closed && !was_told(&format!("closed {id}")) {
                violations.push(format!("I4: incident {id} closed and never told"));
            }
            if let Some(detected) = text(item.get("detected_at")).and_then(|d| parse_timestamp(&d)) {
                let detected_ms = (detected.unix_timestamp_nanos() / 1_000_000) as i64;
                outcome
                    .alarm_to_launch_ms
                    .extend(w.launches.iter().filter(|(i, _, _)| i == id).map(|(_, _, at)| at - detected_ms));
            }
            incidents.entry(server).or_default().push((incident, status));
        } else if let Some(workload) = sk.strip_prefix(WORKLOAD_PREFIX) {
            let settled = text(item.get("status")).is_some_and(|s| s != "launching");
            let outcome_told = was_told(&format!("outcome {id} {workload}"));
            let promotion_told = text(item.get("replacement_instance_id"))
                .is_some_and(|r| was_told(&format!("promoted {id} {workload} {r}")));
            let told_here = outcome_told || (promotion_told && !item.contains_key("promotion_failed"));
            if settled && !told_here {
                violations.push(format!("I4: {workload} of {id} settled and never told"));
            }
        }
    }
    outcome.incidents = incidents.values().map(Vec::len).sum();
    for i in w.instances.values() {
        if let Some(incident) = i.tags.get(tag::FENCED) {
            if !was_told(&format!("fenced {incident} {}", i.id)) {
                violations.push(format!("I4: {} fenced for {incident} and never told", i.id));
            }
        }
        // An interface in quarantine is undone only by make unfence, which finds the mark.
        let quarantined = i.interfaces.iter().any(|n| n.groups.iter().any(|g| w.is_quarantine(g)));
        if quarantined && !i.state.is_gone() && !i.tags.contains_key(tag::FENCED) {
            violations.push(format!("I3: {} has an interface in quarantine and no fencing mark", i.id));
        }
    }

    for (index, server) in ctx.scenario.servers.iter().enumerate() {
        let down = ctx.alarm_down.borrow()[index];
        let id = server.id.to_string();
        let held_by =
            text(w.table.get(&(server_key(&server.id), OPEN_INCIDENT.to_string())).and_then(|i| i.get("incident_id")));
        // While down, a hold whose incident was never recorded is a delivery that died between
        // claiming the server and releasing it (a suppressed outage): the next pass settles it.
        let open = if down {
            held_by.filter(|i| w.table.contains_key(&(format!("INCIDENT#{i}"), META.to_string())))
        } else {
            held_by
        };
        let mine = incidents.get(&id).cloned().unwrap_or_default();
        if !down {
            // I5: back means closed.
            if let Some(open) = &open {
                violations.push(format!("I5: server {id} is back but incident {open} still holds it"));
            }
            for (incident, status) in &mine {
                if *status != IncidentStatus::Closed {
                    violations.push(format!("I5: server {id} is back but incident {incident} is {}", status.as_str()));
                }
            }
        } else if open.is_none() && !ctx.alarm_times.borrow()[index].is_empty() {
            // Suppressed by a window that has not ended yet.
            let window_ends = text(
                w.table
                    .get(&(server_key(&server.id), ha_domain::ledger::MAINTENANCE.to_string()))
                    .and_then(|i| i.get("until")),
            )
            .and_then(|u| parse_timestamp(&u))
            .map(|u| (u.unix_timestamp_nanos() / 1_000_000) as i64);
            // Only a reconcile pass after the window notices it ended.
            let suppressed = window_ends.is_some_and(|end| end > ctx.ticks_until_ms.get() - 5 * 60_000)
                && mine.iter().all(|(_, s)| *s == IncidentStatus::Closed);
            if !suppressed {
                violations.push(format!("I1: server {id} is down and no incident holds it"));
            }
            continue;
        }
        for wl in &server.workloads {
            // A deleted template unprotects its workload, except for the incident under way.
            let claimed_now = open.as_ref().is_some_and(|i| {
                w.table.contains_key(&(format!("INCIDENT#{i}"), format!("{WORKLOAD_PREFIX}{}", wl.name)))
            });
            let declared = w.templates.contains_key(&wl.template_id) || claimed_now;
            if !declared || ctx.alarm_times.borrow()[index].is_empty() {
                continue;
            }
            let replacement_ids: Vec<&str> = w
                .instances
                .values()
                .filter(|i| matches!(i.state, InstanceState::Pending | InstanceState::Running))
                .filter(|i| i.tags.get(tag::ROLE).map(String::as_str) == Some(tag::ROLE_REPLACEMENT))
                .filter(|i| i.tags.get(tag::WORKLOAD) == Some(&wl.name) && i.tags.get(tag::SOURCE_SERVER) == Some(&id))
                .map(|i| i.id.as_str())
                .collect();
            let replacements = replacement_ids.len();
            let originals: Vec<&crate::world::SimInstance> = w
                .instances
                .values()
                .filter(|i| i.state == InstanceState::Running && i.server.as_ref() == Some(&server.id))
                .filter(|i| i.tags.get(tag::WORKLOAD) == Some(&wl.name) && !i.tags.contains_key(tag::ROLE))
                .filter(|i| !w.is_isolated(i))
                .collect();
            let failed_told = |incident: &str| {
                events.iter().any(|e| matches!(e, ProjectEvent::WorkloadRelaunchFailed(f) if f.incident_id == incident && f.workload == wl.name))
            };
            // Its replacement died and its original is still isolated: a person was told.
            // (Or its replacement died and its original was terminated in an earlier incident.)
            let none_told = events.iter().any(|e| match e {
                ProjectEvent::OriginalFenced(f) => {
                    f.workload == wl.name
                        && f.server_id == id
                        && f.action == ha_domain::contract::FenceOutcome::StillIsolatedReplacementNotRunning
                }
                ProjectEvent::WorkloadRelaunchFailed(f) => f.workload == wl.name && f.server_id == id,
                _ => false,
            });
            let two_told = originals.iter().any(|o| {
                events.iter().any(|e| matches!(e, ProjectEvent::OriginalFenced(f) if f.instance_id == o.id && f.action.leaves_original_running()))
            });
            // Held (its server partitioned, or the witness could not say): a person was told.
            let held_told = |incident: &str| {
                events.iter().any(|e| matches!(e, ProjectEvent::WitnessVerdict(v) if v.incident_id == incident && v.held.iter().any(|h| h.workload == wl.name)))
            };
            if down {
                let incident = open.clone().unwrap_or_default();
                let ok = replacements == 1 || (replacements == 0 && (failed_told(&incident) || held_told(&incident)));
                if !ok {
                    violations
                        .push(format!("I1: {} of down server {id} has {replacements} live replacements", wl.name));
                }
            } else {
                let copies = replacements + originals.len();
                let ok = copies == 1 || (copies == 2 && two_told) || (copies == 0 && none_told);
                if !ok {
                    violations.push(format!(
                        "I1: {} of server {id}, back, has {copies} live copies (originals {:?}, replacements {:?})",
                        wl.name,
                        originals.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
                        replacement_ids
                    ));
                }
            }
        }
    }

    // I8: a stateful workload is never launched while its original answers the witness (its
    // server only partitioned since the outage began), unless an operator released it first.
    // Checked on what EC2 accepted, told or not.
    let launched_at = |incident: &str, workload: &str| {
        w.launches.iter().find(|(i, wl, _)| i == incident && wl == workload).map(|(_, _, at)| *at)
    };
    let outage_of = |incident: &str| {
        let meta = w.table.get(&(format!("INCIDENT#{incident}"), META.to_string()))?;
        let detected = text(meta.get("detected_at")).and_then(|d| parse_timestamp(&d))?;
        Some((text(meta.get("server_id"))?, (detected.unix_timestamp_nanos() / 1_000_000) as i64))
    };
    let stateful = |server: &str, workload: &str| {
        ctx.scenario
            .servers
            .iter()
            .any(|s| s.id.as_str() == server && s.workloads.iter().any(|wl| wl.name == workload && wl.stateful))
    };
    for (incident, workload, at_ms) in &w.launches {
        let Some((server, detected_ms)) = outage_of(incident) else { continue };
        let pk = format!("INCIDENT#{incident}");
        let released_before = [RELEASED.to_string(), format!("{RELEASED}#{workload}")].iter().any(|sk| {
            text(w.table.get(&(pk.clone(), sk.clone())).and_then(|i| i.get("requested_at")))
                .and_then(|at| parse_timestamp(&at))
                .is_some_and(|at| (at.unix_timestamp_nanos() / 1_000_000) as i64 <= *at_ms)
        });
        // The witness could not say and the stack relaunches then (odd seeds choose so).
        let unconfirmed = text(w.table.get(&(pk, WITNESS.to_string())).and_then(|i| i.get("finding")))
            .and_then(|f| serde_json::from_str::<WitnessFinding>(&f).ok())
            .is_some_and(|f| matches!(f, WitnessFinding::Unavailable { .. }));
        let relaunches_unconfirmed = ctx.scenario.seed % 2 == 1;
        if !stateful(&server, workload) || released_before || (unconfirmed && relaunches_unconfirmed) {
            continue;
        }
        if only_partitioned(&w.server_history, &server, detected_ms, *at_ms) {
            violations
                .push(format!("I8: {workload} of partitioned server {server} launched while its original answered"));
        }
    }
    // I9: the original of a stateful workload launched while its server was only partitioned
    // (it may have taken writes since) is never isolated or terminated, whatever the
    // replacement was told to be launched on.
    for e in &events {
        let ProjectEvent::OriginalFenced(f) = e else { continue };
        if !matches!(
            f.action,
            FenceOutcome::Isolated | FenceOutcome::Terminated | FenceOutcome::PartlyIsolatedFenceFailed
        ) {
            continue;
        }
        let (Some((server, detected_ms)), Some(at_ms)) =
            (outage_of(&f.incident_id), launched_at(&f.incident_id, &f.workload))
        else {
            continue;
        };
        if stateful(&server, &f.workload) && only_partitioned(&w.server_history, &server, detected_ms, at_ms) {
            violations.push(format!(
                "I9: original {} of {} fenced ({}) though launched while its server only lost its link",
                f.instance_id,
                f.workload,
                f.action.as_str()
            ));
        }
    }

    // I4 for backups: every finished execution is reported, or its event reached the
    // failed-events queue (whose alarm reaches a person).
    for (id, x) in &w.executions {
        let dead_lettered = ctx.dead_letters.borrow().iter().any(|(_, e)| e["detail"]["ExecutionId"] == id.as_str());
        if x.ended_ms.is_some() && !was_told(&format!("backup {id}")) && !dead_lettered {
            violations.push(format!("I4: backup {id} of {} ended {} and was never reported", x.instance_id, x.status));
        }
    }

    // I7: a dead letter must reach a person.
    let dead = ctx.dead_letters.borrow();
    if !dead.is_empty() && !ctx.facts.failed_events_alarmed {
        violations.push(format!("I7: {} event(s) in the failed-events queue and no alarm watches it", dead.len()));
    }
    outcome.violations = violations;
    outcome
}
