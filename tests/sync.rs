//! `sync` against the simulator, with SQLite and (when
//! `PRODUCTIVE_PG_TEST_POSTGRES_URL` is set) PostgreSQL: the first copy,
//! local inserts, updates and deletes sent to Productive, remote changes
//! pulled, each conflict policy, `--plan`, refused and held changes, and a
//! change made while a run writes.

mod replicate_support;

use std::time::Duration;

use productive_pg::api::RequestStats;
use productive_pg::sim::fixture::{self, ids};
use productive_pg::sim::{FaultKind, Latency, SimServer};
use productive_pg::transfer::Progress;
use productive_pg::transfer::sync::{ConflictPolicy, SyncOptions, SyncReport};
use reqwest::Method;
use serde_json::{Value, json};

use replicate_support::*;

fn options(db: &TestDb, conflict: ConflictPolicy, plan: bool) -> SyncOptions {
    SyncOptions {
        target: db.target(),
        tables: Some(vec!["tasks".to_string()]),
        conflict,
        plan,
    }
}

async fn sync(sim: &SimServer, db: &TestDb, conflict: ConflictPolicy, plan: bool) -> SyncReport {
    productive_pg::transfer::sync::run(
        &client_for(sim),
        &options(db, conflict, plan),
        &Progress::hidden(),
    )
    .await
    .expect("the run starts")
}

async fn api(sim: &SimServer, method: Method, path: &str, body: Option<Value>) {
    client_for(sim)
        .write(method, path, body.as_ref(), &RequestStats::default())
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
}

async fn rename_remote(sim: &SimServer, id: u64, title: &str) {
    api(
        sim,
        Method::PATCH,
        &format!("/tasks/{id}"),
        Some(json!({"data": {"type": "tasks", "attributes": {"title": title}}})),
    )
    .await;
}

fn store_title(sim: &SimServer, id: u64) -> Option<String> {
    let store = sim.store();
    let store = store.read().unwrap();
    store
        .get("tasks", id)
        .and_then(|t| t.attributes.get("title").cloned())
        .and_then(|v| v.as_str().map(str::to_string))
}

async fn local_title(db: &TestDb, id: i64) -> Option<String> {
    db.texts(&format!("SELECT title FROM tasks WHERE id = {id}"))
        .await
        .into_iter()
        .next()
        .flatten()
}

/// The writes the simulator saw since the last call, as `METHOD path`.
fn writes(sim: &SimServer) -> Vec<String> {
    take_requests(sim)
        .into_iter()
        .filter(|r| !r.starts_with("GET "))
        .map(|r| r.trim_end_matches('?').to_string())
        .collect()
}

fn pushed(report: &SyncReport) -> (u64, u64, u64) {
    let t = report.table("tasks").expect("tasks");
    (t.pushed_inserted, t.pushed_updated, t.pushed_deleted)
}

fn pulled(report: &SyncReport) -> (u64, u64, u64) {
    let t = report.table("tasks").expect("tasks");
    (t.pulled_inserted, t.pulled_updated, t.pulled_deleted)
}

