//! Test harness: a moto server per test, the project's resources deployed into it the way
//! the CloudFormation template declares them, and a router that carries events between
//! the functions' handlers exactly as the template's EventBridge rules would.
//!
//! moto cannot invoke Lambda functions (no Docker), so every rule on the project's bus is
//! mirrored with the template's own event pattern but an SQS queue as target; the router
//! reads each queue and invokes the handler the template names as that rule's target.

pub mod bench;
pub mod emulator;
pub mod faults;
pub mod roles;
pub mod site;
pub mod stack;
