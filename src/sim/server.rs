//! The simulator's HTTP server: a local stand-in for
//! `https://api.productive.io/api/v2`.
//!
//! [`start`] serves a [`Store`] on a listener the caller bound (port 0 in
//! tests) and returns a [`SimServer`] handle for test hooks: the request
//! log, the store, runtime fault and latency settings, and shutdown.
//!
//! Every request goes through the same steps, in this order: latency (for a
//! `GET`, the answer is prepared first and sent when the latency is over), a
//! queued or random status fault, the rate limit (per token), auth (401
//! `invalid_auth_token`, then 403 `no_organization_id`, then 415 for a
//! `Content-Type` other than `application/vnd.api+json`), routing from the
//! catalog, the handler, and finally a body fault if one was drawn (a
//! hang-up fault closes the connection, after or instead of the handler). Routing
//! is catalog-driven: every endpoint of [`Catalog::served_resources`] takes
//! `GET` (list and by id) and the methods its tables' statements allow
//! (`insert` → `POST`, `update` → `PATCH`, `delete` → `DELETE`); other
//! methods get 405 `method_not_allowed`, unknown paths 404.
//!
//! Known gaps: no `etag`, `x-runtime` or `If-None-Match` handling; bulk
//! requests (`ext=bulk` with a `data` array, `PATCH`/`DELETE` on a
//! collection) are not modelled (a collection `PATCH` is 405, an array
//! `data` on `POST` reads as empty); `/reports/*` is not served (404), though
//! its rate limit is counted; `fields[...]`, `X-Organization-Id` as a query
//! parameter and unknown top-level parameters are ignored; a `page[number]`
//! or `page[size]` that is not a positive integer falls back to 1 and 30.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::catalog::{Catalog, Resource, Statements};
use crate::sim::actions;
use crate::sim::document::RenderContext;
use crate::sim::error::ApiError;
use crate::sim::faults::{self, FaultKind, FaultPlan, Faults, Latency};
use crate::sim::limits::{RateLimiter, RateLimits};
use crate::sim::query::decode_pairs;
use crate::sim::read;
use crate::sim::store::Store;
use crate::sim::write::{self, WriteRules};

/// The path every endpoint lives under.
pub const BASE_PATH: &str = "/api/v2";
/// The media type the API speaks, and the `Content-Type` of its answers.
pub const JSON_API: &str = "application/vnd.api+json";
const JSON_API_UTF8: &str = "application/vnd.api+json; charset=utf-8";
/// Write bodies larger than this are refused.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// How a simulator behaves. All fields are plain values so a command line
/// can fill them in.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// The `X-Auth-Token` every request must carry.
    pub token: String,
    /// The `X-Organization-Id` every request must carry; `None` takes the
    /// store's organization.
    pub organization_id: Option<u64>,
    pub latency: Latency,
    pub limits: RateLimits,
    /// Whether a 429 carries `Retry-After` (unconfirmed on the real API).
    pub send_retry_after: bool,
    pub faults: Faults,
    /// Seed of the RNG behind latency jitter, random faults and request ids.
    pub seed: u64,
    pub write_rules: WriteRules,
    /// Collection paths (`boards`) of features the organization lacks: the
    /// whole endpoint answers 404, as `/boards` does on accounts without
    /// folders (quirk 14).
    pub disabled_endpoints: Vec<String>,
}

impl Default for SimOptions {
    fn default() -> SimOptions {
        SimOptions {
            token: "sim-token".to_string(),
            organization_id: None,
            latency: Latency::default(),
            limits: RateLimits::productive(),
            send_retry_after: true,
            faults: Faults::none(),
            seed: 0,
            write_rules: WriteRules::default(),
            disabled_endpoints: Vec::new(),
        }
    }
}

