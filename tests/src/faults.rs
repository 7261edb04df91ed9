//! Fault injection between the product's SDK clients and the emulator: a wrapper around
//! the HTTP client that lets a [`Fault`] decide, request by request, what the SDK sees.
//! Faults that refuse a request do so before it leaves, so the emulator never
//! half-executes a call the SDK then retries.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// What happens to each request on its way to AWS.
pub trait Fault: std::fmt::Debug + Send + Sync + 'static {
    fn call(&self, inner: &SharedHttpConnector, request: HttpRequest) -> HttpConnectorFuture;
}

/// An HTTP client that sends every request through `F`.
#[derive(Debug)]
pub struct FaultyClient<F> {
    inner: SharedHttpClient,
    fault: Arc<F>,
}

impl<F: Fault> FaultyClient<F> {
    pub fn new(fault: F) -> Self {
        FaultyClient { inner: aws_smithy_http_client::Builder::new().build_http(), fault: Arc::new(fault) }
    }

    /// `sdk` with this client in place of its own.
    pub fn into_sdk_config(self, sdk: &aws_config::SdkConfig) -> aws_config::SdkConfig {
        sdk.to_builder().http_client(SharedHttpClient::new(self)).build()
    }
}

impl<F: Fault> HttpClient for FaultyClient<F> {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(FaultyConnector {
            inner: self.inner.http_connector(settings, components),
            fault: self.fault.clone(),
        })
    }
}

#[derive(Debug)]
struct FaultyConnector<F> {
    inner: SharedHttpConnector,
    fault: Arc<F>,
}

impl<F: Fault> HttpConnector for FaultyConnector<F> {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        self.fault.call(&self.inner, request)
    }
}

/// Counts what passed and what was refused.
#[derive(Debug, Default)]
pub struct FaultCounts {
    pub requests: AtomicUsize,
    pub throttled: AtomicUsize,
}

/// Throttles requests whose sequence number falls on `pattern` out of every `period`:
/// deterministic, so a failing run can be replayed, and spread so one call is rarely
/// refused twice in a row.
#[derive(Debug)]
pub struct Throttling {
    period: usize,
    pattern: &'static [usize],
    counts: Arc<FaultCounts>,
}

impl Throttling {
    /// 30 %: requests 0, 3 and 6 of every 10.
    pub fn thirty_percent(counts: Arc<FaultCounts>) -> Self {
        Throttling { period: 10, pattern: &[0, 3, 6], counts }
    }
}

impl Fault for Throttling {
    fn call(&self, inner: &SharedHttpConnector, request: HttpRequest) -> HttpConnectorFuture {
        let n = self.counts.requests.fetch_add(1, Ordering::SeqCst);
        if !self.pattern.contains(&(n % self.period)) {
            return inner.call(request);
        }
        self.counts.throttled.fetch_add(1, Ordering::SeqCst);
        HttpConnectorFuture::ready(Ok(throttling_response(&request)))
    }
}

/// The throttling error each protocol's service really sends.
fn throttling_response(request: &HttpRequest) -> HttpResponse {
    let service = request
        .headers()
        .get("authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or_default()
        .to_string();
    let (status, body) = if request.headers().get("x-amz-target").is_some() {
        (400, r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.to_string())
    } else if service == "ec2" {
        (
            503,
            "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>fault</RequestID></Response>".to_string(),
        )
    } else {
        (
            400,
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>fault</RequestId></ErrorResponse>".to_string(),
        )
    };
    let mut response = HttpResponse::new(status.try_into().expect("valid status"), SdkBody::from(body));
    let content_type = if status == 400 && request.headers().get("x-amz-target").is_some() {
        "application/x-amz-json-1.0"
    } else {
        "text/xml"
    };
    response.headers_mut().insert("content-type", content_type);
    response
}

/// Lets the `nth` (0-based) RunInstances reach EC2 and then never hands its answer back:
/// the caller hangs exactly where a Lambda killed by its timeout would have died, after
/// EC2 launched the instance and before the function could record it.
#[derive(Debug)]
pub struct StallAfterLaunch {
    nth: usize,
    launches: AtomicUsize,
}

impl StallAfterLaunch {
    pub fn new(nth: usize) -> Self {
        StallAfterLaunch { nth, launches: AtomicUsize::new(0) }
    }
}

impl Fault for StallAfterLaunch {
    fn call(&self, inner: &SharedHttpConnector, request: HttpRequest) -> HttpConnectorFuture {
        let is_launch = request.body().bytes().is_some_and(|b| b.windows(20).any(|w| w == b"Action=RunInstances&"));
        if !is_launch || self.launches.fetch_add(1, Ordering::SeqCst) != self.nth {
            return inner.call(request);
        }
        let sent = inner.call(request);
        HttpConnectorFuture::new(async move {
            let _ = sent.await; // EC2 has launched it...
            std::future::pending::<()>().await; // ...and the caller never learns.
            unreachable!("pending never completes")
        })
    }
}

/// The API operation a request calls: `X-Amz-Target`'s last part for JSON protocols, the
/// path's `/operation/<name>` for RPC v2 CBOR (CloudWatch), `Action=` for query protocols.
pub fn operation_of(request: &HttpRequest) -> String {
    if let Some(target) = request.headers().get("x-amz-target") {
        return target.rsplit('.').next().unwrap_or(target).to_string();
    }
    if let Some((_, operation)) = request.uri().split_once("/operation/") {
        return operation.to_string();
    }
    let body = request.body().bytes().map(String::from_utf8_lossy).unwrap_or_default();
    body.split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
        .map(str::to_string)
        .unwrap_or_else(|| "Unknown".into())
}

/// What passed through a [`Delay`]: calls per operation and when each RunInstances was
/// accepted.
#[derive(Debug, Default)]
pub struct CallLog {
    pub calls: std::sync::Mutex<std::collections::BTreeMap<String, usize>>,
    /// Every call's operation, in the order they were sent.
    pub sequence: std::sync::Mutex<Vec<String>>,
    pub launches_accepted: std::sync::Mutex<Vec<std::time::Instant>>,
}

impl CallLog {
    pub fn total(&self) -> usize {
        self.calls.lock().unwrap().values().sum()
    }
}

/// Adds a fixed latency to every AWS call, as a slow link to the region would, and logs
/// the calls.
#[derive(Debug)]
pub struct Delay {
    latency: std::time::Duration,
    log: Arc<CallLog>,
}

impl Delay {
    pub fn new(latency: std::time::Duration, log: Arc<CallLog>) -> Self {
        Delay { latency, log }
    }
}

impl Fault for Delay {
    fn call(&self, inner: &SharedHttpConnector, request: HttpRequest) -> HttpConnectorFuture {
        let operation = operation_of(&request);
        *self.log.calls.lock().unwrap().entry(operation.clone()).or_default() += 1;
        self.log.sequence.lock().unwrap().push(operation.clone());
        let (inner, latency, log) = (inner.clone(), self.latency, self.log.clone());
        HttpConnectorFuture::new(async move {
            tokio::time::sleep(latency).await;
            let response = inner.call(request).await;
            if operation == "RunInstances" && response.as_ref().is_ok_and(|r| r.status().is_success()) {
                log.launches_accepted.lock().unwrap().push(std::time::Instant::now());
            }
            response
        })
    }
}
