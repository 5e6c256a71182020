//! Hostile input against the wire server over the simulator: malformed
//! frontend messages on raw TCP, and random SQL text through a real
//! client. Every input must get an answer or a closed connection within a
//! few seconds, and the server must keep serving fresh connections.
//!
//! `PROPTEST_CASES` sets the number of inputs per property (64 when
//! unset); `scripts/fuzz` runs the same properties with many more.

mod gateway_support;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio_postgres::{Client, NoTls};

use gateway_support::TOKEN;
use productive_pg::sim::SimServer;

/// How long the server may take to answer or close a connection.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Servers shared by every case: one with password logins (SCRAM), one with
/// pass-through logins (cleartext on loopback), both over one simulator.
struct Servers {
    rt: Runtime,
    password: SocketAddr,
    pass_through: SocketAddr,
    org: String,
    _sim: SimServer,
    _stops: Vec<tokio::sync::oneshot::Sender<()>>,
}

fn servers() -> &'static Servers {
    static SERVERS: OnceLock<Servers> = OnceLock::new();
    SERVERS.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (sim, password, pass_through, stops) = rt.block_on(async {
            let sim = gateway_support::start_sim(
                productive_pg::sim::fixture::standard(),
                gateway_support::sim_options(),
            )
            .await;
            let (password, stop_a) = gateway_support::serve(&sim).await;
            let (pass_through, stop_b) = serve_pass_through(&sim).await;
            (sim, password, pass_through, vec![stop_a, stop_b])
        });
        let org = sim.organization_id().to_string();
        Servers {
            rt,
            password,
            pass_through,
            org,
            _sim: sim,
            _stops: stops,
        }
    })
}

async fn serve_pass_through(sim: &SimServer) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    use productive_pg::api::ApiConfig;
    use productive_pg::api::budget::RateLimits;
    use productive_pg::gateway::SessionDefaults;
    use productive_pg::gateway::backend::GatewayBackend;
    use productive_pg::server::{AuthMode, ServerConfig};

    let mut api = ApiConfig::new(sim.base_url(), "", Default::default());
    api.limits = RateLimits::unlimited();
    let backend = GatewayBackend::new(api, None, SessionDefaults::default());
    let config = ServerConfig {
        auth: AuthMode::PassThrough,
        tls: None,
        max_connections: 64,
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
        std::sync::Arc::new(backend),
        async move {
            let _ = stopped.await;
        },
    ));
    (addr, stop)
}

/// The number of inputs per property: `PROPTEST_CASES`, else 64.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    })
}

// ----- raw protocol helpers -----

fn startup(params: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut body = 196_608i32.to_be_bytes().to_vec();
    for (k, v) in params {
        body.extend_from_slice(k);
        body.push(0);
        body.extend_from_slice(v);
        body.push(0);
    }
    body.push(0);
    let mut out = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    out.extend(body);
    out
}

fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn cstr(text: &[u8]) -> Vec<u8> {
    let mut out = text.to_vec();
    out.push(0);
    out
}

/// One backend message: its tag and body.
async fn read_message(socket: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let tag = socket.read_u8().await?;
    let len = socket.read_i32().await?;
    let mut body = vec![0; (len as usize).saturating_sub(4)];
    socket.read_exact(&mut body).await?;
    Ok((tag, body))
}

/// Reads messages until one with `tag`; fails on an ErrorResponse first.
async fn read_until(socket: &mut TcpStream, tag: u8) -> Result<Vec<u8>, String> {
    loop {
        let (t, body) = tokio::time::timeout(ANSWER_TIMEOUT, read_message(socket))
            .await
            .map_err(|_| format!("no {:?} within the timeout", tag as char))?
            .map_err(|e| e.to_string())?;
        if t == tag {
            return Ok(body);
        }
        if t == b'E' {
            return Err(format!("error: {}", String::from_utf8_lossy(&body)));
        }
    }
}

/// A raw connection logged in with a pass-through login, ready for queries.
async fn logged_in(s: &Servers) -> TcpStream {
    let mut socket = TcpStream::connect(s.pass_through).await.expect("connect");
    let hello = startup(&[
        (b"user", s.org.as_bytes()),
        (b"database", productive_pg::gateway::DATABASE.as_bytes()),
    ]);
    socket.write_all(&hello).await.expect("send startup");
    let auth = read_until(&mut socket, b'R').await.expect("auth request");
    assert_eq!(auth, 3i32.to_be_bytes(), "cleartext password requested");
    socket
        .write_all(&message(b'p', &cstr(TOKEN.as_bytes())))
        .await
        .expect("send password");
    read_until(&mut socket, b'Z')
        .await
        .expect("ready for query");
    socket
}

