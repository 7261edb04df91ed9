//! Incident identity and the pure decisions about opening one.

use crate::contract::MaintenanceRequested;
use crate::ledger::MAX_MAINTENANCE_SECONDS;
use crate::model::{ServerId, WorkloadTagError};
use crate::timefmt::{format_timestamp, parse_timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;
use time::OffsetDateTime;

/// One transition of one protected server's alarm into ALARM.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IncidentId(String);

impl IncidentId {
    /// Deterministic from alarm ARN + state-change time, so every redelivery of one
    /// transition, in any of the three payload shapes, names the same incident.
    pub fn derive(alarm_arn: &str, state_change_time: OffsetDateTime) -> Self {
        let digest = sha256_hex(&[alarm_arn, &format_timestamp(state_change_time)]);
        IncidentId(format!("inc-{}", &digest[..24]))
    }

    pub fn from_stored(text: impl Into<String>) -> Self {
        IncidentId(text.into())
    }

    /// An id as an operator types it: `inc-` and 24 lowercase hex digits, nothing else (no
    /// EC2 filter wildcards).
    pub fn parse(text: &str) -> Option<Self> {
        let hex = text.strip_prefix("inc-")?;
        (hex.len() == 24 && hex.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)))
            .then(|| IncidentId(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for IncidentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn sha256_hex(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]); // separator: ("ab","c") and ("a","bc") must differ
    }
    hex::encode(h.finalize())
}

/// EC2 `ClientToken` for launching `workload` for `incident` into destination `attempt`
/// (0 = preferred subnet). 52 characters, within EC2's 64. A different destination needs
/// a different token, because EC2 rejects a reused token with other parameters.
pub fn client_token(incident: &IncidentId, workload: &str, attempt: usize) -> String {
    let digest = sha256_hex(&[incident.as_str(), workload, &attempt.to_string()]);
    format!("ohaR{}", &digest[..48])
}

/// What the ledger says about the server's open incident, as the alarm handler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerLedgerState {
    /// No open incident: the derived incident may claim the server.
    Free,
    /// This very incident already holds the server (a redelivery).
    HeldBySame,
    /// Another incident is still open for the server (a flap: ALARM→OK→ALARM).
    HeldByOther(IncidentId),
}

/// What to do about a server-down transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncidentDecision {
    /// Hand the server's workloads to relaunch under this incident.
    Relaunch { incident: IncidentId, continued_from_flap: bool },
}

/// Pure: a server-down transition relaunches under the incident that holds the server.
/// A flap continues the open incident, so workloads already replaced are not launched
/// again (the per-workload claims dedupe); only missing ones are.
pub fn decide_incident(derived: &IncidentId, server: &ServerLedgerState) -> IncidentDecision {
    match server {
        ServerLedgerState::Free | ServerLedgerState::HeldBySame => {
            IncidentDecision::Relaunch { incident: derived.clone(), continued_from_flap: false }
        }
        ServerLedgerState::HeldByOther(open) => {
            IncidentDecision::Relaunch { incident: open.clone(), continued_from_flap: true }
        }
    }
}

/// A maintenance window of a protected server: relaunch is suppressed until it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceWindow {
    pub until_epoch: i64,
    pub until: String,
    pub reason: String,
}

/// Pure: does the window suppress an alarm that changed state at `alarm_time`, handled
/// `now`? Only an outage that began inside the window, and only while the window lasts: a
/// server still down when its window ends is failed over (by the next reconcile pass).
pub fn suppressed_by(window: Option<&MaintenanceWindow>, alarm_time: OffsetDateTime, now: OffsetDateTime) -> bool {
    window.is_some_and(|w| alarm_time.unix_timestamp() < w.until_epoch && now.unix_timestamp() < w.until_epoch)
}

/// Why a maintenance request is refused (nothing is written).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MaintenanceError {
    #[error(transparent)]
    Server(#[from] WorkloadTagError),
    #[error("until '{0}' is not an RFC 3339 time with a zone, like 2026-11-23T06:00:00Z")]
    BadUntil(String),
    #[error("a maintenance window may last at most {} days; {until} is later", MAX_MAINTENANCE_SECONDS / 86_400)]
    TooLong { until: String },
    #[error("the reason must be 1 to 256 characters")]
    BadReason,
}

