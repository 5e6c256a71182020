//! End-to-end tests of the wire server with a real PostgreSQL client.

mod server_support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use productive_pg::server::AuthMode;
use server_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_postgres::{NoTls, SimpleQueryMessage};

/// Rows of a simple query as text.
async fn simple_rows(client: &tokio_postgres::Client, sql: &str) -> Vec<Vec<Option<String>>> {
    client
        .simple_query(sql)
        .await
        .expect("query runs")
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

async fn simple_count(client: &tokio_postgres::Client, sql: &str) -> u64 {
    client
        .simple_query(sql)
        .await
        .expect("statement runs")
        .into_iter()
        .find_map(|m| match m {
            SimpleQueryMessage::CommandComplete(n) => Some(n),
            _ => None,
        })
        .expect("command complete")
}

async fn show(client: &tokio_postgres::Client, name: &str) -> String {
    simple_rows(client, &format!("SHOW {name}")).await[0][0]
        .clone()
        .expect("value")
}

#[tokio::test]
async fn scram_login_accepts_the_right_password_only() {
    let server = start().await;
    let client = connect(server.addr).await;
    assert_eq!(
        simple_rows(&client, "SELECT 1").await,
        vec![vec![Some("1".into())]]
    );

    let err = connect_as(server.addr, USER, Some("wrong"))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "28P01");
    assert_eq!(
        message(&err),
        "password authentication failed for user \"alice\""
    );

    // A wrong user gets the same answer as a wrong password.
    let err = connect_as(server.addr, "mallory", Some(PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "28P01");
    assert_eq!(
        message(&err),
        "password authentication failed for user \"mallory\""
    );

    // Without a password the client cannot answer the SCRAM challenge.
    assert!(connect_as(server.addr, USER, None).await.is_err());
    let sessions: Vec<_> = server
        .recorder
        .events()
        .into_iter()
        .filter(|e| e.starts_with("session"))
        .collect();
    assert_eq!(sessions.len(), 1, "only the good login got a session");
}

#[tokio::test]
async fn pass_through_login_is_checked_by_the_backend() {
    let server = start_with(config(AuthMode::PassThrough), "127.0.0.1:0").await;
    let client = connect_as(server.addr, ORG, Some(TOKEN))
        .await
        .expect("login");
    assert_eq!(
        simple_rows(&client, "SELECT 2").await,
        vec![vec![Some("2".into())]]
    );
    assert!(
        server
            .recorder
            .events()
            .contains(&format!("session {ORG} {ORG}"))
    );

    let err = connect_as(server.addr, ORG, Some("bad-token"))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "28P01");
    let err = connect_as(server.addr, "unreachable", Some("x"))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "08001");
    let err = connect_as(server.addr, ORG, Some("")).await.unwrap_err();
    assert!(err.as_db_error().is_none() || code(&err) == "28P01");
}

#[tokio::test]
async fn unknown_database_is_refused() {
    let server = start().await;
    let mut config = pg_config(server.addr, USER, Some(PASSWORD));
    config.dbname("postgres");
    let err = match config.connect(NoTls).await {
        Ok(_) => panic!("unknown database accepted"),
        Err(e) => e,
    };
    assert_eq!(code(&err), "3D000");
}

#[tokio::test]
async fn settings_do_not_leak_between_connections() {
    let server = start().await;
    let a = connect(server.addr).await;
    let b = connect(server.addr).await;
    a.simple_query("SET application_name = 'first'")
        .await
        .expect("set");
    a.simple_query("SET productive.page_size = 7")
        .await
        .expect("set");
    assert_eq!(show(&a, "application_name").await, "first");
    assert_eq!(show(&a, "productive.page_size").await, "7");
    assert_eq!(show(&b, "application_name").await, "");
    assert_eq!(show(&b, "productive.page_size").await, "100");

    // Tables created by one client stay in its own session.
    a.simple_query("CREATE TABLE mine AS SELECT 1 AS x")
        .await
        .expect("ctas");
    let err = b.simple_query("SELECT * FROM mine").await.unwrap_err();
    assert_eq!(code(&err), "42P01");
}