/// What the server did with a hostile input.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// It closed the connection (after sending an error or not).
    Closed { error: Option<String> },
    /// It kept the connection and sent an error.
    Error(String),
    /// It kept the connection and was still waiting for input.
    Waiting,
}

/// Sends `payload`, half-closes when asked, and watches what comes back.
async fn send_and_watch(mut socket: TcpStream, payload: &[u8], half_close: bool) -> Outcome {
    // The server may close while we write; that is a fine answer too.
    let _ = socket.write_all(payload).await;
    if half_close {
        let _ = socket.shutdown().await;
    }
    let mut error = None;
    loop {
        match tokio::time::timeout(ANSWER_TIMEOUT, read_message(&mut socket)).await {
            Err(_) if half_close => panic!("the server neither answered nor closed"),
            Err(_) => {
                return match error {
                    Some(e) => Outcome::Error(e),
                    None => Outcome::Waiting,
                };
            }
            Ok(Err(_)) => return Outcome::Closed { error },
            Ok(Ok((b'E', body))) => {
                let fields = String::from_utf8_lossy(&body).into_owned();
                error.get_or_insert(fields);
            }
            Ok(Ok(_)) => {}
        }
    }
}

/// A fresh normal client still runs `SELECT 1`.
async fn still_serving(s: &Servers) {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(s.pass_through.port())
        .user(&s.org)
        .password(TOKEN)
        .dbname(productive_pg::gateway::DATABASE)
        .connect_timeout(ANSWER_TIMEOUT);
    let (client, connection) = tokio::time::timeout(ANSWER_TIMEOUT, config.connect(NoTls))
        .await
        .expect("login in time")
        .expect("login");
    tokio::spawn(connection);
    let rows = tokio::time::timeout(ANSWER_TIMEOUT, client.simple_query("SELECT 1"))
        .await
        .expect("SELECT 1 in time")
        .expect("SELECT 1");
    assert!(rows.iter().any(|m| matches!(
        m,
        tokio_postgres::SimpleQueryMessage::Row(r) if r.get(0) == Some("1")
    )));
}

fn error_code(fields: &str) -> Option<&str> {
    fields.split('\0').find_map(|f| f.strip_prefix('C'))
}

// ----- (a) the wire front end -----

