//! Outposts servers' networking against moto with the network double: a workload whose
//! template declares a primary interface and a local network interface (LNI) fails over
//! with both placed at the destination, its original is isolated and put back interface by
//! interface, and the emulator refuses what EC2 refuses.

use aws_sdk_ec2::types::{
    InstanceNetworkInterfaceSpecification, LaunchTemplateInstanceNetworkInterfaceSpecificationRequest,
    LaunchTemplateSpecification, LaunchTemplateTagSpecificationRequest, RequestLaunchTemplateData, ResourceType, Tag,
    TagSpecification,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use ha_domain::model::tag;
use outposts_ha_tests::emulator::Emulator;
use outposts_ha_tests::site::{tag_of, Site};
use outposts_ha_tests::stack::{alarm_event, Stack};

const SERVER: &str = "op-0000000000000000c";
const ALARM: &str = "outposts-ha-store-c";

/// A subnet whose interfaces at device index 1 are LNIs.
async fn lni_subnet(site: &Site, cidr: &str) -> String {
    let subnet = site.subnet(cidr).await;
    site.ec2.modify_subnet_attribute().subnet_id(&subnet).enable_lni_at_device_index(1).send().await.unwrap();
    subnet
}

/// A launch template with a primary interface in `sg` and an LNI, tagged for `SERVER`.
async fn lni_template(site: &Site, name: &str, sg: &str, destinations: &str) -> String {
    let interfaces = [
        LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder()
            .device_index(0)
            .groups(sg)
            .delete_on_termination(true)
            .build(),
        LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder().device_index(1).build(),
    ];
    let tags = [(tag::PROTECTED_SERVER, SERVER), (tag::SUBNETS, destinations), (tag::WORKLOAD, name)];
    let out = site
        .ec2
        .create_launch_template()
        .launch_template_name(format!("lt-{name}"))
        .launch_template_data(
            RequestLaunchTemplateData::builder()
                .image_id(&site.image_id)
                .set_network_interfaces(Some(interfaces.to_vec()))
                .tag_specifications(
                    LaunchTemplateTagSpecificationRequest::builder()
                        .resource_type(ResourceType::Instance)
                        .tags(Tag::builder().key(tag::WORKLOAD).value(name).build())
                        .build(),
                )
                .build(),
        )
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::LaunchTemplate)
                .set_tags(Some(tags.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build()).collect()))
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.launch_template().unwrap().launch_template_id().unwrap().to_string()
}

/// Each replacement interface: (device index, subnet, security groups).
fn interfaces_of(r: &aws_sdk_ec2::types::Instance) -> Vec<(i32, String, Vec<String>)> {
    let mut placed: Vec<(i32, String, Vec<String>)> = r
        .network_interfaces()
        .iter()
        .map(|n| {
            let index = n.attachment().and_then(|a| a.device_index()).unwrap_or(-1);
            let groups = n.groups().iter().filter_map(|g| g.group_id().map(str::to_string)).collect();
            (index, n.subnet_id().unwrap_or_default().to_string(), groups)
        })
        .collect();
    placed.sort();
    placed
}