/// How far apart an operator's clock and the function's may be before the request's own
/// `requested_at` is not trusted (then the function's clock judges).
pub const CLOCK_SKEW_SECONDS: i64 = 300;

/// What a maintenance request changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceChange {
    pub server: ServerId,
    pub window: MaintenanceWindow,
    /// `until` is at or before the request: the window ends now.
    pub ended: bool,
}

/// Pure: the window a maintenance request sets. It is judged against the request's own
/// `requested_at` (the operator's `+4h` was computed from it), unless that is more than
/// [`CLOCK_SKEW_SECONDS`] from `now`.
pub fn maintenance_window(
    r: &MaintenanceRequested,
    now: OffsetDateTime,
) -> Result<MaintenanceChange, MaintenanceError> {
    let server = ServerId::parse(&r.server_id)?;
    let until = parse_timestamp(&r.until).ok_or_else(|| MaintenanceError::BadUntil(r.until.clone()))?;
    let requested = parse_timestamp(&r.requested_at)
        .filter(|t| (*t - now).whole_seconds().abs() <= CLOCK_SKEW_SECONDS)
        .unwrap_or(now);
    if (until - requested).whole_seconds() > MAX_MAINTENANCE_SECONDS {
        return Err(MaintenanceError::TooLong { until: r.until.clone() });
    }
    let reason = r.reason.trim();
    if reason.is_empty() || reason.chars().count() > 256 {
        return Err(MaintenanceError::BadReason);
    }
    let until = until.replace_millisecond(0).unwrap_or(until);
    let window = MaintenanceWindow {
        until_epoch: until.unix_timestamp(),
        until: seconds_text(until),
        reason: reason.to_string(),
    };
    Ok(MaintenanceChange { server, window, ended: until <= requested })
}

/// `2026-11-23T06:00:00Z`: a window's end as people read it.
fn seconds_text(t: OffsetDateTime) -> String {
    let millis = format_timestamp(t);
    match millis.split_once('.') {
        Some((seconds, _)) => format!("{seconds}Z"),
        None => millis,
    }
}

