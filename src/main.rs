//! The `productive-pg` command line: parse, validate, start, report.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use productive_pg::app::{self, PRODUCTIVE_API_URL, ReplicateSettings, ServeSettings, SimSettings};
use productive_pg::secret::Secret;
use productive_pg::server::TlsConfig;
use productive_pg::sim::demo::{DEMO_ORGANIZATION_ID, DemoOptions};

/// A PostgreSQL server in front of the Productive.io API.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a Productive organization to PostgreSQL clients.
    Serve(ServeArgs),
    /// Run the Productive API simulator with the demo organization.
    Sim(SimArgs),
    /// Copy the organization into SQLite or PostgreSQL, incrementally.
    Replicate(ReplicateArgs),
    /// Two-way sync of tables with SQLite or PostgreSQL.
    Sync(SyncArgs),
    /// Export a table or a query to CSV.
    Export(ExportArgs),
    /// Import a CSV file into a table (insert, update, upsert or delete).
    Import(ImportArgs),
    /// Measure the gateway against its targets, a sequential API client and
    /// PostgreSQL; prints a table of figures.
    Bench(BenchArgs),
}

#[derive(Args)]
struct ReplicateArgs {
    /// Where to: `sqlite:FILE.db` or `postgres://user:password@host/db`.
    #[arg(long, env = "PRODUCTIVE_PG_TARGET")]
    target: String,
    /// Only these tables, comma-separated (`tasks,projects`).
    #[arg(long, value_delimiter = ',')]
    tables: Option<Vec<String>>,
    /// Copy every table in full, ignoring what earlier runs stored.
    #[arg(long)]
    full: bool,
    /// Add a column per custom field.
    #[arg(long, env = "PRODUCTIVE_USE_CUSTOM_FIELDS")]
    use_custom_fields: bool,
    /// Declare foreign keys between the replicated tables.
    #[arg(long)]
    foreign_keys: bool,
    /// Run again at this interval (`30s`, `5m`, `1h`) until interrupted.
    #[arg(long, value_parser = app::parse_interval)]
    schedule: Option<Duration>,
    /// Base URL of the Productive API.
    #[arg(long, env = "PRODUCTIVE_API_URL", default_value = PRODUCTIVE_API_URL)]
    api_url: String,
    /// Organization id.
    #[arg(long, env = "PRODUCTIVE_ORG_ID")]
    org_id: Option<String>,
    /// API token.
    #[arg(long, env = "PRODUCTIVE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Replicate the built-in demo organization.
    #[arg(long)]
    demo: bool,
    /// Size of the demo organization (with --demo).
    #[arg(long, default_value_t = 1)]
    scale: u32,
}

#[derive(Args)]
struct SyncArgs {
    /// Where to: `sqlite:FILE.db` or `postgres://user:password@host/db`.
    #[arg(long, env = "PRODUCTIVE_PG_TARGET")]
    target: String,
    /// Only these tables, comma-separated (default: invoices,bookings,tasks).
    #[arg(long, value_delimiter = ',')]
    tables: Option<Vec<String>>,
    /// How a row changed on both sides is resolved: remote-wins,
    /// local-wins or newest-wins.
    #[arg(long, default_value = "remote-wins")]
    conflict: productive_pg::transfer::sync::ConflictPolicy,
    /// Print and store (in productive_sync_plan) what a run would change;
    /// change nothing.
    #[arg(long)]
    plan: bool,
    #[command(flatten)]
    api: ApiArgs,
}

/// Where a command reads Productive data from.
#[derive(Args)]
struct ApiArgs {
    /// Base URL of the Productive API.
    #[arg(long, env = "PRODUCTIVE_API_URL", default_value = PRODUCTIVE_API_URL)]
    api_url: String,
    /// Organization id.
    #[arg(long, env = "PRODUCTIVE_ORG_ID")]
    org_id: Option<String>,
    /// API token.
    #[arg(long, env = "PRODUCTIVE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Use the built-in demo organization.
    #[arg(long)]
    demo: bool,
}

