//! The HTTP client for the Productive API.
//!
//! Every request carries the token and organization headers, waits for the
//! shared rate budget, and is retried when that is safe: reads after 429,
//! 5xx, timeouts, cut connections and unreadable bodies; writes only when
//! the request never left (connect errors) or the API said 429 before doing
//! anything. A write whose outcome is unknown is reported as such.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::{debug, warn};

use super::budget::{RateBudget, RateLimits, RequestKind, shared_budget};
use super::cache::{AnswerCache, CacheLimits, shared_cache};
use super::document::{ErrorDocument, ListDocument, SingleDocument};
use super::error::ApiError;
use super::request::{ListRequest, encode_component};
use crate::secret::Secret;

/// The media type the API requires on every request.
pub const JSON_API: &str = "application/vnd.api+json";

/// The largest answer body accepted; a larger one is an error, not an
/// out-of-memory.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// How failed requests are retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// First backoff; doubled after each failure.
    pub base_delay: Duration,
    /// Longest backoff, and the longest `Retry-After` honoured.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Where and how to reach the API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Base URL including `/api/v2`, without a trailing slash.
    pub base_url: String,
    pub organization_id: String,
    pub token: Secret,
    pub limits: RateLimits,
    pub retry: RetryPolicy,
    /// Timeout of one HTTP exchange.
    pub timeout: Duration,
    /// Pages of one scan fetched at the same time.
    pub page_concurrency: usize,
    /// Size of the answer cache shared by the clients of this credential
    /// (used by reads that give a time to live).
    pub cache_limits: CacheLimits,
}

impl ApiConfig {
    pub fn new(base_url: &str, organization_id: &str, token: Secret) -> ApiConfig {
        ApiConfig {
            base_url: base_url.trim_end_matches('/').to_string(),
            organization_id: organization_id.to_string(),
            token,
            limits: RateLimits::default(),
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(60),
            page_concurrency: 8,
            cache_limits: CacheLimits::default(),
        }
    }
}

/// Counters of one scan or write: requests made, retries, time spent
/// waiting for the rate budget, answers taken from the cache. Requests
/// also count against the statement they belong to, which enforces the
/// statement's cap.
#[derive(Debug, Default)]
pub struct RequestStats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub rate_limited: AtomicU64,
    pub budget_wait_ms: AtomicU64,
    /// Reads answered from the cache, without a request.
    pub cache_hits: AtomicU64,
    /// Reads may take a cached answer this old, and keep what they fetch
    /// for later readers (`None`: always ask the API).
    pub cache_ttl: Option<Duration>,
    /// The statement these requests belong to.
    statement: Arc<StatementRequests>,
    /// Refuse a request once the statement has sent this many (0: no cap).
    cap: u64,
    /// At most this many requests of these counters on the wire at once;
    /// a request holds its place until its answer has arrived, not while
    /// the answer is decoded.
    on_the_wire: Option<Arc<tokio::sync::Semaphore>>,
}

impl RequestStats {
    /// Counters whose requests count against `statement`, refused once it
    /// has sent `cap` requests (0: no cap).
    pub fn for_statement(statement: Arc<StatementRequests>, cap: u64) -> RequestStats {
        RequestStats {
            statement,
            cap,
            ..Default::default()
        }
    }

    /// The same counters, reading through the answer cache with `ttl`.
    pub fn with_cache_ttl(self, ttl: Option<Duration>) -> RequestStats {
        RequestStats {
            cache_ttl: ttl.filter(|t| !t.is_zero()),
            ..self
        }
    }

    /// The same counters, with at most `n` requests on the wire at once: a
    /// request is on the wire from when it is sent until its answer's
    /// status arrives.
    pub fn with_max_on_the_wire(self, n: usize) -> RequestStats {
        RequestStats {
            on_the_wire: Some(Arc::new(tokio::sync::Semaphore::new(n.max(1)))),
            ..self
        }
    }

