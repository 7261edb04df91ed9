//! The dispatch benchmark's latency model: a fixed time per AWS operation (instead of the
//! random 3–40 ms + 2–30 ms every other schedule draws), the EventBridge hop to a Lambda
//! function, and what the caller's SDK does with a throttled request. Only a scenario that
//! carries a [`LatencyModel`] uses any of it; random schedules keep their draws.
//!
//! Each figure is one round trip from a warm Lambda function in the same Region, at the
//! median. Where AWS or a published measurement gives one, the row names it; where none is
//! published the row says "assumption", chosen against the product: calls only the product
//! makes on the slow side, calls only the reference loop makes on the fast side, and calls
//! both make (RunInstances, the alarm's delivery) at the published figure.

/// One row of the table: an operation, its round trip and where the figure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    pub operation: &'static str,
    pub ms: u64,
    pub source: &'static str,
}

const fn row(operation: &'static str, ms: u64, source: &'static str) -> Latency {
    Latency { operation, ms, source }
}

const DYNAMODB: &str = "AWS: \"single-digit millisecond\" average for GetItem/PutItem-style item operations \
(re:Post knowledge center, dynamodb-high-latency); the top of that range, rounded up for the in-Region hop";
const EC2_READ: &str = "assumption: no published figure for EC2 Describe* calls; chosen on the slow side \
(product-only calls)";
const EC2_WRITE: &str = "assumption: no published figure; slow side (product-only calls, none on the path to \
a stateless launch)";

/// EventBridge → Lambda: the event bus's delivery to an asynchronously invoked, warm
/// function. Bite-Sized Serverless, "Serverless Messaging: Latency Compared" (eu-west-1,
/// re-measured after EventBridge's February 2023 latency upgrade): p50 148 ms, p90 241 ms,
/// p99 387 ms, producer to consumer. That figure starts before the producer's PutEvents, so
/// the model's separate PutEvents round trip counts one request twice (against the product).
/// The alarm's own state-change event takes the same hop (assumption: same delivery path from
/// the default bus). The reference loop is triggered by the same delivery (its real trigger
/// is the alarm's SNS action; SNS → Lambda measured 73 ms p50 in the same study).
pub const DELIVERY: Latency = row(
    "EventBridge rule → Lambda (async, warm)",
    148,
    "Bite-Sized Serverless, Serverless Messaging: Latency Compared (EventBridge after the Feb 2023 upgrade, \
eu-west-1): p50 148 ms, p99 387 ms, producer to consumer",
);

/// How long a throttled EC2 request takes to be refused: the request bucket is checked on
/// arrival, before any work.
pub const THROTTLED: Latency =
    row("any EC2 call refused by its token bucket", 20, "assumption: the refusal is returned before any work");

/// Anything not in [`LATENCIES`].
pub const OTHER: Latency = row("any other call", 100, "assumption");

/// The table, one place: the operation names are the world's (`Sim::enter`).
pub const LATENCIES: &[Latency] = &[
    // Colin Percival, "EC2 boot time benchmarking" (daemonology.net, 2021-08-12): ec2-boot-bench's
    // sample output "RunInstances API call took: 1.543152 s" (c5.xlarge). Both the product and the
    // loop pay it, once per workload.
    row(
        "RunInstances",
        1_500,
        "Percival, EC2 boot time benchmarking (daemonology.net, 2021-08-12): ec2-boot-bench's sample output \
\"RunInstances API call took: 1.543152 s\" (one launch, c5.xlarge, a Region subnet)",
    ),
    // DynamoDB item operations: documented single-digit-millisecond averages.
    row("GetItem", 10, DYNAMODB),
    row("PutItem", 10, DYNAMODB),
    row("UpdateItem", 10, DYNAMODB),
    row("DeleteItem", 10, DYNAMODB),
    // A Query of one incident's items (a few dozen): assumption, same as an item operation.
    row("Query", 10, "assumption: a small single-partition Query, as an item operation"),
    // EventBridge PutEvents: no published figure.
    row("PutEvents", 50, "assumption: no published figure; slow side (product-only call)"),
    // EC2 reads the product makes: no published figure.
    row("DescribeLaunchTemplates", 150, EC2_READ),
    row("DescribeLaunchTemplateVersions", 150, EC2_READ),
    row("DescribeInstances", 150, EC2_READ),
    row("DescribeSubnets", 150, EC2_READ),
    row("DescribeSecurityGroups", 150, EC2_READ),
    row("DescribeImages", 150, EC2_READ),
    row("DescribeSnapshots", 150, EC2_READ),
    // EC2 writes: none on the path to a stateless launch.
    row("CreateTags", 200, EC2_WRITE),
    row("DeleteTags", 200, EC2_WRITE),
    row("ModifyNetworkInterfaceAttribute", 200, EC2_WRITE),
    row("TerminateInstances", 200, EC2_WRITE),
    row("CreateSecurityGroup", 200, EC2_WRITE),
    row("RevokeSecurityGroupEgress", 200, EC2_WRITE),
    row("DeregisterImage", 200, EC2_WRITE),
    row("DeleteSnapshot", 200, EC2_WRITE),
    // CloudWatch: the capacity metric (the adapter's second round trip of the capacity
    // preflight), the alarms' states and the alarm's tags (its site name).
    row("GetMetricData", 150, "assumption: no published figure; slow side (product-only call)"),
    row("DescribeAlarms", 100, "assumption: no published figure; slow side (product-only call)"),
    row("ListTagsForResource", 100, "assumption: no published figure; slow side (product-only call)"),
    // SSM: a stateful workload's backup parameter; the witness probe (not on a stateless path).
    row("GetParameter", 50, "assumption: no published figure (stateful workloads only)"),
    row("PutParameter", 50, "assumption: no published figure (backups only)"),
    row("SendCommand", 100, "assumption: no published figure (stateful workloads only)"),
    row("GetCommandInvocation", 100, "assumption: no published figure (stateful workloads only)"),
    // Elastic Load Balancing: serving, after the launch (not on the dispatch path).
    row("RegisterTargets", 100, "assumption: no published figure (after the launch)"),
    row("DeregisterTargets", 100, "assumption: no published figure (after the launch)"),
    row("DescribeTargetGroups", 100, "assumption: no published figure (after the launch)"),
    row("DescribeTargetHealth", 100, "assumption: no published figure (after the launch)"),
    // What only the reference loop (aws-samples/ec2-outposts-autorestart) calls before its
    // launches: fast side, in the loop's favour.
    row("DescribeAlarmHistory", 100, "assumption: no published figure; fast side (reference-loop-only call)"),
    row("DescribeStacks", 100, "assumption: no published figure; fast side (reference-loop-only call)"),
];

