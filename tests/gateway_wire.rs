//! The whole product over the wire: a PostgreSQL client against the server
//! with the real gateway backend, over the simulator. Logins of each mode,
//! every table, errors and their SQLSTATEs, retries, the shared rate
//! budget, custom fields, timeouts.

mod gateway_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway_support::{TOKEN, sim_options, start_sim};
use productive_pg::api::budget::{RateLimits as ClientLimits, Window};
use productive_pg::api::{ApiConfig, RetryPolicy};
use productive_pg::catalog::Catalog;
use productive_pg::gateway::SessionDefaults;
use productive_pg::gateway::backend::GatewayBackend;
use productive_pg::secret::Secret;
use productive_pg::server::{self, AuthMode, ServerConfig};
use productive_pg::sim::{FaultKind, Limit, RateLimits, SimOptions, SimServer};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

const USER: &str = "analyst";
const PASSWORD: &str = "s3cret";

struct Stack {
    sim: SimServer,
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

fn api_config(sim: &SimServer, limits: ClientLimits) -> ApiConfig {
    let mut api = ApiConfig::new(sim.base_url(), "", Secret::default());
    api.limits = limits;
    api.retry = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
    };
    api
}

async fn stack_with(options: SimOptions, pass_through: bool, limits: ClientLimits) -> Stack {
    let sim = start_sim(productive_pg::sim::fixture::standard(), options).await;
    let org = sim.organization_id().to_string();
    let (credentials, auth) = if pass_through {
        (None, AuthMode::PassThrough)
    } else {
        (
            Some((org, Secret::new(TOKEN))),
            AuthMode::Password {
                user: USER.into(),
                password: PASSWORD.into(),
            },
        )
    };
    let backend = GatewayBackend::new(
        api_config(&sim, limits),
        credentials,
        SessionDefaults::default(),
    );
    let config = ServerConfig {
        auth,
        tls: None,
        max_connections: 32,
        shutdown_grace: productive_pg::server::DEFAULT_SHUTDOWN_GRACE,
        database: "productive".into(),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(server::run(
        listener,
        config,
        Arc::new(backend),
        async move {
            let _ = rx.await;
        },
    ));
    Stack {
        sim,
        addr,
        _stop: tx,
    }
}

async fn stack() -> Stack {
    stack_with(sim_options(), false, ClientLimits::unlimited()).await
}

async fn connect_as(
    addr: SocketAddr,
    user: &str,
    password: &str,
) -> Result<Client, tokio_postgres::Error> {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(addr.port())
        .user(user)
        .password(password)
        .dbname("productive");
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

async fn connect(s: &Stack) -> Client {
    connect_as(s.addr, USER, PASSWORD).await.expect("login")
}

fn code(err: &tokio_postgres::Error) -> String {
    err.as_db_error()
        .map(|e| e.code().code().to_owned())
        .unwrap_or_else(|| format!("{err}"))
}

async fn first_value(client: &Client, sql: &str) -> Option<String> {
    let msgs = client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    msgs.into_iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_owned)),
        _ => None,
    })?
}

#[tokio::test]
async fn server_held_credentials_use_scram_logins() {
    let s = stack().await;
    let client = connect(&s).await;
    assert_eq!(
        first_value(&client, "SELECT count(*) FROM companies")
            .await
            .as_deref(),
        Some("2")
    );
    let err = connect_as(s.addr, USER, "wrong")
        .await
        .err()
        .expect("refused");
    assert_eq!(code(&err), "28P01");
    let err = connect_as(s.addr, "nobody", PASSWORD)
        .await
        .err()
        .expect("refused");
    assert_eq!(code(&err), "28P01");
}

#[tokio::test]
async fn pass_through_logins_check_the_token_at_login() {
    let s = stack_with(sim_options(), true, ClientLimits::unlimited()).await;
    let org = s.sim.organization_id().to_string();
    let client = connect_as(s.addr, &org, TOKEN)
        .await
        .expect("login with the API token");
    assert!(
        first_value(&client, "SELECT count(*) FROM tasks")
            .await
            .is_some()
    );
    s.sim.clear_requests();
    let err = connect_as(s.addr, &org, "not-the-token")
        .await
        .err()
        .expect("refused");
    assert_eq!(code(&err), "28P01");
    assert_eq!(
        s.sim.requests().len(),
        1,
        "one cheap call validates the token"
    );
    let err = connect_as(s.addr, "not-an-org", TOKEN)
        .await
        .err()
        .expect("refused");
    assert_eq!(code(&err), "28000");
}

#[tokio::test]
async fn every_table_answers_over_the_wire() {
    let s = stack().await;
    let client = connect(&s).await;
    for table in Catalog::get().tables() {
        let rows = client
            .query(&format!("SELECT * FROM {} LIMIT 5", table.name), &[])
            .await;
        assert!(rows.is_ok(), "{}: {:?}", table.name, rows.err());
    }
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM tasks WHERE project_id = $1",
            &[&(productive_pg::sim::fixture::ids::WEBSITE as i64)],
        )
        .await
        .unwrap()
        .get(0);
    assert!(n > 0);
}