    /// Counters that are a statement of their own, capped at `cap` requests.
    pub fn with_cap(cap: Option<u64>) -> RequestStats {
        RequestStats::for_statement(Arc::default(), cap.unwrap_or(0))
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn cache_hits(&self) -> u64 {
        self.cache_hits.load(Ordering::Relaxed)
    }

    fn count_request(&self) -> Result<(), ApiError> {
        self.statement.take(self.cap)?;
        self.requests.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Waits for a place on the wire (when the number is limited).
    async fn place_on_the_wire(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        match &self.on_the_wire {
            // The semaphore is never closed.
            Some(places) => places.acquire().await.ok(),
            None => None,
        }
    }
}

/// API requests one SQL statement has sent, shared by all its scans,
/// lookups and writes (joins and subqueries included), so that
/// `productive.max_requests` caps the statement rather than each scan.
///
/// A session keeps one, kept as a `SessionConfig` extension, and the server
/// starts it afresh for every statement ([`StatementRequests::begin`]).
#[derive(Debug, Default)]
pub struct StatementRequests {
    sent: AtomicU64,
}

impl StatementRequests {
    /// Starts counting for a new statement.
    pub fn begin(&self) {
        self.sent.store(0, Ordering::Relaxed);
    }

    /// Requests the current statement has sent.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Counts one more request, or refuses it when `cap` requests (0: no
    /// cap) were already sent.
    ///
    /// # Errors
    /// [`ApiError::RequestCapReached`] when the cap is reached.
    pub fn take(&self, cap: u64) -> Result<(), ApiError> {
        let before = self.sent.fetch_add(1, Ordering::Relaxed);
        if cap > 0 && before >= cap {
            self.sent.fetch_sub(1, Ordering::Relaxed);
            return Err(ApiError::RequestCapReached {
                limit: cap,
                sent: before,
            });
        }
        Ok(())
    }
}

/// Running totals of everything a client (and its clones) sent, for
/// progress displays.
#[derive(Debug, Default)]
pub struct ClientTotals {
    pub requests: AtomicU64,
    pub budget_wait_ms: AtomicU64,
}

/// A client for one organization and token. Cheap to clone.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    config: Arc<ApiConfig>,
    budget: Arc<RateBudget>,
    cache: Arc<AnswerCache>,
    totals: Arc<ClientTotals>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base_url", &self.config.base_url)
            .field("organization_id", &self.config.organization_id)
            .finish_non_exhaustive()
    }
}

/// The outcome of one exchange, before decoding.
struct Answer {
    status: StatusCode,
    body: Bytes,
}