async fn first_run_then_both_directions(db: TestDb) {
    let sim = start_sim(fixture::standard()).await;
    let tasks = sim.store().read().unwrap().count("tasks") as u64;

    // First run: a copy of Productive, one list request.
    let first = sync(&sim, &db, ConflictPolicy::RemoteWins, false).await;
    assert!(!first.failed(), "{first:?}");
    assert_eq!(pulled(&first), (tasks, 0, 0));
    assert_eq!(pushed(&first), (0, 0, 0));
    assert_eq!(first.requests(), 1, "{:#?}", take_requests(&sim));
    take_requests(&sim);

    // Local changes, and one in Productive.
    user_sql(
        &db,
        &format!(
            "UPDATE tasks SET title = 'Local title' WHERE id = {};
             DELETE FROM tasks WHERE id = {};
             INSERT INTO tasks (id, title, project_id, task_list_id)
               VALUES (-1, 'Local task', {}, {});",
            ids::HOMEPAGE_TASK,
            ids::COPY_TASK,
            ids::WEBSITE,
            ids::SPRINT
        ),
    )
    .await;
    rename_remote(&sim, ids::LOGIN_TASK, "Remote title").await;
    take_requests(&sim);

    let second = sync(&sim, &db, ConflictPolicy::RemoteWins, false).await;
    assert!(!second.failed(), "{second:?}");
    assert_eq!(pushed(&second), (1, 1, 1), "{second:?}");
    assert_eq!(second.table("tasks").unwrap().conflicts, 0);
    let log = writes(&sim);
    assert_eq!(
        log,
        [
            "POST /api/v2/tasks".to_string(),
            format!("PATCH /api/v2/tasks/{}", ids::HOMEPAGE_TASK),
            format!("DELETE /api/v2/tasks/{}", ids::COPY_TASK),
        ],
        "one request per changed row, in the order of the local ids"
    );
    // Push: the changed rows fetched by id, three writes, the written
    // rows read back; pull: the changed list and the activity feed.
    assert_eq!(second.requests(), 7, "{second:#?}");

    assert_eq!(
        store_title(&sim, ids::HOMEPAGE_TASK).as_deref(),
        Some("Local title")
    );
    assert!(store_title(&sim, ids::COPY_TASK).is_none());
    let created = db
        .ints("SELECT productive_id FROM productive_sync_ids WHERE local_id = -1")
        .await;
    assert_eq!(created.len(), 1);
    let new_id = created[0];
    assert!(new_id > 0);
    assert_eq!(
        store_title(&sim, new_id as u64).as_deref(),
        Some("Local task")
    );
    assert_eq!(
        local_title(&db, new_id).await.as_deref(),
        Some("Local task")
    );
    assert_eq!(
        db.ints("SELECT count(*) FROM tasks WHERE id = -1").await,
        [0]
    );
    assert_eq!(
        local_title(&db, ids::LOGIN_TASK as i64).await.as_deref(),
        Some("Remote title")
    );
    assert_eq!(pulled(&second).1, 1, "{second:?}");
    assert_eq!(
        db.ints("SELECT count(*) FROM _productive_sync_changes")
            .await,
        [0]
    );
    assert_eq!(
        db.ints("SELECT count(*) FROM tasks").await,
        [sim.store().read().unwrap().count("tasks") as i64]
    );

    // Third run: nothing left to do on either side.
    let third = sync(&sim, &db, ConflictPolicy::RemoteWins, false).await;
    assert!(!third.failed(), "{third:?}");
    assert_eq!(pushed(&third), (0, 0, 0));
    assert_eq!(pulled(&third), (0, 0, 0), "{third:?}");
    assert!(writes(&sim).is_empty());
}

#[tokio::test]
async fn sqlite_first_run_then_both_directions() {
    first_run_then_both_directions(TestDb::sqlite("sync-both")).await;
}

#[tokio::test]
async fn postgres_first_run_then_both_directions() {
    if let Some(db) = TestDb::postgres("sync_both").await {
        first_run_then_both_directions(db).await;
    }
}

