//! What an invocation returns to Lambda when it fails: whether a retry can help, in the
//! error type Lambda records.

use ha_domain::error::{AwsFailure, Retry};
use ha_ports::ledger::Told;
use thiserror::Error;

/// How telling `what` went, as a handler answers it: true when told now, false when told
/// before; `NotYet` while another delivery is telling it (the retry makes sure it was).
pub fn told(told: Told, what: &str) -> Result<bool, HandlerError> {
    match told {
        Told::Now => Ok(true),
        Told::Before => Ok(false),
        Told::ByAnother => Err(HandlerError::NotYet {
            reason: NotYet::BeingTold,
            detail: format!("another delivery is telling {what}"),
        }),
    }
}

/// Failure of a handler as a whole; tells Lambda (and the operator) whether a retry helps.
#[derive(Debug, Error)]
pub enum HandlerError {
    #[error("transient AWS failure, the event will be retried: {0}")]
    Transient(AwsFailure),
    #[error("AWS refused the request and a retry will not help: {0}")]
    Permanent(AwsFailure),
    #[error("{0} of the incident's workloads hit transient failures; the event will be retried")]
    PartlyTransient(usize),
    /// Normal waiting, not a failure: the work cannot finish yet, and Lambda's retry of the
    /// event re-checks it (a bounded re-check; nothing polls or sleeps).
    #[error("not yet ({}), the event will be retried: {detail}", .reason.code())]
    NotYet { reason: NotYet, detail: String },
}

/// What is still being waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotYet {
    /// A replacement is registered but not yet healthy in every target group.
    TargetNotHealthy,
    /// A workload of the incident is still being launched.
    RelaunchInProgress,
    /// Another delivery is telling the same fact right now.
    BeingTold,
    /// A replacement accepted by EC2 is not running yet.
    ReplacementPending,
    /// Another delivery is moving the same backup parameter.
    ParameterHeld,
    /// A probe's completion event came before its result can be read.
    ProbeUnread,
}

impl NotYet {
    pub fn code(self) -> &'static str {
        match self {
            NotYet::TargetNotHealthy => "TargetNotHealthyYet",
            NotYet::RelaunchInProgress => "RelaunchInProgress",
            NotYet::BeingTold => "BeingTold",
            NotYet::ReplacementPending => "ReplacementPending",
            NotYet::ParameterHeld => "ParameterHeld",
            NotYet::ProbeUnread => "ProbeUnread",
        }
    }
}

impl From<AwsFailure> for HandlerError {
    fn from(f: AwsFailure) -> Self {
        match f.retry {
            Retry::CanHelp => HandlerError::Transient(f),
            Retry::WontHelp => HandlerError::Permanent(f),
        }
    }
}

/// What Lambda records for a failed invocation: the type says whether a retry can help.
impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(e: HandlerError) -> Self {
        let error_type = match &e {
            HandlerError::Transient(f) => format!("Transient.{}", f.code),
            HandlerError::Permanent(f) => format!("Permanent.{}", f.code),
            HandlerError::PartlyTransient(_) => "Transient.PartialFailure".to_string(),
            HandlerError::NotYet { reason, .. } => format!("NotYet.{}", reason.code()),
        };
        lambda_runtime::Diagnostic { error_type, error_message: e.to_string() }
    }
}
