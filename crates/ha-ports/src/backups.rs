//! Backups as relaunch reads them: the parameter naming the newest good one, and its image.

use async_trait::async_trait;
use ha_domain::backup::ImageState;
use ha_domain::error::AwsFailure;
use ha_domain::model::tag;
use ha_domain::timefmt::parse_timestamp;
use std::collections::BTreeMap;

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