impl ApiArgs {
    fn settings(self) -> app::ApiSettings {
        app::ApiSettings {
            api_url: self.api_url,
            credentials: match (self.org_id, self.token) {
                (Some(org), Some(token)) => Some((org, Secret::new(token))),
                _ => None,
            },
            demo: self.demo.then(DemoOptions::default),
        }
    }
}

#[derive(Args)]
struct ImportArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// The CSV file.
    file: PathBuf,
    /// Table to write to.
    #[arg(long)]
    table: String,
    /// What each row does; update, upsert and delete match on `id`.
    #[arg(long, value_enum, default_value = "insert")]
    mode: productive_pg::transfer::import::ImportMode,
    /// Rename a file column: `csv_column=table_column` (repeatable).
    #[arg(long, value_parser = app::parse_mapping)]
    map: Vec<(String, String)>,
    /// Write rejected rows here (CSV: the fields, then line and reason).
    #[arg(long)]
    rejects: Option<PathBuf>,
    /// Journal of the rows written (default: FILE.journal).
    #[arg(long)]
    journal: Option<PathBuf>,
    /// Validate every row and send nothing.
    #[arg(long)]
    dry_run: bool,
    /// Field delimiter (one byte).
    #[arg(long, default_value = ",")]
    delimiter: String,
    /// Quote character (one byte).
    #[arg(long, default_value = "\"")]
    quote: String,
    /// The file has no header line; name its columns with --columns.
    #[arg(long, requires = "columns")]
    no_header: bool,
    /// The file's columns, comma-separated (with --no-header).
    #[arg(long, value_delimiter = ',', requires = "no_header")]
    columns: Option<Vec<String>>,
    /// How NULL is written (an unquoted field equal to it is NULL).
    #[arg(long, default_value = "")]
    null: String,
    /// The file's encoding; only UTF-8 is read.
    #[arg(long, default_value = "UTF-8")]
    encoding: String,
    /// Include custom fields as columns.
    #[arg(long)]
    use_custom_fields: bool,
}

#[derive(Args)]
struct ExportArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// Table to export.
    #[arg(long, conflicts_with = "query", required_unless_present = "query")]
    table: Option<String>,
    /// SQL condition on the table's rows.
    #[arg(long = "where", requires = "table")]
    filter: Option<String>,
    /// Columns to export, comma-separated (default: all).
    #[arg(long, value_delimiter = ',', requires = "table")]
    columns: Option<Vec<String>>,
    /// Any query instead of a table.
    #[arg(long)]
    query: Option<String>,
    /// Output file (default: standard output).
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Field delimiter (one byte).
    #[arg(long, default_value = ",")]
    delimiter: String,
    /// Quote character (one byte).
    #[arg(long, default_value = "\"")]
    quote: String,
    /// Leave out the header line.
    #[arg(long)]
    no_header: bool,
    /// How NULL is written.
    #[arg(long, default_value = "")]
    null: String,
    /// Quote every non-NULL value.
    #[arg(long)]
    force_quote: bool,
    /// Include custom fields as columns.
    #[arg(long)]
    use_custom_fields: bool,
}

fn one_byte(what: &str, s: &str) -> anyhow::Result<u8> {
    match s.as_bytes() {
        [b] => Ok(*b),
        [b'\\', b't'] => Ok(b'\t'),
        _ => anyhow::bail!("{what} must be one character, got {s:?}"),
    }
}

