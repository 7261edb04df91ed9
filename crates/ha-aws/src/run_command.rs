//! SSM Run Command, as the witness probe and the promotion hook send it: one document to
//! one instance, and what SendCommand's answer means for the caller.

use crate::failure;
use aws_sdk_ssm::operation::send_command::builders::SendCommandFluentBuilder;
use ha_domain::error::{AwsFailure, Retry};
use ha_ports::Asked;

/// How long SSM may take to deliver a command before it gives up (SendCommand's
/// TimeoutSeconds, at least 30); the document's own execution timeout bounds the run.
const DELIVERY_TIMEOUT_SECONDS: i32 = 60;

/// Sends `command` (its document, instance, parameters and comment set): `Sent` with its
/// id, `Offline` when the instance cannot run it, `Refused` when no retry helps; an error
/// only when a retry can.
pub(crate) async fn send(command: SendCommandFluentBuilder) -> Result<Asked, AwsFailure> {
    match command.timeout_seconds(DELIVERY_TIMEOUT_SECONDS).send().await {
        Ok(out) => {
            out.command().and_then(|c| c.command_id()).map(|id| Asked::Sent(id.to_string())).ok_or_else(|| AwsFailure {
                operation: "SendCommand",
                code: "NoCommandId".into(),
                message: "the command was accepted but no id came back".into(),
                retry: Retry::CanHelp,
            })
        }
        // "The following problems can cause this exception: The ID isn't valid…; the
        // instance isn't in a valid state…; SSM Agent isn't running…" (SendCommand).
        Err(e) if e.as_service_error().is_some_and(|s| s.is_invalid_instance_id()) => {
            Ok(Asked::Offline(failure("SendCommand", &e).message))
        }
        // A refusal no retry fixes (parameters the document refuses, a missing document, a
        // withheld permission): the caller cannot run it, and a person hears why.
        Err(e) => match failure("SendCommand", &e) {
            f if f.retry == Retry::CanHelp => Err(f),
            f => Ok(Asked::Refused(format!("{}: {}", f.code, f.message))),
        },
    }
}
