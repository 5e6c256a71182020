//! The commands behind the binary, callable from tests: `serve` and `sim`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tokio::net::TcpListener;
use tracing::info;

use crate::api::ApiConfig;
use crate::api::budget::{RateLimits, Window};
use crate::gateway::SessionDefaults;
use crate::gateway::backend::GatewayBackend;
use crate::secret::Secret;
use crate::server::{AuthMode, ServerConfig, TlsConfig};
use crate::sim::demo::{DemoOptions, demo_store};
use crate::sim::{SimOptions, SimServer};

/// The real API.
pub const PRODUCTIVE_API_URL: &str = "https://api.productive.io/api/v2";

/// The login of `serve --demo`.
pub const DEMO_USER: &str = "demo";
pub const DEMO_PASSWORD: &str = "demo";

/// Checked settings of `serve`.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub listen: SocketAddr,
    pub api_url: String,
    /// Server-held organization id and token; `None`: pass-through logins.
    pub credentials: Option<(String, Secret)>,
    /// Login of clients when the server holds the credentials.
    pub login: Option<(String, Secret)>,
    pub use_custom_fields: bool,
    /// Refuse every INSERT, UPDATE, DELETE and procedure call.
    pub read_only: bool,
    /// Default of `productive.cache_ttl` in every session.
    pub cache_ttl: Option<Duration>,
    pub tls: Option<TlsConfig>,
    pub max_connections: usize,
    /// On shutdown, how long running statements may take to finish.
    pub shutdown_grace: Duration,
    /// Serve the built-in demo organization.
    pub demo: Option<DemoOptions>,
    /// Latency the demo's simulator adds to every API request, to try out
    /// slow statements, timeouts and cancels.
    pub demo_latency: Duration,
    /// The windows requests keep to (Productive's by default).
    pub rate_limits: RateLimits,
}

impl ServeSettings {
    /// Checks the combination of options, with messages that say what to do.
    ///
    /// # Errors
    /// When options are missing or contradict each other.
    pub fn validate(&self) -> Result<()> {
        if self.demo.is_some() {
            if self.credentials.is_some() {
                bail!(
                    "--demo serves the built-in demo organization: leave out --token and --org-id"
                );
            }
            return Ok(());
        }
        if let Some((org, token)) = &self.credentials {
            if org.is_empty() || !org.bytes().all(|b| b.is_ascii_digit()) {
                bail!("--org-id must be the numeric Productive organization id, got {org:?}");
            }
            if token.is_empty() {
                bail!("--token is empty");
            }
            if self.login.is_none() {
                bail!(
                    "with server-held credentials (--token, --org-id) clients need a login: \
                     give --user and --password"
                );
            }
        } else if self.login.is_some() {
            bail!(
                "--user/--password need --token and --org-id; without them every client logs \
                 in with its organization id as user name and its API token as password"
            );
        } else if !self.listen.ip().is_loopback() && self.tls.is_none() {
            bail!(
                "pass-through logins send API tokens as passwords: listening on {} needs \
                 --tls-cert and --tls-key (or listen on 127.0.0.1)",
                self.listen
            );
        }
        if let Some(tls) = &self.tls {
            for (what, path) in [("--tls-cert", &tls.cert_path), ("--tls-key", &tls.key_path)] {
                if !path.exists() {
                    bail!("{what} {} does not exist", path.display());
                }
            }
        }
        if self.max_connections == 0 {
            bail!("--max-connections must be at least 1");
        }
        Ok(())
    }
}

/// Starts a simulator on `listener` with the demo organization.
pub async fn start_demo_sim(
    listener: TcpListener,
    demo: &DemoOptions,
    options: SimOptions,
) -> Result<SimServer> {
    let started = std::time::Instant::now();
    let store = demo_store(demo);
    info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "demo organization built"
    );
    crate::sim::start(listener, store, options)
        .await
        .context("starting the simulator")
}

