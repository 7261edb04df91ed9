//! Cold-start plumbing shared by the functions' `main`s.

/// Structured logs: JSON when Lambda's logging config says so (`AWS_LAMBDA_LOG_FORMAT`),
/// level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`.
pub fn init_logging() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// The SDK configuration from the environment (honours `AWS_ENDPOINT_URL`).
pub async fn load_aws_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}
