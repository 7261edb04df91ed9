//! A simulated fleet in the emulator: protected servers, their standby subnets, and one
//! tagged launch template per workload.

use aws_sdk_ec2::types::builders::RequestLaunchTemplateDataBuilder;
use aws_sdk_ec2::types::{
    LaunchTemplateTagSpecificationRequest, RequestLaunchTemplateData, ResourceType, Tag, TagSpecification,
};
use ha_domain::model::tag;

pub struct Site {
    pub ec2: aws_sdk_ec2::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub vpc_id: String,
    pub image_id: String,
    /// The VPC's subnet in the Region tagged `outposts-ha:backup-helper`: where the backup
    /// runbook's helper instance runs.
    pub helper_subnet: String,
}

/// A workload as created in the emulator.
#[derive(Debug, Clone)]
pub struct DeclaredWorkload {
    pub name: String,
    pub launch_template_id: String,
    pub server_id: String,
    pub subnets: Vec<String>,
}

impl Site {
    pub async fn create(sdk: &aws_config::SdkConfig) -> Site {
        let ec2 = aws_sdk_ec2::Client::new(sdk);
        let vpc_id = ec2
            .create_vpc()
            .cidr_block("10.0.0.0/16")
            .send()
            .await
            .unwrap()
            .vpc()
            .unwrap()
            .vpc_id()
            .unwrap()
            .to_string();
        let image_id = ec2.describe_images().send().await.unwrap().images()[0].image_id().unwrap().to_string();
        let helper = ec2
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block("10.0.250.0/24")
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Subnet)
                    .tags(Tag::builder().key(tag::BACKUP_HELPER).value("backups").build())
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let helper_subnet = helper.subnet().unwrap().subnet_id().unwrap().to_string();
        Site { ec2, ssm: aws_sdk_ssm::Client::new(sdk), vpc_id, image_id, helper_subnet }
    }

    /// Points a stateful workload's backup parameter at the site's image, as a backup would.
    pub async fn name_backup(&self, parameter: &str) {
        self.ssm
            .put_parameter()
            .name(parameter)
            .value(&self.image_id)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .data_type("aws:ec2:image")
            .send()
            .await
            .unwrap();
    }

    /// An HTTP:80 target group of instances in the site's VPC; its ARN.
    pub async fn target_group(&self, elb: &aws_sdk_elasticloadbalancingv2::Client, name: &str) -> String {
        let out = elb
            .create_target_group()
            .name(name)
            .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
            .port(80)
            .vpc_id(&self.vpc_id)
            .target_type(aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Instance)
            .send()
            .await
            .unwrap();
        out.target_groups()[0].target_group_arn().unwrap().to_string()
    }

    pub async fn subnet(&self, cidr: &str) -> String {
        self.create_subnet(cidr, None).await
    }

    /// A subnet of the Outposts server (its `OutpostArn` set, as EC2 names it).
    pub async fn outpost_subnet(&self, cidr: &str, server_id: &str) -> String {
        self.create_subnet(cidr, Some(format!("arn:aws:outposts:eu-west-1:123456789012:outpost/{server_id}"))).await
    }

    async fn create_subnet(&self, cidr: &str, outpost_arn: Option<String>) -> String {
        self.ec2
            .create_subnet()
            .vpc_id(&self.vpc_id)
            .cidr_block(cidr)
            .set_outpost_arn(outpost_arn)
            .send()
            .await
            .unwrap()
            .subnet()
            .unwrap()
            .subnet_id()
            .unwrap()
            .to_string()
    }

    /// A launch template declaring one workload of `server_id`, its instances tagged with
    /// the workload (as docs/reference.md asks of operators).
    pub async fn declare(&self, server_id: &str, name: &str, subnets: &[&str], priority: u32) -> DeclaredWorkload {
        self.declare_with(server_id, name, subnets, priority, None, &[]).await
    }

    /// Like [`Site::declare`]; a stateful workload also names its backup parameter, and its
    /// template's image resolves from it (`resolve:ssm:…`), as docs/how-it-works.md asks. `extra`
    /// tags go on the template when it is created (moto's DescribeLaunchTemplates does not
    /// show tags added later with CreateTags).
    pub async fn declare_with(
        &self,
        server_id: &str,
        name: &str,
        subnets: &[&str],
        priority: u32,
        backup_parameter: Option<&str>,
        extra: &[(&'static str, &str)],
    ) -> DeclaredWorkload {
        self.declare_customized(server_id, name, subnets, priority, backup_parameter, extra, |data| data).await
    }

    /// Like [`Site::declare_with`], with the template's data set further by `customize`
    /// (an instance profile, a key pair, tags on more resource types).
    #[allow(clippy::too_many_arguments)]
    pub async fn declare_customized(
        &self,
        server_id: &str,
        name: &str,
        subnets: &[&str],
        priority: u32,
        backup_parameter: Option<&str>,
        extra: &[(&'static str, &str)],
        customize: impl FnOnce(RequestLaunchTemplateDataBuilder) -> RequestLaunchTemplateDataBuilder,
    ) -> DeclaredWorkload {
        let mut lt_tags = vec![
            (tag::PROTECTED_SERVER, server_id.to_string()),
            (tag::SUBNETS, subnets.join(",")),
            (tag::PRIORITY, priority.to_string()),
            (tag::WORKLOAD, name.to_string()),
        ];
        lt_tags.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        let mut instance_tags = vec![Tag::builder().key(tag::WORKLOAD).value(name).build()];
        let image = match backup_parameter {
            Some(p) => {
                lt_tags.push((tag::BACKUP_PARAMETER, p.to_string()));
                instance_tags.push(Tag::builder().key(tag::BACKUP_PARAMETER).value(p).build());
                format!("resolve:ssm:{p}")
            }
            None => self.image_id.clone(),
        };
        let out = self
            .ec2
            .create_launch_template()
            .launch_template_name(format!("lt-{name}"))
            .launch_template_data(
                customize(
                    RequestLaunchTemplateData::builder()
                        .image_id(image)
                        .instance_type(aws_sdk_ec2::types::InstanceType::M5Large)
                        .tag_specifications(
                            LaunchTemplateTagSpecificationRequest::builder()
                                .resource_type(ResourceType::Instance)
                                .set_tags(Some(instance_tags))
                                .build(),
                        ),
                )
                .build(),
            )
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::LaunchTemplate)
                    .set_tags(Some(lt_tags.iter().map(|(k, v)| Tag::builder().key(*k).value(v).build()).collect()))
                    .build(),
            )
            .send()
            .await
            .unwrap();
        DeclaredWorkload {
            name: name.to_string(),
            launch_template_id: out.launch_template().unwrap().launch_template_id().unwrap().to_string(),
            server_id: server_id.to_string(),
            subnets: subnets.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The instance a workload protects, running on its server's own subnet with the tags
    /// the launch template gives its instances, plus `extra`.
    pub async fn original(&self, workload: &DeclaredWorkload, subnet: &str, extra: &[(&str, &str)]) -> String {
        let out = self
            .ec2
            .run_instances()
            .launch_template(
                aws_sdk_ec2::types::LaunchTemplateSpecification::builder()
                    .launch_template_id(&workload.launch_template_id)
                    .build(),
            )
            .image_id(&self.image_id)
            .subnet_id(subnet)
            .min_count(1)
            .max_count(1)
            .send()
            .await
            .unwrap();
        let id = out.instances()[0].instance_id().unwrap().to_string();
        let mut tags = vec![(tag::PROTECTED_SERVER, workload.server_id.as_str())];
        tags.extend_from_slice(extra);
        self.tag(&id, &tags).await;
        id
    }

    pub async fn tag(&self, resource: &str, tags: &[(&str, &str)]) {
        self.ec2
            .create_tags()
            .resources(resource)
            .set_tags(Some(tags.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build()).collect()))
            .send()
            .await
            .unwrap();
    }

    /// Live instances carrying `key=value`.
    pub async fn live_instances_tagged(&self, key: &str, value: &str) -> Vec<aws_sdk_ec2::types::Instance> {
        let out = self
            .ec2
            .describe_instances()
            .filters(aws_sdk_ec2::types::Filter::builder().name(format!("tag:{key}")).values(value).build())
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("instance-state-name")
                    .values("pending")
                    .values("running")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        out.reservations().iter().flat_map(|r| r.instances().to_vec()).collect()
    }

    /// Every live replacement the product launched.
    pub async fn replacements(&self) -> Vec<aws_sdk_ec2::types::Instance> {
        self.live_instances_tagged(tag::ROLE, tag::ROLE_REPLACEMENT).await
    }
}

/// The tag naming a workload's target groups (re-exported for the bench's declarations).
pub const TARGET_GROUPS_TAG: &str = tag::TARGET_GROUPS;

pub fn tag_of<'a>(instance: &'a aws_sdk_ec2::types::Instance, key: &str) -> Option<&'a str> {
    instance.tags().iter().find(|t| t.key() == Some(key)).and_then(|t| t.value())
}