impl SimOptions {
    /// Options from plain values: the real rate limits when `rate_limits`
    /// is on, none otherwise; no faults.
    pub fn from_values(
        token: impl Into<String>,
        organization_id: Option<u64>,
        latency_ms: u64,
        seed: u64,
        rate_limits: bool,
    ) -> SimOptions {
        SimOptions {
            token: token.into(),
            organization_id,
            latency: Latency::new(latency_ms, 0),
            limits: if rate_limits {
                RateLimits::productive()
            } else {
                RateLimits::disabled()
            },
            seed,
            ..SimOptions::default()
        }
    }
}

/// One request as the simulator saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    /// The path, including [`BASE_PATH`].
    pub path: String,
    /// The raw (still percent-encoded) query string, if any.
    pub query: Option<String>,
    /// The status the answer was sent with; for a hang-up fault the status
    /// of the handled request, or 0 when it was not handled.
    pub status: u16,
    pub at: SystemTime,
}

/// State shared by the handler and the [`SimServer`] handle.
struct Shared {
    store: Arc<RwLock<Store>>,
    token: String,
    organization_id: u64,
    send_retry_after: bool,
    write_rules: WriteRules,
    disabled_endpoints: Vec<String>,
    base_url: String,
    plan: Mutex<FaultPlan>,
    limiter: Mutex<RateLimiter>,
    log: Mutex<Vec<LoggedRequest>>,
}

/// A lock that a panicking handler poisoned still guards consistent data:
/// every handler mutates a cloned record and stores it in one step.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn read_store(store: &RwLock<Store>) -> RwLockReadGuard<'_, Store> {
    store.read().unwrap_or_else(|e| e.into_inner())
}

fn write_store(store: &RwLock<Store>) -> RwLockWriteGuard<'_, Store> {
    store.write().unwrap_or_else(|e| e.into_inner())
}

/// A running simulator.
pub struct SimServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// Serves `store` on `listener` until [`SimServer::shutdown`].
///
/// # Errors
/// When the listener has no local address.
pub async fn start(
    listener: TcpListener,
    store: Store,
    options: SimOptions,
) -> std::io::Result<SimServer> {
    let mut addr = listener.local_addr()?;
    if addr.ip().is_unspecified() {
        addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let organization_id = options.organization_id.unwrap_or(store.organization_id);
    let shared = Arc::new(Shared {
        store: Arc::new(RwLock::new(store)),
        token: options.token,
        organization_id,
        send_retry_after: options.send_retry_after,
        write_rules: options.write_rules,
        disabled_endpoints: options
            .disabled_endpoints
            .iter()
            .map(|e| e.trim_matches('/').to_string())
            .collect(),
        base_url: format!("http://{addr}{BASE_PATH}"),
        plan: Mutex::new(FaultPlan::new(
            options.seed,
            options.faults,
            options.latency,
        )),
        limiter: Mutex::new(RateLimiter::new(options.limits)),
        log: Mutex::new(Vec::new()),
    });
    let router = Router::new()
        .fallback(handle)
        .with_state(Arc::clone(&shared));
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
    });
    info!(%addr, organization_id, "simulator listening");
    Ok(SimServer {
        shared,
        addr,
        shutdown: Some(tx),
        task: Some(task),
    })
}

impl SimServer {
    /// `http://127.0.0.1:<port>/api/v2`.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The organization id requests must name.
    pub fn organization_id(&self) -> u64 {
        self.shared.organization_id
    }

