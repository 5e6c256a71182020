//! Writes through the PostgreSQL wire protocol: command tags, RETURNING,
//! notices, procedures and errors as tokio-postgres sees them, in the
//! simple and the extended protocol.

mod gateway_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use gateway_support::{TOKEN, sim_options, start_sim};
use productive_pg::api::ApiConfig;
use productive_pg::gateway::SessionDefaults;
use productive_pg::gateway::backend::GatewayBackend;
use productive_pg::server::{self, AuthMode, ServerConfig};
use productive_pg::sim::SimServer;
use productive_pg::sim::fixture::ids;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::{AsyncMessage, Client, NoTls, SimpleQueryMessage};

const USER: &str = "writer";
const PASSWORD: &str = "secret words";

struct Wire {
    sim: SimServer,
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn start(read_only: bool, comments_need_parent: bool) -> Wire {
    let mut options = sim_options();
    options.write_rules.comments_need_parent = comments_need_parent;
    let sim = start_sim(productive_pg::sim::fixture::standard(), options).await;
    let org = sim.organization_id().to_string();
    let api = ApiConfig::new(sim.base_url(), "", Default::default());
    let backend = GatewayBackend::new(
        api,
        Some((org, TOKEN.into())),
        SessionDefaults {
            use_custom_fields: false,
            read_only,
            cache_ttl: None,
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
        shutdown_grace: productive_pg::server::DEFAULT_SHUTDOWN_GRACE,
        database: "productive".into(),
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

/// A client, and the notices its connection receives.
async fn connect(wire: &Wire) -> (Client, mpsc::UnboundedReceiver<String>) {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(wire.addr.port())
        .user(USER)
        .password(PASSWORD)
        .dbname("productive")
        .connect_timeout(Duration::from_secs(10));
    let (client, mut connection) = config.connect(NoTls).await.expect("login");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notice(notice) = message {
                let _ = tx.send(notice.message().to_string());
            }
        }
    });
    (client, rx)
}

fn code(err: &tokio_postgres::Error) -> String {
    err.as_db_error()
        .map(|e| e.code().code().to_owned())
        .unwrap_or_else(|| format!("not a server error: {err}"))
}

/// Row counts of the CommandComplete messages of a simple query.
async fn simple_counts(client: &Client, sql: &str) -> Vec<u64> {
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::CommandComplete(n) => Some(n),
            _ => None,
        })
        .collect()
}

fn insert_tasks(n: usize) -> String {
    let rows = (0..n)
        .map(|i| format!("('Wire task {i}', {}, {})", ids::WEBSITE, ids::SPRINT))
        .collect::<Vec<_>>()
        .join(", ");
    format!("INSERT INTO tasks (title, project_id, task_list_id) VALUES {rows}")
}