/// A row renamed on both sides (the local change last when `local_last`),
/// synced with `policy`: the winner's title on both sides, the conflict
/// recorded, and nothing left for the next run.
async fn conflict_with(db: TestDb, policy: ConflictPolicy, local_last: bool) {
    let sim = start_sim(fixture::standard()).await;
    assert!(!sync(&sim, &db, policy, false).await.failed());
    let id = ids::HOMEPAGE_TASK;
    let local = format!("UPDATE tasks SET title = 'Local' WHERE id = {id}");
    if local_last {
        rename_remote(&sim, id, "Remote").await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        user_sql(&db, &local).await;
    } else {
        user_sql(&db, &local).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        rename_remote(&sim, id, "Remote").await;
    }
    take_requests(&sim);

    let report = sync(&sim, &db, policy, false).await;
    assert!(!report.failed(), "{report:?}");
    assert_eq!(report.table("tasks").unwrap().conflicts, 1, "{report:?}");
    let local_wins = match policy {
        ConflictPolicy::RemoteWins => false,
        ConflictPolicy::LocalWins => true,
        ConflictPolicy::NewestWins => local_last,
    };
    let expected = if local_wins { "Local" } else { "Remote" };
    assert_eq!(store_title(&sim, id).as_deref(), Some(expected));
    assert_eq!(local_title(&db, id as i64).await.as_deref(), Some(expected));
    let patches = writes(&sim);
    assert_eq!(patches.len(), usize::from(local_wins), "{patches:?}");

    let recorded = db
        .texts(&format!(
            "SELECT policy || ' ' || winner FROM productive_sync_conflicts WHERE row_id = {id}"
        ))
        .await;
    let winner = if local_wins { "target" } else { "productive" };
    assert_eq!(
        recorded,
        [Some(format!("{} {winner}", policy.name()))],
        "{report:?}"
    );
    let values = db
        .texts(&format!(
            "SELECT CAST(local_values AS TEXT) || ' ' || CAST(remote_values AS TEXT) \
             FROM productive_sync_conflicts WHERE row_id = {id}"
        ))
        .await;
    let values = values[0].clone().unwrap_or_default();
    assert!(
        values.contains("\"Local\"") && values.contains("\"Remote\""),
        "{values}"
    );

    // Settled: the next run finds nothing.
    let next = sync(&sim, &db, policy, false).await;
    assert_eq!(next.table("tasks").unwrap().conflicts, 0, "{next:?}");
    assert_eq!(pushed(&next), (0, 0, 0));
}

#[tokio::test]
async fn sqlite_conflict_remote_wins() {
    conflict_with(
        TestDb::sqlite("sync-remote-wins"),
        ConflictPolicy::RemoteWins,
        true,
    )
    .await;
}

#[tokio::test]
async fn sqlite_conflict_local_wins() {
    conflict_with(
        TestDb::sqlite("sync-local-wins"),
        ConflictPolicy::LocalWins,
        false,
    )
    .await;
}

#[tokio::test]
async fn sqlite_conflict_newest_wins() {
    conflict_with(
        TestDb::sqlite("sync-newest-local"),
        ConflictPolicy::NewestWins,
        true,
    )
    .await;
    conflict_with(
        TestDb::sqlite("sync-newest-remote"),
        ConflictPolicy::NewestWins,
        false,
    )
    .await;
}

#[tokio::test]
async fn postgres_conflict_policies() {
    for (name, policy, local_last) in [
        ("sync_remote_wins", ConflictPolicy::RemoteWins, true),
        ("sync_local_wins", ConflictPolicy::LocalWins, false),
        ("sync_newest_local", ConflictPolicy::NewestWins, true),
        ("sync_newest_remote", ConflictPolicy::NewestWins, false),
    ] {
        if let Some(db) = TestDb::postgres(name).await {
            conflict_with(db, policy, local_last).await;
        }
    }
}

