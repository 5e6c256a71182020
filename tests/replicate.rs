//! `replicate` against the simulator, into SQLite and (when
//! `PRODUCTIVE_PG_TEST_POSTGRES_URL` is set) PostgreSQL: full then
//! incremental runs with the requests each makes, interrupted runs,
//! failing records, new custom fields, `--tables`, and exit codes.

mod replicate_support;

use std::collections::BTreeSet;

use productive_pg::api::RequestStats;
use productive_pg::sim::fixture::{self, ids};
use productive_pg::sim::rules::now_timestamp;
use productive_pg::sim::store::Store;
use productive_pg::sim::{FaultKind, SimServer};
use productive_pg::transfer::ReplicateError;
use reqwest::Method;
use serde_json::{Value, json};

use replicate_support::*;

/// A copy of task `from` with a new id, created and updated now.
fn add_task(store: &mut Store, from: u64) -> u64 {
    add_task_at(store, from, &now_timestamp())
}

/// A copy of task `from` with a new id, created and updated at `at`.
fn add_task_at(store: &mut Store, from: u64, at: &str) -> u64 {
    let mut task = store.get("tasks", from).expect("task").clone();
    task.id = store.allocate_id();
    let at = Value::String(at.to_string());
    task.attributes.insert("created_at".into(), at.clone());
    task.attributes.insert("updated_at".into(), at);
    let id = task.id;
    store.put("tasks", task);
    id
}

fn count(sim: &SimServer, kind: &str) -> i64 {
    sim.store().read().unwrap().count(kind) as i64
}

async fn api(sim: &SimServer, method: Method, path: &str, body: Option<Value>) {
    client_for(sim)
        .write(method, path, body.as_ref(), &RequestStats::default())
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
}

async fn full_then_incremental(db: TestDb) {
    let sim = start_sim(fixture::standard()).await;
    {
        // Three pages of older tasks.
        let store = sim.store();
        let mut store = store.write().unwrap();
        for _ in 0..450 {
            add_task_at(
                &mut store,
                ids::HOMEPAGE_TASK,
                "2024-06-01T08:00:00.000+02:00",
            );
        }
    }
    let client = client_for(&sim);
    let options = db.options(&["tasks", "projects", "comments", "workflows"]);

    // First run: everything, in full.
    let first = replicate(&client, &options).await;
    assert!(!first.failed(), "{first:?}");
    for (table, kind) in [("tasks", "tasks"), ("projects", "projects")] {
        let s = first.table(table).unwrap();
        assert_eq!(s.mode, "full");
        assert_eq!(s.inserted as i64, count(&sim, kind), "{table}");
    }
    assert_eq!(first.table("tasks").unwrap().requests, 3);
    assert_eq!(
        db.ints("SELECT count(*) FROM tasks").await,
        [count(&sim, "tasks")]
    );
    take_requests(&sim);

    // Changes on the API side: a task updated, one deleted, one created;
    // a project renamed (projects only show creation: the feed tells);
    // a comment deleted.
    api(
        &sim,
        Method::PATCH,
        &format!("/tasks/{}", ids::HOMEPAGE_TASK),
        Some(json!({"data": {"type": "tasks", "attributes": {"title": "Homepage v2"}}})),
    )
    .await;
    api(
        &sim,
        Method::DELETE,
        &format!("/tasks/{}", ids::COPY_TASK),
        None,
    )
    .await;
    api(
        &sim,
        Method::PATCH,
        &format!("/projects/{}", ids::WEBSITE),
        Some(json!({"data": {"type": "projects", "attributes": {"name": "Web 2"}}})),
    )
    .await;
    api(
        &sim,
        Method::DELETE,
        &format!("/comments/{}", ids::TASK_COMMENT),
        None,
    )
    .await;
    let new_task = add_task(&mut sim.store().write().unwrap(), ids::LAUNCH_TASK);
    take_requests(&sim);

    // Second run: incremental, few requests.
    let second = replicate(&client, &options).await;
    assert!(!second.failed(), "{second:?}");
    let tasks = second.table("tasks").unwrap();
    assert_eq!(tasks.mode, "incremental");
    assert_eq!(
        (tasks.inserted, tasks.updated, tasks.deleted),
        (1, 1, 1),
        "{tasks:?}"
    );
    assert_eq!(tasks.requests, 1);
    let projects = second.table("projects").unwrap();
    assert_eq!(
        (projects.inserted, projects.updated),
        (0, 1),
        "{projects:?}"
    );
    assert_eq!(
        projects.requests, 2,
        "the new-records list and one fetch by id"
    );
    let comments = second.table("comments").unwrap();
    assert_eq!(comments.deleted, 1, "{comments:?}");
    assert_eq!(second.table("workflows").unwrap().mode, "full");
    assert_eq!(second.requests(), 6, "{:#?}", take_requests(&sim));

    assert_eq!(
        db.texts(&format!(
            "SELECT title FROM tasks WHERE id = {}",
            ids::HOMEPAGE_TASK
        ))
        .await,
        [Some("Homepage v2".to_string())]
    );
    assert_eq!(
        db.texts(&format!(
            "SELECT name FROM projects WHERE id = {}",
            ids::WEBSITE
        ))
        .await,
        [Some("Web 2".to_string())]
    );
    assert_eq!(
        db.ints(&format!(
            "SELECT count(*) FROM tasks WHERE id IN ({}, {new_task})",
            ids::COPY_TASK
        ))
        .await,
        [1]
    );
    assert_eq!(
        db.ints("SELECT count(*) FROM tasks").await,
        [count(&sim, "tasks")]
    );
    // The comment without a parent is not listed by the API.
    assert_eq!(
        db.ints("SELECT id FROM comments").await,
        [ids::DEAL_COMMENT as i64]
    );

    // Third run: nothing changed, nothing written.
    let third = replicate(&client, &options).await;
    assert!(!third.failed(), "{third:?}");
    for s in &third.tables {
        assert_eq!((s.inserted, s.updated, s.deleted), (0, 0, 0), "{s:?}");
    }
}

