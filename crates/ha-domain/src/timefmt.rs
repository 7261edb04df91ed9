//! Timestamps as they appear in alarm payloads and as we write them.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::OffsetDateTime;

/// Parses the timestamp forms CloudWatch uses: RFC 3339 (`2019-10-02T17:04:40Z`,
/// `…40.985Z`, `…+00:00`) and the alarm form with a colon-less offset
/// (`2019-10-02T17:04:40.985+0000`).
pub fn parse_timestamp(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    let with_subsec = format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond][offset_hour sign:mandatory][offset_minute]"
    );
    let without_subsec =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory][offset_minute]");
    let parsed = OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(text, &with_subsec))
        .or_else(|_| OffsetDateTime::parse(text, &without_subsec))
        .ok()?;
    // An instant whose UTC form falls outside the calendar (year 9999 at -23:59) is not a time.
    parsed.checked_to_offset(time::UtcOffset::UTC)
}

/// RFC 3339 in UTC with millisecond precision: one canonical text per instant.
pub fn format_timestamp(t: OffsetDateTime) -> String {
    let Some(t) = t.checked_to_offset(time::UtcOffset::UTC) else {
        return t.unix_timestamp().to_string();
    };
    let millis = t.millisecond();
    let t = t.replace_nanosecond(millis as u32 * 1_000_000).unwrap_or(t);
    let fmt = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.format(&fmt).unwrap_or_else(|_| t.unix_timestamp().to_string())
}

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// `47 min`, `3 h 5 min`, `2 d 4 h`: an age as an operator reads it.
pub fn human_duration(seconds: i64) -> String {
    let (d, h, m) = (seconds / 86_400, (seconds % 86_400) / 3600, (seconds % 3600) / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{seconds} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_cloudwatch_forms_name_the_same_instant() {
        let forms = [
            "2019-10-02T17:04:40.985+0000",
            "2019-10-02T17:04:40.985Z",
            "2019-10-02T17:04:40.985+00:00",
            "2019-10-02T19:04:40.985+0200",
        ];
        let canonical: Vec<String> = forms.iter().map(|f| format_timestamp(parse_timestamp(f).expect(f))).collect();
        assert!(canonical.iter().all(|c| c == "2019-10-02T17:04:40.985Z"), "{canonical:?}");
    }

    #[test]
    fn durations_read_like_a_person_wrote_them() {
        let table = [
            (42, "42 s"),
            (47 * 60, "47 min"),
            (3 * 3600, "3 h"),
            (3 * 3600 + 300, "3 h 5 min"),
            (2 * 86_400 + 4 * 3600 + 60, "2 d 4 h"),
            (86_400, "1 d"),
        ];
        for (seconds, text) in table {
            assert_eq!(human_duration(seconds), text);
        }
    }

    #[test]
    fn seconds_only_forms_parse() {
        assert_eq!(format_timestamp(parse_timestamp("2019-10-02T17:04:40Z").unwrap()), "2019-10-02T17:04:40.000Z");
        assert_eq!(format_timestamp(parse_timestamp("2019-10-02T17:04:40+0000").unwrap()), "2019-10-02T17:04:40.000Z");
    }

    #[test]
    fn instants_at_the_edge_of_the_calendar_do_not_panic() {
        assert!(parse_timestamp("9999-12-31T23:59:59.999-23:59").is_none());
        for edge in ["9999-12-31T23:59:59.999+23:59", "0000-01-01T00:00:00.000-23:59", "-0001-01-01T00:00:00Z"] {
            if let Some(t) = parse_timestamp(edge) {
                assert!(format_timestamp(t).ends_with('Z'), "{edge}");
            }
        }
    }

    #[test]
    fn garbage_is_rejected_not_panicked_on() {
        for bad in ["", "yesterday", "2019-13-02T17:04:40Z", "2019-10-02 17:04"] {
            assert!(parse_timestamp(bad).is_none(), "{bad}");
        }
    }
}
