//! A disconnected server is not a dead one (docs/design.md: witness, verdict, wave).
//! `ConnectedStatus` measures the service link; during a disconnection the server's
//! instances keep running on the store network. Before a server's workloads are
//! relaunched, a witness on the same LAN probes each original at its local network
//! interface address, and first a control address it must reach (else it is blind); the
//! verdict and the workload's policy decide between relaunching and holding until an
//! operator releases it. Pure: the probe, the ledger and the alarms are read by the
//! handlers.
//!
//! For the handlers: a workload's verdict is recorded once per incident (a conditional
//! write) and read back by every later delivery, so a re-probe never turns a hold into a
//! launch; only an operator's release does. The simulator's invariant: a stateful
//! workload is never relaunched while its original answers the witness, unless its policy
//! is `relaunch` or an operator released it.

use crate::model::{tag, ServerId};
use crate::timefmt::format_timestamp;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use time::{Duration, OffsetDateTime};

/// What a workload does while its server is partitioned (disconnected but running).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnPartition {
    /// A second copy is acceptable (stateless): relaunch as for a dead server.
    Relaunch,
    /// Two copies taking writes would diverge: wait for the operator's release.
    Hold,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyError {
    #[error("{key} is '{0}': it must be relaunch or hold (held until it is fixed)", key = tag::ON_PARTITION)]
    BadOnPartition(String),
    #[error("the witness-unavailable policy is '{0}': it must be relaunch or hold")]
    BadWhenUnconfirmed(String),
    #[error("a wave needs more than {0} server(s): the threshold must be at least 1")]
    BadWaveThreshold(usize),
    #[error("a wave's window of {0} minute(s) must be 1 to 1440")]
    BadWaveWindow(i64),
}

fn relaunch_or_hold(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "relaunch" => Some(true),
        "hold" => Some(false),
        _ => None,
    }
}

impl OnPartition {
    /// The workload's policy from its tag value; absent or empty, the default for its kind.
    pub fn from_tag(value: Option<&str>, stateful: bool) -> Result<OnPartition, PolicyError> {
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            None if stateful => Ok(OnPartition::Hold),
            None => Ok(OnPartition::Relaunch),
            Some(v) => match relaunch_or_hold(v) {
                Some(true) => Ok(OnPartition::Relaunch),
                Some(false) => Ok(OnPartition::Hold),
                None => Err(PolicyError::BadOnPartition(v.to_string())),
            },
        }
    }

    /// The policy to act on: a tag that says neither fails closed to `Hold` (a person
    /// must look), with the error to report.
    pub fn or_hold(parsed: Result<OnPartition, PolicyError>) -> (OnPartition, Option<PolicyError>) {
        match parsed {
            Ok(policy) => (policy, None),
            Err(e) => (OnPartition::Hold, Some(e)),
        }
    }
}

/// What the stack does with workloads that would be held when the witness cannot say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenUnconfirmed {
    Relaunch,
    Hold,
}

impl WhenUnconfirmed {
    pub fn parse(value: &str) -> Result<WhenUnconfirmed, PolicyError> {
        match relaunch_or_hold(value) {
            Some(true) => Ok(WhenUnconfirmed::Relaunch),
            Some(false) => Ok(WhenUnconfirmed::Hold),
            None => Err(PolicyError::BadWhenUnconfirmed(value.to_string())),
        }
    }
}

/// Whether the witness must be asked before a server's workloads are relaunched: a
/// workload that would be held needs the verdict, and so does every stateful one (its
/// original's fate on the server's return depends on it). `(stateful, policy)` each.
pub fn needs_witness(workloads: impl IntoIterator<Item = (bool, OnPartition)>) -> bool {
    workloads.into_iter().any(|(stateful, policy)| stateful || policy == OnPartition::Hold)
}

/// What one probe got back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeResult {
    /// The port accepted the connection (or the ping was answered).
    Connected,
    /// The connection was refused: the host is up, the port closed.
    Refused,
    /// Nothing came back within the probe's timeout.
    NoReply,
}

impl ProbeResult {
    /// The host is up (it answered, if only to refuse).
    pub fn host_up(self) -> bool {
        matches!(self, ProbeResult::Connected | ProbeResult::Refused)
    }
}

/// One original's probe at its LNI address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeAnswer {
    pub workload: String,
    /// What was probed on the store network: `10.1.2.3:5432`, or an address for a ping.
    pub target: String,
    pub result: ProbeResult,
}