async fn interrupted_run_resumes(db: TestDb) {
    let sim = start_sim(fixture::standard()).await;
    {
        let store = sim.store();
        let mut store = store.write().unwrap();
        // Two pages: the failure below hits the only page fetched after
        // the first, through all its attempts.
        for _ in 0..250 {
            add_task(&mut store, ids::HOMEPAGE_TASK);
        }
    }
    let total = count(&sim, "tasks");
    assert!(total > 200 && total <= 400);
    let client = client_for(&sim);
    let options = db.options(&["tasks"]);

    // The first page arrives, then the second fails on every attempt.
    sim.fail_next(1, FaultKind::SlowBody);
    sim.fail_next(ATTEMPTS, FaultKind::Status(500));
    let first = replicate(&client, &options).await;
    assert!(first.failed());
    let tasks = first.table("tasks").unwrap();
    assert!(tasks.error.is_some(), "{tasks:?}");
    assert_eq!(tasks.inserted, 200);
    assert_eq!(db.ints("SELECT count(*) FROM tasks").await, [200]);
    assert_eq!(
        db.ints("SELECT count(*) FROM _productive_replication_state WHERE table_name = 'tasks'")
            .await,
        [0],
        "no watermark for an unfinished copy"
    );

    // The rerun completes the copy: nothing lost, nothing twice.
    let second = replicate(&client, &options).await;
    assert!(!second.failed(), "{second:?}");
    let tasks = second.table("tasks").unwrap();
    assert_eq!(tasks.mode, "full");
    assert_eq!(tasks.inserted as i64, total - 200);
    assert_eq!(tasks.updated, 0, "rows of the first page are unchanged");
    let stored: BTreeSet<i64> = db.ints("SELECT id FROM tasks").await.into_iter().collect();
    let expected: BTreeSet<i64> = sim
        .store()
        .read()
        .unwrap()
        .all("tasks")
        .map(|r| r.id as i64)
        .collect();
    assert_eq!(stored, expected);
}