#[tokio::test]
async fn queries_with_parameters_in_both_protocols() {
    let server = start().await;
    let client = connect(server.addr).await;
    let rows = simple_rows(&client, "SELECT id, name FROM people ORDER BY id").await;
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2], vec![Some("3".into()), None]);

    // Extended protocol: binary results, binary parameters.
    let row = client
        .query_one("SELECT name FROM people WHERE id = $1", &[&2i64])
        .await
        .expect("query");
    assert_eq!(row.get::<_, String>(0), "bob");
    let row = client
        .query_one("SELECT $1::int + 1 AS n", &[&41i32])
        .await
        .expect("query");
    assert_eq!(row.get::<_, i64>("n"), 42);

    // Text-format parameters sent through a prepared statement with
    // explicit types.
    let stmt = client
        .prepare_typed(
            "SELECT count(*) FROM people WHERE name = $1",
            &[tokio_postgres::types::Type::TEXT],
        )
        .await
        .expect("prepare");
    let row = client.query_one(&stmt, &[&"ann"]).await.expect("query");
    assert_eq!(row.get::<_, i64>(0), 1);
}

#[tokio::test]
async fn dml_reports_command_tags() {
    let server = start().await;
    let client = connect(server.addr).await;
    assert_eq!(
        simple_count(&client, "INSERT INTO people VALUES (4, 'dee'), (5, 'eve')").await,
        2
    );
    assert_eq!(
        client
            .execute("INSERT INTO people VALUES ($1, $2)", &[&6i64, &"fay"])
            .await
            .expect("insert"),
        1
    );
    assert_eq!(
        simple_count(&client, "UPDATE people SET name = 'x' WHERE id > 4").await,
        2
    );
    assert_eq!(
        simple_count(&client, "DELETE FROM people WHERE id = 1").await,
        1
    );

    assert_eq!(
        client
            .execute("UPDATE log SET name = 'y' WHERE id = 1", &[])
            .await
            .expect("update"),
        2
    );
    assert_eq!(
        client
            .execute("DELETE FROM log WHERE id = $1", &[&1i64])
            .await
            .expect("delete"),
        3
    );
    assert_eq!(
        simple_count(&client, "INSERT INTO log VALUES (9, 'z')").await,
        1
    );
    let events = server.recorder.events();
    assert!(
        events.contains(&"update 1 where 1".to_owned()),
        "{events:?}"
    );
    assert!(events.contains(&"delete where 1".to_owned()), "{events:?}");
    assert!(events.contains(&"insert 1".to_owned()), "{events:?}");

    let messages = client
        .simple_query("SELECT * FROM people")
        .await
        .expect("select");
    assert!(matches!(
        messages.last(),
        Some(SimpleQueryMessage::CommandComplete(5))
    ));
}

#[tokio::test]
async fn columns_are_named_like_postgres() {
    let server = start().await;
    let client = connect(server.addr).await;
    let stmt = client
        .prepare("SELECT count(*), 1 + 1, max(id), sum(id) FROM people")
        .await
        .expect("prepare");
    let names: Vec<&str> = stmt.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, vec!["count", "?column?", "max", "sum"]);
}

#[tokio::test]
async fn version_and_server_version() {
    let server = start().await;
    let client = connect(server.addr).await;
    let version = simple_rows(&client, "SELECT version()").await[0][0]
        .clone()
        .expect("v");
    assert!(version.starts_with(&format!(
        "PostgreSQL 15.0 (productive-pg {})",
        env!("CARGO_PKG_VERSION")
    )));
    assert_eq!(show(&client, "server_version").await, "15.0");
}

