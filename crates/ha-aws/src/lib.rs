//! Outposts HA's AWS adapters: the ports the functions use, implemented on the SDK. Each
//! turns SDK results into domain types and SDK errors into [`AwsFailure`]; none decides.
//! Each adapter is a feature naming the SDK crates it needs, so a function compiles only
//! the SDK crates it uses.

#[cfg(feature = "alarms")]
pub mod alarms;
#[cfg(feature = "automation")]
pub mod automation;
#[cfg(feature = "backups")]
pub mod backups;
#[cfg(feature = "bus")]
pub mod bus;
#[cfg(feature = "capacity")]
pub mod capacity;
#[cfg(feature = "fleet")]
pub mod fleet;
pub mod invocation;
#[cfg(feature = "ledger")]
pub mod ledger;
#[cfg(feature = "promotion")]
pub mod promotion;
#[cfg(any(feature = "witness", feature = "promotion"))]
mod run_command;
pub mod runtime;
#[cfg(feature = "serving")]
pub mod serving;
#[cfg(feature = "topic")]
pub mod topic;
#[cfg(feature = "witness")]
pub mod witness;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use ha_domain::error::{classify, AwsFailure, FailureKind};

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

#[cfg(feature = "ec2")]
/// An EC2 filter: `name` matching any of `values`.
pub(crate) fn ec2_filter(name: &str, values: &[&str]) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name(name)
        .set_values(Some(values.iter().map(|v| v.to_string()).collect()))
        .build()
}

#[cfg(feature = "ec2")]
/// EC2 tags as a map (tags without a key or value are dropped).
pub(crate) fn ec2_tags<'a>(
    tags: impl IntoIterator<Item = &'a aws_sdk_ec2::types::Tag>,
) -> std::collections::BTreeMap<String, String> {
    tags.into_iter().filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string()))).collect()
}

#[cfg(feature = "ec2")]
/// An EC2 instance as the domain knows it.
pub(crate) fn instance_from(i: &aws_sdk_ec2::types::Instance) -> ha_domain::model::Instance {
    use ha_domain::model::{Instance, InstanceState};
    Instance {
        instance_id: i.instance_id().unwrap_or_default().to_string(),
        state: InstanceState::parse(i.state().and_then(|s| s.name()).map(|n| n.as_str()).unwrap_or_default()),
        server_id: i.outpost_arn().and_then(ha_domain::fencing::server_of_outpost_arn),
        vpc_id: i.vpc_id().map(str::to_string),
        private_ip: i.private_ip_address().map(str::to_string),
        interfaces: i
            .network_interfaces()
            .iter()
            .filter_map(|n| {
                Some(ha_domain::model::AttachedInterface {
                    interface_id: n.network_interface_id()?.to_string(),
                    device_index: n.attachment().and_then(|a| a.device_index()).unwrap_or(0),
                    groups: n.groups().iter().filter_map(|g| g.group_id().map(str::to_string)).collect(),
                })
            })
            .collect(),
        tags: ec2_tags(i.tags()),
    }
}