async fn failing_record_is_retried(db: TestDb) {
    let sim = start_sim(fixture::standard()).await;
    let bad = ids::LOGIN_TASK;
    sim.store()
        .write()
        .unwrap()
        .get_mut("tasks", bad)
        .unwrap()
        .attributes
        .insert("due_date".into(), json!("soon"));
    let client = client_for(&sim);
    let options = db.options(&["tasks"]);

    let first = replicate(&client, &options).await;
    assert!(first.failed());
    assert_eq!(first.table("tasks").unwrap().failed, 1);
    assert_eq!(
        db.ints("SELECT record_id FROM _productive_replication_failures")
            .await,
        [bad as i64]
    );
    assert_eq!(
        db.ints("SELECT count(*) FROM tasks").await,
        [count(&sim, "tasks") - 1]
    );

    // Repaired without a newer updated_at: only the retry by id finds it.
    sim.store()
        .write()
        .unwrap()
        .get_mut("tasks", bad)
        .unwrap()
        .attributes
        .insert("due_date".into(), json!("2025-05-05"));
    take_requests(&sim);
    let second = replicate(&client, &options).await;
    assert!(!second.failed(), "{second:?}");
    let tasks = second.table("tasks").unwrap();
    assert_eq!((tasks.mode, tasks.inserted), ("incremental", 1));
    let requests = take_requests(&sim);
    assert!(
        requests
            .iter()
            .any(|r| r.contains(&format!("filter%5Bid%5D={bad}"))),
        "{requests:#?}"
    );
    assert_eq!(
        db.texts(&format!(
            "SELECT CAST(due_date AS text) FROM tasks WHERE id = {bad}"
        ))
        .await,
        [Some("2025-05-05".to_string())]
    );
    assert!(
        db.ints("SELECT record_id FROM _productive_replication_failures")
            .await
            .is_empty()
    );
}

async fn new_custom_field_adds_a_column(db: TestDb) {
    let sim = start_sim(fixture::standard()).await;
    let client = client_for(&sim);
    let mut options = db.options(&["tasks"]);
    options.use_custom_fields = true;

    let first = replicate(&client, &options).await;
    assert!(!first.failed(), "{first:?}");
    let priority = format!(
        "SELECT priority FROM tasks WHERE id = {}",
        ids::HOMEPAGE_TASK
    );
    assert_eq!(db.texts(&priority).await, [Some("High".to_string())]);

    {
        let store = sim.store();
        let mut store = store.write().unwrap();
        let mut field = store
            .get("custom_fields", ids::PRIORITY_FIELD)
            .unwrap()
            .clone();
        field.id = 690;
        field.attributes.insert("name".into(), json!("Sprint Goal"));
        field.attributes.insert("data_type_id".into(), json!(1));
        field.relationships.clear();
        store.put("custom_fields", field);
        store
            .get_mut("tasks", ids::LAUNCH_TASK)
            .unwrap()
            .attributes
            .insert("custom_fields".into(), json!({"690": "Ship it"}));
    }
    let second = replicate(&client, &options).await;
    assert!(!second.failed(), "{second:?}");
    assert_eq!(second.table("tasks").unwrap().mode, "full");
    assert_eq!(
        db.texts(&format!(
            "SELECT sprint_goal FROM tasks WHERE id = {}",
            ids::LAUNCH_TASK
        ))
        .await,
        [Some("Ship it".to_string())]
    );
    assert_eq!(db.texts(&priority).await, [Some("High".to_string())]);
    assert_eq!(
        db.ints("SELECT count(*) FROM tasks").await,
        [count(&sim, "tasks")]
    );
}

#[tokio::test]
async fn sqlite_full_then_incremental() {
    full_then_incremental(TestDb::sqlite("incremental")).await;
}

#[tokio::test]
async fn sqlite_interrupted_run_resumes() {
    interrupted_run_resumes(TestDb::sqlite("interrupted")).await;
}

#[tokio::test]
async fn sqlite_failing_record_is_retried() {
    failing_record_is_retried(TestDb::sqlite("failing")).await;
}

#[tokio::test]
async fn sqlite_new_custom_field_adds_a_column() {
    new_custom_field_adds_a_column(TestDb::sqlite("custom")).await;
}

#[tokio::test]
async fn postgres_full_then_incremental() {
    if let Some(db) = TestDb::postgres("incremental").await {
        full_then_incremental(db).await;
    }
}

#[tokio::test]
async fn postgres_interrupted_run_resumes() {
    if let Some(db) = TestDb::postgres("interrupted").await {
        interrupted_run_resumes(db).await;
    }
}

#[tokio::test]
async fn postgres_failing_record_is_retried() {
    if let Some(db) = TestDb::postgres("failing").await {
        failing_record_is_retried(db).await;
    }
}

#[tokio::test]
async fn postgres_new_custom_field_adds_a_column() {
    if let Some(db) = TestDb::postgres("custom").await {
        new_custom_field_adds_a_column(db).await;
    }
}