#[tokio::test]
async fn set_show_reset() {
    let server = start().await;
    let client = connect(server.addr).await;
    client
        .simple_query("SET statement_timeout = '5s'")
        .await
        .expect("set");
    assert_eq!(show(&client, "statement_timeout").await, "5s");
    client
        .simple_query("SET TIME ZONE 'Europe/Berlin'")
        .await
        .expect("set");
    assert_eq!(show(&client, "TimeZone").await, "Europe/Berlin");
    client
        .simple_query("SET datestyle = 'ISO'")
        .await
        .expect("set");
    assert_eq!(show(&client, "DateStyle").await, "ISO, MDY");
    client
        .simple_query("SET search_path TO public")
        .await
        .expect("set");
    assert_eq!(show(&client, "search_path").await, "public");
    client
        .simple_query("SET extra_float_digits = 3")
        .await
        .expect("set");
    assert_eq!(show(&client, "extra_float_digits").await, "3");

    client
        .simple_query("SET productive.page_size = 50")
        .await
        .expect("set");
    assert_eq!(show(&client, "productive.page_size").await, "50");
    assert_eq!(show(&client, "productive.api_token").await, "********");
    let all = simple_rows(&client, "SHOW ALL").await;
    assert!(
        all.iter()
            .any(|r| r[0].as_deref() == Some("productive.page_size"))
    );
    assert!(all.iter().all(|r| r[1].as_deref() != Some("not-shown")));

    client
        .simple_query("RESET productive.page_size")
        .await
        .expect("reset");
    assert_eq!(show(&client, "productive.page_size").await, "100");
    client.simple_query("RESET ALL").await.expect("reset");
    assert_eq!(show(&client, "statement_timeout").await, "0");

    let err = client
        .simple_query("SET no_such_thing = 1")
        .await
        .unwrap_err();
    assert_eq!(code(&err), "42704");
    let err = client
        .simple_query("SET client_encoding = 'LATIN1'")
        .await
        .unwrap_err();
    assert_eq!(code(&err), "22023");
    // SHOW through the extended protocol describes its column.
    let row = client
        .query_one("SHOW server_version", &[])
        .await
        .expect("show");
    assert_eq!(row.get::<_, String>("server_version"), "15.0");
}

#[tokio::test]
async fn statement_timeout_stops_the_query() {
    let server = start().await;
    let client = connect(server.addr).await;
    client
        .simple_query("SET statement_timeout = 200")
        .await
        .expect("set");
    let err = client.simple_query("SELECT * FROM slow").await.unwrap_err();
    assert_eq!(code(&err), "57014");
    assert_eq!(
        message(&err),
        "canceling statement due to statement timeout"
    );
    assert!(
        server.recorder.slow_dropped.load(Ordering::SeqCst),
        "work dropped"
    );
    assert_eq!(simple_rows(&client, "SELECT 1").await.len(), 1);
}

#[tokio::test]
async fn cancel_request_stops_the_query() {
    let server = start().await;
    let client = connect(server.addr).await;
    let token = client.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel_query(NoTls).await
    });
    let err = client.query("SELECT * FROM slow", &[]).await.unwrap_err();
    canceller.await.expect("join").expect("cancel sent");
    assert_eq!(code(&err), "57014");
    assert_eq!(message(&err), "canceling statement due to user request");
    assert!(
        server.recorder.slow_dropped.load(Ordering::SeqCst),
        "work dropped"
    );
    assert_eq!(simple_rows(&client, "SELECT 1").await.len(), 1);
}

#[tokio::test]
async fn failed_transactions_reject_commands_until_rollback() {
    let server = start().await;
    let mut client = connect(server.addr).await;
    client.simple_query("BEGIN").await.expect("begin");
    let err = client.simple_query("SELECT * FROM nope").await.unwrap_err();
    assert_eq!(code(&err), "42P01");
    let err = client.simple_query("SELECT 1").await.unwrap_err();
    assert_eq!(code(&err), "25P02");
    client.simple_query("ROLLBACK").await.expect("rollback");
    assert_eq!(simple_rows(&client, "SELECT 1").await.len(), 1);

    let tx = client.transaction().await.expect("begin");
    tx.execute("SAVEPOINT a", &[]).await.expect("savepoint");
    tx.commit().await.expect("commit");
}

#[tokio::test]
async fn errors_carry_sqlstates_and_the_session_survives() {
    let server = start().await;
    let client = connect(server.addr).await;
    for (sql, expected) in [
        ("SELEC 1", "42601"),
        ("SELECT * FROM nope", "42P01"),
        ("SELECT nope FROM people", "42703"),
        ("SELECT no_such_function(1)", "42883"),
        ("CALL nothing()", "42883"),
    ] {
        let err = client.simple_query(sql).await.unwrap_err();
        assert_eq!(code(&err), expected, "{sql}");
        let err = client.query(sql, &[]).await.unwrap_err();
        assert_eq!(code(&err), expected, "{sql} (extended)");
    }
    assert_eq!(simple_rows(&client, "SELECT 1").await.len(), 1);
}

