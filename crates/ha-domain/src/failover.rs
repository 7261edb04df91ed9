//! The failover report: where every workload of an incident stands, told once when each
//! has settled (serving, failed, held) or when the deadline passes first. On-call reads
//! one message for the whole failover instead of one per workload.

use crate::contract::{
    BackupUsed, FailedRelaunch, FailoverCompleted, Milestone, NotServing, ProjectEvent, RelaunchFailure, SlowestToServe,
};
use crate::ledger::WorkloadStatus;
use crate::timefmt::{format_timestamp, parse_timestamp};
use std::collections::BTreeSet;
use time::OffsetDateTime;

/// The incident as the ledger holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncidentFacts {
    pub incident_id: String,
    pub server_id: String,
    pub site_name: Option<String>,
    pub detected_at: String,
    pub recovered_at: Option<String>,
    pub closed: bool,
    /// The workloads the relaunch request carried and which of them were held (the
    /// newest launch pass's word); `None` before the first pass.
    pub plan: Option<Plan>,
    /// Templates tagged for the server that are not usable (recorded at the opening).
    pub unusable: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub workloads: BTreeSet<String>,
    pub held: BTreeSet<String>,
}

/// One (incident, workload) item.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadProgress {
    pub workload: String,
    pub status: WorkloadStatus,
    /// The outcome settled (`WorkloadRelaunched` or `WorkloadRelaunchFailed`).
    pub outcome: Option<ProjectEvent>,
    /// The outcome was told.
    pub reported: bool,
    pub launch_accepted_at: Option<String>,
    pub serving_at: Option<String>,
    /// The replacement stopped or went away (told as `ReplacementLost`).
    pub lost: bool,
    /// Its last health check's wait (`tg-pos: unhealthy`).
    pub waiting_for: Option<String>,
}