#[test]
fn known_malformed_messages_get_an_error_or_a_close() {
    let s = servers();
    s.rt.block_on(async {
        // A huge length field right after the login.
        let mut huge = vec![b'Q'];
        huge.extend_from_slice(&0x7fff_ffffi32.to_be_bytes());
        let outcome = send_and_watch(logged_in(s).await, &huge, false).await;
        match &outcome {
            Outcome::Closed { error: Some(e) } => assert_eq!(error_code(e), Some("08P01")),
            other => panic!("huge length: {other:?}"),
        }

        // A negative length, and a length below the header's own size.
        for len in [-1i32, 0, 3] {
            let mut bad = vec![b'Q'];
            bad.extend_from_slice(&len.to_be_bytes());
            let outcome = send_and_watch(logged_in(s).await, &bad, false).await;
            match &outcome {
                Outcome::Closed { error: Some(e) } => assert_eq!(error_code(e), Some("08P01")),
                other => panic!("length {len}: {other:?}"),
            }
        }

        // An unknown message type.
        let outcome = send_and_watch(logged_in(s).await, &message(b'!', b"x"), false).await;
        match &outcome {
            Outcome::Closed { error: Some(e) } => assert_eq!(error_code(e), Some("08P01")),
            other => panic!("unknown type: {other:?}"),
        }

        // Invalid UTF-8 in a query string: an error, and the connection
        // goes on.
        let mut socket = logged_in(s).await;
        let query = message(b'Q', &cstr(b"SELECT '\xff\xfe'"));
        socket.write_all(&query).await.expect("send");
        let err = read_until(&mut socket, b'Z').await.expect_err("refused");
        assert!(err.contains("C22021"), "{err}");
        read_until(&mut socket, b'Z').await.expect("ready again");
        socket
            .write_all(&message(b'Q', &cstr(b"SELECT 'still here'")))
            .await
            .expect("send");
        let row = read_until(&mut socket, b'D').await.expect("a row");
        assert!(row.ends_with(b"still here"), "{row:?}");

        // The same in a Parse message.
        let mut payload = message(b'P', b"\0SELECT '\xc3\x28'\0\0\0");
        payload.extend(message(b'S', b""));
        let outcome = send_and_watch(logged_in(s).await, &payload, false).await;
        match &outcome {
            Outcome::Error(e) => assert_eq!(error_code(e), Some("22021")),
            other => panic!("invalid UTF-8 in Parse: {other:?}"),
        }

        // A NUL inside a query string must not let the rest of the message
        // pass as further messages.
        let query = message(b'Q', b"SELECT 1\0Q\0\0\0\x0dSELECT 2\0");
        let outcome = send_and_watch(logged_in(s).await, &query, false).await;
        match &outcome {
            Outcome::Closed { error: Some(e) } => assert_eq!(error_code(e), Some("08P01")),
            other => panic!("embedded NUL: {other:?}"),
        }

        // Bodies whose counts point past their end.
        for (tag, body) in [
            (b'B', &b"\0\0\0\x05"[..]),
            (b'P', b"a\0b\0\0\x02\0\0"),
            (b'E', b"\0\0\x05"),
        ] {
            let outcome = send_and_watch(logged_in(s).await, &message(tag, body), false).await;
            match &outcome {
                Outcome::Closed { error: Some(e) } => assert_eq!(error_code(e), Some("08P01")),
                other => panic!("{} {body:?}: {other:?}", tag as char),
            }
        }

        // A truncated message, then the client goes away.
        let mut cut = message(b'Q', &cstr(b"SELECT 1"));
        cut.truncate(7);
        let outcome = send_and_watch(logged_in(s).await, &cut, true).await;
        assert!(matches!(outcome, Outcome::Closed { .. }), "{outcome:?}");

        // Invalid UTF-8 in the startup parameters.
        let socket = TcpStream::connect(s.pass_through).await.expect("connect");
        let hello = startup(&[(b"user", b"\xff\xfe"), (b"database", b"\xc3\x28")]);
        let outcome = send_and_watch(socket, &hello, false).await;
        match &outcome {
            Outcome::Closed { error: Some(e) } => assert_eq!(error_code(e), Some("22021")),
            other => panic!("invalid UTF-8 startup: {other:?}"),
        }

        // A startup packet with a huge length.
        let socket = TcpStream::connect(s.password).await.expect("connect");
        let mut hello = 0x7fff_ffffi32.to_be_bytes().to_vec();
        hello.extend_from_slice(&196_608i32.to_be_bytes());
        let outcome = send_and_watch(socket, &hello, true).await;
        assert!(matches!(outcome, Outcome::Closed { .. }), "{outcome:?}");

        still_serving(s).await;
    });
}

/// Message type bytes a client may send, plus a few that no one defines.
fn frontend_tag() -> impl Strategy<Value = u8> {
    prop_oneof![
        prop::sample::select(b"QPBEDCHSFdcfpX".to_vec()),
        any::<u8>(),
    ]
}

/// A frontend message with a plausible or hostile length field and body.
fn hostile_message() -> impl Strategy<Value = Vec<u8>> {
    let body = prop::collection::vec(any::<u8>(), 0..64);
    let length = prop_oneof![
        Just(None),
        Just(Some(0x7fff_ffffi32)),
        Just(Some(-1)),
        Just(Some(0)),
        (0i32..200).prop_map(Some),
    ];
    (frontend_tag(), length, body, any::<bool>()).prop_map(|(tag, length, body, cut)| {
        let mut out = vec![tag];
        let len = length.unwrap_or((body.len() + 4) as i32);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&body);
        if cut && out.len() > 1 {
            let keep = out.len() / 2;
            out.truncate(keep);
        }
        out
    })
}

