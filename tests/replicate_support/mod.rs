//! Shared helpers of the replication tests: a simulator on port 0, a client
//! with fast retries, and fresh SQLite files or PostgreSQL schemas.

#![allow(dead_code)]

use std::time::Duration;

use productive_pg::api::budget::RateLimits as ClientLimits;
use productive_pg::api::{ApiClient, ApiConfig, RetryPolicy};
use productive_pg::sim::store::Store;
use productive_pg::sim::{RateLimits, SimOptions, SimServer, start};
use productive_pg::transfer::{Progress, ReplicateOptions, RunReport};
use tokio::net::TcpListener;

pub const TOKEN: &str = "replicate-test-token";
/// Attempts per request of the test client: a fault must be queued this
/// many times to fail one page.
pub const ATTEMPTS: usize = 3;
/// The environment variable with the URL of a PostgreSQL server for tests.
pub const POSTGRES_URL_VAR: &str = "PRODUCTIVE_PG_TEST_POSTGRES_URL";

pub async fn start_sim(store: Store) -> SimServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let options = SimOptions {
        token: TOKEN.to_string(),
        limits: RateLimits::disabled(),
        ..SimOptions::default()
    };
    start(listener, store, options)
        .await
        .expect("start simulator")
}

pub fn client_for(sim: &SimServer) -> ApiClient {
    client_paging(sim, ApiConfig::new("", "", TOKEN.into()).page_concurrency)
}

/// A client that fetches at most `pages` pages at once (1: one request at a
/// time, so that a fault planned for the n-th request meets a known page).
pub fn client_paging(sim: &SimServer, pages: usize) -> ApiClient {
    let mut config = ApiConfig::new(
        sim.base_url(),
        &sim.organization_id().to_string(),
        TOKEN.into(),
    );
    config.limits = ClientLimits::unlimited();
    config.retry = RetryPolicy {
        max_attempts: ATTEMPTS as u32,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    };
    config.page_concurrency = pages;
    ApiClient::new(config).expect("client")
}

/// A target database for one test.
#[derive(Debug, Clone)]
pub enum TestDb {
    Sqlite(std::path::PathBuf),
    Postgres { url: String, schema: String },
}

impl TestDb {
    /// A new, empty SQLite file named after the test.
    pub fn sqlite(name: &str) -> TestDb {
        let path = std::env::temp_dir().join(format!(
            "productive-pg-replicate-{name}-{}.db",
            std::process::id()
        ));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        TestDb::Sqlite(path)
    }

    /// A new, empty schema on the test server; `None` (with a note) when
    /// no server is configured.
    pub async fn postgres(name: &str) -> Option<TestDb> {
        let Ok(base) = std::env::var(POSTGRES_URL_VAR) else {
            eprintln!("skipping: {POSTGRES_URL_VAR} is not set");
            return None;
        };
        let schema = format!("replicate_{name}");
        let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
            .await
            .expect("connect to the test PostgreSQL server");
        tokio::spawn(conn);
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};"
            ))
            .await
            .expect("fresh schema");
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-csearch_path%3D{schema}");
        Some(TestDb::Postgres { url, schema })
    }

    pub fn target(&self) -> String {
        match self {
            TestDb::Sqlite(path) => format!("sqlite:{}", path.display()),
            TestDb::Postgres { url, .. } => url.clone(),
        }
    }

    pub fn options(&self, tables: &[&str]) -> ReplicateOptions {
        ReplicateOptions {
            target: self.target(),
            tables: Some(tables.iter().map(|t| t.to_string()).collect()),
            ..ReplicateOptions::default()
        }
    }

    /// Runs a query returning one column of integers (or NULLs as -1).
    pub async fn ints(&self, sql: &str) -> Vec<i64> {
        match self {
            TestDb::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).expect("open replica");
                let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
                stmt.query_map([], |r| Ok(r.get::<_, Option<i64>>(0)?.unwrap_or(-1)))
                    .expect("query")
                    .collect::<Result<_, _>>()
                    .expect("rows")
            }
            TestDb::Postgres { url, .. } => {
                let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .expect("connect");
                tokio::spawn(conn);
                client
                    .query(sql, &[])
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
                    .iter()
                    .map(|r| r.get::<_, Option<i64>>(0).unwrap_or(-1))
                    .collect()
            }
        }
    }

    /// Runs a query returning one column of text.
    pub async fn texts(&self, sql: &str) -> Vec<Option<String>> {
        match self {
            TestDb::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).expect("open replica");
                let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
                stmt.query_map([], |r| r.get::<_, Option<String>>(0))
                    .expect("query")
                    .collect::<Result<_, _>>()
                    .expect("rows")
            }
            TestDb::Postgres { url, .. } => {
                let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .expect("connect");
                tokio::spawn(conn);
                client
                    .query(sql, &[])
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
                    .iter()
                    .map(|r| r.get::<_, Option<String>>(0))
                    .collect()
            }
        }
    }
}

/// Runs statements on the replica as a user would.
pub async fn user_sql(db: &TestDb, sql: &str) {
    match db {
        TestDb::Sqlite(path) => rusqlite::Connection::open(path)
            .unwrap()
            .execute_batch(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}")),
        TestDb::Postgres { url, .. } => {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client
                .batch_execute(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }
}

pub async fn replicate(client: &ApiClient, options: &ReplicateOptions) -> RunReport {
    productive_pg::transfer::run(client, options, &Progress::hidden())
        .await
        .expect("the run starts")
}

/// Requests the simulator saw since the last call, as `path?query`.
pub fn take_requests(sim: &SimServer) -> Vec<String> {
    let out = sim
        .requests()
        .iter()
        .map(|r| {
            format!(
                "{} {}?{}",
                r.method,
                r.path,
                r.query.clone().unwrap_or_default()
            )
        })
        .collect();
    sim.clear_requests();
    out
}