/// The report, when it is due: every workload settled, or `deadline_seconds` after
/// detection. Nothing for an incident without workloads, a closed one, or before the
/// first launch pass recorded its plan.
pub fn failover_report(
    facts: &IncidentFacts,
    progress: &[WorkloadProgress],
    now: OffsetDateTime,
    deadline_seconds: i64,
) -> Option<FailoverCompleted> {
    let plan = facts.plan.as_ref()?;
    if facts.closed {
        return None;
    }
    let mut names: BTreeSet<&str> = plan.workloads.iter().map(String::as_str).collect();
    names.extend(progress.iter().map(|p| p.workload.as_str()));
    if names.is_empty() {
        return None;
    }
    let detected = parse_timestamp(&facts.detected_at);
    let mut report = FailoverCompleted {
        incident_id: facts.incident_id.clone(),
        server_id: facts.server_id.clone(),
        site_name: facts.site_name.clone(),
        detected_at: facts.detected_at.clone(),
        reported_at: format_timestamp(now),
        complete: false,
        workloads: names.len(),
        serving: Vec::new(),
        not_serving: Vec::new(),
        failed: Vec::new(),
        held: Vec::new(),
        pending: Vec::new(),
        unusable: facts.unusable.clone(),
        slowest: None,
        backups: Vec::new(),
    };
    for name in names {
        let Some(p) = progress.iter().find(|p| p.workload == name) else {
            if plan.held.contains(name) {
                report.held.push(name.to_string());
            } else {
                report.pending.push(name.to_string());
            }
            continue;
        };
        match (&p.status, &p.outcome) {
            // An outcome counts once it was told (I10).
            (WorkloadStatus::Launched | WorkloadStatus::Failed, Some(_)) if !p.reported => {
                report.pending.push(name.to_string())
            }
            (WorkloadStatus::Launched, Some(ProjectEvent::WorkloadRelaunched(r))) => {
                if let Some(b) = &r.restored_from {
                    report.backups.push(BackupUsed {
                        workload: name.to_string(),
                        image_id: b.image_id.clone(),
                        age_seconds: b.age_seconds,
                    });
                }
                if p.lost {
                    report.failed.push(FailedRelaunch {
                        workload: name.to_string(),
                        error_code: RelaunchFailure::ReplacementLost,
                        error_message: format!("replacement {} stopped or was terminated", r.replacement_instance_id),
                    });
                } else if r.already_replaced_in.is_some() {
                    // Adopted from an earlier incident: it was serving there (its serving was
                    // told under that incident); nothing new was launched.
                    report.serving.push(name.to_string());
                } else if let Some(serving_at) = &p.serving_at {
                    report.serving.push(name.to_string());
                    let seconds =
                        detected.zip(parse_timestamp(serving_at)).map(|(d, s)| (s - d).as_seconds_f64().max(0.0));
                    if let Some(seconds) = seconds {
                        if report.slowest.as_ref().is_none_or(|s| seconds > s.detection_to_serving_seconds) {
                            report.slowest = Some(SlowestToServe {
                                workload: name.to_string(),
                                detection_to_serving_seconds: seconds,
                            });
                        }
                    }
                } else {
                    report.not_serving.push(NotServing {
                        workload: name.to_string(),
                        replacement_instance_id: Some(r.replacement_instance_id.clone()),
                        waiting_for: p.waiting_for.clone(),
                    });
                }
            }
            (WorkloadStatus::Failed, Some(ProjectEvent::WorkloadRelaunchFailed(f))) => {
                report.failed.push(FailedRelaunch {
                    workload: name.to_string(),
                    error_code: f.error_code.clone(),
                    error_message: f.error_message.clone(),
                })
            }
            (WorkloadStatus::Launching, _) => report.pending.push(name.to_string()),
            // Settled without a readable outcome: a person must look at the ledger.
            (_, _) => report.failed.push(FailedRelaunch {
                workload: name.to_string(),
                error_code: RelaunchFailure::Aws("OutcomeUnreadable".into()),
                error_message: "the ledger holds no readable outcome for this workload".into(),
            }),
        }
    }
    report.complete = report.pending.is_empty() && report.not_serving.is_empty();
    let overdue = detected.is_some_and(|d| (now - d).whole_seconds() >= deadline_seconds) || detected.is_none();
    (report.complete || overdue).then_some(report)
}

