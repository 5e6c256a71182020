//! `COPY ... FROM STDIN` through real clients: tokio-postgres `copy_in`
//! (extended protocol), a simple-protocol COPY, and psql's `\copy`; bad
//! rows, CopyFail, faults, and refusals.

mod gateway_support;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::SinkExt;
use gateway_support::{TOKEN, sim_options, start_sim};
use productive_pg::api::ApiConfig;
use productive_pg::gateway::SessionDefaults;
use productive_pg::gateway::backend::GatewayBackend;
use productive_pg::server::{self, AuthMode, ServerConfig};
use productive_pg::sim::SimServer;
use productive_pg::sim::faults::FaultKind;
use productive_pg::sim::fixture::ids;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_postgres::{Client, NoTls};

const USER: &str = "loader";
const PASSWORD: &str = "copy words";

struct Wire {
    sim: SimServer,
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn start(read_only: bool) -> Wire {
    let sim = start_sim(productive_pg::sim::fixture::standard(), sim_options()).await;
    let org = sim.organization_id().to_string();
    let api = ApiConfig::new(sim.base_url(), "", Default::default());
    let backend = GatewayBackend::new(
        api,
        Some((org, TOKEN.into())),
        SessionDefaults {
            use_custom_fields: false,
            read_only,
            ..Default::default()
        },
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let config = ServerConfig {
        auth: AuthMode::Password {
            user: USER.into(),
            password: PASSWORD.into(),
        },
        tls: None,
        max_connections: 8,
        database: "productive".into(),
        shutdown_grace: productive_pg::server::DEFAULT_SHUTDOWN_GRACE,
    };
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(server::run(
        listener,
        config,
        Arc::new(backend),
        async move {
            let _ = rx.await;
        },
    ));
    Wire {
        sim,
        addr,
        _stop: tx,
    }
}

async fn connect(wire: &Wire) -> Client {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(wire.addr.port())
        .user(USER)
        .password(PASSWORD)
        .dbname("productive")
        .connect_timeout(Duration::from_secs(10));
    let (client, connection) = config.connect(NoTls).await.expect("login");
    tokio::spawn(connection);
    client
}

fn code(err: &tokio_postgres::Error) -> String {
    err.as_db_error()
        .map(|e| e.code().code().to_owned())
        .unwrap_or_else(|| format!("not a server error: {err}"))
}

fn context(err: &tokio_postgres::Error) -> String {
    err.as_db_error()
        .and_then(|e| e.where_().map(str::to_owned))
        .unwrap_or_default()
}

async fn copy(client: &Client, sql: &str, data: &str) -> Result<u64, tokio_postgres::Error> {
    let sink = client.copy_in::<_, Bytes>(sql).await?;
    futures::pin_mut!(sink);
    sink.send(Bytes::from(data.to_owned())).await?;
    sink.finish().await
}

async fn titles_like(client: &Client, prefix: &str) -> Vec<String> {
    let rows = client
        .query(
            &format!("SELECT title FROM tasks WHERE title LIKE '{prefix}%' ORDER BY title"),
            &[],
        )
        .await
        .expect("select");
    rows.iter().map(|r| r.get::<_, String>(0)).collect()
}

fn posts(sim: &SimServer) -> usize {
    let n = sim.requests().iter().filter(|r| r.method == "POST").count();
    sim.clear_requests();
    n
}

const COPY_CSV: &str =
    "COPY tasks (title, project_id, task_list_id) FROM STDIN (FORMAT csv, HEADER)";

#[tokio::test]
async fn copy_in_creates_every_row_in_both_protocols() {
    let wire = start(false).await;
    let client = connect(&wire).await;
    let data = format!(
        "title,project_id,task_list_id\nCopy A,{p},{l}\r\n\"Copy, B\",{p},{l}\n",
        p = ids::WEBSITE,
        l = ids::SPRINT
    );
    assert_eq!(copy(&client, COPY_CSV, &data).await.expect("copies"), 2);
    assert_eq!(
        titles_like(&client, "Copy").await,
        vec!["Copy A", "Copy, B"]
    );

    // The text format, with a NULL and an escaped tab.
    let data = format!(
        "Text\\tA\t{p}\t{l}\t\\N\nText B\t{p}\t{l}\tnotes\n\\.\n",
        p = ids::WEBSITE,
        l = ids::SPRINT
    );
    let sql = "COPY tasks (title, project_id, task_list_id, description) FROM STDIN";
    assert_eq!(copy(&client, sql, &data).await.expect("copies"), 2);
    let rows = client
        .query(
            "SELECT title, description FROM tasks WHERE title LIKE 'Text%' ORDER BY title",
            &[],
        )
        .await
        .expect("select");
    // Byte order: the tab sorts before the space.
    assert_eq!(rows[0].get::<_, String>(0), "Text\tA");
    assert_eq!(rows[0].get::<_, Option<String>>(1), None);
    assert_eq!(rows[1].get::<_, String>(0), "Text B");
    assert_eq!(
        rows[1].get::<_, Option<String>>(1).as_deref(),
        Some("notes")
    );

    // The connection is usable afterwards, in the simple protocol too.
    let n = client.simple_query("SELECT 1").await.expect("usable").len();
    assert!(n > 0);
}

#[tokio::test]
async fn a_bad_row_fails_the_copy_naming_its_line_and_nothing_is_sent() {
    let wire = start(false).await;
    let client = connect(&wire).await;
    let (p, l) = (ids::WEBSITE, ids::SPRINT);
    posts(&wire.sim);
    let cases = [
        (
            format!("title,project_id,task_list_id\nOk,{p},{l}\n,{p},{l}\n"),
            "23502",
            3,
        ),
        (
            format!("title,project_id,task_list_id\nOk,{p},{l}\nOk,x,{l}\n"),
            "22P02",
            3,
        ),
        (
            format!("title,project_id,task_list_id\nOk,{p},{l}\nOk,{p}\n"),
            "22P04",
            3,
        ),
        (
            format!("title,project_id,task_list_id\nOk,{p},{l}\n\"Open,{p},{l}\n"),
            "22P04",
            3,
        ),
    ];
    for (data, expected, line) in cases {
        let err = copy(&client, COPY_CSV, &data).await.unwrap_err();
        assert_eq!(code(&err), expected, "{err:?}");
        assert_eq!(context(&err), format!("COPY tasks, line {line}"), "{err:?}");
    }
    // A COPY refused before it starts leaves a tokio-postgres connection
    // out of step (its copy_in sends a second Sync, against PostgreSQL as
    // well), so each of these runs on a connection of its own.
    let err = copy(
        &connect(&wire).await,
        "COPY tasks (title, colour) FROM STDIN (FORMAT csv)",
        "x,y\n",
    )
    .await
    .unwrap_err();
    assert_eq!(code(&err), "42703");
    let err = copy(
        &connect(&wire).await,
        "COPY tasks (title) FROM STDIN (FORMAT csv, ENCODING 'LATIN1')",
        "x\n",
    )
    .await
    .unwrap_err();
    assert_eq!(code(&err), "22023");
    let client = connect(&wire).await;
    let err = client
        .simple_query("COPY tasks (title) FROM '/etc/passwd'")
        .await
        .unwrap_err();
    assert_eq!(code(&err), "0A000");
    assert_eq!(posts(&wire.sim), 0, "a failed COPY sent rows");
    assert!(titles_like(&client, "Ok").await.is_empty());
    // Still usable.
    client.simple_query("SELECT 1").await.expect("usable");
}

#[tokio::test]
async fn copy_fail_from_the_client_aborts_cleanly() {
    let wire = start(false).await;
    let client = connect(&wire).await;
    posts(&wire.sim);
    {
        let sink = client.copy_in::<_, Bytes>(COPY_CSV).await.expect("starts");
        futures::pin_mut!(sink);
        sink.send(Bytes::from(format!(
            "title,project_id,task_list_id\nAborted,{},{}\n",
            ids::WEBSITE,
            ids::SPRINT
        )))
        .await
        .expect("sends");
        // Dropped without finish: tokio-postgres sends CopyFail.
    }
    let rows = client.query("SELECT 1::int", &[]).await.expect("usable");
    assert_eq!(rows[0].get::<_, i32>(0), 1);
    assert_eq!(posts(&wire.sim), 0);
    assert!(titles_like(&client, "Aborted").await.is_empty());
}

#[tokio::test]
async fn refused_on_read_only_servers_and_tables_without_insert() {
    let wire = start(true).await;
    let client = connect(&wire).await;
    let err = copy(&client, COPY_CSV, "title\n").await.unwrap_err();
    assert_eq!(code(&err), "25006");

    let wire = start(false).await;
    let client = connect(&wire).await;
    let err = copy(&client, "COPY activities FROM STDIN (FORMAT csv)", "")
        .await
        .unwrap_err();
    assert_eq!(code(&err), "0A000", "{err:?}");
}

#[tokio::test]
async fn api_failures_part_way_name_the_rows_applied() {
    let wire = start(false).await;
    let client = connect(&wire).await;
    let (p, l) = (ids::WEBSITE, ids::SPRINT);
    // 429s are waited out; a blank title is the API's own 422.
    wire.sim.fail_next(2, FaultKind::Status(429));
    let data = format!("title,project_id,task_list_id\nPart A,{p},{l}\n\"\",{p},{l}\n");
    let err = copy(&client, COPY_CSV, &data).await.unwrap_err();
    let db = err.as_db_error().expect("server error");
    assert!(db.message().contains("1 of 2 rows were applied"), "{db:?}");
    assert_eq!(context(&err), "COPY tasks, line 3");
    assert_eq!(titles_like(&client, "Part").await, vec!["Part A"]);

    // A POST without an answer: its outcome is unknown.
    let data = format!("title,project_id,task_list_id\nLost,{p},{l}\n");
    wire.sim.fail_next(1, FaultKind::DropConnection);
    let err = copy(&client, COPY_CSV, &data).await.unwrap_err();
    assert_eq!(code(&err), "08006", "{err:?}");
    assert_eq!(context(&err), "COPY tasks, line 2");
    client.simple_query("SELECT 1").await.expect("usable");
}

#[tokio::test]
async fn psql_copy_from_a_file() {
    if Command::new("psql").arg("--version").output().is_err() {
        eprintln!("psql is not installed: skipped (scripts/test installs it)");
        return;
    }
    let wire = start(false).await;
    let dir = std::env::temp_dir().join(format!("copy-psql-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("tasks.csv");
    std::fs::write(
        &file,
        format!(
            "title,project_id,task_list_id\nPsql A,{p},{l}\nPsql B,{p},{l}\n",
            p = ids::WEBSITE,
            l = ids::SPRINT
        ),
    )
    .expect("write");
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, "title,project_id,task_list_id\nPsql C,nope,1\n").expect("write");
    let port = wire.addr.port();
    let run = move |command: String| {
        let out = Command::new("psql")
            .arg(format!(
                "host=127.0.0.1 port={port} user={USER} password='{PASSWORD}' dbname=productive"
            ))
            .args(["-X", "-v", "ON_ERROR_STOP=1", "-c", &command])
            .output()
            .expect("psql runs");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let good = format!(
        "\\copy tasks (title, project_id, task_list_id) from '{}' csv header",
        file.display()
    );
    let (ok, out) = tokio::task::spawn_blocking({
        let run = run.clone();
        move || run(good)
    })
    .await
    .expect("joins");
    assert!(ok, "{out}");
    assert!(out.contains("COPY 2"), "{out}");
    let bad = format!(
        "\\copy tasks (title, project_id, task_list_id) from '{}' csv header",
        bad.display()
    );
    let (ok, out) = tokio::task::spawn_blocking(move || run(bad))
        .await
        .expect("joins");
    assert!(!ok, "{out}");
    assert!(out.contains("line 2"), "{out}");
    let client = connect(&wire).await;
    assert_eq!(titles_like(&client, "Psql").await, vec!["Psql A", "Psql B"]);
}
