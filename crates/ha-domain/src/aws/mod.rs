//! Thin adapters between the pure domain and AWS. Each turns SDK results into domain
//! types and SDK errors into [`AwsFailure`]; none makes decisions.

pub mod automation;
pub mod backups;
pub mod bus;
pub mod capacity;
pub mod fleet;
pub mod ledger;
pub mod serving;
pub mod topic;

use crate::error::{classify, AwsFailure, FailureKind};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Reduces an SDK error to plain data: operation, code, message and whether a retry helps.
pub fn failure<E>(operation: &'static str, err: &SdkError<E, HttpResponse>) -> AwsFailure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (kind, status) = match err {
        SdkError::ServiceError(e) => (FailureKind::Service, Some(e.raw().status().as_u16())),
        SdkError::ResponseError(e) => (FailureKind::Response, Some(e.raw().status().as_u16())),
        SdkError::ConstructionFailure(_) => (FailureKind::Construction, None),
        _ => (FailureKind::Transport, None),
    };
    let code = err.code().map(str::to_string);
    let retry = classify(kind, code.as_deref(), status);
    AwsFailure {
        operation,
        code: code.unwrap_or_else(|| match kind {
            FailureKind::Transport => "TransportError".into(),
            FailureKind::Response => "UnreadableResponse".into(),
            FailureKind::Construction => "InvalidRequest".into(),
            FailureKind::Service => format!("HTTP{}", status.unwrap_or(0)),
        }),
        message: err.message().map(str::to_string).unwrap_or_else(|| DisplayErrorContext(err).to_string()),
        retry,
    }
}

/// An EC2 filter: `name` matching any of `values`.
pub(crate) fn ec2_filter(name: &str, values: &[&str]) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name(name)
        .set_values(Some(values.iter().map(|v| v.to_string()).collect()))
        .build()
}

/// EC2 tags as a map (tags without a key or value are dropped).
pub(crate) fn ec2_tags<'a>(
    tags: impl IntoIterator<Item = &'a aws_sdk_ec2::types::Tag>,
) -> std::collections::BTreeMap<String, String> {
    tags.into_iter().filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string()))).collect()
}