/// Why the witness could not say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum UnconfirmedCause {
    /// No witness is declared for the server.
    NoWitness,
    /// The witness is not online in SSM (or not running).
    WitnessOffline { witness: String },
    /// The probe command could not be sent or did not finish.
    ProbeFailed { witness: String, detail: String },
    /// The witness did not reach its control address: it cannot tell silence from its
    /// own isolation.
    WitnessBlind { witness: String, control: String },
    /// The workload's original has no LNI address to probe.
    NothingToProbe,
}

/// The witness's verdict on one workload's original, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Verdict {
    /// The original did not answer, and the witness reached its control address.
    Dead { answers: Vec<ProbeAnswer> },
    /// The original's host answered on the store network: only the service link is down.
    Partitioned { answers: Vec<ProbeAnswer> },
    /// The witness could not say.
    Unconfirmed { cause: UnconfirmedCause },
}

impl Verdict {
    pub fn kind(&self) -> VerdictKind {
        match self {
            Verdict::Dead { .. } => VerdictKind::Dead,
            Verdict::Partitioned { .. } => VerdictKind::Partitioned,
            Verdict::Unconfirmed { .. } => VerdictKind::Unconfirmed,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    Dead,
    Partitioned,
    Unconfirmed,
}

/// What the witness reported for a server: its control probe and every original's answers,
/// or why it could not probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessReport {
    pub witness: String,
    /// The address the witness must reach (the standby server's interface, the gateway).
    pub control: String,
    pub control_result: ProbeResult,
    pub answers: Vec<ProbeAnswer>,
}

/// The verdict on `workload`'s original from the server's witness report.
pub fn verdict_for(workload: &str, report: Result<&WitnessReport, &UnconfirmedCause>) -> Verdict {
    let report = match report {
        Err(cause) => return Verdict::Unconfirmed { cause: cause.clone() },
        Ok(report) => report,
    };
    let answers: Vec<ProbeAnswer> = report.answers.iter().filter(|a| a.workload == workload).cloned().collect();
    if answers.is_empty() {
        return Verdict::Unconfirmed { cause: UnconfirmedCause::NothingToProbe };
    }
    if answers.iter().any(|a| a.result.host_up()) {
        return Verdict::Partitioned { answers };
    }
    if !report.control_result.host_up() {
        let cause = UnconfirmedCause::WitnessBlind { witness: report.witness.clone(), control: report.control.clone() };
        return Verdict::Unconfirmed { cause };
    }
    Verdict::Dead { answers }
}

/// The mass-outage breaker's setting: more than `servers` down within `window` is a wave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaveBreaker {
    pub servers: usize,
    pub window: Duration,
}

impl WaveBreaker {
    pub fn new(servers: usize, window_minutes: i64) -> Result<WaveBreaker, PolicyError> {
        if servers == 0 {
            return Err(PolicyError::BadWaveThreshold(servers));
        }
        if !(1..=1440).contains(&window_minutes) {
            return Err(PolicyError::BadWaveWindow(window_minutes));
        }
        Ok(WaveBreaker { servers, window: Duration::minutes(window_minutes) })
    }
}

/// Several servers down at once: a WAN or regional event, not box failures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wave {
    /// The first down time of the wave's window (RFC 3339): the wave's identity, what a
    /// release names and one notification tells.
    pub started_at: String,
    /// The servers down within the window, sorted.
    pub servers: Vec<ServerId>,
}

/// The wave `server`'s outage at `down_at` belongs to, from every down time known now:
/// the earliest window of the breaker's length that contains `down_at` and more than the
/// threshold of servers (each counted once). Windows look forward as well as back, so the
/// first servers of a wave are found in it once later ones are known: a handler asks again
/// before each launch, and holds what is still pending.
pub fn wave_of(
    downs: &[(ServerId, OffsetDateTime)],
    server: &ServerId,
    down_at: OffsetDateTime,
    breaker: WaveBreaker,
) -> Option<Wave> {
    let mut starts: Vec<OffsetDateTime> = downs
        .iter()
        .map(|(_, t)| *t)
        .chain([down_at])
        .filter(|t| *t <= down_at && down_at - *t <= breaker.window)
        .collect();
    starts.sort();
    starts.dedup();
    starts.into_iter().find_map(|start| {
        let end = start + breaker.window;
        let mut servers: Vec<ServerId> = downs
            .iter()
            .filter(|(_, t)| *t >= start && *t <= end)
            .map(|(s, _)| s.clone())
            .chain([server.clone()])
            .collect();
        servers.sort();
        servers.dedup();
        (servers.len() > breaker.servers).then(|| Wave { started_at: format_timestamp(start), servers })
    })
}