#[tokio::test]
async fn workloads_with_an_lni_fail_over_with_both_interfaces_at_the_destination() {
    let moto = Emulator::start().await;
    let sdk = moto.sdk_config().await;
    let stack = Stack::deploy(&sdk, 8).await;
    let site = Site::create(&sdk).await;
    // The usual layout: one LNI-enabled subnet takes the primary interface and the LNI.
    let standby = lni_subnet(&site, "10.0.1.0/24").await;
    // Or the LNI in a subnet of its own, named after a `+`.
    let (other, other_lni) = (site.subnet("10.0.2.0/24").await, lni_subnet(&site, "10.0.3.0/24").await);
    let sg = site.ec2.create_security_group().group_name("pos").description("pos").vpc_id(&site.vpc_id).send().await;
    let sg = sg.unwrap().group_id().unwrap().to_string();
    lni_template(&site, "pos", &sg, &standby).await;
    lni_template(&site, "kiosk", &sg, &format!("{other}+{other_lni}")).await;

    stack.alarm(&alarm_event(ALARM, SERVER, "OK", "ALARM", "2026-11-22T10:00:00.000+0000")).await.unwrap();
    let delivered = stack.deliver().await;
    assert!(delivered.handler_errors.is_empty(), "{:?}", delivered.handler_errors);

    let replacements = site.replacements().await;
    assert_eq!(replacements.len(), 2, "one replacement each");
    for r in &replacements {
        let (subnet, lni) = match tag_of(r, tag::WORKLOAD) {
            Some("pos") => (&standby, &standby),
            Some("kiosk") => (&other, &other_lni),
            other => panic!("unexpected replacement of {other:?}"),
        };
        let placed = interfaces_of(r);
        let at: Vec<(i32, &str)> = placed.iter().map(|(i, s, _)| (*i, s.as_str())).collect();
        assert_eq!(at, vec![(0, subnet.as_str()), (1, lni.as_str())], "the primary and the LNI at the destination");
        assert_eq!(placed[0].2, vec![sg.clone()], "the primary keeps the template's security group");
    }
}

/// The groups of each interface of the instance, by device index.
async fn groups_by_interface(site: &Site, id: &str) -> Vec<(i32, Vec<String>)> {
    let out = site.ec2.describe_instances().instance_ids(id).send().await.unwrap();
    let i = &out.reservations()[0].instances()[0];
    interfaces_of(i).into_iter().map(|(index, _, groups)| (index, groups)).collect()
}

#[tokio::test]
async fn an_original_with_an_lni_is_isolated_on_both_interfaces_and_put_back_on_both() {
    let moto = Emulator::start().await;
    let sdk = moto.sdk_config().await;
    let stack = Stack::deploy(&sdk, 8).await;
    let site = Site::create(&sdk).await;
    let (home, standby) = (lni_subnet(&site, "10.0.1.0/24").await, lni_subnet(&site, "10.0.2.0/24").await);
    let group = |name: &'static str| {
        let ec2 = site.ec2.clone();
        let vpc = site.vpc_id.clone();
        async move {
            let g = ec2.create_security_group().group_name(name).description(name).vpc_id(vpc).send().await;
            g.unwrap().group_id().unwrap().to_string()
        }
    };
    let (app, web, store) = (group("app").await, group("web").await, group("store").await);
    lni_template(&site, "pos", &app, &standby).await;
    // The original as the store runs it: its primary interface in two groups, its LNI in one.
    let nic = |index: i32, groups: &[&String]| {
        InstanceNetworkInterfaceSpecification::builder()
            .device_index(index)
            .subnet_id(&home)
            .set_groups(Some(groups.iter().map(|g| g.to_string()).collect()))
            .build()
    };
    let launched = site
        .ec2
        .run_instances()
        .image_id(&site.image_id)
        .network_interfaces(nic(0, &[&app, &web]))
        .network_interfaces(nic(1, &[&store]))
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap();
    let original = launched.instances()[0].instance_id().unwrap().to_string();
    site.tag(&original, &[(tag::WORKLOAD, "pos"), (tag::PROTECTED_SERVER, SERVER)]).await;
    let before = groups_by_interface(&site, &original).await;
    assert_eq!(before, vec![(0, vec![app.clone(), web.clone()]), (1, vec![store.clone()])]);

    stack.alarm(&alarm_event(ALARM, SERVER, "OK", "ALARM", "2026-11-22T10:00:00.000+0000")).await.unwrap();
    stack.deliver().await;
    assert_eq!(site.replacements().await.len(), 1);
    stack.alarm(&alarm_event(ALARM, SERVER, "ALARM", "OK", "2026-11-22T10:20:00.000+0000")).await.unwrap();
    let delivered = stack.deliver().await;
    assert!(delivered.handler_errors.is_empty(), "{:?}", delivered.handler_errors);
    let closed = delivered.relaunch_reports.iter().filter_map(|r| r.as_fence()).find(|r| r.incident_closed);
    assert_eq!(closed.map(|r| r.fenced.clone()), Some(vec![original.clone()]));

    // Both interfaces in the quarantine group, each one's groups kept.
    let isolated = groups_by_interface(&site, &original).await;
    let quarantine = isolated[0].1.clone();
    assert_eq!(quarantine.len(), 1);
    assert!(![&app, &web, &store].contains(&&quarantine[0]));
    assert_eq!(isolated, vec![(0, quarantine.clone()), (1, quarantine.clone())]);
    let facts = stack.told().await;
    let fenced = facts.iter().find(|n| n.event_type == "OriginalFenced").expect("the fencing told");
    let fenced: serde_json::Value = serde_json::from_str(&fenced.body).unwrap();
    let kept = &fenced["previous_interface_groups"];
    assert_eq!(kept.as_array().map(Vec::len), Some(2), "both interfaces' groups told: {fenced}");
    let told = kept.to_string();
    assert!(told.contains(&app) && told.contains(&web) && told.contains(&store), "{told}");

    // `make unfence FORCE=1` (its replacement still runs): each interface gets its own back.
    let unfence = serde_json::json!({
        "detail-type": "UnfenceRequested", "source": "outposts-ha",
        "detail": {"instance_id": original, "force": true, "requested_at": "2026-11-22T11:00:00.000Z"}
    });
    let response = stack.operator.handle(unfence).await.unwrap();
    let report = response.as_unfence().expect("an unfence report");
    assert_eq!(report.restored.len(), 1, "{report:?}");
    assert_eq!(groups_by_interface(&site, &original).await, before);
    let out = site.ec2.describe_instances().instance_ids(&original).send().await.unwrap();
    let marks: Vec<String> = out.reservations()[0].instances()[0]
        .tags()
        .iter()
        .filter_map(|t| t.key().filter(|k| k.starts_with(tag::FENCED)).map(str::to_string))
        .collect();
    assert!(marks.is_empty(), "fencing marks left: {marks:?}");
}

