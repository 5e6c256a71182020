//! Shared helpers of the gateway tests: a simulator on port 0 and a
//! DataFusion session over it.

#![allow(dead_code)]

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::SessionContext;
use productive_pg::api::budget::RateLimits as ClientLimits;
use productive_pg::api::{ApiClient, ApiConfig, RetryPolicy};
use productive_pg::gateway::{SessionDefaults, new_session};
use productive_pg::sim::store::Store;
use productive_pg::sim::{LoggedRequest, RateLimits, SimOptions, SimServer, start};
use std::time::Duration;
use tokio::net::TcpListener;

pub const TOKEN: &str = "gateway-test-token";

pub struct Env {
    pub sim: SimServer,
    pub ctx: SessionContext,
    pub client: ApiClient,
}

pub fn sim_options() -> SimOptions {
    SimOptions {
        token: TOKEN.to_string(),
        limits: RateLimits::disabled(),
        ..SimOptions::default()
    }
}

pub async fn start_sim(store: Store, options: SimOptions) -> SimServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    start(listener, store, options)
        .await
        .expect("start simulator")
}

/// A client for `sim` with fast retries and no client-side limits.
pub fn client_for(sim: &SimServer) -> ApiClient {
    let mut config = ApiConfig::new(
        sim.base_url(),
        &sim.organization_id().to_string(),
        TOKEN.into(),
    );
    config.limits = ClientLimits::unlimited();
    config.retry = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    };
    ApiClient::new(config).expect("client")
}

/// A store with `n` tasks (ids 10000 and up) and nothing else of interest.
pub fn many_tasks(n: u64) -> Store {
    let mut f = productive_pg::sim::fixture::Fixture::new(9, "Many Tasks");
    for i in 0..n {
        f.add(
            "tasks",
            10_000 + i,
            serde_json::json!({ "title": format!("Task {i}") }),
            &[],
        );
    }
    f.build()
}

pub async fn env_with(store: Store) -> Env {
    env_with_options(store, sim_options()).await
}

pub async fn env_with_options(store: Store, options: SimOptions) -> Env {
    let sim = start_sim(store, options).await;
    let client = client_for(&sim);
    let ctx = new_session(client.clone(), &SessionDefaults::default());
    Env { sim, ctx, client }
}

pub async fn standard() -> Env {
    env_with(productive_pg::sim::fixture::standard()).await
}

impl Env {
    pub async fn query(&self, sql: &str) -> Vec<RecordBatch> {
        self.try_query(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub async fn try_query(&self, sql: &str) -> datafusion::error::Result<Vec<RecordBatch>> {
        // One statement, as the server runs it.
        productive_pg::table::begin_statement(&self.ctx);
        self.ctx.sql(sql).await?.collect().await
    }

    /// The SQLSTATE and message a client would see for a failed statement,
    /// and the hint.
    pub async fn sql_error(&self, sql: &str) -> (String, String, Option<String>) {
        let err = self.try_query(sql).await.expect_err(sql);
        let fields = productive_pg::server::errors::to_error_fields(
            &productive_pg::server::errors::ServerError::DataFusion(err),
        );
        (fields.code, fields.message, fields.hint)
    }

    /// The result as the pretty table DataFusion prints, without the frame.
    pub async fn table(&self, sql: &str) -> String {
        let batches = self.query(sql).await;
        pretty_format_batches(&batches).expect("format").to_string()
    }

    /// Rows of a one-column result as text.
    pub async fn column(&self, sql: &str) -> Vec<String> {
        let batches = self.query(sql).await;
        let mut out = Vec::new();
        for b in &batches {
            let col = datafusion::arrow::compute::cast(
                b.column(0),
                &datafusion::arrow::datatypes::DataType::Utf8,
            )
            .expect("cast to text");
            let col = col
                .as_any()
                .downcast_ref::<datafusion::arrow::array::StringArray>()
                .unwrap();
            for i in 0..col.len() {
                out.push(if col.is_null(i) {
                    "NULL".to_string()
                } else {
                    col.value(i).to_string()
                });
            }
        }
        out
    }

    /// Requests the simulator saw since the last call, and clears them.
    pub fn take_requests(&self) -> Vec<LoggedRequest> {
        let r = self.sim.requests();
        self.sim.clear_requests();
        r
    }
}

pub fn decoded_query(r: &LoggedRequest) -> String {
    let q = r.query.clone().unwrap_or_default();
    percent_encoding::percent_decode_str(&q)
        .decode_utf8_lossy()
        .to_string()
}

use datafusion::arrow::array::Array;

/// Login of [`serve`].
pub const USER: &str = "analyst";
pub const PASSWORD: &str = "s3cret";

/// The PostgreSQL server with the gateway backend over `sim`, on port 0,
/// until the returned sender is dropped.
pub async fn serve(sim: &SimServer) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    use productive_pg::gateway::backend::GatewayBackend;
    use productive_pg::server::{AuthMode, ServerConfig};

    let mut api = ApiConfig::new(sim.base_url(), "", Default::default());
    api.limits = ClientLimits::unlimited();
    let backend = GatewayBackend::new(
        api,
        Some((
            sim.organization_id().to_string(),
            productive_pg::secret::Secret::new(TOKEN),
        )),
        SessionDefaults::default(),
    );
    let config = ServerConfig {
        auth: AuthMode::Password {
            user: USER.into(),
            password: PASSWORD.into(),
        },
        tls: None,
        max_connections: 16,
        database: productive_pg::gateway::DATABASE.into(),
        shutdown_grace: productive_pg::server::DEFAULT_SHUTDOWN_GRACE,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let addr = listener.local_addr().expect("local address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(productive_pg::server::run(
        listener,
        config,
        std::sync::Arc::new(backend),
        async move {
            let _ = stopped.await;
        },
    ));
    (addr, stop)
}

/// A PostgreSQL client of [`serve`], and the task driving its connection.
pub async fn connect(
    addr: std::net::SocketAddr,
) -> (tokio_postgres::Client, tokio::task::JoinHandle<()>) {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(addr.port())
        .user(USER)
        .password(PASSWORD)
        .dbname(productive_pg::gateway::DATABASE);
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.expect("login");
    let task = tokio::spawn(async move {
        let _ = connection.await;
    });
    (client, task)
}
