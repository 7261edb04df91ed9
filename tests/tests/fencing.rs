//! Safe return against moto: when the failed server comes back, exactly the originals of
//! replaced workloads are fenced per policy, once, and the incident is closed.

use ha_domain::model::tag;
use outposts_ha_tests::emulator::Emulator;
use outposts_ha_tests::site::{tag_of, Site};
use outposts_ha_tests::stack::{alarm_event, Stack};

const SERVER_A: &str = "op-0000000000000000a";
const SERVER_B: &str = "op-0000000000000000b";
const ALARM_A: &str = "outposts-ha-store-a";

async fn instance(site: &Site, id: &str) -> aws_sdk_ec2::types::Instance {
    let out = site.ec2.describe_instances().instance_ids(id).send().await.unwrap();
    out.reservations()[0].instances()[0].clone()
}

fn groups(i: &aws_sdk_ec2::types::Instance) -> Vec<String> {
    i.security_groups().iter().filter_map(|g| g.group_id().map(str::to_string)).collect()
}

fn state(i: &aws_sdk_ec2::types::Instance) -> String {
    i.state().and_then(|s| s.name()).map(|n| n.as_str().to_string()).unwrap_or_default()
}

#[tokio::test]
async fn a_recovered_server_has_exactly_its_replaced_originals_fenced_once_and_its_incident_closed() {
    let moto = Emulator::start().await;
    let sdk = moto.sdk_config().await;
    let stack = Stack::deploy(&sdk, 8).await;
    let site = Site::create(&sdk).await;
    let home = site.subnet("10.0.1.0/24").await;
    let standby = site.subnet("10.0.2.0/24").await;

    let pos = site.declare(SERVER_A, "pos", &[&standby], 10).await;
    let db = site.declare_with(SERVER_A, "db", &[&standby], 20, None, &[(tag::FENCING, "terminate")]).await;
    let kiosk = site.declare_with(SERVER_A, "kiosk", &[&standby], 30, None, &[(tag::FENCING, "notify")]).await;
    // Its only destination does not exist: it is not replaced, so its original is never touched.
    let broken = site.declare(SERVER_A, "broken", &["subnet-0123456789abcdef0"], 40).await;
    let elsewhere = site.declare(SERVER_B, "elsewhere", &[&standby], 10).await;

    // The originals have security groups of their own, as on AWS (moto gives none).
    let mut own_groups = Vec::new();
    for name in ["app", "web"] {
        let g = site.ec2.create_security_group().group_name(name).description(name).vpc_id(&site.vpc_id).send().await;
        own_groups.push(g.unwrap().group_id().unwrap().to_string());
    }
    let mut originals = std::collections::BTreeMap::new();
    for w in [&pos, &db, &kiosk, &broken, &elsewhere] {
        let id = site.original(w, &home, &[(tag::WORKLOAD, w.name.as_str())]).await;
        site.ec2
            .modify_instance_attribute()
            .instance_id(&id)
            .set_groups(Some(own_groups.clone()))
            .send()
            .await
            .unwrap();
        originals.insert(w.name.clone(), id);
    }
    let before = |name: &str| originals[name].clone();
    let pos_groups_before = groups(&instance(&site, &before("pos")).await);
    assert_eq!(pos_groups_before, own_groups);

    stack.alarm(&alarm_event(ALARM_A, SERVER_A, "OK", "ALARM", "2026-11-22T10:00:00.000+0000")).await.unwrap();
    stack.deliver().await;
    let replacements = site.replacements().await;
    assert_eq!(replacements.len(), 3, "pos, db and kiosk replaced; broken not");
    let incident = tag_of(&replacements[0], tag::INCIDENT).unwrap().to_string();
    stack.notifications().await;

    let recovered = alarm_event(ALARM_A, SERVER_A, "ALARM", "OK", "2026-11-22T10:20:00.000+0000");
    stack.alarm(&recovered).await.unwrap();
    let delivered = stack.deliver().await;
    assert!(delivered.handler_errors.is_empty(), "{:?}", delivered.handler_errors);
    let fence_report = delivered
        .relaunch_reports
        .iter()
        .filter_map(|r| r.as_fence())
        .find(|r| r.incident_closed)
        .expect("a fencing pass");
    assert_eq!(fence_report.fenced.len(), 3, "{fence_report:?}");

    // isolate: the quarantine group only, the previous groups kept in a tag.
    let pos_now = instance(&site, &before("pos")).await;
    let quarantine = groups(&pos_now);
    assert_eq!(quarantine.len(), 1);
    assert_ne!(quarantine, pos_groups_before);
    assert_eq!(tag_of(&pos_now, tag::FENCED), Some(incident.as_str()));
    let primary = pos_now.network_interfaces()[0].network_interface_id().unwrap();
    let kept = tag_of(&pos_now, &ha_domain::fencing::fenced_groups_key(primary));
    assert_eq!(kept, Some(pos_groups_before.join(",").as_str()));
    let q = site.ec2.describe_security_groups().group_ids(&quarantine[0]).send().await.unwrap();
    assert!(
        q.security_groups()[0].ip_permissions().is_empty() && q.security_groups()[0].ip_permissions_egress().is_empty()
    );
    // terminate and notify.
    assert!(matches!(state(&instance(&site, &before("db")).await).as_str(), "shutting-down" | "terminated"));
    let kiosk_now = instance(&site, &before("kiosk")).await;
    assert_eq!(state(&kiosk_now), "running");
    assert_eq!(tag_of(&kiosk_now, tag::FENCED), Some(incident.as_str()));
    // Never touched: the original of a workload that was not replaced, another server's
    // instance, and the replacements.
    for name in ["broken", "elsewhere"] {
        let i = instance(&site, &before(name)).await;
        assert_eq!((state(&i).as_str(), tag_of(&i, tag::FENCED)), ("running", None), "{name}");
        assert_eq!(groups(&i), pos_groups_before, "{name}");
    }
    for r in site.replacements().await {
        assert!(!groups(&r).contains(&quarantine[0]));
        assert_eq!(tag_of(&r, tag::FENCED), None);
    }

    let facts = stack.told().await;
    assert_eq!(facts.iter().filter(|n| n.event_type == "OriginalFenced").count(), 3, "{facts:#?}");
    // Mailed: only the original a person must deal with, and the closing.
    let notes = stack.notifications().await;
    let fenced: Vec<_> = notes.iter().filter(|n| n.event_type == "OriginalFenced").collect();
    assert_eq!(fenced.len(), 1, "{notes:#?}");
    assert!(fenced[0].body.contains("kiosk"), "{}", fenced[0].body);
    assert_eq!(fenced[0].severity, "critical", "two copies running needs a person");
    assert!(fenced[0].body.contains("Two copies of kiosk are running"), "{}", fenced[0].body);
    let closed: Vec<_> = notes.iter().filter(|n| n.event_type == "IncidentClosed").collect();
    assert_eq!(closed.len(), 1);
    assert!(closed[0].body.contains("Originals of the 3 replaced workload(s):"), "{}", closed[0].body);
    assert!(closed[0].body.contains("Timeline:"), "{}", closed[0].body);

    // Redelivered: nothing is fenced twice, nothing is announced twice.
    stack.alarm(&recovered).await.unwrap();
    let again = stack.deliver().await;
    assert!(
        again.relaunch_reports.iter().filter_map(|r| r.as_fence()).all(|r| r.fenced.is_empty()),
        "{:?}",
        again.relaunch_reports
    );
    assert!(stack.notifications().await.is_empty(), "nothing mailed twice");
    assert!(stack.told().await.iter().all(|n| n.event_type == "ServerRecovered"));
    assert_eq!(groups(&instance(&site, &before("pos")).await), quarantine);

    // On an operator's word (`make unfence INCIDENT=…`) the live fenced originals go back,
    // but not while their replacements run: pos and kiosk stay fenced until forced (db was
    // terminated; it is not found).
    let unfence = |force: bool| {
        serde_json::json!({
            "detail-type": "UnfenceRequested", "source": "outposts-ha",
            "detail": {"incident_id": incident, "force": force, "requested_at": "2026-11-22T11:00:00.000Z"}
        })
    };
    let held = stack.operator.handle(unfence(false)).await.unwrap();
    let held = held.as_unfence().expect("an unfence report");
    assert!(held.restored.is_empty(), "{held:?}");
    assert_eq!(held.left_isolated.len(), 2, "{held:?}");
    assert!(held.left_isolated.iter().all(|l| l.reason.contains("replacement") && l.reason.contains("still runs")));
    assert_eq!(groups(&instance(&site, &before("pos")).await), quarantine);

    let response = stack.operator.handle(unfence(true)).await.unwrap();
    let unfenced = response.as_unfence().expect("an unfence report");
    let mut back: Vec<&str> = unfenced.restored.iter().map(|r| r.instance_id.as_str()).collect();
    back.sort();
    let mut want = vec![originals["pos"].as_str(), originals["kiosk"].as_str()];
    want.sort();
    assert_eq!(back, want);
    for name in ["pos", "kiosk"] {
        let i = instance(&site, &before(name)).await;
        assert_eq!(groups(&i), pos_groups_before, "{name}");
        let marks: Vec<&str> = i.tags().iter().filter_map(|t| t.key()).filter(|k| k.starts_with(tag::FENCED)).collect();
        assert!(marks.is_empty(), "{name}: {marks:?}");
    }
    stack.deliver().await;
    let told: Vec<_> = stack.notifications().await.into_iter().filter(|n| n.event_type == "OriginalUnfenced").collect();
    assert_eq!(told.len(), 2, "each original put back is told once: {told:#?}");
    assert!(told.iter().all(|n| n.severity == "critical" && n.body.contains("Two copies")), "{told:#?}");
    let again = stack.operator.handle(unfence(false)).await.unwrap();
    assert!(again.refused().is_some_and(|r| r.starts_with("no fenced instance found")), "{again:?}");

    // The incident is closed: the next outage of the server is a new incident.
    stack.alarm(&alarm_event(ALARM_A, SERVER_A, "OK", "ALARM", "2026-11-23T08:00:00.000+0000")).await.unwrap();
    stack.deliver().await;
    let notes = stack.notifications().await;
    assert!(notes.iter().any(|n| n.event_type == "IncidentOpened"), "{notes:#?}");
    assert!(notes.iter().all(|n| n.event_type != "IncidentContinued"));
}