    /// The live store; changes are visible to the next request.
    pub fn store(&self) -> Arc<RwLock<Store>> {
        Arc::clone(&self.shared.store)
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.shared.log).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.log).clear();
    }

    /// Replaces the random fault shares.
    pub fn set_faults(&self, faults: Faults) {
        lock(&self.shared.plan).faults = faults;
    }

    pub fn set_latency(&self, latency: Latency) {
        lock(&self.shared.plan).latency = latency;
    }

    /// Makes the next `count` requests fail with `kind`.
    pub fn fail_next(&self, count: usize, kind: FaultKind) {
        lock(&self.shared.plan).fail_next(count, kind);
    }

    /// Lets the next `skip` requests with `method` pass and makes `count`
    /// more fail with `kind`; these come before faults queued with
    /// [`SimServer::fail_next`].
    pub fn fail_method(&self, method: &str, skip: usize, count: usize, kind: FaultKind) {
        lock(&self.shared.plan).fail_method(method, skip, count, kind);
    }

    /// Replaces the rate limits (the request history is kept).
    pub fn set_limits(&self, limits: RateLimits) {
        lock(&self.shared.limiter).set_limits(limits);
    }

    /// Stops accepting, lets in-flight requests finish (for at most five
    /// seconds), and waits for the server task.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take() {
            match tokio::time::timeout(Duration::from_secs(5), &mut task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => warn!(error = %e, "simulator stopped with an error"),
                Ok(Err(e)) => warn!(error = %e, "simulator task failed"),
                Err(_) => task.abort(),
            }
        }
        info!(addr = %self.addr, "simulator stopped");
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// An answer before body faults and headers.
struct Answer {
    status: u16,
    body: Option<Vec<u8>>,
    content_type: &'static str,
    retry_after: Option<u64>,
}

impl Answer {
    fn json(status: u16, body: Vec<u8>) -> Answer {
        Answer {
            status,
            body: Some(body),
            content_type: JSON_API_UTF8,
            retry_after: None,
        }
    }

    fn no_content() -> Answer {
        Answer {
            status: 204,
            body: None,
            content_type: JSON_API_UTF8,
            retry_after: None,
        }
    }

    fn error(error: &ApiError, send_retry_after: bool) -> Answer {
        let mut answer = Answer::json(error.status(), error.to_body());
        if let ApiError::RateLimited { retry_after_secs } = error
            && send_retry_after
        {
            answer.retry_after = Some(*retry_after_secs);
        }
        answer
    }

    /// What a status fault sends: the API's own 500, or a proxy's page.
    fn status_fault(status: u16) -> Answer {
        if status == 500 {
            return Answer::error(&ApiError::Server(500), false);
        }
        let reason = StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error");
        Answer {
            status,
            body: Some(
                format!("<html><body><h1>{status} {reason}</h1></body></html>\n").into_bytes(),
            ),
            content_type: "text/html",
            retry_after: None,
        }
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().map(str::to_string);
    let body = axum::body::to_bytes(body, MAX_BODY_BYTES).await;

    let (delay, fault, request_id) = {
        let mut plan = lock(&shared.plan);
        let (delay, fault) = plan.next_request(parts.method.as_str());
        (delay, fault, plan.request_id())
    };
    // A read is answered `delay` after it arrived, its rendering included,
    // as the real API's response time includes its own work. A write takes
    // effect only after the delay, so a client that gives up during it
    // leaves nothing behind.
    let arrived = tokio::time::Instant::now();
    let is_read = parts.method == Method::GET;
    if !is_read && !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    let answer = match (fault, body) {
        (Some(FaultKind::Status(status)), _) => Answer::status_fault(status),
        // Logged with status 0: no answer was sent.
        (Some(FaultKind::HangUp { handled: false }), _) => Answer {
            status: 0,
            ..Answer::no_content()
        },
        (_, Err(_)) => Answer::error(
            &ApiError::BadRequest("The request body could not be read".into()),
            false,
        ),
        // Rendering a page is milliseconds of work: it runs on a blocking
        // thread so that it does not hold up the runtime's other requests.
        (_, Ok(body)) => {
            let (shared, method, path, query) = (
                shared.clone(),
                parts.method.clone(),
                path.clone(),
                query.clone(),
            );
            let headers = parts.headers.clone();
            let work = move || process(&shared, &method, &path, query.as_deref(), &headers, &body);
            match tokio::task::spawn_blocking(work).await {
                Ok(answer) => answer,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => Answer::status_fault(503),
            }
        }
    };
    if is_read {
        tokio::time::sleep_until(arrived + delay).await;
    }
    debug!(method = %parts.method, %path, status = answer.status, "simulated request");
    lock(&shared.log).push(LoggedRequest {
        method: parts.method.to_string(),
        path,
        query,
        status: answer.status,
        at: SystemTime::now(),
    });

    let slow_body = lock(&shared.plan).faults.slow_body;
    to_response(answer, &request_id, fault, slow_body)
}

fn to_response(
    answer: Answer,
    request_id: &str,
    fault: Option<FaultKind>,
    slow_body: Duration,
) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let cache_control = if matches!(answer.status, 200 | 201) {
        "max-age=0, private, must-revalidate"
    } else {
        "no-cache"
    };
    let hang_up = match fault {
        Some(kind @ FaultKind::HangUp { .. }) => Some(kind),
        // A cut connection cuts an answer without a body too.
        Some(FaultKind::DropConnection) if answer.body.is_none() => {
            Some(FaultKind::HangUp { handled: true })
        }
        _ => None,
    };
    if let Some(kind) = hang_up {
        // A status with a body, so the server polls the body and breaks
        // the connection on its error, whatever the real answer was.
        let (body, _) = faults::faulty_body(kind, Vec::new(), slow_body);
        return Response::new(body);
    }
    let (body, length) = match (answer.body, fault) {
        (Some(bytes), Some(kind)) if !matches!(kind, FaultKind::Status(_)) => {
            faults::faulty_body(kind, bytes, slow_body)
        }
        (Some(bytes), _) => {
            let len = bytes.len();
            (Body::from(bytes), Some(len))
        }
        (None, _) => (Body::empty(), None),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if answer.status != 204 {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(answer.content_type),
        );
    }
    if let Some(len) = length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", id);
    }
    if let Some(secs) = answer.retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

