//! A disconnected server is not a dead one: what the witness said, what is held, and a wave
//! of outages.

use super::EventText;
use crate::presentation::Presentation;
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

pub(super) fn witness_verdict(e: &WitnessVerdict, _p: &Presentation) -> EventText {
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
    let mut done = vec![format!("Relaunching {} workload(s) on this finding.", e.relaunching.len())];
    if !e.held.is_empty() {
        done.push(format!("Held {} workload(s): not relaunched until released or the server is back.", e.held.len()));
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
            "If the server is only disconnected, its held workloads still serve locally: restore the site's uplink and they carry on.".into(),
        );
        next.push(format!(
            "If the server is really down, relaunch them on your word: {} (or make release WORKLOAD=<name>).",
            e.release_command
        ));
    }
    let headline = match (e.held.len(), &e.finding) {
        (0, _) => format!("witness verdict, relaunching {} workload(s)", e.relaunching.len()),
        (n, WitnessFinding::Unavailable { .. }) => format!("{n} workload(s) HELD, no verdict"),
        (n, _) => format!("{n} workload(s) HELD, link down?"),
    };
    EventText { headline, what_happened: what, done, left_to_you: next }
}

pub(super) fn mass_outage(e: &MassOutage, p: &Presentation) -> EventText {
    let mut what = vec![
        format!(
            "{} Outposts servers went down within {} minutes from {} (more than {}): a WAN or regional event, not box failures.",
            e.servers.len(),
            e.window_minutes,
            p.when(&e.started_at),
            e.threshold
        ),
    ];
    what.extend(e.servers.iter().map(|s| format!("  - {s}")));
    EventText {
        headline: format!("mass outage, {} servers down since {}", e.servers.len(), p.when(&e.started_at)),
        what_happened: what,
        done: vec![
            "Held the stateful workloads of every server in the wave; stateless ones follow their own policy.".into()
        ],
        left_to_you: vec![
            "Check the WAN and the AWS Health Dashboard: the servers likely still run their workloads locally.".into(),
            format!("To relaunch their stateful workloads anyway: {}", e.release_command),
        ],
    }
}
