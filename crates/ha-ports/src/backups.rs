//! Backups: the parameter naming the newest good one and its image (as relaunch reads
//! them), and the backups, runbook executions and parameter backup-scheduler keeps.

use async_trait::async_trait;
use ha_domain::backup::{BackupImage, ExecutionFacts, HelperSubnet, ImageState, MisdeclaredInstance, StatefulInstance};
use ha_domain::error::AwsFailure;
use ha_domain::model::{tag, Instance};
use ha_domain::timefmt::parse_timestamp;
use std::collections::{BTreeMap, BTreeSet};

/// One AMI as EC2 describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFacts {
    pub image_id: String,
    pub state: ImageState,
    pub snapshot_ids: Vec<String>,
    pub creation_date: Option<String>,
    pub tags: BTreeMap<String, String>,
}

impl ImageFacts {
    /// When the backup was taken: our tag, else the AMI's creation time.
    pub fn taken_at(&self) -> Option<time::OffsetDateTime> {
        self.tags.get(tag::BACKUP_TAKEN_AT).and_then(|t| parse_timestamp(t)).or_else(|| {
            let created = self.creation_date.as_deref()?;
            parse_timestamp(created)
        })
    }
}

#[async_trait]
pub trait BackupCatalog: Send + Sync {
    /// The image id an SSM parameter names; `None` when the parameter does not exist.
    async fn parameter(&self, name: &str) -> Result<Option<String>, AwsFailure>;
    /// One AMI; `None` when EC2 does not know it.
    async fn image(&self, image_id: &str) -> Result<Option<ImageFacts>, AwsFailure>;
}

/// Backups as backup-scheduler keeps them: the instances declared for backup, the AMIs
/// this stack tagged as good backups and their snapshots, and the parameter it moves.
#[async_trait]
pub trait Backups: BackupCatalog {
    /// Running instances carrying the backup tag and not fenced, read into declarations.
    async fn stateful_instances(&self) -> Result<(Vec<StatefulInstance>, Vec<MisdeclaredInstance>), AwsFailure>;
    /// The instance; `None` when EC2 no longer knows it.
    async fn instance(&self, instance_id: &str) -> Result<Option<Instance>, AwsFailure>;
    /// Subnets of these VPCs tagged `outposts-ha:backup-helper`.
    async fn helper_subnets(&self, vpc_ids: &[String]) -> Result<Vec<HelperSubnet>, AwsFailure>;
    /// Good backups this stack made: of one instance, or of all.
    async fn backups(&self, instance_id: Option<&str>) -> Result<Vec<BackupImage>, AwsFailure>;
    /// Tags the resources (an AMI and its snapshots); repeating it changes nothing.
    async fn tag(&self, resources: &[String], tags: &[(&str, &str)]) -> Result<(), AwsFailure>;
    /// Snapshots this stack tagged as backups of the instance.
    async fn tagged_snapshots(&self, instance_id: &str) -> Result<Vec<String>, AwsFailure>;
    /// Deregisters the image; one already gone counts as done.
    async fn deregister(&self, image_id: &str) -> Result<(), AwsFailure>;
    /// Deletes the snapshot; one already gone counts as done.
    async fn delete_snapshot(&self, snapshot_id: &str) -> Result<(), AwsFailure>;
    /// Points the parameter at the AMI (overwriting; SSM has no conditional write).
    async fn put_parameter(&self, name: &str, image_id: &str, description: &str) -> Result<(), AwsFailure>;
}

/// Executions of the backup runbook in flight.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InFlight {
    pub executions: usize,
    /// The instances they back up (their instance parameter).
    pub instances: BTreeSet<String>,
}

/// The backup runbook (SSM Automation).
#[async_trait]
pub trait Runbook: Send + Sync {
    /// Every in-flight execution of the runbook and the instance each one backs up.
    async fn in_flight(&self, instance_parameter: &str) -> Result<InFlight, AwsFailure>;
    /// Starts the runbook; the same token returns the execution it started before.
    async fn start(
        &self,
        parameters: &BTreeMap<String, Vec<String>>,
        client_token: &str,
        tags: &[(&str, &str)],
    ) -> Result<String, AwsFailure>;
    /// The execution; `None` when SSM does not know it.
    async fn execution(&self, execution_id: &str) -> Result<Option<ExecutionFacts>, AwsFailure>;
}
