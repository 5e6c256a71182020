//! The commands behind the binary, callable from tests: `serve` and `sim`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::net::TcpListener;
use tracing::info;

use crate::api::ApiConfig;
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
    pub tls: Option<TlsConfig>,
    pub max_connections: usize,
    /// Serve the built-in demo organization.
    pub demo: Option<DemoOptions>,
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
    let api = ApiConfig::new(&api_url, "", Secret::default());
    let backend = GatewayBackend::new(
        api,
        credentials,
        SessionDefaults {
            use_custom_fields: settings.use_custom_fields,
        },
    );
    let config = ServerConfig {
        auth,
        tls: settings.tls.clone(),
        max_connections: settings.max_connections,
        database: crate::gateway::DATABASE.to_string(),
    };
    let addr = listener.local_addr()?;
    match &login {
        Some((user, _)) if settings.demo.is_some() => info!(
            %addr,
            "serving the demo organization: psql \"host={} port={} user={user} password={} dbname={}\"",
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
        "  try: curl -H 'X-Auth-Token: {}' -H 'X-Organization-Id: {}' \
         -H 'Content-Type: application/vnd.api+json' '{}/projects?page[size]=2'",
        settings.token,
        server.organization_id(),
        server.base_url()
    );
    shutdown.await;
    server.shutdown().await;
    Ok(())
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
    let text = text.trim();
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = digits
        .parse()
        .with_context(|| format!("{text:?} is not an interval such as 30s, 5m or 1h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => bail!("{text:?} is not an interval such as 30s, 5m or 1h"),
    };
    if secs == 0 {
        bail!("the schedule interval must be longer than zero");
    }
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
    let mut sim = None;
    let (api_url, (org, token)) = match &settings.demo {
        Some(demo) => {
            if settings.credentials.is_some() {
                bail!(
                    "--demo replicates the built-in demo organization: \
                     leave out --token and --org-id"
                );
            }
            let token = format!("demo-{:016x}", rand::random::<u64>());
            let options = SimOptions {
                token: token.clone(),
                ..SimOptions::default()
            };
            let server =
                start_demo_sim(TcpListener::bind("127.0.0.1:0").await?, demo, options).await?;
            let url = server.base_url().to_string();
            let org = server.organization_id().to_string();
            sim = Some(server);
            (url, (org, Secret::new(token)))
        }
        None => match &settings.credentials {
            Some((org, token)) if !org.is_empty() && !token.is_empty() => {
                if !org.bytes().all(|b| b.is_ascii_digit()) {
                    bail!("--org-id must be the numeric Productive organization id, got {org:?}");
                }
                (settings.api_url.clone(), (org.clone(), token.clone()))
            }
            _ => bail!("replicate needs --org-id and --token (or --demo)"),
        },
    };
    let client = crate::api::ApiClient::new(ApiConfig::new(&api_url, &org, token))
        .context("building the API client")?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