#[tokio::test]
async fn only_the_listed_tables_are_created() {
    let sim = start_sim(fixture::standard()).await;
    let client = client_for(&sim);
    let db = TestDb::sqlite("tables");
    let report = replicate(&client, &db.options(&["workflows", "people"])).await;
    assert!(!report.failed(), "{report:?}");
    let names = db
        .texts(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE '\\_%' ESCAPE '\\' ORDER BY name",
        )
        .await;
    assert_eq!(
        names,
        [Some("people".to_string()), Some("workflows".to_string())]
    );

    let err = productive_pg::transfer::run(
        &client,
        &db.options(&["tasks", "nope"]),
        &productive_pg::transfer::Progress::hidden(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ReplicateError::UnknownTable(ref t) if t == "nope"));
}

#[tokio::test]
async fn exit_code_says_whether_the_run_failed() {
    let sim = start_sim(fixture::standard()).await;
    let db = TestDb::sqlite("exit");
    let run = |tables: &str| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_productive-pg"))
            .args(["replicate", "--target", &db.target(), "--tables", tables])
            .args(["--api-url", sim.base_url(), "--token", TOKEN])
            .args(["--org-id", &sim.organization_id().to_string()])
            .env("RUST_LOG", "off")
            .output()
    };

    let ok = run("workflows").await.expect("run the binary");
    assert_eq!(ok.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("workflows") && l.ends_with("ok")),
        "{stdout}"
    );

    // A 404 is not retried: the table fails at once.
    sim.fail_next(1, FaultKind::Status(404));
    let failed = run("workflows").await.expect("run the binary");
    assert_eq!(failed.status.code(), Some(1));

    let unknown = run("nope").await.expect("run the binary");
    assert_eq!(unknown.status.code(), Some(2));
}

#[tokio::test]
async fn each_table_keeps_its_own_place_in_the_feed() {
    let sim = start_sim(fixture::standard()).await;
    let client = client_for(&sim);
    let db = TestDb::sqlite("feed");
    let both = replicate(&client, &db.options(&["tasks", "projects"])).await;
    assert!(!both.failed(), "{both:?}");

    // A run of tasks alone reads the feed but must not move the place of
    // projects in it.
    api(
        &sim,
        Method::DELETE,
        &format!("/projects/{}", ids::INTERNAL_TOOLS),
        None,
    )
    .await;
    let tasks_only = replicate(&client, &db.options(&["tasks"])).await;
    assert!(!tasks_only.failed(), "{tasks_only:?}");
    let projects_only = replicate(&client, &db.options(&["projects"])).await;
    let projects = projects_only.table("projects").unwrap();
    assert_eq!((projects.mode, projects.deleted), ("incremental", 1));
    assert!(
        db.ints(&format!(
            "SELECT id FROM projects WHERE id = {}",
            ids::INTERNAL_TOOLS
        ))
        .await
        .is_empty()
    );
}

async fn foreign_keys_point_at_replicated_tables(db: TestDb) {
    let sim = start_sim(fixture::standard()).await;
    let client = client_for(&sim);
    let mut options = db.options(&["tasks", "projects", "companies"]);
    options.foreign_keys = true;
    let report = replicate(&client, &options).await;
    assert!(!report.failed(), "{report:?}");
    // Referenced tables are written first.
    let order: Vec<&str> = report.tables.iter().map(|t| t.table.as_str()).collect();
    assert_eq!(order, ["companies", "projects", "tasks"]);

    let sql = match &db {
        TestDb::Sqlite(_) => {
            "SELECT DISTINCT \"table\" FROM pragma_foreign_key_list('tasks') ORDER BY 1"
        }
        TestDb::Postgres { .. } => {
            "SELECT DISTINCT confrelid::regclass::text FROM pg_constraint \
             WHERE conrelid = 'tasks'::regclass AND contype = 'f' ORDER BY 1"
        }
    };
    assert_eq!(db.texts(sql).await, [Some("projects".to_string())]);
    if let TestDb::Sqlite(path) = &db {
        let conn = rusqlite::Connection::open(path).unwrap();
        let mut check = conn.prepare("PRAGMA foreign_key_check").unwrap();
        assert!(!check.exists([]).unwrap(), "no dangling references");
    }
}