#[tokio::test]
async fn explain_does_not_run_dml() {
    let server = start().await;
    let client = connect(server.addr).await;
    let rows = simple_rows(&client, "EXPLAIN DELETE FROM log WHERE id = 1").await;
    assert!(!rows.is_empty());
    let rows = simple_rows(&client, "EXPLAIN SELECT * FROM people").await;
    assert!(!rows.is_empty());
    let err = client
        .simple_query("EXPLAIN ANALYZE UPDATE log SET name = 'a'")
        .await
        .unwrap_err();
    assert_eq!(code(&err), "0A000");
    let events = server.recorder.events();
    assert!(
        !events
            .iter()
            .any(|e| e.starts_with("delete") || e.starts_with("update")),
        "{events:?}"
    );
}

#[tokio::test]
async fn call_reaches_the_backend() {
    let server = start().await;
    let client = connect(server.addr).await;
    let messages = client
        .simple_query("CALL refresh('tasks', 2)")
        .await
        .expect("call");
    assert!(matches!(
        messages.last(),
        Some(SimpleQueryMessage::CommandComplete(_))
    ));
    assert!(
        server
            .recorder
            .events()
            .contains(&"call refresh(tasks,2)".to_owned())
    );
}

#[tokio::test]
async fn cursors_and_portals_fetch_in_pieces() {
    let server = start().await;
    let mut client = connect(server.addr).await;
    client
        .simple_query("DECLARE c CURSOR FOR SELECT id FROM people ORDER BY id")
        .await
        .expect("declare");
    assert_eq!(simple_rows(&client, "FETCH 2 FROM c").await.len(), 2);
    assert_eq!(simple_rows(&client, "FETCH ALL FROM c").await.len(), 1);
    assert_eq!(simple_rows(&client, "FETCH NEXT FROM c").await.len(), 0);
    client.simple_query("CLOSE c").await.expect("close");
    let err = client.simple_query("FETCH 1 FROM c").await.unwrap_err();
    assert_eq!(code(&err), "34000");

    // Execute with max_rows, as JDBC's setFetchSize does.
    let tx = client.transaction().await.expect("begin");
    let stmt = tx
        .prepare("SELECT id FROM people ORDER BY id")
        .await
        .expect("prepare");
    let portal = tx.bind(&stmt, &[]).await.expect("bind");
    let first = tx.query_portal(&portal, 2).await.expect("fetch");
    assert_eq!(
        first.iter().map(|r| r.get::<_, i64>(0)).collect::<Vec<_>>(),
        vec![1, 2]
    );
    let rest = tx.query_portal(&portal, 2).await.expect("fetch");
    assert_eq!(
        rest.iter().map(|r| r.get::<_, i64>(0)).collect::<Vec<_>>(),
        vec![3]
    );
    tx.commit().await.expect("commit");
}

#[tokio::test]
async fn garbage_bytes_close_only_that_connection() {
    let server = start().await;
    for payload in [
        b"this is not postgres at all, definitely not".to_vec(),
        // A startup packet claiming a length near 2 GiB.
        vec![0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0],
        // Valid startup, then a message with a huge declared length.
        {
            let mut p = vec![];
            let body = b"user\0alice\0database\0productive\0\0";
            p.extend_from_slice(&((8 + body.len()) as u32).to_be_bytes());
            p.extend_from_slice(&196608u32.to_be_bytes());
            p.extend_from_slice(body);
            p
        },
    ] {
        let mut socket = TcpStream::connect(server.addr).await.expect("connect");
        socket.write_all(&payload).await.expect("write");
        let mut buf = vec![0u8; 4096];
        // The server either answers and closes or just closes; it must not hang.
        let read = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        let _ = read;
    }
    let mut socket = TcpStream::connect(server.addr).await.expect("connect");
    // Invalid UTF-8 in a startup parameter.
    let body = b"user\0\xff\xfe\0\0";
    let mut p = vec![];
    p.extend_from_slice(&((8 + body.len()) as u32).to_be_bytes());
    p.extend_from_slice(&196608u32.to_be_bytes());
    p.extend_from_slice(body);
    socket.write_all(&p).await.expect("write");
    drop(socket);

    let client = connect(server.addr).await;
    assert_eq!(simple_rows(&client, "SELECT 1").await.len(), 1);
}

