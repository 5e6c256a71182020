//! Secrets stay secret: the API token never shows in TRACE-level logs,
//! error messages, EXPLAIN output or settings, and `serve` refuses to start
//! with TLS material it cannot load.
//!
//! Already covered elsewhere: wrong user and wrong password get the same
//! 28P01 answer (server_wire.rs, gateway_wire.rs) and plain-text
//! pass-through logins off loopback are refused (server_wire.rs).

mod gateway_support;

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use productive_pg::api::ApiConfig;
use productive_pg::api::budget::RateLimits as ClientLimits;
use productive_pg::gateway::SessionDefaults;
use productive_pg::gateway::backend::GatewayBackend;
use productive_pg::secret::Secret;
use productive_pg::server::{AuthMode, ServerConfig};
use productive_pg::sim::{RateLimits, SimOptions, SimServer};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// A token value that cannot turn up by chance.
const TOKEN: &str = "tok-Q7zv-secret-5150";
const USER: &str = "auditor";
const PASSWORD: &str = "pw-for-the-login";

/// Everything written through the tracing subscriber.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }
}

async fn serve(sim: &SimServer, auth: AuthMode) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let mut api = ApiConfig::new(sim.base_url(), "", Default::default());
    api.limits = ClientLimits::unlimited();
    let held = match auth {
        AuthMode::Password { .. } => Some((sim.organization_id().to_string(), Secret::new(TOKEN))),
        AuthMode::PassThrough => None,
    };
    let backend = GatewayBackend::new(api, held, SessionDefaults::default());
    let config = ServerConfig {
        auth,
        tls: None,
        max_connections: 16,
        database: productive_pg::gateway::DATABASE.into(),
        shutdown_grace: Duration::from_secs(1),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(productive_pg::server::run(
        listener,
        config,
        Arc::new(backend),
        async move {
            let _ = stopped.await;
        },
    ));
    (addr, stop)
}

async fn login(addr: SocketAddr, user: &str, password: &str) -> Result<Client, String> {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(addr.port())
        .user(user)
        .password(password)
        .dbname(productive_pg::gateway::DATABASE)
        .connect_timeout(Duration::from_secs(10));
    match config.connect(NoTls).await {
        Ok((client, connection)) => {
            tokio::spawn(connection);
            Ok(client)
        }
        Err(e) => Err(describe(&e)),
    }
}

/// Everything a client is told about an error.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!(
            "{} {} {:?} {:?}",
            db.code().code(),
            db.message(),
            db.detail(),
            db.hint()
        ),
        None => e.to_string(),
    }
}

/// Runs `sql` and gives all the text the client received.
async fn transcript(client: &Client, sql: &str) -> String {
    match client.simple_query(sql).await {
        Ok(messages) => {
            let mut out = String::new();
            for m in messages {
                if let SimpleQueryMessage::Row(row) = m {
                    for i in 0..row.len() {
                        out.push_str(row.get(i).unwrap_or("NULL"));
                        out.push('|');
                    }
                    out.push('\n');
                }
            }
            out
        }
        Err(e) => format!("ERROR {}\n", describe(&e)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_never_shows_in_logs_errors_plans_or_settings() {
    let capture = Capture::default();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(capture.clone())
        .init();

    let sim = gateway_support::start_sim(
        productive_pg::sim::fixture::standard(),
        SimOptions {
            token: TOKEN.to_owned(),
            limits: RateLimits::disabled(),
            ..SimOptions::default()
        },
    )
    .await;
    let org = sim.organization_id().to_string();
    let held = AuthMode::Password {
        user: USER.to_owned(),
        password: PASSWORD.into(),
    };
    let (held_addr, _stop_held) = serve(&sim, held).await;
    let (pass_addr, _stop_pass) = serve(&sim, AuthMode::PassThrough).await;

    let mut seen = String::new();
    // Bad logins: the token as a wrong password, a wrong token that
    // contains the real one. (User names are logged, as PostgreSQL does.)
    for (addr, user, password) in [
        (held_addr, USER, TOKEN),
        (held_addr, "nobody", TOKEN),
        (pass_addr, org.as_str(), &format!("{TOKEN}-not")),
    ] {
        let err = login(addr, user, password)
            .await
            .err()
            .expect("bad login refused");
        assert!(err.starts_with("28P01"), "{err}");
        seen.push_str(&err);
    }

    let held = login(held_addr, USER, PASSWORD).await.expect("login");
    let pass = login(pass_addr, &org, TOKEN).await.expect("login");
    for client in [&held, &pass] {
        for sql in [
            "SELECT id, title FROM tasks ORDER BY id LIMIT 3",
            "EXPLAIN SELECT * FROM tasks WHERE project_id = 301",
            "EXPLAIN VERBOSE SELECT * FROM tasks WHERE title LIKE 'a%'",
            "EXPLAIN ANALYZE SELECT count(*) FROM projects",
            "SHOW ALL",
            "SELECT * FROM pg_settings",
            "SHOW productive.api_token",
            "SELECT current_setting('productive.api_token')",
            "SELECT * FROM no_such_table",
            "SELECT 1/0",
            "SELECT * FROM tasks WHERE id = 'not a number'",
        ] {
            seen.push_str(&transcript(client, sql).await);
        }
    }
    // The session really ran: rows, plans and settings came back.
    assert!(
        seen.contains("TableScan") || seen.contains("Exec"),
        "{seen}"
    );
    assert!(seen.contains("productive."), "{seen}");
    assert!(seen.contains("ERROR 42P01"), "{seen}");

    drop((held, pass));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = capture.text();
    assert!(logs.contains("TRACE"), "TRACE events were captured");
    assert!(logs.contains("/tasks"), "API requests were logged");
    assert!(!seen.contains(TOKEN), "the token reached a client:\n{seen}");
    let leaks: Vec<&str> = logs.lines().filter(|l| l.contains(TOKEN)).collect();
    assert!(leaks.is_empty(), "the token is in the logs:\n{leaks:#?}");
}

/// Runs `serve` with the given TLS files; it must exit on its own.
fn serve_with_tls(cert: &std::path::Path, key: &std::path::Path) -> (i32, String) {
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_productive-pg"))
        .args(["serve", "--demo", "--listen", &listen, "--tls-cert"])
        .arg(cert)
        .arg("--tls-key")
        .arg(key)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start productive-pg");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve started with unusable TLS files");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("read stderr");
    (status.code().unwrap_or(-1), stderr)
}

#[test]
fn serve_refuses_to_start_with_missing_or_garbage_tls_files() {
    let dir = std::env::temp_dir().join(format!("productive-pg-security-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let missing = dir.join("missing.pem");
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "this is not a certificate\n").expect("write");

    let (code, stderr) = serve_with_tls(&missing, &missing);
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("missing.pem"), "{stderr}");

    let (code, stderr) = serve_with_tls(&garbage, &garbage);
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("garbage.pem"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
