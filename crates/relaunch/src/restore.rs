//! Which backup a stateful workload starts from (launch and drill share it).

use crate::Relaunch;
use ha_domain::backup::ImageState;
use ha_domain::contract::{RelaunchFailure, RestoredFrom};
use ha_domain::error::AwsFailure;
use ha_domain::timefmt::{format_timestamp, human_duration};
use tracing::info;

/// Why a stateful workload has no backup to start from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NoUsableBackup {
    pub failure: RelaunchFailure,
    pub message: String,
}

impl Relaunch {
    /// The backup the parameter names, checked to exist and be available.
    pub(crate) async fn newest_backup(
        &self,
        parameter: &str,
    ) -> Result<Result<RestoredFrom, NoUsableBackup>, AwsFailure> {
        let refuse = |failure, message| Ok(Err(NoUsableBackup { failure, message }));
        let Some(image_id) = self.ports.backups.parameter(parameter).await? else {
            let message = format!("the backup parameter {parameter} does not exist: no backup to restore from");
            return refuse(RelaunchFailure::NoBackup, message);
        };
        let image = match self.ports.backups.image(&image_id).await? {
            None => {
                let message = format!("{parameter} names {image_id}, which does not exist");
                return refuse(RelaunchFailure::BackupImageMissing, message);
            }
            Some(i) if i.state != ImageState::Available => {
                let message = format!("{parameter} names {image_id}, which is {}", i.state.as_str());
                return refuse(RelaunchFailure::BackupImageUnavailable, message);
            }
            Some(i) => i,
        };
        let taken_at = image.taken_at();
        let age_seconds = taken_at.map(|t| (self.ports.clock.now() - t).whole_seconds().max(0));
        info!(%image_id, age = %age_seconds.map(human_duration).unwrap_or_else(|| "unknown".into()), "restoring from backup");
        Ok(Ok(RestoredFrom {
            image_id,
            parameter: parameter.to_string(),
            taken_at: taken_at.map(format_timestamp),
            age_seconds,
        }))
    }
}