fn process(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Answer {
    match admit(shared, path, headers).and_then(|()| route(shared, method, path, query, body)) {
        Ok(answer) => answer,
        Err(error) => Answer::error(&error, shared.send_retry_after),
    }
}

fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Rate limit, then auth, then content type.
fn admit(shared: &Shared, path: &str, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = header_text(headers, "x-auth-token").unwrap_or_default();
    let is_report = path.starts_with(&format!("{BASE_PATH}/reports/"));
    lock(&shared.limiter)
        .check(token, is_report, Instant::now())
        .map_err(|retry_after_secs| ApiError::RateLimited { retry_after_secs })?;

    if token != shared.token {
        return Err(ApiError::InvalidAuthToken);
    }
    let organization =
        header_text(headers, "x-organization-id").and_then(|v| v.trim().parse::<u64>().ok());
    if organization != Some(shared.organization_id) {
        return Err(ApiError::NoOrganizationId);
    }
    let content_type = header_text(headers, "content-type").unwrap_or_default();
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    if !media_type.eq_ignore_ascii_case(JSON_API) {
        return Err(ApiError::UnsupportedMediaType(content_type.to_string()));
    }
    Ok(())
}

/// Served resources by collection path segment (`tasks`).
static ENDPOINTS: LazyLock<HashMap<String, &'static Resource>> = LazyLock::new(|| {
    Catalog::get()
        .served_resources()
        .into_iter()
        .map(|r| (r.endpoint.trim_start_matches('/').to_string(), r))
        .collect()
});

/// The statements of every table over the resource's endpoint.
fn allowed_statements(resource: &Resource) -> Statements {
    let mut allowed = Statements::default();
    for table in Catalog::get()
        .tables()
        .iter()
        .filter(|t| t.resource.json_api_type == resource.json_api_type)
    {
        allowed.insert |= table.statements.insert;
        allowed.update |= table.statements.update;
        allowed.delete |= table.statements.delete;
    }
    // A delete the catalog lists as an action (workflow statuses) is
    // served too, with its own rules.
    let item_delete = format!("DELETE {}/{{id}}", resource.endpoint);
    allowed.delete |= resource.actions.iter().any(|a| a.starts_with(&item_delete));
    allowed
}

