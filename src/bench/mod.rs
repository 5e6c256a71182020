//! The benchmark: the gateway measured against its targets and against the
//! alternatives, in one run.
//!
//! It starts the simulator with a realistic latency and the real rate
//! limits over a scaled demo organization, serves it through the real wire
//! server, and measures with a PostgreSQL client: a full scan against its
//! lower bound and against a plain sequential API client, selective
//! queries, concurrent dashboard sessions, local work against PostgreSQL,
//! and streaming rows over the wire against PostgreSQL, a dashboard
//! repeated with the answer cache on, and memory: the gateway's peak RSS
//! during a very large scan and the simulator store's bytes per record.
//! It prints figures; it asserts nothing.

pub mod load;
mod local;
mod report;
mod rss;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use crate::api::ApiConfig;
use crate::gateway::SessionDefaults;
use crate::gateway::backend::GatewayBackend;
use crate::secret::Secret;
use crate::server::{AuthMode, ServerConfig};
use crate::sim::demo::{DemoOptions, demo_store};
use crate::sim::{Latency, RateLimits, SimOptions, SimServer};
pub use report::{Figure, Report};

/// What to measure and how big.
#[derive(Debug, Clone)]
pub struct BenchSettings {
    /// Demo organization scale: 4 gives about 20,000 tasks.
    pub scale: u32,
    /// Latency of every simulated request.
    pub latency: Duration,
    /// Concurrent dashboard sessions.
    pub sessions: usize,
    /// Statements each dashboard session runs.
    pub statements_per_session: usize,
    /// A PostgreSQL server to compare local work and streaming with.
    pub postgres_url: Option<String>,
    /// Rows streamed over the wire.
    pub stream_rows: u64,
    /// Skip the sequential API client (it takes a minute at scale 4).
    pub skip_sequential: bool,
    /// Productive's rate limits on the simulator (off only for smoke runs).
    pub rate_limits: bool,
    /// Tasks of the scan whose peak gateway RSS is measured (0: skip).
    pub rss_rows: u64,
    /// The `productive-pg` executable that runs the separate gateway and
    /// simulator of the RSS figure (`None`: skip it).
    pub executable: Option<PathBuf>,
}

impl Default for BenchSettings {
    fn default() -> BenchSettings {
        BenchSettings {
            scale: 4,
            latency: Duration::from_millis(100),
            sessions: 20,
            statements_per_session: 5,
            postgres_url: None,
            stream_rows: 100_000,
            skip_sequential: false,
            rate_limits: true,
            rss_rows: 1_000_000,
            executable: None,
        }
    }
}

const TOKEN: &str = "bench-token";
const USER: &str = "bench";
const PASSWORD: &str = "bench";