#[tokio::test]
async fn errors_carry_their_sqlstates_and_the_session_survives() {
    let s = stack().await;
    let client = connect(&s).await;
    let cases = [
        ("SELECT * FROM no_such_table", "42P01"),
        ("SELECT no_such_column FROM tasks", "42703"),
        ("SELEC 1", "42601"),
    ];
    for (sql, want) in cases {
        let err = client
            .simple_query(sql)
            .await
            .err()
            .unwrap_or_else(|| panic!("{sql} passed"));
        assert_eq!(code(&err), want, "{sql}: {err}");
    }
    // The API failing for good is an upstream error, with the API's words.
    s.sim.fail_next(10, FaultKind::Status(503));
    let err = client
        .simple_query("SELECT * FROM projects")
        .await
        .err()
        .expect("fails");
    let c = code(&err);
    assert!(c.starts_with("08") || c.starts_with("HV"), "{c}: {err}");
    assert!(
        first_value(&client, "SELECT 1").await.is_some(),
        "the session is still usable"
    );
}

#[tokio::test]
async fn transient_failures_are_retried() {
    let s = stack().await;
    let client = connect(&s).await;
    s.sim.clear_requests();
    s.sim.fail_next(2, FaultKind::Status(502));
    let n = first_value(&client, "SELECT count(*) FROM companies").await;
    assert_eq!(n.as_deref(), Some("2"));
    let statuses: Vec<u16> = s.sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [502, 502, 200]);
}