impl ApiClient {
    /// # Errors
    /// Fails when the token or organization id cannot be sent as a header.
    pub fn new(config: ApiConfig) -> Result<ApiClient, ApiError> {
        let budget = shared_budget(&config.base_url, config.token.expose(), &config.limits);
        let cache = shared_cache(
            &config.base_url,
            &config.organization_id,
            config.token.expose(),
            config.cache_limits,
        );
        let mut headers = HeaderMap::new();
        let bad_header = |what: &str| ApiError::Transport {
            method: String::new(),
            path: String::new(),
            message: format!("the {what} contains characters that cannot be sent"),
        };
        let mut token =
            HeaderValue::from_str(config.token.expose()).map_err(|_| bad_header("API token"))?;
        token.set_sensitive(true);
        headers.insert("X-Auth-Token", token);
        headers.insert(
            "X-Organization-Id",
            HeaderValue::from_str(&config.organization_id)
                .map_err(|_| bad_header("organization id"))?,
        );
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(JSON_API));
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| ApiError::Transport {
                method: String::new(),
                path: String::new(),
                message: e.to_string(),
            })?;
        Ok(ApiClient {
            http,
            config: Arc::new(config),
            budget,
            cache,
            totals: Arc::default(),
        })
    }

    pub fn config(&self) -> &ApiConfig {
        &self.config
    }

    /// Requests sent and time spent waiting for the rate budget, by this
    /// client and its clones.
    pub fn totals(&self) -> &ClientTotals {
        &self.totals
    }

    /// The answer cache of this client's credential.
    pub fn cache(&self) -> &AnswerCache {
        &self.cache
    }

    /// One page of a list request.
    pub async fn list_page(
        &self,
        request: &ListRequest,
        page: u32,
        stats: &RequestStats,
    ) -> Result<ListDocument, ApiError> {
        let path = format!("{}?{}", request.endpoint, request.query_string(page));
        self.read_json(&path, stats).await
    }

    /// One record by id; `None` when the API says it does not exist.
    pub async fn get_one(
        &self,
        endpoint: &str,
        id: &str,
        include: &[String],
        stats: &RequestStats,
    ) -> Result<Option<SingleDocument>, ApiError> {
        let mut path = format!("{endpoint}/{}", encode_component(id));
        if !include.is_empty() {
            path.push_str(&format!(
                "?include={}",
                encode_component(&include.join(","))
            ));
        }
        match self.read_json(&path, stats).await {
            Ok(doc) => Ok(Some(doc)),
            Err(ApiError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A cheap authenticated call, to check a token at login.
    pub async fn check_credentials(&self) -> Result<(), ApiError> {
        let stats = RequestStats::default();
        let path = format!("/organizations?{}=1", encode_component("page[size]"));
        self.read_json::<Value>(&path, &stats).await.map(|_| ())
    }

    /// `POST`, `PATCH` or `DELETE` with an optional JSON body. Returns the
    /// answer's document, if it had one. Cached answers of the endpoint
    /// written to are forgotten, whatever the outcome: a failed or unknown
    /// write may still have changed something.
    pub async fn write(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        stats: &RequestStats,
    ) -> Result<Option<SingleDocument>, ApiError> {
        let answer = self
            .exchange(method.clone(), path, body, false, stats)
            .await;
        self.cache.invalidate(path);
        let answer = answer?;
        if answer.body.is_empty() || answer.status == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        // A success status means the write took effect: an unreadable body
        // must not pass as a failed (and so safely repeatable) write.
        serde_json::from_slice(&answer.body).map(Some).map_err(|e| {
            ApiError::UnreadableWriteAnswer {
                method: method.to_string(),
                path: strip_query(path),
                status: answer.status.as_u16(),
                message: e.to_string(),
            }
        })
    }

    /// A GET whose answer is decoded as `T`; unreadable answers are retried
    /// like transport failures. With a cache time to live in `stats`, a
    /// fresh enough cached answer is used instead of a request, and a
    /// fetched answer is kept.
    async fn read_json<T: DeserializeOwned + Send + 'static>(
        &self,
        path: &str,
        stats: &RequestStats,
    ) -> Result<T, ApiError> {
        if let Some(ttl) = stats.cache_ttl
            && let Some(body) = self.cache.get(path, ttl)
            && let Ok(doc) = serde_json::from_slice::<T>(&body)
        {
            stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            debug!(path = %strip_query(path), "API answer from the cache");
            return Ok(doc);
        }
        let retry = &self.config.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let answer = self.exchange(Method::GET, path, None, true, stats).await?;
            let (decoded, body) = decode_off_the_runtime::<T>(answer.body).await;
            match decoded {
                Ok(doc) => {
                    if stats.cache_ttl.is_some() {
                        self.cache.put(path, body);
                    }
                    return Ok(doc);
                }
                Err(e) if attempt < retry.max_attempts => {
                    warn!(path = %strip_query(path), error = %e, "unreadable answer, retrying");
                    stats.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(retry.backoff(attempt)).await;
                }
                Err(e) => {
                    return Err(ApiError::Decode {
                        method: "GET".into(),
                        path: strip_query(path),
                        message: e.to_string(),
                    });
                }
            }
        }
    }

    /// Sends one request, waiting for budget and retrying as allowed, and
    /// returns a successful answer's body.
    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotent: bool,
        stats: &RequestStats,
    ) -> Result<Answer, ApiError> {
        let retry = &self.config.retry;
        let url = format!("{}{}", self.config.base_url, path);
        let short_path = strip_query(path);
        let kind = RequestKind::of_path(path);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut place = stats.place_on_the_wire().await;
            stats.count_request()?;
            let slot = self.budget.acquire(kind).await;
            let waited_ms = slot.waited().as_millis() as u64;
            stats.budget_wait_ms.fetch_add(waited_ms, Ordering::Relaxed);
            self.totals.requests.fetch_add(1, Ordering::Relaxed);
            self.totals
                .budget_wait_ms
                .fetch_add(waited_ms, Ordering::Relaxed);

            let mut builder = self.http.request(method.clone(), &url);
            if let Some(body) = body {
                builder = builder.body(serde_json::to_vec(body).unwrap_or_default());
            }
            debug!(method = %method, path = %short_path, attempt, "API request");
            let sent = builder.send().await;
            let failure = match sent {
                Ok(resp) => {
                    // The API has answered: the next request may go out
                    // while this answer's body streams in.
                    place.take();
                    let status = resp.status();
                    let retry_after = retry_after(resp.headers());
                    match read_body(resp).await {
                        Ok(body) if status.is_success() => return Ok(Answer { status, body }),
                        Ok(body) if status == StatusCode::TOO_MANY_REQUESTS => {
                            stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                            let delay = retry_after
                                .map(|d| d.min(retry.max_delay))
                                .unwrap_or_else(|| retry.backoff(attempt));
                            warn!(path = %short_path, ?delay, "rate limited by the API");
                            self.budget.pause_until(tokio::time::Instant::now() + delay);
                            if attempt >= retry.max_attempts {
                                return Err(ApiError::RateLimited {
                                    path: short_path,
                                    attempts: attempt,
                                });
                            }
                            stats.retries.fetch_add(1, Ordering::Relaxed);
                            let _ = body;
                            continue;
                        }
                        Ok(body) if status.is_server_error() && idempotent => {
                            Failure::Retry(format!("status {status}: {}", error_summary(&body)))
                        }
                        Ok(body) => {
                            let errors = serde_json::from_slice::<ErrorDocument>(&body)
                                .map(|d| d.errors)
                                .unwrap_or_default();
                            return Err(ApiError::Status {
                                method: method.to_string(),
                                path: short_path,
                                status: status.as_u16(),
                                errors,
                            });
                        }
                        Err(e) if idempotent => Failure::Retry(e),
                        Err(e) => Failure::Unknown(e),
                    }
                }
                Err(e) if e.is_connect() => Failure::Retry(e.to_string()),
                Err(e) if idempotent => Failure::Retry(describe(&e)),
                Err(e) => Failure::Unknown(describe(&e)),
            };
            drop(place);
            match failure {
                Failure::Retry(message) if attempt < retry.max_attempts => {
                    warn!(path = %short_path, attempt, %message, "API request failed, retrying");
                    stats.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(retry.backoff(attempt)).await;
                }
                Failure::Retry(message) => {
                    return Err(ApiError::Transport {
                        method: method.to_string(),
                        path: short_path,
                        message: format!("{message} (after {attempt} attempts)"),
                    });
                }
                Failure::Unknown(message) => {
                    return Err(ApiError::OutcomeUnknown {
                        method: method.to_string(),
                        path: short_path,
                        message,
                    });
                }
            }
        }
    }
}

