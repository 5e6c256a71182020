//! The load test: many PostgreSQL clients at once, each running a mix of
//! statements, against the demo organization served by the real wire
//! server (`productive-pg bench --load`).
//!
//! Every client runs filtered selects, lookups by id, joins, aggregates,
//! SET and SHOW, local expressions and, now and then, an UPDATE of a task in
//! a scratch project. The run counts errors (it should see none), the
//! simulator's 429 answers (none: the server's shared rate budget keeps
//! every client within the organization's limits), statement latencies and
//! the process's peak resident memory.
//!
//! The simulator enforces the same request windows the server budgets for.
//! They are Productive's limits scaled up (`LoadSettings::requests_per_10s`)
//! so that the run measures the server rather than the API plan.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio_postgres::{Client, SimpleQueryMessage};

use super::{Stack, connect, start_stack};
use crate::sim::demo::{DemoOptions, demo_store};
use crate::sim::{Latency, RateLimits, SimOptions};

/// How much load, against what.
#[derive(Debug, Clone)]
pub struct LoadSettings {
    /// Clients connected at once.
    pub clients: usize,
    /// Statements each client runs.
    pub statements: usize,
    /// Demo organization scale.
    pub scale: u32,
    /// Latency of every simulated API request.
    pub latency: Duration,
    /// The organization's rate limit, in requests per 10 seconds, enforced
    /// by the simulator and budgeted for by the server alike.
    pub requests_per_10s: u32,
}

impl Default for LoadSettings {
    fn default() -> LoadSettings {
        LoadSettings {
            clients: 50,
            statements: 1000,
            scale: 1,
            latency: Duration::from_millis(20),
            requests_per_10s: 5000,
        }
    }
}

/// What a load run measured.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub clients: usize,
    pub statements: u64,
    pub errors: u64,
    /// The first few error messages, with their statements.
    pub first_errors: Vec<String>,
    pub elapsed: Duration,
    /// API requests the simulator answered, and how many of them with 429.
    pub api_requests: u64,
    pub throttled: u64,
    /// Statement latency percentiles.
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// Peak resident memory of this process (server, simulator and
    /// clients together), from `/proc/self/status`; `None` elsewhere.
    pub peak_rss_kib: Option<u64>,
}