#[tokio::test]
async fn connection_cap_answers_too_many_connections() {
    let mut cfg = config(password_mode());
    cfg.max_connections = 1;
    let server = start_with(cfg, "127.0.0.1:0").await;
    let first = connect(server.addr).await;
    let err = connect_as(server.addr, USER, Some(PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "53300");
    drop(first);
    // The slot frees up once the first client leaves.
    let mut ok = false;
    for _ in 0..50 {
        if connect_as(server.addr, USER, Some(PASSWORD)).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok, "slot released");
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_returns() {
    let server = start().await;
    let client = connect(server.addr).await;
    server.stop().await.expect("run returns cleanly");
    assert!(client.simple_query("SELECT 1").await.is_err());
}

#[tokio::test]
async fn tls_carries_pass_through_logins_off_loopback() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let dir = std::env::temp_dir().join(format!("productive-pg-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).expect("write key");

    let mut cfg = config(AuthMode::PassThrough);
    cfg.tls = Some(productive_pg::server::TlsConfig {
        cert_path: cert_path.clone(),
        key_path: key_path.clone(),
    });
    // Listening on all interfaces: plain-text pass-through must be refused.
    let server = start_with(cfg.clone(), "0.0.0.0:0").await;

    let mut plain = pg_config(server.addr, ORG, Some(TOKEN));
    plain.ssl_mode(tokio_postgres::config::SslMode::Disable);
    let err = match plain.connect(NoTls).await {
        Ok(_) => panic!("plain-text pass-through accepted off loopback"),
        Err(e) => e,
    };
    assert_eq!(code(&err), "28000");
    assert!(message(&err).contains("TLS"));

    let mut secure = pg_config(server.addr, ORG, Some(TOKEN));
    secure.ssl_mode(tokio_postgres::config::SslMode::Require);
    let tls = tls::TrustOne::new(cert.cert.der().to_vec());
    let (client, connection) = secure.connect(tls).await.expect("TLS login");
    tokio::spawn(connection);
    assert_eq!(simple_rows(&client, "SELECT 1").await.len(), 1);

    // A server asked for TLS with unreadable material refuses to start.
    cfg.tls = Some(productive_pg::server::TlsConfig {
        cert_path: dir.join("missing.pem"),
        key_path,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let outcome = productive_pg::server::run(
        listener,
        cfg,
        std::sync::Arc::new(TestBackend::new()),
        std::future::pending(),
    )
    .await;
    assert!(outcome.is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

/// psql's describe commands against the server; skipped without psql.
#[tokio::test]
async fn psql_describes_tables_with_comments() {
    if !std::path::Path::new("/usr/bin/psql").exists() {
        eprintln!("psql not installed; skipping psql_describes_tables_with_comments");
        return;
    }
    let server = start().await;
    let port = server.addr.port().to_string();
    let run = |command: &'static str| {
        let port = port.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("/usr/bin/psql")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-U",
                    USER,
                    "-d",
                    "productive",
                ])
                .args(["-X", "-v", "ON_ERROR_STOP=1", "-c", command])
                .env("PGPASSWORD", PASSWORD)
                .env("PGCONNECT_TIMEOUT", "10")
                .output()
                .expect("psql runs")
        })
    };
    for (command, expected) in [
        ("\\dt", "people"),
        ("\\d people", "name"),
        ("\\d+ people", "Full name of the person"),
        ("\\dt+", "Everyone we know"),
        ("\\dn", "public"),
        ("\\l", "productive"),
    ] {
        let out = run(command).await.expect("join");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{command}: {stderr}");
        assert!(stdout.contains(expected), "{command}: {stdout}\n{stderr}");
    }
}