/// Runs `serve` until `shutdown` resolves.
///
/// # Errors
/// Bad settings, a port that cannot be bound, TLS that cannot be loaded.
pub async fn serve(settings: ServeSettings, shutdown: impl Future<Output = ()>) -> Result<()> {
    settings.validate()?;
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;

    // In demo mode the simulator runs in-process on a random loopback port
    // and the server holds its credentials.
    let mut sim = None;
    let (api_url, credentials, login) = match &settings.demo {
        Some(demo) => {
            let token = format!("demo-{:016x}", rand::random::<u64>());
            let options = SimOptions {
                token: token.clone(),
                latency: crate::sim::Latency::new(settings.demo_latency.as_millis() as u64, 0),
                ..SimOptions::default()
            };
            let sim_listener = TcpListener::bind("127.0.0.1:0").await?;
            let server = start_demo_sim(sim_listener, demo, options).await?;
            let url = server.base_url().to_string();
            let org = server.organization_id().to_string();
            sim = Some(server);
            let login = settings
                .login
                .clone()
                .unwrap_or_else(|| (DEMO_USER.to_string(), Secret::new(DEMO_PASSWORD)));
            (url, Some((org, Secret::new(token))), Some(login))
        }
        None => (
            settings.api_url.clone(),
            settings.credentials.clone(),
            settings.login.clone(),
        ),
    };

    let auth = match &login {
        Some((user, password)) => AuthMode::Password {
            user: user.clone(),
            password: password.clone(),
        },
        None => AuthMode::PassThrough,
    };
    let mut api = ApiConfig::new(&api_url, "", Secret::default());
    api.limits = settings.rate_limits.clone();
    let backend = GatewayBackend::new(
        api,
        credentials,
        SessionDefaults {
            use_custom_fields: settings.use_custom_fields,
            read_only: settings.read_only,
            cache_ttl: settings.cache_ttl,
        },
    );
    let config = ServerConfig {
        auth,
        tls: settings.tls.clone(),
        max_connections: settings.max_connections,
        shutdown_grace: settings.shutdown_grace,
        database: crate::gateway::DATABASE.to_string(),
    };
    let addr = listener.local_addr()?;
    match &login {
        Some((user, _)) if settings.demo.is_some() => info!(
            %addr,
            "serving the demo organization: psql \"host={} port={} user={user} password={} \
             dbname={}\"",
            addr.ip(), addr.port(), DEMO_PASSWORD, crate::gateway::DATABASE
        ),
        _ => info!(%addr, "serving"),
    }
    let result = crate::server::run(listener, config, Arc::new(backend), shutdown).await;
    if let Some(sim) = sim {
        sim.shutdown().await;
    }
    result
}

/// Settings of the `sim` command.
#[derive(Debug, Clone)]
pub struct SimSettings {
    pub listen: SocketAddr,
    pub token: String,
    pub organization_id: Option<u64>,
    pub demo: DemoOptions,
    pub latency: Duration,
    pub jitter: Duration,
    pub rate_limits: bool,
    pub retry_after: bool,
}

/// Runs the simulator until `shutdown` resolves, printing how to reach it.
///
/// # Errors
/// When the port cannot be bound.
pub async fn sim(settings: SimSettings, shutdown: impl Future<Output = ()>) -> Result<()> {
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let mut options = SimOptions::from_values(
        settings.token.clone(),
        settings.organization_id,
        settings.latency.as_millis() as u64,
        settings.demo.seed,
        settings.rate_limits,
    );
    options.latency.jitter_ms = settings.jitter.as_millis() as u64;
    options.send_retry_after = settings.retry_after;
    let server = start_demo_sim(listener, &settings.demo, options).await?;
    println!("Productive API simulator at {}", server.base_url());
    println!("  X-Auth-Token: {}", settings.token);
    println!("  X-Organization-Id: {}", server.organization_id());
    println!(
        "  try: curl -g -H 'X-Auth-Token: {}' -H 'X-Organization-Id: {}' \
         -H 'Content-Type: application/vnd.api+json' '{}/projects?page[size]=2'",
        settings.token,
        server.organization_id(),
        server.base_url()
    );
    shutdown.await;
    server.shutdown().await;
    Ok(())
}

/// Where a command that talks to the API directly gets its data.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub api_url: String,
    pub credentials: Option<(String, Secret)>,
    /// Use the built-in demo organization instead.
    pub demo: Option<DemoOptions>,
}