#[tokio::test]
async fn sqlite_foreign_keys_point_at_replicated_tables() {
    foreign_keys_point_at_replicated_tables(TestDb::sqlite("fk")).await;
}

#[tokio::test]
async fn postgres_foreign_keys_point_at_replicated_tables() {
    if let Some(db) = TestDb::postgres("fk").await {
        foreign_keys_point_at_replicated_tables(db).await;
    }
}

#[tokio::test]
async fn full_copies_delete_rows_the_api_no_longer_has() {
    let sim = start_sim(fixture::standard()).await;
    let client = client_for(&sim);
    let db = TestDb::sqlite("gone");
    let options = db.options(&["workflow_statuses"]);
    assert!(!replicate(&client, &options).await.failed());

    sim.store()
        .write()
        .unwrap()
        .remove("workflow_statuses", ids::BLOCKED)
        .expect("a status without tasks");
    let report = replicate(&client, &options).await;
    let statuses = report.table("workflow_statuses").unwrap();
    assert_eq!(
        (statuses.mode, statuses.deleted),
        ("full", 1),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.requests, 2,
        "the list, then the missing id asked for"
    );
    assert_eq!(
        db.ints("SELECT count(*) FROM workflow_statuses").await,
        [count(&sim, "workflow_statuses")]
    );
}

async fn changes_in_the_target_are_captured(db: TestDb) {
    let sim = start_sim(fixture::standard()).await;
    let client = client_for(&sim);
    let options = db.options(&["tasks"]);
    assert!(!replicate(&client, &options).await.failed());
    let mut target = productive_pg::transfer::target::open(&db.target())
        .await
        .unwrap();
    target.install_capture("tasks").await.unwrap();

    user_sql(
        &db,
        &format!(
            "UPDATE tasks SET title = 'Local title' WHERE id = {};
             DELETE FROM tasks WHERE id = {};
             INSERT INTO tasks (id, title) VALUES (999001, 'Local task');",
            ids::HOMEPAGE_TASK,
            ids::COPY_TASK
        ),
    )
    .await;
    // A change on the API side, written by the replication: not captured.
    api(
        &sim,
        Method::PATCH,
        &format!("/tasks/{}", ids::LOGIN_TASK),
        Some(json!({"data": {"type": "tasks", "attributes": {"title": "Remote title"}}})),
    )
    .await;
    let report = replicate(&client, &options).await;
    assert_eq!(report.table("tasks").unwrap().updated, 1, "{report:?}");

    let changes = target.captured_changes(0).await.unwrap();
    let seen: Vec<(i64, &str)> = changes
        .iter()
        .map(|c| (c.row_id, c.operation.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (ids::HOMEPAGE_TASK as i64, "update"),
            (ids::COPY_TASK as i64, "delete"),
            (999001, "insert"),
        ]
    );
    assert!(changes.iter().all(|c| c.table == "tasks"));
    let last = changes.last().unwrap().seq;
    assert!(target.captured_changes(last).await.unwrap().is_empty());
}

#[tokio::test]
async fn sqlite_changes_in_the_target_are_captured() {
    changes_in_the_target_are_captured(TestDb::sqlite("capture")).await;
}

#[tokio::test]
async fn postgres_changes_in_the_target_are_captured() {
    if let Some(db) = TestDb::postgres("capture").await {
        changes_in_the_target_are_captured(db).await;
    }
}

#[tokio::test]
async fn a_schedule_runs_again_until_shut_down() {
    let sim = start_sim(fixture::standard()).await;
    let db = TestDb::sqlite("schedule");
    let settings = productive_pg::app::ReplicateSettings {
        api_url: sim.base_url().to_string(),
        credentials: Some((sim.organization_id().to_string(), TOKEN.into())),
        options: db.options(&["workflows"]),
        schedule: Some(std::time::Duration::from_millis(300)),
        demo: None,
        progress: false,
    };
    let shutdown = tokio::time::sleep(std::time::Duration::from_millis(1000));
    let report = productive_pg::app::replicate(settings, shutdown)
        .await
        .expect("scheduled runs");
    assert!(!report.failed(), "{report:?}");
    let lists = take_requests(&sim)
        .iter()
        .filter(|r| r.starts_with("GET /api/v2/workflows?"))
        .count();
    assert!((2..=5).contains(&lists), "{lists} runs");
}