/// A probe target as the witness takes it: an IPv4 address, with a port for a TCP connect.
pub fn parse_probe_target(text: &str) -> Option<String> {
    let text = text.trim();
    let (host, port) = match text.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (text, None),
    };
    host.parse::<std::net::Ipv4Addr>().ok()?;
    if let Some(port) = port {
        port.parse::<u16>().ok().filter(|p| *p > 0)?;
    }
    Some(text.to_string())
}

/// What the witness found for a server: its report, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "finding", rename_all = "snake_case")]
pub enum WitnessFinding {
    Answered { report: WitnessReport },
    Unavailable { cause: UnconfirmedCause },
}

impl WitnessFinding {
    pub fn as_result(&self) -> Result<&WitnessReport, &UnconfirmedCause> {
        match self {
            WitnessFinding::Answered { report } => Ok(report),
            WitnessFinding::Unavailable { cause } => Err(cause),
        }
    }
}

/// The probe document's `Targets` parameter: `workload=target` pairs, space-separated
/// (names and targets hold neither spaces nor `=`).
pub fn probe_targets<'a>(targets: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    targets.into_iter().map(|(workload, target)| format!("{workload}={target}")).collect::<Vec<_>>().join(" ")
}

/// The probe document's output as a report: one `control <target> <result>` line and one
/// `target <workload> <target> <result>` line per original; other lines are ignored.
pub fn parse_probe_output(witness: &str, output: &str) -> Result<WitnessReport, String> {
    let result = |word: &str| match word {
        "connected" => Ok(ProbeResult::Connected),
        "refused" => Ok(ProbeResult::Refused),
        "no_reply" => Ok(ProbeResult::NoReply),
        other => Err(format!("the probe's output has an unknown result '{other}'")),
    };
    let mut control = None;
    let mut answers = Vec::new();
    for line in output.lines() {
        match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["control", target, r] => control = Some((target.to_string(), result(r)?)),
            // No control address (no default gateway): the witness reaches nothing.
            ["control", r] => control = Some((String::new(), result(r)?)),
            ["target", workload, target, r] => answers.push(ProbeAnswer {
                workload: workload.to_string(),
                target: target.to_string(),
                result: result(r)?,
            }),
            _ => {}
        }
    }
    let (control, control_result) = control.ok_or("the probe's output has no control line")?;
    Ok(WitnessReport { witness: witness.to_string(), control, control_result, answers })
}

/// What a drill finds of a workload's witness: a note for the operator, and whether the
/// workload would not relaunch because of it (the stack holds when the witness cannot say,
/// or its policy tag fails closed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessCheck {
    pub note: String,
    pub blocks: bool,
}

/// The drill's witness check of one workload: `None` when the witness does not concern it
/// (stateless, relaunching on a partition).
pub fn witness_check(
    stateful: bool,
    policy: (OnPartition, Option<PolicyError>),
    probe: Option<&str>,
    witness: Option<&str>,
    when_unconfirmed: WhenUnconfirmed,
) -> Option<WitnessCheck> {
    let (policy, misdeclared) = policy;
    if let Some(e) = misdeclared {
        return Some(WitnessCheck { note: format!("held on any outage: {e}"), blocks: true });
    }
    if !needs_witness([(stateful, policy)]) {
        return None;
    }
    let unconfirmed = |why: String| {
        let then = match when_unconfirmed {
            WhenUnconfirmed::Relaunch => "relaunched unconfirmed, its original kept on return",
            WhenUnconfirmed::Hold => "held until released",
        };
        WitnessCheck { note: format!("{why}: it would be {then}"), blocks: when_unconfirmed == WhenUnconfirmed::Hold }
    };
    Some(match (witness, probe) {
        (None, _) => unconfirmed(format!("no running witness ({} on an instance)", tag::WITNESS_FOR)),
        (Some(_), None) => unconfirmed(format!("no probe address ({})", tag::PROBE)),
        (Some(witness), Some(probe)) => WitnessCheck { note: format!("{witness} probes {probe}"), blocks: false },
    })
}