/// Answers this large are decoded off the runtime (see [`super::work`]).
const DECODE_ELSEWHERE_BYTES: usize = 64 * 1024;

/// Decodes `body` as `T`, large answers on a blocking thread; gives the
/// body back for the cache.
async fn decode_off_the_runtime<T: DeserializeOwned + Send + 'static>(
    body: Bytes,
) -> (serde_json::Result<T>, Bytes) {
    if body.len() < DECODE_ELSEWHERE_BYTES {
        return (serde_json::from_slice(&body), body);
    }
    let decoding = super::work::off_the_runtime(move || (serde_json::from_slice(&body), body));
    match decoding.await {
        Some(done) => done,
        // The runtime is shutting down: nothing is waiting for the answer.
        None => (
            Err(serde::de::Error::custom(
                "decoding cancelled: shutting down",
            )),
            Bytes::new(),
        ),
    }
}

enum Failure {
    Retry(String),
    Unknown(String),
}

/// Reads a body up to [`MAX_BODY_BYTES`].
async fn read_body(mut resp: reqwest::Response) -> Result<Bytes, String> {
    let expected = resp
        .content_length()
        .unwrap_or(0)
        .min(MAX_BODY_BYTES as u64);
    let mut buf = Vec::with_capacity(expected as usize);
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if buf.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(format!("answer larger than {MAX_BODY_BYTES} bytes"));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(Bytes::from(buf)),
            Err(e) => {
                return Err(format!(
                    "connection cut while reading the answer: {}",
                    describe(&e)
                ));
            }
        }
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_string()
    } else {
        // reqwest's message can carry the URL; ours has no secrets in it,
        // but keep it short and without the query string.
        let mut s = e.to_string();
        if let Some(i) = s.find('?') {
            s.truncate(i);
        }
        s
    }
}

fn error_summary(body: &[u8]) -> String {
    serde_json::from_slice::<ErrorDocument>(body)
        .ok()
        .and_then(|d| d.errors.first().map(|e| e.message()))
        .unwrap_or_else(|| "no details".into())
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn strip_query(path: &str) -> String {
    path.split('?').next().unwrap_or(path).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
        };
        assert_eq!(p.backoff(1), Duration::from_millis(100));
        assert_eq!(p.backoff(2), Duration::from_millis(200));
        assert_eq!(p.backoff(3), Duration::from_millis(400));
        assert_eq!(p.backoff(4), Duration::from_millis(500));
    }

    #[test]
    fn request_cap_refuses_the_extra_request() {
        let stats = RequestStats::with_cap(Some(2));
        assert!(stats.count_request().is_ok());
        assert!(stats.count_request().is_ok());
        assert!(matches!(
            stats.count_request(),
            Err(ApiError::RequestCapReached { limit: 2, sent: 2 })
        ));
        assert_eq!(stats.requests(), 2);
    }

    #[test]
    fn the_cap_counts_every_request_of_the_statement() {
        let statement = Arc::new(StatementRequests::default());
        let scan = RequestStats::for_statement(statement.clone(), 3);
        let other_scan = RequestStats::for_statement(statement.clone(), 3);
        assert!(scan.count_request().is_ok());
        assert!(other_scan.count_request().is_ok());
        assert!(scan.count_request().is_ok());
        assert!(matches!(
            other_scan.count_request(),
            Err(ApiError::RequestCapReached { limit: 3, sent: 3 })
        ));
        assert_eq!((scan.requests(), other_scan.requests()), (2, 1));

        // The next statement starts from zero.
        statement.begin();
        assert!(other_scan.count_request().is_ok());
        assert_eq!(statement.sent(), 1);
    }

    #[test]
    fn debug_never_shows_the_token() {
        let client = ApiClient::new(ApiConfig::new(
            "http://127.0.0.1:1/api/v2",
            "7",
            "tok-secret".into(),
        ))
        .unwrap();
        let shown = format!("{client:?} {:?}", client.config());
        assert!(!shown.contains("tok-secret"), "{shown}");
    }
}