#[tokio::test]
async fn command_tags_carry_row_counts_in_both_protocols() {
    let wire = start(false, true).await;
    let (client, _) = connect(&wire).await;

    // Extended protocol: `execute` returns the count of the tag.
    assert_eq!(
        client.execute(insert_tasks(3).as_str(), &[]).await.unwrap(),
        3
    );
    let n = client
        .execute(
            "UPDATE tasks SET private = true WHERE title LIKE 'Wire task%'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 3);
    let n = client
        .execute("DELETE FROM tasks WHERE title = $1", &[&"Wire task 0"])
        .await
        .unwrap();
    assert_eq!(n, 1);

    // Simple protocol.
    assert_eq!(simple_counts(&client, &insert_tasks(2)).await, vec![2]);
    assert_eq!(
        simple_counts(
            &client,
            "UPDATE tasks SET private = false WHERE title LIKE 'Wire task%'"
        )
        .await,
        vec![4]
    );
    assert_eq!(
        simple_counts(&client, "DELETE FROM tasks WHERE title LIKE 'Wire task%'").await,
        vec![4]
    );
}

#[tokio::test]
async fn returning_gives_the_written_records() {
    let wire = start(false, true).await;
    let (client, _) = connect(&wire).await;

    // Extended protocol, with a parameter and an expression.
    let rows = client
        .query(
            "INSERT INTO tasks (title, project_id, task_list_id) VALUES ($1, $2, $3) \
             RETURNING id, upper(title) AS shout, project_id",
            &[&"Returned", &(ids::WEBSITE as i64), &(ids::SPRINT as i64)],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let id: i64 = rows[0].get("id");
    assert!(id > 0);
    assert_eq!(rows[0].get::<_, String>("shout"), "RETURNED");
    assert_eq!(
        rows[0].get::<_, Option<i64>>("project_id"),
        Some(ids::WEBSITE as i64)
    );

    // Simple protocol: rows and the INSERT tag.
    let messages = client
        .simple_query(&format!("{} RETURNING id, title", insert_tasks(2)))
        .await
        .unwrap();
    let rows: Vec<_> = messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r.get("title").unwrap_or_default().to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(rows, vec!["Wire task 0", "Wire task 1"]);
    assert!(
        messages
            .iter()
            .any(|m| matches!(m, SimpleQueryMessage::CommandComplete(2)))
    );

    let rows = client
        .query(
            "UPDATE tasks SET initial_estimate = 10 WHERE id = $1 RETURNING *",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, Option<i32>>("initial_estimate"), Some(10));
    assert_eq!(rows[0].get::<_, String>("title"), "Returned");

    let rows = client
        .query(
            "DELETE FROM tasks WHERE id = $1 RETURNING id, title",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>("title"), "Returned");
    let left = client
        .query("SELECT id FROM tasks WHERE id = $1", &[&id])
        .await
        .unwrap();
    assert!(left.is_empty());
}

#[tokio::test]
async fn a_parentless_comment_raises_a_notice() {
    let wire = start(false, false).await;
    let (client, mut notices) = connect(&wire).await;
    let rows = client
        .query(
            "INSERT INTO comments (body) VALUES ('<p>loose</p>') RETURNING id",
            &[],
        )
        .await
        .unwrap();
    let id: i64 = rows[0].get(0);
    let notice = tokio::time::timeout(Duration::from_secs(5), notices.recv())
        .await
        .expect("a notice")
        .expect("open");
    assert!(notice.contains("has no parent"), "{notice}");
    assert!(notice.contains(&id.to_string()), "{notice}");
    let found = client
        .query("SELECT body FROM comments WHERE id = $1", &[&id])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    simple_counts(
        &client,
        &format!(
            "INSERT INTO comments (body, task_id) VALUES ('<p>ok</p>', {})",
            ids::HOMEPAGE_TASK
        ),
    )
    .await;
    assert!(
        notices.try_recv().is_err(),
        "no notice for a comment with a parent"
    );
}

#[tokio::test]
async fn procedures_by_call_in_both_protocols() {
    let wire = start(false, true).await;
    let (client, _) = connect(&wire).await;
    let messages = client
        .simple_query(&format!("CALL ArchiveProject({})", ids::WEBSITE))
        .await
        .unwrap();
    let archived = messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => r.get("archived_at").map(str::to_string),
        _ => None,
    });
    assert!(archived.is_some(), "{messages:?}");

    // Extended protocol, with a parameter, as JDBC sends `{call ...}`.
    let rows = client
        .query("call restoreproject($1)", &[&(ids::WEBSITE as i64)])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, i64>("id"), ids::WEBSITE as i64);
    assert!(rows[0].get::<_, Option<String>>("name").is_some());
    let rows = client
        .query(
            "CALL DeleteWorkflowStatus($1, 'workflow_statuses', $2)",
            &[&(ids::BLOCKED as i64), &(ids::TO_DO as i64)],
        )
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, String>("status"), "deleted");

    let err = client
        .simple_query("CALL ArchiveProject(1, 2)")
        .await
        .unwrap_err();
    assert_eq!(code(&err), "42883");
    let err = client
        .simple_query("CALL ArchiveProject(999999)")
        .await
        .unwrap_err();
    assert_eq!(code(&err), "P0002");
}

#[tokio::test]
async fn errors_keep_their_sqlstates_on_the_wire() {
    let wire = start(false, true).await;
    let (client, _) = connect(&wire).await;
    wire.sim.clear_requests();
    let err = client
        .execute("INSERT INTO users (first_name) VALUES ('x')", &[])
        .await
        .unwrap_err();
    assert_eq!(code(&err), "0A000");
    let message = err
        .as_db_error()
        .expect("server error")
        .message()
        .to_string();
    assert!(message.contains("SELECT, UPDATE"), "{message}");
    let err = client
        .execute("DELETE FROM companies WHERE id = 1", &[])
        .await
        .unwrap_err();
    assert_eq!(code(&err), "0A000");
    let err = client
        .execute("INSERT INTO tasks (title) VALUES ('x')", &[])
        .await
        .unwrap_err();
    assert_eq!(code(&err), "23502");
    assert!(wire.sim.requests().is_empty());

    let err = client
        .simple_query(&format!(
            "INSERT INTO comments (body, task_id) VALUES ('<p>a</p>', {t}), ('<p>b</p>', NULL)",
            t = ids::HOMEPAGE_TASK
        ))
        .await
        .unwrap_err();
    let db = err.as_db_error().expect("server error");
    assert!(
        db.message().contains("1 of 2 rows were applied"),
        "{}",
        db.message()
    );
    assert!(db.detail().unwrap_or_default().contains("applied ids: "));
}

#[tokio::test]
async fn a_read_only_server_refuses_writes_and_calls() {
    let wire = start(true, true).await;
    let (client, _) = connect(&wire).await;
    wire.sim.clear_requests();
    for sql in [
        "INSERT INTO companies (name) VALUES ('x')".to_string(),
        format!(
            "UPDATE tasks SET title = 'x' WHERE id = {}",
            ids::HOMEPAGE_TASK
        ),
        format!("DELETE FROM tasks WHERE id = {}", ids::HOMEPAGE_TASK),
        format!("CALL ArchiveProject({})", ids::WEBSITE),
        format!("SELECT archive_project({})", ids::WEBSITE),
    ] {
        let err = client.simple_query(&sql).await.unwrap_err();
        assert_eq!(code(&err), "25006", "{sql}");
    }
    assert!(wire.sim.requests().is_empty());
    let rows = client.query("SELECT id FROM companies", &[]).await.unwrap();
    assert!(!rows.is_empty());
}
