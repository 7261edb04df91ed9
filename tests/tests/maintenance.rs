//! Maintenance windows against moto: set by an operator's request to the operator function, an
//! outage inside the window is recorded and announced as suppressed, once, and launches
//! nothing; the window lapses by itself. Times are relative to now: a window suppresses
//! only while it lasts.

use outposts_ha_tests::emulator::Emulator;
use outposts_ha_tests::site::Site;
use outposts_ha_tests::stack::{alarm_event, Stack};

const SERVER_A: &str = "op-0000000000000000a";
const ALARM_A: &str = "outposts-ha-store-a";

#[tokio::test]
async fn an_outage_inside_the_window_is_announced_as_suppressed_and_one_after_it_relaunches() {
    let moto = Emulator::start().await;
    let sdk = moto.sdk_config().await;
    let stack = Stack::deploy(&sdk, 8).await;
    let site = Site::create(&sdk).await;
    let standby = site.subnet("10.0.2.0/24").await;
    for name in ["pos", "kiosk"] {
        site.declare(SERVER_A, name, &[&standby], 10).await;
    }
    let at = |minutes: i64| {
        let t = time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() + time::Duration::minutes(minutes);
        t.format(&time::format_description::well_known::Rfc3339).unwrap()
    };
    // CloudWatch's own timestamp form, as alarm events carry it.
    let alarm_at = |minutes: i64| {
        let t = time::OffsetDateTime::now_utc() + time::Duration::minutes(minutes);
        let form = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].000+0000");
        t.format(&form).unwrap()
    };
    let until = at(8 * 60);
    let request = |until: &str| {
        serde_json::json!({
            "detail-type": "MaintenanceRequested", "source": "outposts-ha",
            "detail": {"server_id": SERVER_A, "until": until, "reason": "firmware", "requested_at": at(0)}
        })
    };
    let set = stack.operator.handle(request(&until)).await.unwrap();
    assert!(
        matches!(&set, operator::Response::Maintenance { until: u, reason, .. } if *u == until && reason == "firmware"),
        "{set:?}"
    );
    let refused = stack.operator.handle(request("+4h")).await.unwrap();
    assert!(refused.refused().is_some_and(|r| r.contains("RFC 3339")), "{refused:?}");

    let during = alarm_event(ALARM_A, SERVER_A, "OK", "ALARM", &alarm_at(-1));
    for _ in 0..2 {
        let outcome = stack.alarm(&during).await.unwrap();
        assert!(matches!(&outcome[0], alarm_handler::Outcome::Suppressed { .. }), "{outcome:?}");
    }
    stack.deliver().await;
    assert!(site.replacements().await.is_empty(), "nothing relaunched during maintenance");
    let notes = stack.notifications().await;
    assert_eq!(notes.len(), 1, "announced once: {notes:#?}");
    assert_eq!(notes[0].event_type, "RelaunchSuppressed");
    assert!(
        notes[0].body.contains("inside its maintenance window until") && notes[0].body.contains("(firmware)"),
        "{}",
        notes[0].body
    );
    assert!(
        notes[0].body.contains("relaunched (2): pos, kiosk") || notes[0].body.contains("relaunched (2): kiosk, pos"),
        "{}",
        notes[0].body
    );

    // The window lapsed: the next outage relaunches, and the suppressed one held nothing open.
    let after = alarm_event(ALARM_A, SERVER_A, "OK", "ALARM", &alarm_at(8 * 60 + 1));
    let outcome = stack.alarm(&after).await.unwrap();
    assert!(
        matches!(&outcome[0], alarm_handler::Outcome::Relaunching { new_incident: true, flap: false, .. }),
        "{outcome:?}"
    );
    stack.deliver().await;
    assert_eq!(site.replacements().await.len(), 2);
}
