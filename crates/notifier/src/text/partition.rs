//! A disconnected server is not a dead one: what the witness said, what is held, and a wave
//! of outages.

use super::EventText;
use ha_domain::contract::{MassOutage, WitnessVerdict};
use ha_domain::partition::{HoldReason, ProbeResult, RelaunchGrounds, UnconfirmedCause, VerdictKind, WitnessFinding};

fn result_text(r: ProbeResult) -> &'static str {
    match r {
        ProbeResult::Connected => "answered",
        ProbeResult::Refused => "refused the connection (the host is up)",
        ProbeResult::NoReply => "no reply",
    }
}

fn cause_text(cause: &UnconfirmedCause) -> String {
    match cause {
        UnconfirmedCause::NoWitness => {
            "no witness is declared for this server (an instance tagged outposts-ha:witness-for)".into()
        }
        UnconfirmedCause::WitnessOffline { witness } => format!("the witness {witness} cannot run commands (SSM)"),
        UnconfirmedCause::ProbeFailed { witness, detail } => format!("the witness {witness}'s probe failed: {detail}"),
        UnconfirmedCause::WitnessBlind { witness, control } => {
            format!("the witness {witness} could not reach its control address {control}")
        }
        UnconfirmedCause::NothingToProbe => "no workload declares a probe address (outposts-ha:probe)".into(),
    }
}

fn hold_text(why: &HoldReason) -> String {
    match why {
        HoldReason::Partitioned => "its original still answers on the store network".into(),
        HoldReason::Unconfirmed => "the witness could not say and the stack holds in that case".into(),
        HoldReason::Wave { started_at, servers } => {
            format!("its server went down in a wave of {} servers from {started_at}", servers.len())
        }
        HoldReason::Misdeclared { error } => error.clone(),
    }
}

fn grounds_text(g: RelaunchGrounds) -> &'static str {
    match g {
        RelaunchGrounds::Dead => "its original did not answer",
        RelaunchGrounds::WhilePartitioned => "its policy relaunches while partitioned",
        RelaunchGrounds::Unconfirmed => "the witness could not say; relaunching in that case",
        RelaunchGrounds::Released { .. } => "released by an operator",
    }
}

pub(super) fn witness_verdict(e: &WitnessVerdict) -> EventText {
    let mut what = Vec::new();
    match &e.finding {
        WitnessFinding::Answered { report } => {
            what.push(format!(
                "Witness {} probed the originals of Outposts server {} on the store network (incident {}).",
                report.witness, e.server_id, e.incident_id
            ));
            what.push(format!(
                "Control address {}: {}.",
                if report.control.is_empty() { "(none)" } else { &report.control },
                result_text(report.control_result)
            ));
            what.extend(
                report.answers.iter().map(|a| format!("  - {} at {}: {}", a.workload, a.target, result_text(a.result))),
            );
        }
        WitnessFinding::Unavailable { cause } => what.push(format!(
            "The verdict on Outposts server {} was NOT confirmed (incident {}): {}.",
            e.server_id,
            e.incident_id,
            cause_text(cause)
        )),
    }
    if !e.relaunching.is_empty() {
        what.push(String::new());
        what.push("Relaunching:".into());
        what.extend(e.relaunching.iter().map(|r| format!("  - {}: {}", r.workload, grounds_text(r.grounds))));
    }
    let mut next = Vec::new();
    if e.held.is_empty() {
        next.push("Nothing: every workload is being relaunched.".to_string());
    } else {
        what.push(String::new());
        what.push("HELD (not relaunched automatically):".into());
        what.extend(e.held.iter().map(|h| {
            let seen = match h.verdict.kind() {
                VerdictKind::Partitioned => ", its original answered",
                VerdictKind::Dead => ", its original did not answer",
                VerdictKind::Unconfirmed => "",
            };
            format!("  - {}: {}{seen}", h.workload, hold_text(&h.why))
        }));
        next.push(
            "If the server is only disconnected, its held workloads still serve locally: restore the site's uplink and they carry on, nothing to relaunch.".into(),
        );
        next.push(format!(
            "If the server is really down, relaunch them on your word: {} (or make release WORKLOAD=<name>).",
            e.release_command
        ));
    }
    let headline = match (e.held.len(), &e.finding) {
        (0, _) => format!("Witness verdict for {}: relaunching {} workload(s)", e.server_id, e.relaunching.len()),
        (n, WitnessFinding::Unavailable { .. }) => {
            format!("{n} workload(s) of {} HELD: the witness could not say (incident {})", e.server_id, e.incident_id)
        }
        (n, _) => format!(
            "{n} workload(s) of {} HELD: the server may be only disconnected (incident {})",
            e.server_id, e.incident_id
        ),
    };
    EventText { headline, what_happened: what, what_to_do_next: next }
}

pub(super) fn mass_outage(e: &MassOutage) -> EventText {
    let mut what = vec![
        format!(
            "{} Outposts servers went down within {} minutes from {} (more than {}): a WAN or regional event, not box failures.",
            e.servers.len(),
            e.window_minutes,
            e.started_at,
            e.threshold
        ),
        "Stateful workloads on these servers are held; stateless ones follow their own policy.".into(),
    ];
    what.extend(e.servers.iter().map(|s| format!("  - {s}")));
    EventText {
        headline: format!("Mass outage: {} servers down since {}", e.servers.len(), e.started_at),
        what_happened: what,
        what_to_do_next: vec![
            "Check the WAN and the AWS Health Dashboard: the servers likely still run their workloads locally.".into(),
            format!("To relaunch their stateful workloads anyway: {}", e.release_command),
        ],
    }
}
