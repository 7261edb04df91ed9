//! How messages address their readers: times in the readers' zone (to the minute, UTC
//! beside a local time), and the links every message ends with.

use ha_domain::timefmt::parse_timestamp;
use jiff::tz::TimeZone;
use jiff::Timestamp;

#[derive(Debug, Clone, Default)]
pub struct Presentation {
    /// `None`: UTC.
    zone: Option<TimeZone>,
    pub runbook_url: String,
    pub dashboard_url: String,
}

/// A time zone name the bundled tz database does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown time zone {0:?}: expected an IANA name such as Europe/Berlin, or UTC")]
pub struct UnknownZone(pub String);

impl Presentation {
    pub fn new(zone: &str, runbook_url: &str, dashboard_url: &str) -> Result<Self, UnknownZone> {
        let zone = match zone.trim() {
            "" | "UTC" | "Etc/UTC" => None,
            name => Some(TimeZone::get(name).map_err(|_| UnknownZone(name.to_string()))?),
        };
        Ok(Presentation { zone, runbook_url: runbook_url.to_string(), dashboard_url: dashboard_url.to_string() })
    }

    /// `2026-12-01 10:00 UTC`, or `2026-12-01 11:00 CET (10:00 UTC)` with a local zone. A
    /// text that is not a time is shown as it is.
    pub fn when(&self, rfc3339: &str) -> String {
        let Some(t) = parse_timestamp(rfc3339) else { return rfc3339.to_string() };
        let Ok(ts) = Timestamp::from_second(t.unix_timestamp()) else { return rfc3339.to_string() };
        let utc = ts.to_zoned(TimeZone::UTC);
        match &self.zone {
            None => utc.strftime("%Y-%m-%d %H:%M UTC").to_string(),
            Some(zone) => {
                let local = ts.to_zoned(zone.clone());
                format!("{} ({})", local.strftime("%Y-%m-%d %H:%M %Z"), utc.strftime("%H:%M UTC"))
            }
        }
    }

    /// `Runbook: …` and `Dashboard: …`, those configured.
    pub fn links(&self) -> Vec<String> {
        let mut links = Vec::new();
        if !self.runbook_url.is_empty() {
            links.push(format!("Runbook: {}", self.runbook_url));
        }
        if !self.dashboard_url.is_empty() {
            links.push(format!("Dashboard: {}", self.dashboard_url));
        }
        links
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_to_the_minute_in_utc_or_local_with_utc_beside() {
        let utc = Presentation::new("", "", "").unwrap();
        assert_eq!(utc.when("2026-12-01T10:00:42.123Z"), "2026-12-01 10:00 UTC");
        let berlin = Presentation::new("Europe/Berlin", "", "").unwrap();
        assert_eq!(berlin.when("2026-12-01T10:00:42Z"), "2026-12-01 11:00 CET (10:00 UTC)");
        assert_eq!(berlin.when("2026-07-01T10:00:00Z"), "2026-07-01 12:00 CEST (10:00 UTC)");
        assert_eq!(utc.when("soon"), "soon", "not a time: as it is");
    }

    #[test]
    fn an_unknown_zone_is_refused_with_its_name() {
        let err = Presentation::new("Mars/Olympus", "", "").unwrap_err();
        assert!(err.to_string().contains("Mars/Olympus"), "{err}");
    }
}