/// Why a workload is held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "held_because", rename_all = "snake_case")]
pub enum HoldReason {
    /// Its original answered the witness (the evidence is the recorded verdict).
    Partitioned,
    /// The witness could not say, and the stack holds in that case.
    Unconfirmed,
    /// Its server went down in a wave.
    Wave { started_at: String, servers: Vec<ServerId> },
    /// Its partition tag says neither relaunch nor hold.
    Misdeclared { error: String },
}

impl HoldReason {
    pub fn is_wave(&self) -> bool {
        matches!(self, HoldReason::Wave { .. })
    }
}

/// On what grounds a workload was relaunched: what its server's return may do with the
/// original depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "grounds", rename_all = "snake_case")]
pub enum RelaunchGrounds {
    /// The witness heard nothing from the original and reached its control address.
    Dead,
    /// The original answered, and the workload's policy relaunches anyway.
    WhilePartitioned,
    /// The witness could not say, and the policy or the stack relaunches in that case.
    Unconfirmed,
    /// An operator released it; the verdict it was held under is kept.
    Released { verdict: VerdictKind },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum PartitionDecision {
    Relaunch {
        grounds: RelaunchGrounds,
    },
    Hold {
        why: HoldReason,
    },
    /// The server is back and the original serves: nothing to relaunch (a late release
    /// must not start a second copy).
    StandDown,
}

/// What is known about one workload of a down server.
#[derive(Debug, Clone, Copy)]
pub struct PartitionFacts<'a> {
    pub stateful: bool,
    /// The policy to act on, and the tag's error if it failed closed ([`OnPartition::or_hold`]).
    pub policy: OnPartition,
    pub misdeclared: Option<&'a PolicyError>,
    /// The verdict recorded for this incident.
    pub verdict: &'a Verdict,
    pub when_unconfirmed: WhenUnconfirmed,
    pub wave: Option<&'a Wave>,
    /// An operator released this workload, its server or its wave.
    pub operator_released: bool,
    /// The server's alarm is back to OK.
    pub server_back: bool,
}

/// Relaunch, hold or stand down. A server that is back stands down; a release relaunches;
/// a wave holds every stateful workload; a misdeclared policy holds; otherwise a workload
/// that relaunches on partition relaunches, and one that holds is relaunched only when the
/// witness heard nothing (or could not say, if the stack says so).
pub fn decide(f: PartitionFacts<'_>) -> PartitionDecision {
    let relaunch = |grounds| PartitionDecision::Relaunch { grounds };
    let hold = |why| PartitionDecision::Hold { why };
    if f.server_back {
        return PartitionDecision::StandDown;
    }
    if f.operator_released {
        return relaunch(RelaunchGrounds::Released { verdict: f.verdict.kind() });
    }
    if let (Some(wave), true) = (f.wave, f.stateful) {
        return hold(HoldReason::Wave { started_at: wave.started_at.clone(), servers: wave.servers.clone() });
    }
    if let Some(error) = f.misdeclared {
        return hold(HoldReason::Misdeclared { error: error.to_string() });
    }
    match (f.verdict.kind(), f.policy) {
        (VerdictKind::Dead, _) => relaunch(RelaunchGrounds::Dead),
        (VerdictKind::Partitioned, OnPartition::Relaunch) => relaunch(RelaunchGrounds::WhilePartitioned),
        (VerdictKind::Partitioned, OnPartition::Hold) => hold(HoldReason::Partitioned),
        (VerdictKind::Unconfirmed, OnPartition::Relaunch) => relaunch(RelaunchGrounds::Unconfirmed),
        (VerdictKind::Unconfirmed, OnPartition::Hold) => match f.when_unconfirmed {
            WhenUnconfirmed::Relaunch => relaunch(RelaunchGrounds::Unconfirmed),
            WhenUnconfirmed::Hold => hold(HoldReason::Unconfirmed),
        },
    }
}

/// What the server's return does with the original of a relaunched workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnReturn {
    /// Fence it by the stack's fencing policy (as for any dead server).
    Fence,
    /// Both copies may have taken writes: never isolate or terminate either; tell the
    /// operator about both (critical), keep the incident open and wait.
    ReportBothCopies,
}