#[tokio::test]
async fn connections_share_one_rate_budget() {
    // The simulator allows 4 requests per second; so does each client's
    // budget, which all connections with the token share.
    let mut options = sim_options();
    options.limits = RateLimits {
        general: vec![Limit::new(4, Duration::from_secs(1))],
        reports: vec![],
    };
    let limits = ClientLimits {
        general: vec![Window::new(4, Duration::from_secs(1))],
        reports: vec![],
    };
    let s = stack_with(options, false, limits).await;
    let a = connect(&s).await;
    let b = connect(&s).await;
    s.sim.clear_requests();
    let started = Instant::now();
    let (ra, rb) = tokio::join!(
        async {
            for t in ["tasks", "projects", "companies", "people", "services"] {
                a.simple_query(&format!("SELECT count(*) FROM {t}"))
                    .await
                    .unwrap();
            }
        },
        async {
            for t in ["deals", "budgets", "task_lists", "workflows", "bookings"] {
                b.simple_query(&format!("SELECT count(*) FROM {t}"))
                    .await
                    .unwrap();
            }
        }
    );
    let _ = (ra, rb);
    let requests = s.sim.requests();
    assert_eq!(requests.len(), 10, "{requests:?}");
    assert!(
        requests.iter().all(|r| r.status == 200),
        "no 429: {requests:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn custom_fields_appear_when_switched_on() {
    let s = stack().await;
    let client = connect(&s).await;
    let err = client
        .simple_query("SELECT priority FROM tasks")
        .await
        .err()
        .expect("off by default");
    assert_eq!(code(&err), "42703");
    client
        .simple_query("SET productive.use_custom_fields = on")
        .await
        .unwrap();
    let rows = client
        .query(
            "SELECT priority FROM tasks WHERE priority IS NOT NULL ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    assert!(!rows.is_empty());
    let labels: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert!(
        labels.iter().all(|l| l == "High" || l == "Low"),
        "{labels:?}"
    );
    // Another connection is not affected.
    let other = connect(&s).await;
    assert!(
        other
            .simple_query("SELECT priority FROM tasks")
            .await
            .is_err()
    );
}

/// A custom field created after the definitions were read appears after
/// `CALL productive_refresh_custom_fields()`, and is listed in `pg_proc`.
#[tokio::test]
async fn custom_fields_refresh_on_demand() {
    let s = stack().await;
    let client = connect(&s).await;
    client
        .simple_query("SET productive.use_custom_fields = on")
        .await
        .unwrap();
    // Reads (and caches) the definitions.
    client
        .simple_query("SELECT priority FROM tasks")
        .await
        .unwrap();
    let mut field = productive_pg::sim::store::Record::new(9_001);
    field.attributes = serde_json::json!({ "name": "Effort Level", "data_type_id": 1,
        "customizable_type": "tasks", "archived_at": null })
    .as_object()
    .cloned()
    .unwrap()
    .into();
    s.sim.store().write().unwrap().put("custom_fields", field);
    let err = client
        .simple_query("SELECT effort_level FROM tasks")
        .await
        .err()
        .expect("the cached definitions do not have the new field");
    assert_eq!(code(&err), "42703");

    let count = first_value(&client, "CALL productive_refresh_custom_fields()").await;
    assert_eq!(count.as_deref(), Some("3"));
    let rows = client
        .query("SELECT id, effort_level FROM tasks", &[])
        .await
        .unwrap();
    assert!(!rows.is_empty());
    // Arguments are refused like PostgreSQL refuses them for a procedure
    // that takes none, and the procedure is listed for \df.
    let err = client
        .simple_query("CALL productive_refresh_custom_fields(1)")
        .await
        .err()
        .expect("no arguments");
    assert_eq!(code(&err), "42883");
    let kind = first_value(
        &client,
        "SELECT prokind FROM pg_catalog.pg_proc \
         WHERE proname = 'productive_refresh_custom_fields'",
    )
    .await;
    assert_eq!(kind.as_deref(), Some("p"));
}

#[tokio::test]
async fn statement_timeout_cancels_a_slow_scan() {
    let s = stack().await;
    let client = connect(&s).await;
    s.sim.set_latency(productive_pg::sim::Latency::new(3000, 0));
    client
        .simple_query("SET statement_timeout = 200")
        .await
        .unwrap();
    let started = Instant::now();
    let err = client
        .simple_query("SELECT * FROM tasks")
        .await
        .err()
        .expect("times out");
    assert_eq!(code(&err), "57014");
    assert!(started.elapsed() < Duration::from_secs(2));
    s.sim.set_latency(productive_pg::sim::Latency::new(0, 0));
}

#[tokio::test]
async fn postgres_surface_names_and_version() {
    let s = stack().await;
    let client = connect(&s).await;
    let row = client
        .query_one("SELECT count(*) FROM tasks", &[])
        .await
        .unwrap();
    assert_eq!(row.columns()[0].name(), "count");
    let v = first_value(&client, "SELECT version()").await.unwrap();
    assert!(
        v.starts_with("PostgreSQL 15") && v.contains("productive-pg"),
        "{v}"
    );
    let v = first_value(&client, "SHOW server_version").await.unwrap();
    assert!(v.starts_with("15"), "{v}");
}

/// A JSON attribute's value in the binary format: jsonb's version byte and
/// the JSON text.
struct BinaryJsonb(Vec<u8>);

impl<'a> tokio_postgres::types::FromSql<'a> for BinaryJsonb {
    fn from_sql(
        _: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(BinaryJsonb(raw.to_vec()))
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        *ty == tokio_postgres::types::Type::JSONB
    }
}

#[tokio::test]
async fn json_attributes_are_jsonb_in_both_formats() {
    let s = stack().await;
    let client = connect(&s).await;
    let sql = "SELECT t.custom_fields, t.title FROM tasks t WHERE t.custom_fields IS NOT NULL \
               ORDER BY t.id LIMIT 1";
    // The extended protocol: tokio-postgres asks for binary results.
    let row = client.query_one(sql, &[]).await.expect("binary");
    assert_eq!(
        row.columns()[0].type_(),
        &tokio_postgres::types::Type::JSONB
    );
    assert_eq!(row.columns()[1].type_(), &tokio_postgres::types::Type::TEXT);
    let BinaryJsonb(raw) = row.get(0);
    assert_eq!(raw.first(), Some(&1), "the version byte");
    let binary: serde_json::Value = serde_json::from_slice(&raw[1..]).expect("JSON after it");
    assert!(binary.is_object(), "{binary}");
    // The simple protocol: the JSON text itself.
    let text = first_value(&client, sql).await.expect("a value");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&text).expect("JSON"),
        binary
    );
    // An expression over it is text, as DataFusion computes it.
    let row = client
        .query_one(
            "SELECT concat(custom_fields, '') FROM tasks WHERE custom_fields IS NOT NULL LIMIT 1",
            &[],
        )
        .await
        .expect("expression");
    assert_eq!(row.columns()[0].type_(), &tokio_postgres::types::Type::TEXT);
}

#[tokio::test]
async fn catalogs_list_json_attributes_as_jsonb() {
    let s = stack().await;
    let client = connect(&s).await;
    let typed = |table: &str, column: &str| {
        format!(
            "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a \
             JOIN pg_catalog.pg_class c ON a.attrelid = c.oid \
             WHERE c.relname = '{table}' AND a.attname = '{column}'"
        )
    };
    assert_eq!(
        first_value(&client, &typed("activities", "changeset"))
            .await
            .as_deref(),
        Some("jsonb")
    );
    assert_eq!(
        first_value(&client, &typed("tasks", "custom_fields"))
            .await
            .as_deref(),
        Some("jsonb")
    );
    assert_eq!(
        first_value(&client, &typed("tasks", "title"))
            .await
            .as_deref(),
        Some("text")
    );
    let info = "SELECT data_type FROM information_schema.columns \
                WHERE table_name = 'activities' AND column_name = 'changeset'";
    assert_eq!(first_value(&client, info).await.as_deref(), Some("jsonb"));
}