#[test]
fn random_messages_after_login_never_hang_the_server() {
    static RAN: AtomicU64 = AtomicU64::new(0);
    let s = servers();
    let strategy = prop::collection::vec(hostile_message(), 1..4);
    let result = runner().run(&strategy, |messages| {
        RAN.fetch_add(1, Ordering::Relaxed);
        let payload: Vec<u8> = messages.concat();
        s.rt.block_on(async {
            let outcome = send_and_watch(logged_in(s).await, &payload, true).await;
            prop_assert!(matches!(outcome, Outcome::Closed { .. }), "{outcome:?}");
            still_serving(s).await;
            Ok::<(), TestCaseError>(())
        })
    });
    println!(
        "fuzz_wire: {} random message sequences after login",
        RAN.load(Ordering::Relaxed)
    );
    result.unwrap();
}

#[test]
fn random_bytes_before_login_never_hang_the_server() {
    static RAN: AtomicU64 = AtomicU64::new(0);
    let s = servers();
    let raw = prop::collection::vec(any::<u8>(), 0..128);
    let params = prop::collection::vec(
        (
            prop::collection::vec(any::<u8>(), 0..12),
            prop::collection::vec(any::<u8>(), 0..12),
        ),
        0..4,
    );
    let strategy = (raw, params, any::<bool>(), any::<bool>());
    let result = runner().run(&strategy, |(raw, params, with_startup, scram)| {
        RAN.fetch_add(1, Ordering::Relaxed);
        let mut payload = Vec::new();
        if with_startup {
            let params: Vec<(&[u8], &[u8])> = params
                .iter()
                .map(|(k, v)| (k.as_slice(), v.as_slice()))
                .collect();
            payload.extend(startup(&params));
        }
        payload.extend(raw);
        let addr = if scram { s.password } else { s.pass_through };
        s.rt.block_on(async {
            let socket = TcpStream::connect(addr).await.expect("connect");
            let outcome = send_and_watch(socket, &payload, true).await;
            prop_assert!(matches!(outcome, Outcome::Closed { .. }), "{outcome:?}");
            still_serving(s).await;
            Ok::<(), TestCaseError>(())
        })
    });
    println!(
        "fuzz_wire: {} random byte strings before login",
        RAN.load(Ordering::Relaxed)
    );
    result.unwrap();
}

// ----- (b) the SQL entry -----

async fn sql_client(s: &Servers) -> Client {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(s.password.port())
        .user(gateway_support::USER)
        .password(gateway_support::PASSWORD)
        .dbname(productive_pg::gateway::DATABASE)
        .connect_timeout(ANSWER_TIMEOUT);
    let (client, connection) = config.connect(NoTls).await.expect("login");
    tokio::spawn(connection);
    client
}

/// Runs `sql`; panics unless it gives rows or a server error whose
/// SQLSTATE is not XX000 (internal error).
async fn run_sql(client: &Client, sql: &str) -> Result<(), String> {
    match tokio::time::timeout(Duration::from_secs(20), client.simple_query(sql)).await {
        Err(_) => Err("no answer within 20 s".to_owned()),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => match e.as_db_error() {
            Some(db) if db.code().code() == "XX000" => {
                Err(format!("internal error: {}", db.message()))
            }
            Some(_) => Ok(()),
            None => Err(format!("not a server error: {e}")),
        },
    }
}

fn nested(depth: usize) -> String {
    format!("SELECT {}1{}", "(".repeat(depth), "+1)".repeat(depth))
}

#[test]
fn deeply_nested_sql_is_refused_cleanly() {
    let s = servers();
    s.rt.block_on(async {
        let client = sql_client(s).await;
        run_sql(&client, &nested(10)).await.expect("depth 10");
        for depth in [100, 1000, 5000] {
            let err = client
                .simple_query(&nested(depth))
                .await
                .expect_err("too deep");
            let db = err.as_db_error().expect("server error");
            assert_eq!(db.code().code(), "54001", "depth {depth}: {}", db.message());
        }
        let deep_not = format!("SELECT {}true", "NOT ".repeat(5000));
        run_sql(&client, &deep_not).await.expect("5000 NOTs");
        let deep_minus = format!("SELECT {}1", "- ".repeat(5000));
        run_sql(&client, &deep_minus)
            .await
            .expect("5000 minus signs");
        // Chains the parser reads in a loop still make deep trees.
        let long_sum = |n: usize| format!("SELECT 1{}", " + 1".repeat(n));
        let deep_cast = |n: usize| format!("SELECT 1{}", "::int".repeat(n));
        for sql in [long_sum(5000), deep_cast(5000), long_sum(128)] {
            let err = client.simple_query(&sql).await.expect_err("too deep");
            let db = err.as_db_error().expect("server error");
            assert_eq!(db.code().code(), "54001", "{}", db.message());
        }
        let rows = client
            .simple_query(&long_sum(127))
            .await
            .expect("127 terms");
        assert!(rows.iter().any(|m| matches!(
            m,
            tokio_postgres::SimpleQueryMessage::Row(r) if r.get(0) == Some("128")
        )));
        run_sql(&client, &deep_cast(127)).await.expect("127 casts");
        // A parameter in a simple query has no value.
        let err = client
            .simple_query("SELECT $1 FROM tasks")
            .await
            .expect_err("no parameters");
        assert_eq!(
            err.as_db_error().expect("server error").code().code(),
            "42P02"
        );
        run_sql(&client, "SELECT 1").await.expect("still serving");
    });
    s.rt.block_on(still_serving(s));
}