impl LoadReport {
    /// The figures as lines of text.
    pub fn render(&self) -> String {
        let secs = self.elapsed.as_secs_f64().max(f64::EPSILON);
        let rss = match self.peak_rss_kib {
            Some(kib) => format!("{:.1} MiB", kib as f64 / 1024.0),
            None => "not available on this system".into(),
        };
        let mut out = format!(
            "load: {} clients, {} statements in {:.1} s ({:.0} statements/s)\n\
             errors: {}\n\
             API requests: {} ({:.0}/s), answered 429: {}\n\
             statement latency: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms\n\
             peak RSS: {rss}\n",
            self.clients,
            self.statements,
            secs,
            self.statements as f64 / secs,
            self.errors,
            self.api_requests,
            self.api_requests as f64 / secs,
            self.throttled,
            ms(self.p50),
            ms(self.p99),
            ms(self.max),
        );
        for e in &self.first_errors {
            out.push_str(&format!("  error: {e}\n"));
        }
        out
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Ids the statements use, read once before the clients start.
#[derive(Debug, Clone)]
struct Targets {
    projects: Vec<String>,
    tasks: Vec<String>,
    /// Tasks of the scratch project, which the UPDATEs rename.
    scratch_tasks: Vec<String>,
}

/// Runs the load and returns its figures.
///
/// # Errors
/// When the stack cannot start or the demo data lacks projects or tasks;
/// failed statements are counted, not returned.
pub async fn run(settings: &LoadSettings) -> Result<LoadReport> {
    let store = demo_store(&DemoOptions {
        scale: settings.scale.max(1),
        ..DemoOptions::default()
    });
    let window = Duration::from_secs(10);
    let limit = settings.requests_per_10s.max(1);
    let options = SimOptions {
        token: super::TOKEN.to_string(),
        latency: Latency::new(settings.latency.as_millis() as u64, 0),
        limits: RateLimits::per_window(limit as usize, window),
        ..SimOptions::default()
    };
    let budget = crate::api::budget::RateLimits {
        general: vec![crate::api::budget::Window::new(limit, window)],
        reports: vec![],
    };
    let stack = start_stack(store, options, budget).await?;
    let targets = read_targets(&stack).await?;
    stack.sim.clear_requests();

    let started = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for n in 0..settings.clients {
        let client = connect(stack.addr).await?;
        let targets = targets.clone();
        let statements = settings.statements;
        clients.spawn(async move { run_client(client, n, statements, &targets).await });
    }
    let mut report = LoadReport {
        clients: settings.clients,
        ..LoadReport::default()
    };
    let mut latencies = Vec::with_capacity(settings.clients * settings.statements);
    while let Some(done) = clients.join_next().await {
        let outcome = done.context("a load client panicked")?;
        report.statements += outcome.latencies.len() as u64;
        report.errors += outcome.errors.len() as u64;
        latencies.extend(outcome.latencies);
        for e in outcome.errors {
            if report.first_errors.len() < 5 {
                report.first_errors.push(e);
            }
        }
    }
    report.elapsed = started.elapsed();

    let log = stack.sim.requests();
    report.api_requests = log.len() as u64;
    report.throttled = log.iter().filter(|r| r.status == 429).count() as u64;
    latencies.sort_unstable();
    report.p50 = percentile(&latencies, 0.50);
    report.p99 = percentile(&latencies, 0.99);
    report.max = latencies.last().copied().unwrap_or_default();
    report.peak_rss_kib = peak_rss_kib();
    Ok(report)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `VmHWM` of `/proc/self/status`: the peak resident set, in KiB.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

async fn read_targets(stack: &Stack) -> Result<Targets> {
    let client = connect(stack.addr).await?;
    let projects = column(&client, "SELECT id FROM projects ORDER BY id LIMIT 40").await?;
    let Some(scratch) = projects.first().cloned() else {
        bail!("the demo organization has no projects");
    };
    let tasks = column(&client, "SELECT id FROM tasks LIMIT 400").await?;
    let scratch_tasks = column(
        &client,
        &format!("SELECT id FROM tasks WHERE project_id = {scratch} LIMIT 100"),
    )
    .await?;
    if tasks.is_empty() || scratch_tasks.is_empty() {
        bail!("the demo organization has no tasks to work on");
    }
    Ok(Targets {
        projects,
        tasks,
        scratch_tasks,
    })
}

async fn column(client: &Client, sql: &str) -> Result<Vec<String>> {
    let messages = client
        .simple_query(sql)
        .await
        .with_context(|| sql.to_string())?;
    Ok(messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        })
        .collect())
}

/// What one client saw.
struct ClientOutcome {
    latencies: Vec<Duration>,
    errors: Vec<String>,
}

async fn run_client(client: Client, n: usize, statements: usize, t: &Targets) -> ClientOutcome {
    let mut outcome = ClientOutcome {
        latencies: Vec::with_capacity(statements),
        errors: Vec::new(),
    };
    for i in 0..statements {
        let sql = statement(n, i, t);
        let started = Instant::now();
        let result = client.simple_query(&sql).await;
        outcome.latencies.push(started.elapsed());
        if let Err(e) = result {
            let reason = e
                .as_db_error()
                .map(|d| format!("{}: {}", d.code().code(), d.message()))
                .unwrap_or_else(|| e.to_string());
            outcome.errors.push(format!("{sql}: {reason}"));
        }
    }
    outcome
}

/// Statement `i` of client `n`: a fixed cycle of ten kinds, over ids that
/// differ by client and turn.
fn statement(n: usize, i: usize, t: &Targets) -> String {
    let pick = |ids: &[String], k: usize| ids[k % ids.len()].clone();
    let project = pick(&t.projects, n * 7 + i / 10);
    let task = pick(&t.tasks, n * 31 + i);
    match i % 10 {
        0 => format!("SET application_name = 'load-{n}-{i}'"),
        1 => "SHOW application_name".into(),
        2 => format!("SELECT id, title FROM tasks WHERE project_id = {project}"),
        3 => format!("SELECT title, due_date FROM tasks WHERE id = {task}"),
        4 => format!(
            "SELECT p.name, count(*) FROM tasks t JOIN projects p ON p.id = t.project_id \
             WHERE t.project_id = {project} GROUP BY p.name"
        ),
        5 => format!(
            "SELECT workflow_status_id, count(*) FROM tasks WHERE project_id = {project} \
             GROUP BY 1 ORDER BY 2 DESC"
        ),
        6 => format!("SELECT {n} + {i} AS local, upper('load') AS word"),
        7 => format!("SELECT name FROM projects WHERE id = {project}"),
        8 if (i / 10) % 5 == 0 => format!(
            "UPDATE tasks SET title = 'load {n} {i}' WHERE id = {}",
            pick(&t.scratch_tasks, n)
        ),
        8 => format!(
            "SELECT id FROM tasks WHERE id IN ({task}, {})",
            pick(&t.tasks, n + i + 1)
        ),
        _ => format!("SELECT max(created_at) FROM tasks WHERE project_id = {project}"),
    }
}