/// A stateless workload's original is fenced as always. A stateful one is fenced only when
/// the witness heard nothing from it (a release after such a verdict included): relaunched
/// while it answered or while the witness could not say, it may hold the newest writes.
/// No grounds: relaunched without asking the witness (a stateless workload that relaunches
/// whatever it says, or a launch recorded before witnesses existed).
pub fn on_return(stateful: bool, grounds: Option<RelaunchGrounds>) -> OnReturn {
    use RelaunchGrounds::*;
    match (stateful, grounds) {
        (false, _) | (true, None | Some(Dead)) | (true, Some(Released { verdict: VerdictKind::Dead })) => {
            OnReturn::Fence
        }
        (true, Some(WhilePartitioned | Unconfirmed | Released { .. })) => OnReturn::ReportBothCopies,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(n: u8) -> ServerId {
        ServerId::parse(&format!("op-{n:017x}")).unwrap()
    }

    fn answer(workload: &str, result: ProbeResult) -> ProbeAnswer {
        ProbeAnswer { workload: workload.into(), target: "10.1.0.5:5432".into(), result }
    }

    fn report(control: ProbeResult, answers: Vec<ProbeAnswer>) -> WitnessReport {
        WitnessReport { witness: "i-witness".into(), control: "10.1.0.1".into(), control_result: control, answers }
    }

    #[test]
    fn the_policy_tag_defaults_by_kind_and_fails_closed_on_anything_else() {
        use OnPartition::*;
        let cases: &[(Option<&str>, bool, Result<OnPartition, PolicyError>)] = &[
            (None, true, Ok(Hold)),
            (None, false, Ok(Relaunch)),
            (Some(""), true, Ok(Hold)),
            (Some("  "), false, Ok(Relaunch)),
            (Some("relaunch"), true, Ok(Relaunch)),
            (Some("HOLD"), false, Ok(Hold)),
            (Some(" hold "), true, Ok(Hold)),
            (Some("yes"), true, Err(PolicyError::BadOnPartition("yes".into()))),
            (Some("relaunch,hold"), false, Err(PolicyError::BadOnPartition("relaunch,hold".into()))),
        ];
        for (value, stateful, expected) in cases {
            assert_eq!(&OnPartition::from_tag(*value, *stateful), expected, "{value:?} stateful={stateful}");
        }
        let (policy, error) = OnPartition::or_hold(OnPartition::from_tag(Some("yes"), false));
        assert_eq!(policy, Hold, "a stateless workload with a bad tag is held too");
        assert!(error.unwrap().to_string().contains("held until it is fixed"));
        assert_eq!(WhenUnconfirmed::parse("Hold"), Ok(WhenUnconfirmed::Hold));
        assert!(WhenUnconfirmed::parse("maybe").unwrap_err().to_string().contains("relaunch or hold"));
    }

    #[test]
    fn every_stateful_workload_and_every_held_one_needs_the_witness() {
        use OnPartition::*;
        assert!(!needs_witness([(false, Relaunch), (false, Relaunch)]));
        assert!(needs_witness([(false, Relaunch), (false, Hold)]));
        assert!(needs_witness([(true, Relaunch)]), "its original's fate on return depends on the verdict");
        assert!(!needs_witness([]));
    }

    #[test]
    fn verdicts_per_workload_from_the_witness_report() {
        use ProbeResult::*;
        let r = report(
            Connected,
            vec![answer("db", NoReply), answer("web", Connected), answer("cache", Refused), answer("db", NoReply)],
        );
        assert_eq!(
            verdict_for("db", Ok(&r)),
            Verdict::Dead { answers: vec![answer("db", NoReply), answer("db", NoReply)] }
        );
        assert_eq!(verdict_for("web", Ok(&r)), Verdict::Partitioned { answers: vec![answer("web", Connected)] });
        assert_eq!(
            verdict_for("cache", Ok(&r)),
            Verdict::Partitioned { answers: vec![answer("cache", Refused)] },
            "a refused connection is a host that is up"
        );
        assert_eq!(
            verdict_for("kiosk", Ok(&r)),
            Verdict::Unconfirmed { cause: UnconfirmedCause::NothingToProbe },
            "no LNI address: never called dead"
        );
        let blind = report(NoReply, vec![answer("db", NoReply)]);
        assert!(
            matches!(
                verdict_for("db", Ok(&blind)),
                Verdict::Unconfirmed { cause: UnconfirmedCause::WitnessBlind { .. } }
            ),
            "silence from a witness that reaches nothing is not death"
        );
        let blind_but_heard = report(NoReply, vec![answer("db", Connected)]);
        assert_eq!(verdict_for("db", Ok(&blind_but_heard)).kind(), VerdictKind::Partitioned);
        let offline = UnconfirmedCause::WitnessOffline { witness: "i-witness".into() };
        assert_eq!(verdict_for("db", Err(&offline)), Verdict::Unconfirmed { cause: offline.clone() });
    }

    #[test]
    fn the_breaker_refuses_a_threshold_of_zero_and_windows_out_of_range() {
        assert_eq!(WaveBreaker::new(0, 10), Err(PolicyError::BadWaveThreshold(0)));
        assert_eq!(WaveBreaker::new(3, 0), Err(PolicyError::BadWaveWindow(0)));
        assert_eq!(WaveBreaker::new(3, 1441), Err(PolicyError::BadWaveWindow(1441)));
        assert_eq!(WaveBreaker::new(3, 10).unwrap().window, Duration::minutes(10));
    }

    #[test]
    fn a_wave_is_found_for_its_first_servers_once_the_later_ones_are_known() {
        let t0 = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let m = Duration::minutes;
        let breaker = WaveBreaker::new(2, 10).unwrap();
        let (a, b, c, d) = (server(1), server(2), server(3), server(4));
        // A alone, then A and B: not more than two.
        assert_eq!(wave_of(&[(a.clone(), t0)], &a, t0, breaker), None);
        let two = [(a.clone(), t0), (b.clone(), t0 + m(1))];
        assert_eq!(wave_of(&two, &a, t0, breaker), None);
        // C two minutes in: A, B and C are one wave, found from A's outage as from C's.
        let three = [(a.clone(), t0), (b.clone(), t0 + m(1)), (c.clone(), t0 + m(2))];
        let wave = Wave { started_at: format_timestamp(t0), servers: vec![a.clone(), b.clone(), c.clone()] };
        assert_eq!(wave_of(&three, &a, t0, breaker), Some(wave.clone()));
        assert_eq!(wave_of(&three, &c, t0 + m(2), breaker), Some(wave.clone()), "the same wave, the same identity");
        // A redelivery long after still finds it (windows are anchored on the outages).
        assert_eq!(wave_of(&three, &b, t0 + m(1), breaker), Some(wave));
        // D eleven minutes after A, with B and C: its own window (from B) holds B, C and D.
        let four = [(a.clone(), t0), (b.clone(), t0 + m(1)), (c.clone(), t0 + m(2)), (d.clone(), t0 + m(11))];
        assert_eq!(
            wave_of(&four, &d, t0 + m(11), breaker),
            Some(Wave { started_at: format_timestamp(t0 + m(1)), servers: vec![b.clone(), c.clone(), d.clone()] })
        );
        // One server down twice counts once.
        let repeated = [(a.clone(), t0), (a.clone(), t0 + m(1)), (b.clone(), t0 + m(2))];
        assert_eq!(wave_of(&repeated, &b, t0 + m(2), breaker), None);
    }

    #[test]
    fn decisions_by_kind_policy_verdict_wave_release_and_return() {
        use OnPartition::{Hold as PHold, Relaunch as PRelaunch};
        use RelaunchGrounds::*;
        let dead = Verdict::Dead { answers: vec![answer("db", ProbeResult::NoReply)] };
        let partitioned = Verdict::Partitioned { answers: vec![answer("db", ProbeResult::Connected)] };
        let unconfirmed = Verdict::Unconfirmed { cause: UnconfirmedCause::NoWitness };
        let t0 = format_timestamp(OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap());
        let wave = Wave { started_at: t0.clone(), servers: vec![server(1), server(2)] };
        let bad_tag = PolicyError::BadOnPartition("yes".into());
        let relaunch = |grounds| PartitionDecision::Relaunch { grounds };
        let held = |why| PartitionDecision::Hold { why };
        let held_wave = held(HoldReason::Wave { started_at: t0.clone(), servers: wave.servers.clone() });
        struct Case<'a> {
            stateful: bool,
            policy: OnPartition,
            verdict: &'a Verdict,
            when_unconfirmed: WhenUnconfirmed,
            wave: bool,
            misdeclared: bool,
            released: bool,
            back: bool,
            expected: PartitionDecision,
        }
        let case = |stateful, policy, verdict, when_unconfirmed, expected| Case {
            stateful,
            policy,
            verdict,
            when_unconfirmed,
            wave: false,
            misdeclared: false,
            released: false,
            back: false,
            expected,
        };
        use WhenUnconfirmed::{Hold as UHold, Relaunch as URelaunch};
        let cases = vec![
            case(true, PHold, &dead, UHold, relaunch(Dead)),
            case(true, PHold, &partitioned, URelaunch, held(HoldReason::Partitioned)),
            case(true, PHold, &unconfirmed, UHold, held(HoldReason::Unconfirmed)),
            case(true, PHold, &unconfirmed, URelaunch, relaunch(Unconfirmed)),
            case(true, PRelaunch, &partitioned, UHold, relaunch(WhilePartitioned)),
            case(false, PRelaunch, &partitioned, UHold, relaunch(WhilePartitioned)),
            case(false, PRelaunch, &unconfirmed, UHold, relaunch(Unconfirmed)),
            case(false, PHold, &partitioned, URelaunch, held(HoldReason::Partitioned)),
            // A wave holds every stateful workload, whatever the verdict or its policy...
            Case { wave: true, ..case(true, PHold, &dead, URelaunch, held_wave.clone()) },
            Case { wave: true, ..case(true, PRelaunch, &dead, URelaunch, held_wave) },
            // ...and stateless ones follow their own policy.
            Case { wave: true, ..case(false, PRelaunch, &dead, UHold, relaunch(Dead)) },
            Case { wave: true, ..case(false, PHold, &unconfirmed, UHold, held(HoldReason::Unconfirmed)) },
            // A misdeclared policy holds (the policy given is the fail-closed Hold).
            Case {
                misdeclared: true,
                ..case(false, PHold, &dead, URelaunch, held(HoldReason::Misdeclared { error: bad_tag.to_string() }))
            },
            // A release relaunches whatever held it, keeping the verdict...
            Case {
                wave: true,
                released: true,
                ..case(true, PHold, &partitioned, UHold, relaunch(Released { verdict: VerdictKind::Partitioned }))
            },
            Case {
                released: true,
                ..case(true, PHold, &dead, UHold, relaunch(Released { verdict: VerdictKind::Dead }))
            },
            // ...unless the server is back: its original serves, nothing is relaunched.
            Case { released: true, back: true, ..case(true, PHold, &partitioned, UHold, PartitionDecision::StandDown) },
            Case { back: true, ..case(false, PRelaunch, &dead, UHold, PartitionDecision::StandDown) },
        ];
        for (i, c) in cases.into_iter().enumerate() {
            let facts = PartitionFacts {
                stateful: c.stateful,
                policy: c.policy,
                misdeclared: c.misdeclared.then_some(&bad_tag),
                verdict: c.verdict,
                when_unconfirmed: c.when_unconfirmed,
                wave: c.wave.then_some(&wave),
                operator_released: c.released,
                server_back: c.back,
            };
            assert_eq!(decide(facts), c.expected, "case {i}: {facts:?}");
        }
    }

    #[test]
    fn a_stateful_original_is_fenced_only_when_the_witness_heard_nothing() {
        use RelaunchGrounds::*;
        let all = [
            Dead,
            WhilePartitioned,
            Unconfirmed,
            Released { verdict: VerdictKind::Dead },
            Released { verdict: VerdictKind::Partitioned },
            Released { verdict: VerdictKind::Unconfirmed },
        ];
        for grounds in all {
            assert_eq!(on_return(false, Some(grounds)), OnReturn::Fence, "stateless, {grounds:?}");
        }
        assert_eq!(on_return(false, None), OnReturn::Fence);
        assert_eq!(on_return(true, None), OnReturn::Fence, "launched before witnesses: as before");
        assert_eq!(on_return(true, Some(Dead)), OnReturn::Fence);
        assert_eq!(on_return(true, Some(Released { verdict: VerdictKind::Dead })), OnReturn::Fence);
        for grounds in [
            WhilePartitioned,
            Unconfirmed,
            Released { verdict: VerdictKind::Partitioned },
            Released { verdict: VerdictKind::Unconfirmed },
        ] {
            assert_eq!(on_return(true, Some(grounds)), OnReturn::ReportBothCopies, "stateful, {grounds:?}");
        }
    }

    #[test]
    fn probe_targets_are_ipv4_addresses_with_an_optional_port() {
        assert_eq!(parse_probe_target(" 10.1.0.5:5432 "), Some("10.1.0.5:5432".into()));
        assert_eq!(parse_probe_target("10.1.0.5"), Some("10.1.0.5".into()));
        for bad in
            ["", "db.store.local:5432", "10.1.0.5:0", "10.1.0.5:70000", "10.1.0.5:", "10.1.0.5 8080", "10.1.0.5;reboot"]
        {
            assert_eq!(parse_probe_target(bad), None, "{bad}");
        }
        assert_eq!(probe_targets([("db", "10.1.0.5:5432"), ("pos", "10.1.0.6")]), "db=10.1.0.5:5432 pos=10.1.0.6");
    }

    #[test]
    fn the_probe_output_becomes_a_report_and_a_malformed_one_is_named() {
        let output = "probing 2 targets\ncontrol 10.1.0.1 connected\ntarget db 10.1.0.5:5432 refused\ntarget pos 10.1.0.6 no_reply\n";
        let report = parse_probe_output("i-witness", output).unwrap();
        assert_eq!(report.control, "10.1.0.1");
        assert_eq!(report.control_result, ProbeResult::Connected);
        assert_eq!(report.answers.len(), 2);
        assert_eq!(verdict_for("db", Ok(&report)).kind(), VerdictKind::Partitioned);
        assert_eq!(verdict_for("pos", Ok(&report)).kind(), VerdictKind::Dead);
        let no_gateway = parse_probe_output("i-witness", "control no_reply\ntarget db 10.1.0.5 no_reply").unwrap();
        assert_eq!(verdict_for("db", Ok(&no_gateway)).kind(), VerdictKind::Unconfirmed);
        assert!(parse_probe_output("i-w", "target db 10.1.0.5 connected").unwrap_err().contains("no control line"));
        assert!(parse_probe_output("i-w", "control 10.1.0.1 maybe").unwrap_err().contains("'maybe'"));
        let finding = WitnessFinding::Answered { report };
        let json = serde_json::to_value(&finding).unwrap();
        assert_eq!(json["finding"], "answered");
        assert_eq!(serde_json::from_value::<WitnessFinding>(json).unwrap(), finding);
    }

    #[test]
    fn the_drill_checks_the_witness_of_every_workload_it_concerns() {
        use OnPartition::*;
        let relaunch = WhenUnconfirmed::Relaunch;
        let probe = Some("10.1.0.5:5432");
        assert_eq!(witness_check(false, (Relaunch, None), None, None, relaunch), None, "not its concern");
        let ok = witness_check(true, (Hold, None), probe, Some("i-w"), WhenUnconfirmed::Hold).unwrap();
        assert_eq!(ok, WitnessCheck { note: "i-w probes 10.1.0.5:5432".into(), blocks: false });
        let none = witness_check(true, (Hold, None), probe, None, relaunch).unwrap();
        assert!(!none.blocks && none.note.contains("no running witness"), "{none:?}");
        let held = witness_check(true, (Hold, None), None, Some("i-w"), WhenUnconfirmed::Hold).unwrap();
        assert!(held.blocks && held.note.contains("no probe address") && held.note.contains("held"), "{held:?}");
        let bad = OnPartition::or_hold(OnPartition::from_tag(Some("maybe"), false));
        assert!(witness_check(false, bad, probe, Some("i-w"), relaunch).unwrap().blocks);
    }

    #[test]
    fn verdicts_and_decisions_serialize_with_their_evidence() {
        let verdict = Verdict::Partitioned { answers: vec![answer("db", ProbeResult::Refused)] };
        let json = serde_json::to_value(&verdict).unwrap();
        assert_eq!(json["kind"], "partitioned");
        assert_eq!(json["answers"][0]["result"], "refused");
        assert_eq!(serde_json::from_value::<Verdict>(json).unwrap(), verdict);
        let t0 = format_timestamp(OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap());
        let decision =
            PartitionDecision::Hold { why: HoldReason::Wave { started_at: t0.clone(), servers: vec![server(1)] } };
        let json = serde_json::to_value(&decision).unwrap();
        assert_eq!(json["decision"], "hold");
        assert_eq!(json["why"]["held_because"], "wave");
        assert_eq!(json["why"]["started_at"], t0.as_str());
        assert_eq!(serde_json::from_value::<PartitionDecision>(json).unwrap(), decision);
        let grounds = serde_json::to_value(RelaunchGrounds::Released { verdict: VerdictKind::Dead }).unwrap();
        assert_eq!(grounds, serde_json::json!({"grounds": "released", "verdict": "dead"}));
    }
}