/// Pieces random SQL is made of: keywords, names of real tables and
/// columns, literals, operators and some unicode.
fn sql_token() -> impl Strategy<Value = String> {
    let fixed = prop::sample::select(vec![
        "SELECT",
        "FROM",
        "WHERE",
        "AND",
        "OR",
        "NOT",
        "NULL",
        "AS",
        "CAST",
        "(",
        ")",
        ",",
        ";",
        "+",
        "-",
        "*",
        "/",
        "%",
        "=",
        "<>",
        "<",
        ">=",
        "||",
        "::",
        "[",
        "]",
        "'",
        "\"",
        "$1",
        "1",
        "0",
        "-1",
        "1e308",
        "9223372036854775808",
        "'a'",
        "'é'",
        "E'\\x'",
        "true",
        "tasks",
        "projects",
        "people",
        "time_entries",
        "id",
        "title",
        "name",
        "ORDER BY",
        "GROUP BY",
        "LIMIT",
        "OFFSET",
        "JOIN",
        "ON",
        "IN",
        "LIKE",
        "BETWEEN",
        "CASE",
        "WHEN",
        "THEN",
        "ELSE",
        "END",
        "COUNT(*)",
        "sum(",
        "int",
        "text",
        "date",
        "interval",
        "'2024-13-45'",
        "SHOW",
        "SET",
        "EXPLAIN",
        "WITH",
        "UNION",
        "VALUES",
        "pg_catalog.pg_class",
        "*/",
        "/*",
        "--",
        "\n",
        "\t",
        "😀",
        "Ω",
        "\u{202e}",
        "\u{feff}",
        "ß",
    ])
    .prop_map(str::to_owned);
    prop_oneof![
        4 => fixed,
        1 => "[a-z_]{1,8}",
        1 => any::<String>().prop_map(|s| s.replace('\0', "")),
        1 => any::<i64>().prop_map(|n| n.to_string()),
    ]
}

fn random_sql() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::collection::vec(sql_token(), 1..24).prop_map(|t| t.join(" ")),
        1 => prop::collection::vec(sql_token(), 1..8)
            .prop_map(|t| format!("SELECT {} FROM tasks", t.join(" "))),
        1 => (1usize..300).prop_map(nested),
        1 => (1usize..800).prop_map(|n| format!("SELECT 1{}", " * 1".repeat(n))),
        1 => (sql_token(), 1usize..60).prop_map(|(t, depth)| {
            format!("SELECT {}{t}{}", "(".repeat(depth), ")".repeat(depth))
        }),
    ]
}

#[test]
fn random_sql_gets_an_answer_with_a_proper_sqlstate() {
    static RAN: AtomicU64 = AtomicU64::new(0);
    let s = servers();
    let client = s.rt.block_on(sql_client(s));
    let client = std::sync::Mutex::new(client);
    let result = runner().run(&random_sql(), |sql| {
        RAN.fetch_add(1, Ordering::Relaxed);
        s.rt.block_on(async {
            let mut client = client.lock().unwrap_or_else(|p| p.into_inner());
            if client.is_closed() {
                *client = sql_client(s).await;
            }
            let outcome = run_sql(&client, &sql).await;
            prop_assert!(outcome.is_ok(), "{sql:?}: {outcome:?}");
            Ok::<(), TestCaseError>(())
        })
    });
    println!(
        "fuzz_wire: {} random SQL statements",
        RAN.load(Ordering::Relaxed)
    );
    result.unwrap();
    s.rt.block_on(still_serving(s));
}