/// A simulator and our server over it.
struct Stack {
    sim: SimServer,
    addr: std::net::SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

fn sim_options(latency: Duration, rate_limits: bool) -> SimOptions {
    SimOptions {
        token: TOKEN.to_string(),
        latency: Latency::new(latency.as_millis() as u64, 0),
        limits: if rate_limits {
            RateLimits::productive()
        } else {
            RateLimits::disabled()
        },
        ..SimOptions::default()
    }
}

/// A simulator with `options` over `store`, and the server over it, whose
/// requests keep to `budget`.
async fn start_stack(
    store: crate::sim::store::Store,
    options: SimOptions,
    budget: crate::api::budget::RateLimits,
) -> Result<Stack> {
    let sim = crate::sim::start(TcpListener::bind("127.0.0.1:0").await?, store, options).await?;
    let mut api = ApiConfig::new(sim.base_url(), "", Secret::default());
    api.limits = budget;
    let backend = GatewayBackend::new(
        api,
        Some((sim.organization_id().to_string(), Secret::new(TOKEN))),
        SessionDefaults::default(),
    );
    let config = ServerConfig {
        auth: AuthMode::Password {
            user: USER.into(),
            password: PASSWORD.into(),
        },
        tls: None,
        max_connections: 64,
        shutdown_grace: crate::server::DEFAULT_SHUTDOWN_GRACE,
        database: crate::gateway::DATABASE.into(),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(crate::server::run(
        listener,
        config,
        Arc::new(backend),
        async move {
            let _ = rx.await;
        },
    ));
    Ok(Stack {
        sim,
        addr,
        _stop: tx,
    })
}

async fn connect(addr: std::net::SocketAddr) -> Result<Client> {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(addr.port())
        .user(USER)
        .password(PASSWORD)
        .dbname("productive");
    let (client, connection) = config
        .connect(NoTls)
        .await
        .context("connecting to productive-pg")?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    // The benchmark scans whole tables on purpose, at any scale.
    client
        .simple_query("SET productive.max_scan_rows = 0")
        .await
        .context("SET productive.max_scan_rows")?;
    Ok(client)
}

/// The request count a selective query should make.
enum Target {
    /// Exactly one request.
    One,
    /// The pages of the matching rows.
    Pages,
    /// No target: reported only.
    None,
}

/// Runs a statement, counting the rows it returns and the time it takes.
async fn timed(client: &Client, sql: &str) -> Result<(usize, Duration)> {
    let started = Instant::now();
    let messages = client
        .simple_query(sql)
        .await
        .with_context(|| sql.to_string())?;
    let rows = messages
        .iter()
        .filter(|m| matches!(m, SimpleQueryMessage::Row(_)))
        .count();
    Ok((rows, started.elapsed()))
}

/// Requests the simulator answered since the last call (and how many 429).
fn take_requests(sim: &SimServer) -> (usize, usize) {
    let log = sim.requests();
    sim.clear_requests();
    (log.len(), log.iter().filter(|r| r.status == 429).count())
}

/// Where a scan's time went, from the simulator's answer times: the first
/// page, the rounds of concurrent pages after it (an answer more than half
/// a latency after the first of its round starts a new round), and the tail
/// between the last answer and the last row at the client.
fn scan_timeline(
    log: &[crate::sim::LoggedRequest],
    started: std::time::SystemTime,
    elapsed: Duration,
    latency: Duration,
) -> String {
    let mut answers: Vec<Duration> = log
        .iter()
        .filter_map(|r| r.at.duration_since(started).ok())
        .collect();
    answers.sort();
    let (Some(&first), Some(&last)) = (answers.first(), answers.last()) else {
        return "full scan timeline: no answers logged".into();
    };
    let mut round_starts = Vec::new();
    for &at in &answers[1..] {
        if round_starts
            .last()
            .is_none_or(|&s: &Duration| at > s + latency / 2)
        {
            round_starts.push(at);
        }
    }
    let rounds = round_starts.len();
    let per_round = if rounds > 0 {
        (last - first).as_secs_f64() * 1000.0 / rounds as f64
    } else {
        0.0
    };
    format!(
        "full scan timeline: page 1 answered at {:.0} ms, then {rounds} rounds of up to 8 \
         pages ({per_round:.0} ms each on average), the last at {:.0} ms; the last row reached \
         the client at {:.0} ms",
        first.as_secs_f64() * 1000.0,
        last.as_secs_f64() * 1000.0,
        elapsed.as_secs_f64() * 1000.0,
    )
}

/// The lowest possible time for `pages` requests: page 1 alone, then the
/// rest `concurrency` at a time, and never faster than the rate limit of
/// 100 requests per 10 seconds.
pub fn scan_lower_bound(pages: u64, latency: Duration, concurrency: u64) -> Duration {
    let rounds = 1 + (pages.saturating_sub(1)).div_ceil(concurrency.max(1));
    let by_latency = latency * rounds as u32;
    let by_rate = Duration::from_secs(10) * (pages.saturating_sub(1) / 100) as u32 + latency;
    by_latency.max(by_rate)
}

/// Runs the benchmark and returns its figures.
///
/// # Errors
/// When the stack cannot start or a statement fails.
pub async fn run(settings: &BenchSettings) -> Result<Report> {
    let mut report = Report::default();
    let built = Instant::now();
    let rss_before = rss::own_rss_bytes();
    let store = demo_store(&DemoOptions {
        scale: settings.scale.max(1),
        ..DemoOptions::default()
    });
    let records: usize = store.kinds().map(|k| store.count(k)).sum();
    if let (Some(before), Some(after)) = (rss_before, rss::own_rss_bytes()) {
        report.push(Figure::plain(
            &format!("simulator store: memory per record ({records} records)"),
            after.saturating_sub(before) as f64 / records.max(1) as f64,
            "bytes",
        ));
    }
    let tasks = store.count("tasks") as u64;
    report.note(format!(
        "demo organization at scale {}: {tasks} tasks, {} time entries (built in {:.1} s); \
         simulator latency {} ms, Productive's rate limits",
        settings.scale,
        store.count("time_entries"),
        built.elapsed().as_secs_f64(),
        settings.latency.as_millis()
    ));
    let sequential_store = (!settings.skip_sequential).then(|| store.clone());
    let local_store = store.clone();
    let stack = start_stack(
        store,
        sim_options(settings.latency, settings.rate_limits),
        crate::api::budget::RateLimits::default(),
    )
    .await?;
    let client = connect(stack.addr).await?;

    // 1. Full scan.
    take_requests(&stack.sim);
    let scan_started = std::time::SystemTime::now();
    let (rows, elapsed) = timed(&client, "SELECT * FROM tasks").await?;
    let scan_log = stack.sim.requests();
    let (requests, throttled) = take_requests(&stack.sim);
    report.note(scan_timeline(
        &scan_log,
        scan_started,
        elapsed,
        settings.latency,
    ));
    let pages = (rows as u64).div_ceil(200);
    let bound = scan_lower_bound(pages, settings.latency, 8);
    report.push(Figure::count(
        "full scan: requests",
        requests as f64,
        pages as f64,
        "= ceil(rows / 200)",
    ));
    report.push(Figure::plain(
        "full scan: rows per request",
        rows as f64 / requests.max(1) as f64,
        "rows",
    ));
    report.push(Figure::time(
        "full scan: wall time",
        elapsed,
        bound,
        1.1,
        "≤ 1.1 × lower bound",
    ));
    report.push(Figure::plain(
        "full scan: 429 answers",
        throttled as f64,
        "answers",
    ));

    // 1b. What a user would otherwise write: sequential pages of 30.
    if let Some(store) = sequential_store {
        let seq =
            sequential_client(store, sim_options(settings.latency, settings.rate_limits)).await?;
        report.push(Figure::speedup(
            "full scan vs sequential client (page size 30)",
            seq,
            elapsed,
            10.0,
        ));
    }

    // 2. Selective queries.
    let project = first_value(
        &client,
        "SELECT project_id FROM tasks GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
    )
    .await?;
    let task_id = first_value(&client, "SELECT max(id) FROM tasks").await?;
    let cases = [
        (
            "selective: WHERE project_id = …",
            format!("SELECT * FROM tasks WHERE project_id = {project}"),
            Target::Pages,
        ),
        (
            "lookup: WHERE id = …",
            format!("SELECT * FROM tasks WHERE id = {task_id}"),
            Target::One,
        ),
        (
            "ORDER BY created_at DESC LIMIT 10",
            "SELECT id, title FROM tasks ORDER BY created_at DESC LIMIT 10".into(),
            Target::One,
        ),
        (
            "join tasks, projects, companies",
            "SELECT c.name, count(*) FROM tasks t JOIN projects p ON p.id = t.project_id \
             JOIN companies c ON c.id = p.company_id GROUP BY 1"
                .into(),
            Target::None,
        ),
        (
            "aggregate time entries by person and month",
            "SELECT person_id, date_trunc('month', date), sum(time) FROM time_entries \
             GROUP BY 1, 2"
                .into(),
            Target::None,
        ),
    ];
    take_requests(&stack.sim);
    for (name, sql, target) in cases {
        let (rows, elapsed) = timed(&client, &sql).await?;
        let (requests, _) = take_requests(&stack.sim);
        let target = match target {
            Target::One => Some(1.0),
            Target::Pages => Some((rows as f64 / 200.0).ceil().max(1.0)),
            Target::None => None,
        };
        report.push(Figure::requests(
            name,
            requests as f64,
            target,
            elapsed,
            rows,
        ));
    }

    // 3. Dashboard sessions, then one dashboard repeated with the cache.
    dashboards(&stack, settings, &project, &mut report).await?;
    cached_dashboard(&stack, &project, &mut report).await?;

    // 4 and 5. Against PostgreSQL.
    match &settings.postgres_url {
        Some(url) => {
            local::local_work(&local_store, url, &mut report).await?;
            local::streaming(stack.addr, url, settings.stream_rows, &mut report).await?;
        }
        None => report.note(
            "no PostgreSQL server given (--postgres-url): local work and streaming not compared"
                .into(),
        ),
    }
    // 6. Memory of a very large scan, on separate processes.
    match &settings.executable {
        Some(exe) if settings.rss_rows > 0 => {
            rss::big_scan(exe, settings.rss_rows, &mut report).await?
        }
        _ => report.note("peak RSS of a large scan: skipped (no executable or no rows)".into()),
    }
    Ok(report)
}

async fn first_value(client: &Client, sql: &str) -> Result<String> {
    let messages = client
        .simple_query(sql)
        .await
        .with_context(|| sql.to_string())?;
    messages
        .into_iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        })
        .with_context(|| format!("no value from {sql}"))
}