#[cfg(test)]
mod maintenance_tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_window_suppresses_alarms_inside_it_only() {
        let window = MaintenanceWindow {
            until_epoch: datetime!(2026-11-22 12:00 UTC).unix_timestamp(),
            until: "t".into(),
            reason: "r".into(),
        };
        let during = datetime!(2026-11-22 11:30 UTC);
        assert!(suppressed_by(Some(&window), datetime!(2026-11-22 11:59:59 UTC), during));
        assert!(!suppressed_by(Some(&window), datetime!(2026-11-22 12:00 UTC), during));
        assert!(!suppressed_by(None, datetime!(2026-11-22 11:00 UTC), during));
        // Down inside the window and still down after it: no longer suppressed.
        assert!(!suppressed_by(Some(&window), datetime!(2026-11-22 11:30 UTC), datetime!(2026-11-22 12:00 UTC)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timefmt::parse_timestamp;

    const ARN: &str = "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:outposts-ha-store-17";

    #[test]
    fn incident_id_is_stable_across_timestamp_spellings() {
        let a = IncidentId::derive(ARN, parse_timestamp("2026-11-22T10:00:00.500+0000").unwrap());
        let b = IncidentId::derive(ARN, parse_timestamp("2026-11-22T10:00:00.500Z").unwrap());
        assert_eq!(a, b);
        assert!(a.as_str().starts_with("inc-") && a.as_str().len() == 28);
    }

    #[test]
    fn incident_id_differs_by_time_and_alarm() {
        let t1 = parse_timestamp("2026-11-22T10:00:00.500Z").unwrap();
        let t2 = parse_timestamp("2026-11-22T10:05:00.500Z").unwrap();
        assert_ne!(IncidentId::derive(ARN, t1), IncidentId::derive(ARN, t2));
        assert_ne!(IncidentId::derive(ARN, t1), IncidentId::derive(&format!("{ARN}x"), t1));
    }

    #[test]
    fn client_tokens_fit_and_differ() {
        let i = IncidentId::derive(ARN, parse_timestamp("2026-11-22T10:00:00Z").unwrap());
        let t = client_token(&i, "pos-db", 0);
        assert!(t.len() <= 64, "{}", t.len());
        assert_eq!(t, client_token(&i, "pos-db", 0));
        assert_ne!(t, client_token(&i, "pos-db", 1));
        assert_ne!(t, client_token(&i, "pos-d", 0));
        assert_ne!(client_token(&i, "ab", 0), client_token(&IncidentId::from_stored(format!("{i}a")), "b", 0));
        assert!(t.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn incident_decision_table() {
        let derived = IncidentId::from_stored("inc-new");
        let open = IncidentId::from_stored("inc-open");
        let table = [
            (ServerLedgerState::Free, derived.clone(), false),
            (ServerLedgerState::HeldBySame, derived.clone(), false),
            (ServerLedgerState::HeldByOther(open.clone()), open.clone(), true),
        ];
        for (state, want, flap) in table {
            assert_eq!(
                decide_incident(&derived, &state),
                IncidentDecision::Relaunch { incident: want, continued_from_flap: flap },
                "{state:?}"
            );
        }
    }

    #[test]
    fn maintenance_requests_are_judged_before_anything_is_written() {
        use time::macros::datetime;
        let now = datetime!(2026-11-22 09:00 UTC);
        let request = |server: &str, until: &str, reason: &str| MaintenanceRequested {
            server_id: server.into(),
            until: until.into(),
            reason: reason.into(),
            requested_at: "2026-11-22T09:00:00.000Z".into(),
        };
        let op = "op-0123456789abcdef0";
        let set = maintenance_window(&request(op, "2026-11-22T13:00:00.250Z", " firmware "), now).unwrap();
        assert_eq!(set.server.as_str(), op);
        assert_eq!(set.window.until, "2026-11-22T13:00:00Z");
        assert_eq!(set.window.until_epoch, datetime!(2026-11-22 13:00 UTC).unix_timestamp());
        assert_eq!((set.window.reason.as_str(), set.ended), ("firmware", false));
        let ended = maintenance_window(&request(op, "2026-11-22T09:00:00Z", "done"), now).unwrap();
        assert!(ended.ended && !suppressed_by(Some(&ended.window), now, now));
        assert!(maintenance_window(&request(op, "2026-12-22T09:00:00Z", "r"), now).is_ok(), "30 days exactly");
        // The operator's clock 2 minutes ahead: `+30d` from it is still 30 days, and `now`
        // from it still ends the window; a clock hours off is not trusted.
        let ahead = |until: &str| MaintenanceRequested {
            requested_at: "2026-11-22T09:02:00.000Z".into(),
            ..request(op, until, "r")
        };
        assert!(maintenance_window(&ahead("2026-12-22T09:02:00Z"), now).is_ok());
        assert!(maintenance_window(&ahead("2026-11-22T09:02:00Z"), now).unwrap().ended);
        let far = MaintenanceRequested {
            requested_at: "2026-11-22T15:00:00.000Z".into(),
            ..request(op, "2026-12-22T15:00:00Z", "r")
        };
        assert!(maintenance_window(&far, now).is_err(), "judged by the function's clock");
        let refused = [
            (request("store-17", "2026-11-22T13:00:00Z", "r"), "not an Outposts server id"),
            (request(op, "+4h", "r"), "not an RFC 3339 time"),
            (request(op, "2026-12-22T09:00:01Z", "r"), "at most 30 days"),
            (request(op, "2026-11-22T13:00:00Z", "  "), "1 to 256 characters"),
        ];
        for (r, says) in refused {
            let err = maintenance_window(&r, now).unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
        }
    }

    #[test]
    fn typed_incident_ids_are_exactly_the_derived_shape() {
        use time::macros::datetime;
        let derived = IncidentId::derive(ARN, datetime!(2026-11-22 10:00 UTC));
        assert_eq!(IncidentId::parse(derived.as_str()), Some(derived));
        for bad in [
            "",
            "inc-",
            "inc-*",
            "inc-5d0f3b7e9a1c2e4f6a8b0c1",
            "inc-5D0F3B7E9A1C2E4F6A8B0C1D",
            "5d0f3b7e9a1c2e4f6a8b0c1d",
        ] {
            assert_eq!(IncidentId::parse(bad), None, "{bad}");
        }
    }
}