/// The round trip of `operation` under the model.
pub fn latency_of(operation: &str) -> u64 {
    LATENCIES.iter().find(|l| l.operation == operation).unwrap_or(&OTHER).ms
}

/// What the caller's SDK does when EC2 refuses a request with `RequestLimitExceeded`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdkRetry {
    /// No retry: the throttle reaches the handler as an `AwsFailure` (`Retry::CanHelp`), as
    /// in every other simulated schedule, and the handler's own retry path takes over.
    None,
    /// The AWS SDK for Rust as the functions configure it (ha-aws `runtime::retry_config`:
    /// standard mode, 6 attempts). aws-smithy-runtime 1.16's standard strategy: full-jitter
    /// exponential backoff, `rand(0,1) × min(1 s × 2^(attempt−1), 20 s)`; a retry quota of 500
    /// tokens per client partition, 5 taken by each throttled retry, given back when that retry
    /// succeeds (lost when a further retry replaces it), 1 regained per first-try success.
    RustStandard { max_attempts: u32 },
    /// botocore's legacy mode, boto3's default (the reference tool's python3.8 Lambda):
    /// 5 attempts, delay `rand(0,1) × 2^(attempt−1)` s; EC2's `RequestLimitExceeded` is in its
    /// retry table (`_retry.json`, `ec2.request_limit_exceeded`); no quota.
    BotocoreLegacy,
}

/// The Rust SDK's retry quota (aws-smithy-runtime's `TokenBucket` defaults).
pub const RETRY_QUOTA: i64 = 500;
pub const RETRY_COST: i64 = 5;

impl SdkRetry {
    pub fn max_attempts(self) -> u32 {
        match self {
            SdkRetry::None => 1,
            SdkRetry::RustStandard { max_attempts } => max_attempts,
            SdkRetry::BotocoreLegacy => 5,
        }
    }

    /// The ceiling of the backoff before retry number `retry` (1 for the first retry), in ms;
    /// the SDK waits a uniform fraction of it.
    pub fn backoff_ceiling_ms(self, retry: u32) -> u64 {
        let doubled = 1_000u64.saturating_mul(1u64 << (retry - 1).min(20));
        match self {
            SdkRetry::None => 0,
            SdkRetry::RustStandard { .. } => doubled.min(20_000),
            SdkRetry::BotocoreLegacy => doubled,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            SdkRetry::None => "none (throttle → handler)",
            SdkRetry::RustStandard { .. } => "AWS SDK for Rust, standard, 6 attempts",
            SdkRetry::BotocoreLegacy => "botocore legacy, 5 attempts",
        }
    }
}

/// A scenario's latency model: fixed per-operation round trips (the table above), a fixed
/// delivery, and the SDK's handling of throttles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyModel {
    pub delivery_ms: u64,
    pub throttled_ms: u64,
    pub sdk: SdkRetry,
}

impl LatencyModel {
    /// The table's figures with the given SDK behaviour.
    pub fn documented(sdk: SdkRetry) -> LatencyModel {
        LatencyModel { delivery_ms: DELIVERY.ms, throttled_ms: THROTTLED.ms, sdk }
    }
}

/// One timed thing in a modelled schedule: an AWS call (each attempt) or an event's delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub what: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// Refused by its token bucket.
    pub throttled: bool,
}