/// A plain client paging `/tasks` sequentially with the default page size,
/// against its own simulator (its own rate budget).
async fn sequential_client(
    store: crate::sim::store::Store,
    options: SimOptions,
) -> Result<Duration> {
    let sim = crate::sim::start(TcpListener::bind("127.0.0.1:0").await?, store, options).await?;
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut page = 1;
    loop {
        let resp = http
            .get(format!("{}/tasks?page[number]={page}", sim.base_url()))
            .header("X-Auth-Token", TOKEN)
            .header("X-Organization-Id", sim.organization_id().to_string())
            .header("Content-Type", crate::api::client::JSON_API)
            .send()
            .await?;
        if resp.status() == 429 {
            let wait = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .unwrap_or(1);
            tokio::time::sleep(Duration::from_secs(wait)).await;
            continue;
        }
        let doc: serde_json::Value = resp.json().await?;
        let total = doc["meta"]["total_pages"].as_u64().unwrap_or(0);
        if page >= total {
            break;
        }
        page += 1;
    }
    let elapsed = started.elapsed();
    sim.shutdown().await;
    Ok(elapsed)
}

/// The statements of a dashboard: counts and short lists.
fn dashboard_mix(project: &str) -> [String; 5] {
    [
        format!("SELECT count(*) FROM tasks WHERE project_id = {project}"),
        "SELECT name, budget_total FROM budgets ORDER BY created_at DESC LIMIT 10".to_string(),
        format!(
            "SELECT workflow_status_id, count(*) FROM tasks WHERE project_id = {project} GROUP BY 1"
        ),
        "SELECT id, name FROM projects WHERE archived_at IS NULL".to_string(),
        "SELECT id, title, due_date FROM tasks ORDER BY created_at DESC LIMIT 20".to_string(),
    ]
}