/// An API client for `settings`, and the in-process simulator behind it in
/// demo mode (keep it alive while the client is used).
///
/// # Errors
/// Missing credentials, or a simulator that cannot start.
pub async fn open_api(
    settings: &ApiSettings,
) -> Result<(crate::api::ApiClient, Option<SimServer>)> {
    let (url, org, token, sim) = match (&settings.demo, &settings.credentials) {
        (Some(demo), _) => {
            let token = format!("demo-{:016x}", rand::random::<u64>());
            let options = SimOptions {
                token: token.clone(),
                ..SimOptions::default()
            };
            let sim =
                start_demo_sim(TcpListener::bind("127.0.0.1:0").await?, demo, options).await?;
            (
                sim.base_url().to_string(),
                sim.organization_id().to_string(),
                Secret::new(token),
                Some(sim),
            )
        }
        (None, Some((org, token))) => {
            if org.is_empty() || !org.bytes().all(|b| b.is_ascii_digit()) {
                bail!("--org-id must be the numeric Productive organization id, got {org:?}");
            }
            if token.is_empty() {
                bail!("--token is empty");
            }
            (settings.api_url.clone(), org.clone(), token.clone(), None)
        }
        (None, None) => bail!(
            "give --org-id and --token (or PRODUCTIVE_ORG_ID and PRODUCTIVE_TOKEN), or --demo"
        ),
    };
    let client = crate::api::ApiClient::new(ApiConfig::new(&url, &org, token))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((client, sim))
}

/// Runs `export`: prints the summary line on stderr.
///
/// # Errors
/// Bad settings, SQL or API failures, an unwritable output file.
pub async fn export(
    api: &ApiSettings,
    source: crate::transfer::export::ExportSource,
    options: crate::transfer::csv_out::CsvOptions,
    output: Option<std::path::PathBuf>,
    use_custom_fields: bool,
) -> Result<()> {
    let (client, sim) = open_api(api).await?;
    let ctx = crate::gateway::new_session(
        client.clone(),
        &SessionDefaults {
            use_custom_fields,
            read_only: true,
            cache_ttl: None,
        },
    );
    // An export reads whole tables on purpose.
    if let Some(options) = ctx
        .state_ref()
        .write()
        .config_mut()
        .options_mut()
        .extensions
        .get_mut::<crate::table::ProductiveOptions>()
    {
        options.max_scan_rows = 0;
    }
    let summary = match &output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let out = std::io::BufWriter::new(file);
            crate::transfer::export::export_csv(&ctx, &client, &source, &options, out, true)
                .await?
                .0
        }
        None => {
            let out = std::io::BufWriter::new(std::io::stdout().lock());
            crate::transfer::export::export_csv(&ctx, &client, &source, &options, out, true)
                .await?
                .0
        }
    };
    eprintln!("{summary}");
    if let Some(sim) = sim {
        sim.shutdown().await;
    }
    Ok(())
}

/// A `--map` argument: `csv_column=table_column`.
///
/// # Errors
/// Text without `=` or with an empty side.
pub fn parse_mapping(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((from, to)) if !from.trim().is_empty() && !to.trim().is_empty() => {
            Ok((from.trim().to_owned(), to.trim().to_owned()))
        }
        _ => Err(format!("expected csv_column=table_column, got {text:?}")),
    }
}

/// Runs `import`: prints rejected and unknown rows and the summary line on
/// stderr.
///
/// # Errors
/// Bad settings, an unreadable file, an unknown table, a header the table
/// cannot take, or an API failure every row would meet.
pub async fn import(
    api: &ApiSettings,
    file: &std::path::Path,
    table: &str,
    options: &crate::transfer::import::ImportOptions,
    use_custom_fields: bool,
) -> Result<crate::transfer::import::ImportSummary> {
    let data = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let (client, sim) = open_api(api).await?;
    let ctx = crate::gateway::new_session(
        client.clone(),
        &SessionDefaults {
            use_custom_fields,
            read_only: false,
            ..Default::default()
        },
    );
    let provider = ctx
        .table_provider(table)
        .await
        .map_err(|_| anyhow::anyhow!("there is no table {table:?}; `\\dt` in psql lists them"))?;
    let def = provider
        .downcast_ref::<crate::table::ProductiveTable>()
        .map(|t| t.def().clone())
        .ok_or_else(|| anyhow::anyhow!("{table:?} is not a Productive table"))?;
    let progress = crate::transfer::Progress::for_stderr();
    let bar = progress.table(table);
    let summary = crate::transfer::import::import(&client, def, file, &data, options, &bar).await;
    if let Some(sim) = sim {
        sim.shutdown().await;
    }
    let summary = summary?;
    for row in &summary.unknown {
        eprintln!("line {}: outcome unknown: {}", row.line, row.reason);
    }
    for row in &summary.rejected {
        eprintln!("line {}: rejected: {}", row.line, row.reason);
    }
    eprintln!("{summary}");
    Ok(summary)
}