#[tokio::test]
async fn the_emulator_refuses_what_ec2_refuses_for_network_interfaces() {
    let moto = Emulator::start().await;
    let sdk = moto.sdk_config().await;
    let site = Site::create(&sdk).await;
    let subnet = lni_subnet(&site, "10.0.1.0/24").await;
    let template = lni_template(&site, "pos", "sg-00000000", &subnet).await;
    let from_template = LaunchTemplateSpecification::builder().launch_template_id(&template).build();
    let code = |e: &dyn ProvideErrorMetadata| e.code().map(str::to_string);

    // A template with network interfaces and an instance-level subnet.
    let both = site
        .ec2
        .run_instances()
        .launch_template(from_template.clone())
        .subnet_id(&subnet)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&both).as_deref(), Some("InvalidParameterCombination"), "{both:?}");

    // LNIs as the primary interface.
    let eth0 = site.ec2.modify_subnet_attribute().subnet_id(&subnet).enable_lni_at_device_index(0).send().await;
    let eth0 = eth0.unwrap_err();
    assert_eq!(code(&eth0).as_deref(), Some("InvalidParameterValue"), "{eth0:?}");

    // One security-group list for an instance with two interfaces.
    let nic =
        |index: i32| InstanceNetworkInterfaceSpecification::builder().device_index(index).subnet_id(&subnet).build();
    let two = site
        .ec2
        .run_instances()
        .image_id(&site.image_id)
        .network_interfaces(nic(0))
        .network_interfaces(nic(1))
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap();
    let instance = two.instances()[0].instance_id().unwrap().to_string();
    let groups =
        site.ec2.modify_instance_attribute().instance_id(&instance).groups("sg-00000000").send().await.unwrap_err();
    assert_eq!(code(&groups).as_deref(), Some("InvalidInstanceID"), "{groups:?}");
}
