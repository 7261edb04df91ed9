//! Cold-start plumbing shared by the functions' `main`s.

/// Structured logs: JSON when Lambda's logging config says so (`AWS_LAMBDA_LOG_FORMAT`),
/// level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`.
pub fn init_logging() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// How the functions retry AWS calls. A failover runs while AWS may be throttling the
/// account (many sites failing at once); six attempts with exponential backoff fit well
/// inside the functions' timeouts, and the SDK's retry quota still bounds a storm.
pub fn retry_config() -> aws_config::retry::RetryConfig {
    aws_config::retry::RetryConfig::standard().with_max_attempts(6)
}

/// The SDK configuration from the environment (honours `AWS_ENDPOINT_URL`).
pub async fn load_aws_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).retry_config(retry_config()).load().await
}