/// Settings of the `replicate` command.
#[derive(Debug, Clone)]
pub struct ReplicateSettings {
    pub api_url: String,
    /// Organization id and token.
    pub credentials: Option<(String, Secret)>,
    pub options: crate::transfer::ReplicateOptions,
    /// Run again at this interval until shut down; `None`: run once.
    pub schedule: Option<Duration>,
    /// Replicate the built-in demo organization.
    pub demo: Option<DemoOptions>,
    /// Draw progress bars when stderr is a terminal.
    pub progress: bool,
}

/// Parses a schedule interval: `90s`, `5m`, `2h`, `1d`, or seconds.
///
/// # Errors
/// Anything else, or zero.
pub fn parse_interval(text: &str) -> Result<Duration> {
    let interval = parse_duration(text)?;
    if interval.is_zero() {
        bail!("the schedule interval must be longer than zero");
    }
    Ok(interval)
}

/// Parses the rate limits requests keep to: `off`, or windows such as
/// `100/10s,4000/30m` (at most 100 requests in any 10 seconds and 4,000 in
/// any 30 minutes). Report endpoints keep their own 10 per 30 seconds
/// unless the limits are `off`.
///
/// # Errors
/// Anything else, a zero count or a zero period.
pub fn parse_rate_limits(text: &str) -> Result<RateLimits> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(RateLimits::unlimited());
    }
    let general = text
        .split(',')
        .map(|part| {
            let wrong = || anyhow!("{part:?} is not a window such as 100/10s or 4000/30m");
            let (count, period) = part.trim().split_once('/').ok_or_else(wrong)?;
            let limit: u32 = count.trim().parse().map_err(|_| wrong())?;
            let period = parse_duration(period).map_err(|_| wrong())?;
            if limit == 0 || period.is_zero() {
                bail!("{part:?}: a window needs at least one request and a period over zero");
            }
            Ok(Window::new(limit, period))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RateLimits {
        general,
        reports: RateLimits::default().reports,
    })
}

/// Parses a duration: `500ms`, `90s`, `5m`, `2h`, `1d`, or seconds; zero
/// is allowed.
///
/// # Errors
/// Anything else.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let text = text.trim();
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = digits
        .parse()
        .with_context(|| format!("{text:?} is not an interval such as 30s, 5m or 1h"))?;
    let secs = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "" | "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => bail!("{text:?} is not an interval such as 30s, 5m or 1h"),
    };
    Ok(Duration::from_secs(secs))
}

/// Runs `replicate` once, or on its schedule until `shutdown` resolves,
/// printing a summary per run on stdout. Returns the last run's report.
///
/// # Errors
/// Bad settings, a target that cannot be opened, an unknown table.
pub async fn replicate(
    settings: ReplicateSettings,
    shutdown: impl Future<Output = ()>,
) -> Result<crate::transfer::RunReport> {
    if settings.demo.is_some() && settings.credentials.is_some() {
        bail!("--demo replicates the built-in demo organization: leave out --token and --org-id");
    }
    let api = ApiSettings {
        api_url: settings.api_url.clone(),
        credentials: settings.credentials.clone(),
        demo: settings.demo.clone(),
    };
    let (client, sim) = open_api(&api).await?;
    let progress = if settings.progress {
        crate::transfer::Progress::for_stderr()
    } else {
        crate::transfer::Progress::hidden()
    };

    let mut shutdown = std::pin::pin!(shutdown);
    let result = loop {
        let report = crate::transfer::run(&client, &settings.options, &progress).await;
        let report = match report {
            Ok(r) => r,
            Err(e) => break Err(anyhow::Error::new(e)),
        };
        print!("{}", crate::transfer::progress::render(&report.tables));
        let Some(interval) = settings.schedule else {
            break Ok(report);
        };
        info!(
            failed = report.failed(),
            next_in_s = interval.as_secs(),
            "run finished"
        );
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = &mut shutdown => break Ok(report),
        }
    };
    if let Some(sim) = sim {
        sim.shutdown().await;
    }
    result
}