fn route(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Result<Answer, ApiError> {
    let not_found = || ApiError::RouteNotFound(path.to_string());
    let rest = path
        .strip_prefix(BASE_PATH)
        .and_then(|p| p.strip_prefix('/'))
        .ok_or_else(not_found)?;
    let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    if shared.disabled_endpoints.iter().any(|e| e == segments[0]) {
        return Err(not_found());
    }
    let resource = *ENDPOINTS.get(segments[0]).ok_or_else(not_found)?;
    let kind = resource.json_api_type.as_str();
    let allowed = allowed_statements(resource);
    let pairs = decode_pairs(query.unwrap_or_default());
    let record_id = |text: &str| text.parse::<u64>().map_err(|_| ApiError::RecordNotFound);
    let refused = || ApiError::MethodNotAllowed(method.to_string());
    let org = shared.organization_id;
    let render_one = |store: &Store, id: u64, status: u16| {
        let ctx = RenderContext {
            store,
            organization_id: org,
        };
        read::single(ctx, resource, id, &[]).map(|body| Answer::json(status, body))
    };

    match (segments.as_slice(), method) {
        ([_], &Method::GET) => {
            let store = read_store(&shared.store);
            let ctx = RenderContext {
                store: &store,
                organization_id: org,
            };
            let url = format!("{}{}", shared.base_url, resource.endpoint);
            read::list(ctx, resource, &pairs, &url).map(|body| Answer::json(200, body))
        }
        ([_], &Method::POST) if allowed.insert => {
            let mut store = write_store(&shared.store);
            let id = write::create(&mut store, resource, body, &shared.write_rules)?;
            render_one(&store, id, 201)
        }
        ([_, id], &Method::GET) => {
            let id = record_id(id)?;
            let store = read_store(&shared.store);
            let ctx = RenderContext {
                store: &store,
                organization_id: org,
            };
            read::single(ctx, resource, id, &pairs).map(|body| Answer::json(200, body))
        }
        ([_, id], &Method::PATCH) if allowed.update => {
            let id = record_id(id)?;
            let mut store = write_store(&shared.store);
            write::update(&mut store, resource, id, body, &shared.write_rules)?;
            render_one(&store, id, 200)
        }
        ([_, id], &Method::DELETE) if allowed.delete => {
            let id = record_id(id)?;
            let mut store = write_store(&shared.store);
            if kind == "workflow_statuses" {
                actions::delete_workflow_status(&mut store, resource, id, body)?;
            } else {
                write::delete(&mut store, resource, id)?;
            }
            Ok(Answer::no_content())
        }
        ([_, id, verb], &Method::PATCH) => {
            let id = record_id(id)?;
            let mut store = write_store(&shared.store);
            actions::run(&mut store, resource, id, verb, body)?;
            render_one(&store, id, 200)
        }
        ([_] | [_, _], _) => Err(refused()),
        _ => Err(not_found()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_follow_the_write_contract() {
        let catalog = Catalog::get();
        let allowed = |kind: &str| allowed_statements(catalog.resource(kind).unwrap());
        assert!(!allowed("activities").insert);
        assert!(allowed("deals").delete, "budgets and deals share /deals");
        assert!(!allowed("companies").delete);
        assert!(allowed("workflow_statuses").delete, "delete with a target");
        assert!(!allowed("users").insert && allowed("users").update);
    }

    #[test]
    fn every_served_resource_has_an_endpoint() {
        assert_eq!(ENDPOINTS.len(), Catalog::get().served_resources().len());
        assert!(ENDPOINTS.contains_key("deals"));
        assert!(ENDPOINTS.contains_key("time_entries"));
    }
}