async fn plan_changes_nothing(db: TestDb) {
    let sim = start_sim(fixture::standard()).await;
    assert!(
        !sync(&sim, &db, ConflictPolicy::RemoteWins, false)
            .await
            .failed()
    );
    user_sql(
        &db,
        &format!(
            "UPDATE tasks SET title = 'Local title' WHERE id = {};
             DELETE FROM tasks WHERE id = {};",
            ids::HOMEPAGE_TASK,
            ids::COPY_TASK
        ),
    )
    .await;
    rename_remote(&sim, ids::LOGIN_TASK, "Remote title").await;
    take_requests(&sim);

    let plan = sync(&sim, &db, ConflictPolicy::RemoteWins, true).await;
    assert!(!plan.failed(), "{plan:?}");
    assert_eq!(pushed(&plan), (0, 1, 1), "{plan:?}");
    assert_eq!(pulled(&plan).1, 1, "{plan:?}");
    assert!(writes(&sim).is_empty(), "a plan sends no writes");
    assert_eq!(
        store_title(&sim, ids::HOMEPAGE_TASK).as_deref(),
        Some("Design homepage")
    );
    assert!(store_title(&sim, ids::COPY_TASK).is_some());
    assert_eq!(
        local_title(&db, ids::LOGIN_TASK as i64).await.as_deref(),
        Some("Fix login bug")
    );
    assert_eq!(
        db.ints("SELECT count(*) FROM _productive_sync_changes")
            .await,
        [2]
    );
    let stored = db
        .texts(
            "SELECT side || ' ' || action || ' ' || row_id FROM productive_sync_plan \
             ORDER BY side, action, row_id",
        )
        .await;
    assert_eq!(
        stored,
        [
            Some(format!("productive delete {}", ids::COPY_TASK)),
            Some(format!("productive update {}", ids::HOMEPAGE_TASK)),
            Some(format!("target update {}", ids::LOGIN_TASK)),
        ]
    );
    assert!(plan.render().contains("productive_sync_plan"));

    // The real run does what the plan said.
    let run = sync(&sim, &db, ConflictPolicy::RemoteWins, false).await;
    assert_eq!(pushed(&run), (0, 1, 1), "{run:?}");
    assert_eq!(pulled(&run).1, 1, "{run:?}");
}

#[tokio::test]
async fn sqlite_plan_changes_nothing() {
    let db = TestDb::sqlite("sync-plan");
    plan_changes_nothing(db).await;
}

#[tokio::test]
async fn postgres_plan_changes_nothing() {
    if let Some(db) = TestDb::postgres("sync_plan").await {
        plan_changes_nothing(db).await;
    }
}

async fn refused_rows_stay_queued(db: TestDb) {
    let sim = start_sim(fixture::standard()).await;
    assert!(
        !sync(&sim, &db, ConflictPolicy::RemoteWins, false)
            .await
            .failed()
    );
    // A blank title passes local checks and the API refuses it; a missing
    // task list is refused before any request.
    user_sql(
        &db,
        &format!(
            "INSERT INTO tasks (id, title, project_id, task_list_id)
               VALUES (-1, ' ', {p}, {l});
             INSERT INTO tasks (id, title, project_id) VALUES (-2, 'No list', {p});",
            p = ids::WEBSITE,
            l = ids::SPRINT
        ),
    )
    .await;
    take_requests(&sim);

    let report = sync(&sim, &db, ConflictPolicy::RemoteWins, false).await;
    assert!(report.failed());
    assert_eq!(report.table("tasks").unwrap().refused, 2, "{report:?}");
    assert!(report.render().contains("productive_sync_refused"));
    assert_eq!(writes(&sim), ["POST /api/v2/tasks".to_string()]);
    let reasons = db
        .texts("SELECT reason FROM productive_sync_refused ORDER BY row_id")
        .await;
    let reasons: Vec<String> = reasons.into_iter().flatten().collect();
    assert!(reasons[0].contains("task_list_id"), "{reasons:?}");
    assert!(reasons[1].contains("422"), "{reasons:?}");
    assert_eq!(
        db.ints("SELECT count(*) FROM tasks WHERE id < 0").await,
        [2]
    );

    // Both fixed: both are created on the next run.
    user_sql(
        &db,
        &format!(
            "UPDATE tasks SET title = 'Fixed' WHERE id = -1;
             UPDATE tasks SET task_list_id = {} WHERE id = -2;",
            ids::SPRINT
        ),
    )
    .await;
    let retry = sync(&sim, &db, ConflictPolicy::RemoteWins, false).await;
    assert!(!retry.failed(), "{retry:?}");
    assert_eq!(pushed(&retry), (2, 0, 0));
    assert_eq!(
        db.ints("SELECT count(*) FROM productive_sync_refused")
            .await,
        [0]
    );
    assert_eq!(
        db.ints("SELECT count(*) FROM tasks WHERE id < 0").await,
        [0]
    );
    let titles = db
        .texts("SELECT title FROM tasks WHERE title IN ('Fixed', 'No list') ORDER BY title")
        .await;
    assert_eq!(titles.len(), 2);
}