/// One session refreshing the dashboard within `productive.cache_ttl`:
/// the refresh should make no API request.
async fn cached_dashboard(stack: &Stack, project: &str, report: &mut Report) -> Result<()> {
    let client = connect(stack.addr).await?;
    client
        .simple_query("SET productive.cache_ttl = '60s'")
        .await
        .context("SET productive.cache_ttl")?;
    let mix = dashboard_mix(project);
    let started = Instant::now();
    for sql in &mix {
        timed(&client, sql).await?;
    }
    let first = started.elapsed();
    take_requests(&stack.sim);
    let started = Instant::now();
    for sql in &mix {
        timed(&client, sql).await?;
    }
    let again = started.elapsed();
    let (requests, _) = take_requests(&stack.sim);
    report.push(Figure::count(
        "dashboard refreshed within cache_ttl: requests",
        requests as f64,
        0.0,
        "= 0",
    ));
    report.push(Figure::speedup(
        "dashboard refreshed within cache_ttl vs first load",
        first,
        again,
        10.0,
    ));
    Ok(())
}

/// Concurrent sessions running a dashboard-like mix.
async fn dashboards(
    stack: &Stack,
    settings: &BenchSettings,
    project: &str,
    report: &mut Report,
) -> Result<()> {
    let mix = dashboard_mix(project);
    take_requests(&stack.sim);
    let started = Instant::now();
    let mut handles = Vec::new();
    for s in 0..settings.sessions {
        let addr = stack.addr;
        let mix = mix.clone();
        let n = settings.statements_per_session;
        handles.push(tokio::spawn(async move {
            let client = connect(addr).await?;
            let mut latencies = Vec::new();
            let mut errors = 0;
            for i in 0..n {
                let sql = &mix[(s + i) % mix.len()];
                let t = Instant::now();
                match client.simple_query(sql).await {
                    Ok(_) => latencies.push(t.elapsed()),
                    Err(_) => errors += 1,
                }
            }
            anyhow::Ok((latencies, errors))
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for h in handles {
        let (l, e) = h.await??;
        latencies.extend(l);
        errors += e;
    }
    let total = started.elapsed();
    let (requests, throttled) = take_requests(&stack.sim);
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    let name = format!(
        "{} sessions × {} statements",
        settings.sessions, settings.statements_per_session
    );
    report.push(Figure::plain(
        &format!("{name}: API requests"),
        requests as f64,
        "requests",
    ));
    report.push(Figure::ratio_target(
        &format!("{name}: 429 answers"),
        throttled as f64 / requests.max(1) as f64 * 100.0,
        1.0,
        "% of requests, ≤ 1 %",
    ));
    report.push(Figure::ratio_target(
        &format!("{name}: errors seen by clients"),
        errors as f64,
        0.0,
        "errors, = 0",
    ));
    report.push(Figure::plain(
        &format!("{name}: p50 latency"),
        pct(0.5).as_secs_f64() * 1000.0,
        "ms",
    ));
    report.push(Figure::plain(
        &format!("{name}: p99 latency"),
        pct(0.99).as_secs_f64() * 1000.0,
        "ms",
    ));
    report.push(Figure::plain(
        &format!("{name}: wall time"),
        total.as_secs_f64(),
        "s",
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn answered(start: SystemTime, ms: &[u64]) -> Vec<crate::sim::LoggedRequest> {
        ms.iter()
            .map(|&m| crate::sim::LoggedRequest {
                method: "GET".into(),
                path: "/api/v2/tasks".into(),
                query: None,
                status: 200,
                at: start + Duration::from_millis(m),
            })
            .collect()
    }

    #[test]
    fn the_scan_timeline_counts_rounds_after_the_first_page() {
        let start = SystemTime::now();
        let log = answered(start, &[300, 100, 210, 205, 200, 310]);
        let line = scan_timeline(
            &log,
            start,
            Duration::from_millis(330),
            Duration::from_millis(100),
        );
        assert_eq!(
            line,
            "full scan timeline: page 1 answered at 100 ms, then 2 rounds of up to 8 pages \
             (105 ms each on average), the last at 310 ms; the last row reached the client at \
             330 ms"
        );
        assert_eq!(
            scan_timeline(&[], start, Duration::ZERO, Duration::from_millis(100)),
            "full scan timeline: no answers logged"
        );
    }
}