/// The incident's milestones for its closing: detection, first replacement accepted, last
/// one serving, return, closing.
pub fn timeline(facts: &IncidentFacts, progress: &[WorkloadProgress], closed_at: &str) -> Vec<Milestone> {
    let mut milestones = vec![Milestone { at: facts.detected_at.clone(), what: "server down (alarm)".into() }];
    let earliest = |f: fn(&WorkloadProgress) -> Option<&String>| {
        progress.iter().filter_map(f).filter_map(|t| parse_timestamp(t).map(|p| (p, t))).min().map(|(_, t)| t.clone())
    };
    if let Some(at) = earliest(|p| p.launch_accepted_at.as_ref()) {
        milestones.push(Milestone { at, what: "first replacement launched".into() });
    }
    let serving: Vec<_> = progress
        .iter()
        .filter_map(|p| p.serving_at.as_ref().and_then(|t| parse_timestamp(t).map(|p| (p, t))))
        .collect();
    if let Some((_, at)) = serving.iter().max() {
        milestones
            .push(Milestone { at: (*at).clone(), what: format!("last of {} replacement(s) serving", serving.len()) });
    }
    if let Some(at) = &facts.recovered_at {
        milestones.push(Milestone { at: at.clone(), what: "server back (alarm OK)".into() });
    }
    milestones.push(Milestone { at: closed_at.to_string(), what: "originals handled, incident closed".into() });
    milestones.sort_by_key(|m| parse_timestamp(&m.at));
    milestones
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{RestoredFrom, WorkloadRelaunchFailed, WorkloadRelaunched};

    const DETECTED: &str = "2026-12-01T10:00:00Z";

    fn at(minutes: i64) -> OffsetDateTime {
        parse_timestamp(DETECTED).unwrap() + time::Duration::minutes(minutes)
    }

    fn facts(workloads: &[&str], held: &[&str]) -> IncidentFacts {
        IncidentFacts {
            incident_id: "inc-1".into(),
            server_id: "op-0123456789abcdef0".into(),
            site_name: Some("Store 17".into()),
            detected_at: DETECTED.into(),
            recovered_at: None,
            closed: false,
            plan: Some(Plan {
                workloads: workloads.iter().map(|w| w.to_string()).collect(),
                held: held.iter().map(|w| w.to_string()).collect(),
            }),
            unusable: Vec::new(),
        }
    }

    fn relaunched(name: &str, backup_age: Option<i64>) -> ProjectEvent {
        ProjectEvent::WorkloadRelaunched(WorkloadRelaunched {
            incident_id: "inc-1".into(),
            server_id: "op-0123456789abcdef0".into(),
            workload: name.into(),
            launch_template_id: "lt-1".into(),
            replacement_instance_id: format!("i-{name}"),
            subnet_id: "subnet-1".into(),
            destinations_tried: vec![],
            detected_at: DETECTED.into(),
            launch_requested_at: DETECTED.into(),
            launch_accepted_at: DETECTED.into(),
            adopted: false,
            already_replaced_in: None,
            restored_from: backup_age.map(|a| RestoredFrom {
                image_id: "ami-1".into(),
                parameter: "/p".into(),
                taken_at: None,
                age_seconds: Some(a),
            }),
            grounds: None,
            stateful: backup_age.is_some(),
            promoted_standby: false,
        })
    }

    fn launched(name: &str, serving_minute: Option<i64>) -> WorkloadProgress {
        WorkloadProgress {
            workload: name.into(),
            status: WorkloadStatus::Launched,
            outcome: Some(relaunched(name, None)),
            reported: true,
            launch_accepted_at: Some(format_timestamp(at(1))),
            serving_at: serving_minute.map(|m| format_timestamp(at(m))),
            lost: false,
            waiting_for: None,
        }
    }

    fn failed(name: &str) -> WorkloadProgress {
        WorkloadProgress {
            workload: name.into(),
            status: WorkloadStatus::Failed,
            outcome: Some(ProjectEvent::WorkloadRelaunchFailed(WorkloadRelaunchFailed {
                incident_id: "inc-1".into(),
                server_id: "op-0123456789abcdef0".into(),
                site_name: None,
                workload: name.into(),
                launch_template_id: "lt-1".into(),
                error_code: RelaunchFailure::NoBackup,
                error_message: "no backup".into(),
                destinations_tried: vec![],
                manual_action_required: false,
                detected_at: DETECTED.into(),
            })),
            reported: true,
            launch_accepted_at: None,
            serving_at: None,
            lost: false,
            waiting_for: None,
        }
    }

    #[test]
    fn reported_once_everything_settled_with_counts_and_the_slowest() {
        let f = facts(&["a", "b", "c", "d"], &["d"]);
        let mut b = launched("b", Some(7));
        b.outcome = Some(relaunched("b", Some(3_600)));
        let progress = vec![launched("a", Some(3)), b, failed("c")];
        let r = failover_report(&f, &progress, at(8), 900).expect("everything settled");
        assert!(r.complete && r.needs_person());
        assert_eq!((r.workloads, r.launched()), (4, 2));
        assert_eq!(r.serving, vec!["a", "b"]);
        assert_eq!(r.held, vec!["d"]);
        assert_eq!(r.failed[0].error_code, RelaunchFailure::NoBackup);
        let slowest = r.slowest.unwrap();
        assert_eq!((slowest.workload.as_str(), slowest.detection_to_serving_seconds), ("b", 420.0));
        assert_eq!(
            r.backups,
            vec![BackupUsed { workload: "b".into(), image_id: "ami-1".into(), age_seconds: Some(3_600) }]
        );
    }

    #[test]
    fn waits_for_unsettled_workloads_until_the_deadline() {
        let f = facts(&["a", "b", "c"], &[]);
        let mut waiting = launched("b", None);
        waiting.waiting_for = Some("tg-b: unhealthy".into());
        let progress = vec![launched("a", Some(3)), waiting];
        assert_eq!(failover_report(&f, &progress, at(5), 900), None, "b not serving, c not launched");
        let r = failover_report(&f, &progress, at(15), 900).expect("deadline passed");
        assert!(!r.complete);
        assert_eq!(r.not_serving[0].waiting_for.as_deref(), Some("tg-b: unhealthy"));
        assert_eq!(r.pending, vec!["c"]);
    }

    #[test]
    fn nothing_to_report_without_a_plan_or_workloads_or_once_closed() {
        let mut f = facts(&[], &[]);
        assert_eq!(failover_report(&f, &[], at(60), 900), None, "no workloads");
        f.plan = None;
        assert_eq!(failover_report(&f, &[launched("a", Some(1))], at(60), 900), None, "no plan yet");
        let mut closed = facts(&["a"], &[]);
        closed.closed = true;
        assert_eq!(failover_report(&closed, &[launched("a", Some(1))], at(60), 900), None);
    }

    #[test]
    fn a_lost_replacement_is_a_failure_and_an_all_serving_failover_needs_nobody() {
        let f = facts(&["a", "b"], &[]);
        let mut lost = launched("b", Some(2));
        lost.lost = true;
        let r = failover_report(&f, &[launched("a", Some(2)), lost], at(3), 900).unwrap();
        assert_eq!(r.failed[0].error_code, RelaunchFailure::ReplacementLost);
        let ok = failover_report(&f, &[launched("a", Some(2)), launched("b", Some(4))], at(5), 900).unwrap();
        assert!(ok.complete && !ok.needs_person());
    }

    #[test]
    fn untold_outcomes_wait_adopted_replacements_serve_and_unusable_templates_need_a_person() {
        let mut f = facts(&["a", "b", "c"], &[]);
        let mut untold = launched("a", Some(2));
        untold.reported = false;
        let mut adopted = launched("b", None);
        if let Some(ProjectEvent::WorkloadRelaunched(r)) = &mut adopted.outcome {
            r.already_replaced_in = Some("inc-0".into());
        }
        let r = failover_report(&f, &[untold, adopted, launched("c", Some(3))], at(5), 900);
        assert_eq!(r, None, "a's outcome is not told yet: not settled");
        let mut told = launched("a", Some(2));
        told.reported = true;
        let mut adopted = launched("b", None);
        if let Some(ProjectEvent::WorkloadRelaunched(r)) = &mut adopted.outcome {
            r.already_replaced_in = Some("inc-0".into());
        }
        let progress = [told, adopted, launched("c", Some(3))];
        let r = failover_report(&f, &progress, at(5), 900).unwrap();
        assert_eq!(r.serving, vec!["a", "b", "c"], "the adopted replacement serves since its own incident");
        assert!(!r.needs_person());
        f.unusable = vec!["signage (lt-1): tag outposts-ha:subnets is missing".into()];
        let r = failover_report(&f, &progress, at(5), 900).unwrap();
        assert!(r.complete && r.needs_person(), "a template nobody can relaunch needs a person");
    }

    #[test]
    fn the_timeline_is_in_order() {
        let mut f = facts(&["a"], &[]);
        f.recovered_at = Some(format_timestamp(at(30)));
        let t = timeline(&f, &[launched("a", Some(4))], &format_timestamp(at(31)));
        let whats: Vec<&str> = t.iter().map(|m| m.what.as_str()).collect();
        assert_eq!(
            whats,
            vec![
                "server down (alarm)",
                "first replacement launched",
                "last of 1 replacement(s) serving",
                "server back (alarm OK)",
                "originals handled, incident closed"
            ]
        );
    }
}