#[derive(Args)]
struct BenchArgs {
    /// Demo organization scale (4 gives about 20,000 tasks).
    #[arg(long, default_value_t = 4)]
    scale: u32,
    /// Latency of every simulated API request.
    #[arg(long, default_value_t = 100)]
    latency_ms: u64,
    /// Concurrent dashboard sessions.
    #[arg(long, default_value_t = 20)]
    sessions: usize,
    /// PostgreSQL server to compare with (bench/run starts one).
    #[arg(long, env = "PRODUCTIVE_PG_BENCH_POSTGRES_URL")]
    postgres_url: Option<String>,
    /// Rows streamed over the wire.
    #[arg(long, default_value_t = 100_000)]
    stream_rows: u64,
    /// Skip the sequential API client.
    #[arg(long)]
    skip_sequential: bool,
    /// Tasks of the scan whose peak gateway RSS is measured (0 skips it).
    #[arg(long, default_value_t = 1_000_000)]
    rss_rows: u64,
    /// Run the load test instead: many clients at once, each a mix of
    /// selects, lookups, joins, aggregates, SET/SHOW and some UPDATEs
    /// (uses --scale, --latency-ms, --clients, --statements).
    #[arg(long)]
    load: bool,
    /// Clients at once (with --load).
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Statements per client (with --load).
    #[arg(long, default_value_t = 1000)]
    statements: usize,
    /// The organization's rate limit in requests per 10 s, for the
    /// simulator and the server's budget alike (with --load).
    #[arg(long, default_value_t = 5000)]
    requests_per_10s: u32,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PRODUCTIVE_PG_LISTEN", default_value = "127.0.0.1:5432")]
    listen: SocketAddr,
    /// Base URL of the Productive API.
    #[arg(long, env = "PRODUCTIVE_API_URL", default_value = PRODUCTIVE_API_URL)]
    api_url: String,
    /// Organization id of server-held credentials.
    #[arg(long, env = "PRODUCTIVE_ORG_ID")]
    org_id: Option<String>,
    /// API token of server-held credentials. Without it, clients log in with
    /// their organization id as user name and their API token as password.
    #[arg(long, env = "PRODUCTIVE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Login user name for clients (with server-held credentials).
    #[arg(long, env = "PRODUCTIVE_PG_USER")]
    user: Option<String>,
    /// Login password for clients (with server-held credentials).
    #[arg(long, env = "PRODUCTIVE_PG_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Show custom fields as columns in every session by default.
    #[arg(long, env = "PRODUCTIVE_USE_CUSTOM_FIELDS")]
    use_custom_fields: bool,
    /// Refuse every write (INSERT, UPDATE, DELETE) and procedure call.
    #[arg(long, env = "PRODUCTIVE_PG_READ_ONLY")]
    read_only: bool,
    /// Reuse API answers up to this old in every session (`60s`, `5m`;
    /// default off); sessions change it with `SET productive.cache_ttl`.
    #[arg(long, env = "PRODUCTIVE_PG_CACHE_TTL", value_parser = parse_cache_ttl)]
    cache_ttl: Option<Duration>,
    /// TLS certificate (PEM).
    #[arg(long, env = "PRODUCTIVE_PG_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "PRODUCTIVE_PG_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Rate limits the server keeps to for each token: `off`, or windows
    /// such as `100/10s,4000/30m` (Productive's, the default).
    #[arg(
        long,
        env = "PRODUCTIVE_PG_RATE_LIMITS",
        default_value = "100/10s,4000/30m",
        value_parser = parse_rate_limits
    )]
    rate_limits: productive_pg::api::budget::RateLimits,
    /// Most client connections at once; more are refused with 53300.
    #[arg(long, env = "PRODUCTIVE_PG_MAX_CONNECTIONS", default_value_t = 100)]
    max_connections: usize,
    /// On SIGTERM or Ctrl-C, how long running statements may take to
    /// finish before their connections are closed (`30s`, `2m`, `0s`).
    #[arg(
        long,
        env = "PRODUCTIVE_PG_SHUTDOWN_GRACE",
        default_value = "30s",
        value_parser = app::parse_duration
    )]
    shutdown_grace: Duration,
    /// Serve the built-in demo organization (login demo / demo).
    #[arg(long)]
    demo: bool,
    /// Size of the demo organization (with --demo).
    #[arg(long, default_value_t = 1)]
    scale: u32,
    /// Latency added to every API request of the demo (with --demo), to try
    /// out slow statements.
    #[arg(long, default_value_t = 0)]
    demo_latency_ms: u64,
}