#[tokio::test]
async fn sqlite_refused_rows_stay_queued() {
    refused_rows_stay_queued(TestDb::sqlite("sync-refused")).await;
}

#[tokio::test]
async fn postgres_refused_rows_stay_queued() {
    if let Some(db) = TestDb::postgres("sync_refused").await {
        refused_rows_stay_queued(db).await;
    }
}

#[tokio::test]
async fn a_post_with_unknown_outcome_is_held() {
    let db = TestDb::sqlite("sync-unknown");
    let sim = start_sim(fixture::standard()).await;
    assert!(
        !sync(&sim, &db, ConflictPolicy::RemoteWins, false)
            .await
            .failed()
    );
    user_sql(
        &db,
        &format!(
            "INSERT INTO tasks (id, title, project_id, task_list_id)
               VALUES (-1, 'Maybe', {}, {});",
            ids::WEBSITE,
            ids::SPRINT
        ),
    )
    .await;
    take_requests(&sim);
    sim.fail_next(1, FaultKind::Status(500));
    let report = sync(&sim, &db, ConflictPolicy::RemoteWins, false).await;
    assert!(report.failed());
    assert_eq!(writes(&sim), ["POST /api/v2/tasks".to_string()]);
    assert_eq!(
        db.ints("SELECT outcome_unknown FROM productive_sync_refused WHERE row_id = -1")
            .await,
        [1]
    );
    // Not sent again: it may exist.
    let again = sync(&sim, &db, ConflictPolicy::RemoteWins, false).await;
    assert!(again.failed());
    assert!(writes(&sim).is_empty());
    assert_eq!(
        db.ints("SELECT count(*) FROM tasks WHERE id = -1").await,
        [1]
    );
}