/// Runs `sync` once, printing the summary (and plan) on stdout.
///
/// # Errors
/// Bad settings, a target that cannot be opened, an unknown or unsyncable
/// table.
pub async fn sync(
    api: &ApiSettings,
    options: &crate::transfer::sync::SyncOptions,
) -> Result<crate::transfer::sync::SyncReport> {
    let (client, sim) = open_api(api).await?;
    let progress = crate::transfer::Progress::for_stderr();
    let result = crate::transfer::sync::run(&client, options, &progress).await;
    if let Some(sim) = sim {
        sim.shutdown().await;
    }
    let report = result?;
    print!("{}", report.render());
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ServeSettings {
        ServeSettings {
            listen: "127.0.0.1:5432".parse().unwrap(),
            api_url: PRODUCTIVE_API_URL.into(),
            credentials: None,
            login: None,
            use_custom_fields: false,
            tls: None,
            max_connections: 10,
            shutdown_grace: Duration::from_secs(30),
            demo_latency: Duration::ZERO,
            demo: None,
            read_only: false,
            cache_ttl: None,
            rate_limits: RateLimits::default(),
        }
    }

    fn err(s: &ServeSettings) -> String {
        s.validate().unwrap_err().to_string()
    }

    #[test]
    fn rate_limits_are_windows_or_off() {
        let limits = parse_rate_limits("100/10s, 4000/30m").unwrap();
        assert_eq!(limits, RateLimits::default());
        let one = parse_rate_limits("500/1s").unwrap();
        assert_eq!(one.general, vec![Window::new(500, Duration::from_secs(1))]);
        assert_eq!(one.reports, RateLimits::default().reports);
        assert_eq!(parse_rate_limits("OFF").unwrap(), RateLimits::unlimited());
        for bad in [
            "",
            "100",
            "100/",
            "x/10s",
            "0/10s",
            "100/0s",
            "100/10 parsecs",
        ] {
            assert!(parse_rate_limits(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn pass_through_on_loopback_needs_nothing_else() {
        assert!(settings().validate().is_ok());
    }

    #[test]
    fn pass_through_off_loopback_needs_tls() {
        let mut s = settings();
        s.listen = "0.0.0.0:5432".parse().unwrap();
        assert!(err(&s).contains("--tls-cert"));
    }

    #[test]
    fn server_held_credentials_need_a_client_login() {
        let mut s = settings();
        s.credentials = Some(("123".into(), Secret::new("tok")));
        assert!(err(&s).contains("--user and --password"));
        s.login = Some(("u".into(), Secret::new("p")));
        assert!(s.validate().is_ok());
        s.credentials = Some(("acme".into(), Secret::new("tok")));
        assert!(err(&s).contains("numeric"));
    }

    #[test]
    fn a_login_without_credentials_is_refused() {
        let mut s = settings();
        s.login = Some(("u".into(), Secret::new("p")));
        assert!(err(&s).contains("need --token and --org-id"));
    }

    #[test]
    fn missing_tls_files_are_named() {
        let mut s = settings();
        s.tls = Some(TlsConfig {
            cert_path: "/nonexistent.crt".into(),
            key_path: "/nonexistent.key".into(),
        });
        assert!(err(&s).contains("/nonexistent.crt"));
    }

    #[test]
    fn demo_takes_no_credentials() {
        let mut s = settings();
        s.demo = Some(DemoOptions::default());
        assert!(s.validate().is_ok());
        s.credentials = Some(("1".into(), Secret::new("t")));
        assert!(err(&s).contains("--demo"));
    }

    #[test]
    fn schedule_intervals_parse() {
        assert_eq!(parse_interval("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_interval("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_interval("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_interval("45").unwrap(), Duration::from_secs(45));
        assert!(parse_interval("0m").is_err());
        assert!(parse_interval("5 minutes").is_err());
        assert!(parse_interval("m").is_err());
    }

    #[test]
    fn grace_periods_parse_with_zero_and_milliseconds() {
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert!(parse_duration("30 seconds").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