#[derive(Args)]
struct SimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The X-Auth-Token the simulator accepts.
    #[arg(long, default_value = "sim-token")]
    token: String,
    /// The X-Organization-Id the simulator accepts.
    #[arg(long, default_value_t = DEMO_ORGANIZATION_ID)]
    org_id: u64,
    /// Multiplies the volume of the demo organization.
    #[arg(long, default_value_t = 1)]
    scale: u32,
    /// Tasks in the demo organization instead of 5,000 per unit of scale.
    #[arg(long)]
    tasks: Option<usize>,
    /// Added to every request.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Random extra latency, up to this much.
    #[arg(long, default_value_t = 0)]
    jitter_ms: u64,
    /// Seed of the demo data and of random behaviour.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Turn Productive's rate limits off.
    #[arg(long)]
    no_rate_limits: bool,
    /// Answer 429 without a Retry-After header.
    #[arg(long)]
    no_retry_after: bool,
}

fn parse_rate_limits(value: &str) -> Result<productive_pg::api::budget::RateLimits, String> {
    app::parse_rate_limits(value).map_err(|e| e.to_string())
}

fn parse_cache_ttl(value: &str) -> Result<Duration, String> {
    productive_pg::table::options::CacheTtl::parse(value).map(Option::unwrap_or_default)
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM (what service managers and
/// container runtimes send to stop a process).
async fn ctrl_c() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn serve_settings(a: ServeArgs) -> ServeSettings {
    let credentials = match (a.org_id, a.token) {
        (None, None) => None,
        (org, token) => Some((
            org.unwrap_or_default(),
            Secret::new(token.unwrap_or_default()),
        )),
    };
    let login = match (a.user, a.password) {
        (None, None) => None,
        (user, password) => Some((
            user.unwrap_or_default(),
            Secret::new(password.unwrap_or_default()),
        )),
    };
    ServeSettings {
        listen: a.listen,
        api_url: a.api_url,
        credentials,
        login,
        use_custom_fields: a.use_custom_fields,
        read_only: a.read_only,
        cache_ttl: a.cache_ttl,
        tls: match (a.tls_cert, a.tls_key) {
            (Some(cert_path), Some(key_path)) => Some(TlsConfig {
                cert_path,
                key_path,
            }),
            _ => None,
        },
        max_connections: a.max_connections,
        shutdown_grace: a.shutdown_grace,
        demo_latency: Duration::from_millis(a.demo_latency_ms),
        rate_limits: a.rate_limits,
        demo: a.demo.then(|| DemoOptions {
            scale: a.scale.max(1),
            ..DemoOptions::default()
        }),
    }
}

/// Caps glibc's malloc arenas at one per core, unless `MALLOC_ARENA_MAX`
/// says otherwise. Pages are decoded on blocking threads; with glibc's
/// default of eight arenas per core each of those threads kept its own
/// arena of freed page memory, and a million-row scan peaked at 250 MB
/// instead of about 150 MB.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn cap_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let cores = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt only sets an allocator tunable; it is called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, cores);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn cap_malloc_arenas() {}

fn main() -> ExitCode {
    cap_malloc_arenas();
    let cli = Cli::parse();
    // Servers report their lifecycle; one-shot commands only problems.
    let default_level = match cli.command {
        Command::Serve(_) | Command::Sim(_) => "productive_pg=info",
        _ => "productive_pg=warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_level.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => app::serve(serve_settings(args), ctrl_c())
                .await
                .map(|()| ExitCode::SUCCESS),
            Command::Sim(args) => {
                let settings = SimSettings {
                    listen: args.listen,
                    token: args.token,
                    organization_id: Some(args.org_id),
                    demo: DemoOptions {
                        scale: args.scale.max(1),
                        seed: args.seed,
                        tasks: args.tasks,
                    },
                    latency: Duration::from_millis(args.latency_ms),
                    jitter: Duration::from_millis(args.jitter_ms),
                    rate_limits: !args.no_rate_limits,
                    retry_after: !args.no_retry_after,
                };
                app::sim(settings, ctrl_c())
                    .await
                    .map(|()| ExitCode::SUCCESS)
            }
            Command::Replicate(args) => {
                let settings = ReplicateSettings {
                    api_url: args.api_url,
                    credentials: match (args.org_id, args.token) {
                        (None, None) => None,
                        (org, token) => Some((
                            org.unwrap_or_default(),
                            Secret::new(token.unwrap_or_default()),
                        )),
                    },
                    options: productive_pg::transfer::ReplicateOptions {
                        target: args.target,
                        tables: args.tables,
                        full: args.full,
                        use_custom_fields: args.use_custom_fields,
                        foreign_keys: args.foreign_keys,
                    },
                    schedule: args.schedule,
                    demo: args.demo.then(|| DemoOptions {
                        scale: args.scale.max(1),
                        ..DemoOptions::default()
                    }),
                    progress: true,
                };
                // A run that failed anywhere exits with 1; one that could
                // not run at all with 2.
                app::replicate(settings, ctrl_c()).await.map(|report| {
                    if report.failed() {
                        ExitCode::from(1)
                    } else {
                        ExitCode::SUCCESS
                    }
                })
            }
            Command::Sync(args) => {
                let options = productive_pg::transfer::sync::SyncOptions {
                    target: args.target,
                    tables: args.tables,
                    conflict: args.conflict,
                    plan: args.plan,
                };
                // Anything refused or failed exits with 1; a run that could
                // not start with 2.
                app::sync(&args.api.settings(), &options)
                    .await
                    .map(|report| {
                        if report.failed() {
                            ExitCode::from(1)
                        } else {
                            ExitCode::SUCCESS
                        }
                    })
            }
            Command::Export(args) => {
                let options = productive_pg::transfer::csv_out::CsvOptions {
                    delimiter: one_byte("--delimiter", &args.delimiter)?,
                    quote: one_byte("--quote", &args.quote)?,
                    header: !args.no_header,
                    null: args.null,
                    force_quote: args.force_quote,
                };
                let source = match (args.table, args.query) {
                    (Some(table), _) => productive_pg::transfer::export::ExportSource::Table {
                        table,
                        columns: args.columns,
                        filter: args.filter,
                    },
                    (None, Some(q)) => productive_pg::transfer::export::ExportSource::Query(q),
                    (None, None) => anyhow::bail!("give --table or --query"),
                };
                app::export(
                    &args.api.settings(),
                    source,
                    options,
                    args.output,
                    args.use_custom_fields,
                )
                .await
                .map(|()| ExitCode::SUCCESS)
            }
            Command::Import(args) => {
                let mut format = productive_pg::transfer::csv_in::InputFormat::csv();
                format.delimiter = one_byte("--delimiter", &args.delimiter)?;
                format.quote = one_byte("--quote", &args.quote)?;
                format.escape = format.quote;
                format.null = args.null;
                format.header = !args.no_header;
                productive_pg::transfer::csv_in::InputFormat::check_encoding(&args.encoding)?;
                let options = productive_pg::transfer::import::ImportOptions {
                    mode: args.mode,
                    map: args.map,
                    columns: args.columns,
                    format,
                    rejects: args.rejects,
                    journal: args.journal,
                    dry_run: args.dry_run,
                };
                let settings = args.api.settings();
                app::import(
                    &settings,
                    &args.file,
                    &args.table,
                    &options,
                    args.use_custom_fields,
                )
                .await
                .map(|summary| {
                    if summary.failed() {
                        ExitCode::from(1)
                    } else {
                        ExitCode::SUCCESS
                    }
                })
            }
            Command::Bench(args) if args.load => {
                let settings = productive_pg::bench::load::LoadSettings {
                    clients: args.clients,
                    statements: args.statements,
                    scale: args.scale,
                    latency: Duration::from_millis(args.latency_ms),
                    requests_per_10s: args.requests_per_10s,
                };
                let report = productive_pg::bench::load::run(&settings).await?;
                print!("{}", report.render());
                // Errors or 429s mean the server did not hold up.
                Ok(if report.errors == 0 && report.throttled == 0 {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                })
            }
            Command::Bench(args) => {
                let settings = productive_pg::bench::BenchSettings {
                    scale: args.scale,
                    latency: Duration::from_millis(args.latency_ms),
                    sessions: args.sessions,
                    postgres_url: args.postgres_url,
                    stream_rows: args.stream_rows,
                    skip_sequential: args.skip_sequential,
                    rss_rows: args.rss_rows,
                    executable: std::env::current_exe().ok(),
                    ..Default::default()
                };
                productive_pg::bench::run(&settings).await.map(|report| {
                    println!("{}", report.render());
                    ExitCode::SUCCESS
                })
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