async fn a_change_during_a_run_is_kept(db: TestDb) {
    let sim = start_sim(fixture::standard()).await;
    assert!(
        !sync(&sim, &db, ConflictPolicy::RemoteWins, false)
            .await
            .failed()
    );
    let id = ids::HOMEPAGE_TASK;
    // Productive's change would be pulled into the row the user edits
    // while the run waits for the API.
    rename_remote(&sim, id, "Remote").await;
    sim.set_latency(Latency::new(300, 0));
    let run = {
        let (client, options) = (
            client_for(&sim),
            options(&db, ConflictPolicy::RemoteWins, false),
        );
        tokio::spawn(async move {
            productive_pg::transfer::sync::run(&client, &options, &Progress::hidden())
                .await
                .expect("the run starts")
        })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    user_sql(
        &db,
        &format!("UPDATE tasks SET title = 'Edited during the run' WHERE id = {id}"),
    )
    .await;
    let report = run.await.unwrap();
    assert!(!report.failed(), "{report:?}");
    assert_eq!(pushed(&report), (0, 0, 0));
    assert_eq!(
        local_title(&db, id as i64).await.as_deref(),
        Some("Edited during the run"),
        "the pull leaves a row with queued changes alone"
    );
    assert_eq!(
        db.ints("SELECT count(*) FROM _productive_sync_changes")
            .await,
        [1]
    );

    // Next run: both sides changed the row; local-wins sends the edit.
    sim.set_latency(Latency::new(0, 0));
    take_requests(&sim);
    let next = sync(&sim, &db, ConflictPolicy::LocalWins, false).await;
    assert_eq!(next.table("tasks").unwrap().conflicts, 1, "{next:?}");
    assert_eq!(
        store_title(&sim, id).as_deref(),
        Some("Edited during the run")
    );
    assert_eq!(writes(&sim), [format!("PATCH /api/v2/tasks/{id}")]);
}

#[tokio::test]
async fn sqlite_a_change_during_a_run_is_kept() {
    a_change_during_a_run_is_kept(TestDb::sqlite("sync-during")).await;
}

#[tokio::test]
async fn postgres_a_change_during_a_run_is_kept() {
    if let Some(db) = TestDb::postgres("sync_during").await {
        a_change_during_a_run_is_kept(db).await;
    }
}

#[tokio::test]
async fn tables_without_what_sync_needs_are_refused() {
    let db = TestDb::sqlite("sync-tables");
    let sim = start_sim(fixture::standard()).await;
    let mut opts = options(&db, ConflictPolicy::RemoteWins, false);
    opts.tables = Some(vec!["workflows".into()]);
    let err = productive_pg::transfer::sync::run(&client_for(&sim), &opts, &Progress::hidden())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot be synced"), "{err}");
    assert!(take_requests(&sim).is_empty());
}

/// The default tables (invoices, bookings, tasks): invoices show only
/// their creation by date, so their remote updates come from the activity
/// feed; local changes to each table reach Productive.
async fn default_tables_sync_both_ways(db: TestDb) {
    let sim = start_sim(fixture::standard()).await;
    api(
        &sim,
        Method::POST,
        "/invoices",
        Some(json!({"data": {
            "type": "invoices",
            "attributes": {"currency": "EUR", "invoiced_on": "2026-11-02", "subject": "First"},
            "relationships": {
                "company": {"data": {"type": "companies", "id": ids::ACME.to_string()}}
            }
        }})),
    )
    .await;
    let invoice: i64 = {
        let store = sim.store();
        let store = store.read().unwrap();
        store
            .all("invoices")
            .map(|r| r.id as i64)
            .max()
            .expect("an invoice")
    };
    let mut opts = options(&db, ConflictPolicy::RemoteWins, false);
    opts.tables = None;
    let run = |opts: SyncOptions| {
        let client = client_for(&sim);
        async move {
            productive_pg::transfer::sync::run(&client, &opts, &Progress::hidden())
                .await
                .expect("the run starts")
        }
    };
    let first = run(opts.clone()).await;
    assert!(!first.failed(), "{first:?}");
    for table in ["invoices", "bookings", "tasks"] {
        assert!(first.table(table).is_some(), "{table}: {first:?}");
    }
    assert_eq!(
        db.texts(&format!(
            "SELECT subject FROM invoices WHERE id = {invoice}"
        ))
        .await,
        [Some("First".to_string())]
    );

    // Remote: the invoice renamed. Local: a booking's note changed.
    api(
        &sim,
        Method::PATCH,
        &format!("/invoices/{invoice}"),
        Some(json!({"data": {"type": "invoices", "attributes": {"subject": "Remote"}}})),
    )
    .await;
    user_sql(
        &db,
        &format!(
            "UPDATE bookings SET note = 'Local note' WHERE id = {}",
            ids::WORK_BOOKING
        ),
    )
    .await;
    take_requests(&sim);
    let second = run(opts).await;
    assert!(!second.failed(), "{second:?}");
    assert_eq!(
        second.table("invoices").expect("invoices").pulled_updated,
        1
    );
    assert_eq!(
        second.table("bookings").expect("bookings").pushed_updated,
        1
    );
    assert_eq!(
        db.texts(&format!(
            "SELECT subject FROM invoices WHERE id = {invoice}"
        ))
        .await,
        [Some("Remote".to_string())]
    );
    let note = {
        let store = sim.store();
        let store = store.read().unwrap();
        store
            .get("bookings", ids::WORK_BOOKING)
            .and_then(|b| b.attributes.get("note").cloned())
    };
    assert_eq!(note, Some(Value::String("Local note".into())));
    assert_eq!(
        writes(&sim),
        [format!("PATCH /api/v2/bookings/{}", ids::WORK_BOOKING)]
    );
}

#[tokio::test]
async fn sqlite_default_tables_sync_both_ways() {
    default_tables_sync_both_ways(TestDb::sqlite("sync-default")).await;
}

#[tokio::test]
async fn postgres_default_tables_sync_both_ways() {
    if let Some(db) = TestDb::postgres("sync_default").await {
        default_tables_sync_both_ways(db).await;
    }
}
