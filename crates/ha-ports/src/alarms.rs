//! The protected servers' alarms as they stand now: what a reconcile pass drives again.

use async_trait::async_trait;
use ha_domain::alarm::AlarmTransition;
use ha_domain::error::AwsFailure;

#[async_trait]
pub trait AlarmStates: Send + Sync {
    /// Every alarm whose name starts with `name_prefix`, each as a transition into its
    /// current state at the time it entered it (no previous state).
    async fn current(&self, name_prefix: &str) -> Result<Vec<AlarmTransition>, AwsFailure>;

    /// What a server's alarm is labelled with (its tags).
    async fn labels(&self, alarm_arn: &str) -> Result<AlarmLabels, AwsFailure>;

    /// The site name a server's alarm carries (its `outposts-ha:site-name` tag), if any.
    async fn site_name(&self, alarm_arn: &str) -> Result<Option<String>, AwsFailure> {
        Ok(self.labels(alarm_arn).await?.site_name)
    }
}

/// A server alarm's labels: the site's name, and the stack that protects the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlarmLabels {
    pub site_name: Option<String>,
    pub stack: Option<String>,
}
