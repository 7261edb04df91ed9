//! Whether an AWS failure is worth retrying, decided from facts, not SDK types.

/// What a failed AWS call means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Transient (throttling, 5xx, timeout, connection): the same call can succeed later.
    CanHelp,
    /// The request itself is wrong or not satisfiable here (capacity, bad template,
    /// permissions): repeating it unchanged will not help.
    WontHelp,
}

/// How an AWS call failed, as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsFailure {
    pub operation: &'static str,
    /// The service's error code, e.g. `InsufficientInstanceCapacity`.
    pub code: String,
    pub message: String,
    pub retry: Retry,
}

impl std::fmt::Display for AwsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed with {}: {}", self.operation, self.code, self.message)
    }
}

/// The kind of failure the SDK reports, reduced to what matters for retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The service answered with an error.
    Service,
    /// No answer: timeout, connection refused/reset, DNS.
    Transport,
    /// The answer could not be read.
    Response,
    /// The request could not even be built (a bug on our side).
    Construction,
}

const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "LimitExceededException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "InternalServiceError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "Unavailable",
    "RequestTimeout",
    "RequestTimeoutException",
    "RequestExpired",
    "IDPCommunicationError",
    "EC2ThrottledException",
];

/// EC2 sends these as server errors (HTTP 500), but capacity on one Outpost does not come
/// back in seconds: the right move is the next destination, not a retry of this one.
pub const CAPACITY_CODES: &[&str] = &[
    "InsufficientInstanceCapacity",
    "InsufficientCapacity",
    "InsufficientHostCapacity",
    "InsufficientAddressCapacity",
    "InsufficientCapacityOnOutpost",
];

/// The service refused the request before acting on it (throttling): unlike a timeout or a
/// server error, it certainly did nothing.
pub fn refused_unacted(code: &str) -> bool {
    code.contains("Throttl")
        || matches!(code, "RequestLimitExceeded" | "RequestResourceCountExceeded" | "TooManyRequestsException")
}

/// Pure classification used by every adapter.
pub fn classify(kind: FailureKind, code: Option<&str>, http_status: Option<u16>) -> Retry {
    match kind {
        FailureKind::Transport | FailureKind::Response => Retry::CanHelp,
        FailureKind::Construction => Retry::WontHelp,
        FailureKind::Service => {
            if code.is_some_and(|c| CAPACITY_CODES.contains(&c)) {
                return Retry::WontHelp;
            }
            if code.is_some_and(|c| RETRYABLE_CODES.contains(&c)) {
                return Retry::CanHelp;
            }
            match http_status {
                Some(429) => Retry::CanHelp,
                Some(s) if s >= 500 => Retry::CanHelp,
                _ => Retry::WontHelp,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_throttling_is_known_to_have_done_nothing() {
        for code in ["RequestLimitExceeded", "ThrottlingException", "RequestResourceCountExceeded"] {
            assert!(refused_unacted(code), "{code}");
        }
        for code in ["RequestTimeout", "InternalError", "ServiceUnavailable", "HTTP500"] {
            assert!(!refused_unacted(code), "{code}");
        }
    }

    #[test]
    fn classification_table() {
        use FailureKind::*;
        use Retry::*;
        let table: &[(FailureKind, Option<&str>, Option<u16>, Retry)] = &[
            (Service, Some("RequestLimitExceeded"), Some(503), CanHelp),
            (Service, Some("ThrottlingException"), Some(400), CanHelp),
            (Service, Some("ProvisionedThroughputExceededException"), Some(400), CanHelp),
            (Service, Some("InternalError"), Some(500), CanHelp),
            (Service, Some("SomethingNew"), Some(502), CanHelp),
            (Service, None, Some(429), CanHelp),
            (Service, Some("InsufficientInstanceCapacity"), Some(500), WontHelp),
            (Service, Some("InsufficientInstanceCapacity"), Some(400), WontHelp),
            (Service, Some("InsufficientCapacityOnOutpost"), Some(500), WontHelp),
            (Service, Some("InvalidLaunchTemplateId.NotFound"), Some(400), WontHelp),
            (Service, Some("UnauthorizedOperation"), Some(403), WontHelp),
            (Service, Some("ConditionalCheckFailedException"), Some(400), WontHelp),
            (Service, Some("AnUnmodeledCode"), Some(400), WontHelp),
            (Service, None, None, WontHelp),
            (Transport, None, None, CanHelp),
            (Response, None, Some(200), CanHelp),
            (Construction, None, None, WontHelp),
        ];
        for (kind, code, status, want) in table {
            assert_eq!(classify(*kind, *code, *status), *want, "{kind:?} {code:?} {status:?}");
        }
    }
}
