use backup_scheduler::{BackupScheduler, Config};
use ha_aws::runtime::{init_logging, load_aws_config};
use ha_domain::config::EnvReader;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let config =
        Config::from_env(&EnvReader::process()).inspect_err(|e| tracing::error!(error = %e, "bad configuration"))?;
    let handler = BackupScheduler::new(config, &load_aws_config().await);
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handler.handle(event.payload, &event.context.request_id).await
    }))
    .await
}
