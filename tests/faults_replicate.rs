//! `replicate` into SQLite under API faults: a run either completes
//! correctly after retries, or fails without moving the watermark past rows
//! it did not write; the next run completes with no row lost or doubled.

mod replicate_support;

use std::collections::BTreeSet;

use productive_pg::sim::fixture::{self, ids};
use productive_pg::sim::rules::now_timestamp;
use productive_pg::sim::{FaultKind, SimServer};
use serde_json::Value;

use replicate_support::*;

/// Every fault a page can meet.
const FAULTS: [FaultKind; 8] = [
    FaultKind::Status(429),
    FaultKind::Status(500),
    FaultKind::Status(502),
    FaultKind::Status(503),
    FaultKind::DropConnection,
    FaultKind::HangUp { handled: true },
    FaultKind::MalformedJson,
    FaultKind::TruncatedJson,
];

/// A simulator with two and a half pages of tasks.
async fn sim_with_tasks() -> SimServer {
    let sim = start_sim(fixture::standard()).await;
    {
        let store = sim.store();
        let mut store = store.write().unwrap_or_else(|e| e.into_inner());
        for _ in 0..450 {
            add_task(&mut store, ids::HOMEPAGE_TASK);
        }
    }
    sim
}

fn add_task(store: &mut productive_pg::sim::store::Store, from: u64) -> u64 {
    let mut task = store.get("tasks", from).expect("task").clone();
    task.id = store.allocate_id();
    let at = Value::String(now_timestamp());
    task.attributes.insert("created_at".into(), at.clone());
    task.attributes.insert("updated_at".into(), at);
    let id = task.id;
    store.put("tasks", task);
    id
}

fn api_ids(sim: &SimServer) -> BTreeSet<i64> {
    let store = sim.store();
    let store = store.read().unwrap_or_else(|e| e.into_inner());
    store.all("tasks").map(|r| r.id as i64).collect()
}

/// The replica holds exactly the API's tasks, each once.
async fn assert_same_tasks(db: &TestDb, sim: &SimServer, case: &str) {
    let rows = db.ints("SELECT id FROM tasks").await;
    let stored: BTreeSet<i64> = rows.iter().copied().collect();
    assert_eq!(rows.len(), stored.len(), "{case}: a row is doubled");
    assert_eq!(stored, api_ids(sim), "{case}");
}

async fn watermark(db: &TestDb) -> Vec<Option<String>> {
    db.texts("SELECT watermark FROM _productive_replication_state WHERE table_name = 'tasks'")
        .await
}

#[tokio::test]
async fn a_full_copy_completes_through_passing_faults() {
    for (i, fault) in FAULTS.into_iter().enumerate() {
        let sim = sim_with_tasks().await;
        let db = TestDb::sqlite(&format!("faults-pass-{i}"));
        let client = client_paging(&sim, 1);
        // The second page fails on all but its last attempt.
        sim.fail_next(1, FaultKind::SlowBody);
        sim.fail_next(ATTEMPTS - 1, fault);
        let report = replicate(&client, &db.options(&["tasks"])).await;
        let case = format!("{fault:?}");
        assert!(!report.failed(), "{case}: {report:?}");
        assert_same_tasks(&db, &sim, &case).await;
        assert_eq!(
            watermark(&db).await.len(),
            1,
            "{case}: the copy is recorded"
        );
    }
}

#[tokio::test]
async fn a_full_copy_that_fails_leaves_no_watermark_and_the_rerun_completes() {
    for (i, fault) in FAULTS.into_iter().enumerate() {
        let sim = sim_with_tasks().await;
        let db = TestDb::sqlite(&format!("faults-fail-{i}"));
        let client = client_paging(&sim, 1);
        let options = db.options(&["tasks"]);
        sim.fail_next(1, FaultKind::SlowBody);
        sim.fail_next(ATTEMPTS, fault);
        let first = replicate(&client, &options).await;
        let case = format!("{fault:?}");
        assert!(first.failed(), "{case}: {first:?}");
        assert!(first.table("tasks").unwrap().error.is_some(), "{case}");
        assert_eq!(
            db.ints("SELECT count(*) FROM tasks").await,
            [200],
            "{case}: whole pages only"
        );
        assert_eq!(watermark(&db).await, Vec::<Option<String>>::new(), "{case}");

        let second = replicate(&client, &options).await;
        assert!(!second.failed(), "{case}: {second:?}");
        assert_same_tasks(&db, &sim, &case).await;
    }
}

#[tokio::test]
async fn an_incremental_run_that_fails_keeps_its_watermark_and_the_rerun_catches_up() {
    for (i, fault) in FAULTS.into_iter().enumerate() {
        let sim = sim_with_tasks().await;
        let db = TestDb::sqlite(&format!("faults-incr-{i}"));
        let client = client_paging(&sim, 1);
        let options = db.options(&["tasks"]);
        let first = replicate(&client, &options).await;
        assert!(!first.failed(), "{first:?}");
        let before = watermark(&db).await;

        // Changes on the API side, then the first request of the next run
        // fails on every attempt.
        let (renamed, added) = {
            let store = sim.store();
            let mut store = store.write().unwrap_or_else(|e| e.into_inner());
            let added = add_task(&mut store, ids::LAUNCH_TASK);
            let task = store.get_mut("tasks", ids::LOGIN_TASK).expect("task");
            task.attributes
                .insert("title".into(), Value::String("Renamed".into()));
            task.attributes
                .insert("updated_at".into(), Value::String(now_timestamp()));
            (ids::LOGIN_TASK, added)
        };
        sim.fail_next(ATTEMPTS, fault);
        let case = format!("{fault:?}");
        let failed = replicate(&client, &options).await;
        assert!(failed.failed(), "{case}: {failed:?}");
        // The watermark moves only past rows written: it stays when the
        // tasks failed; when only the activity feed failed, the tasks were
        // caught up and the feed is read again from its own watermark.
        let tasks_failed = failed.table("tasks").is_none_or(|t| t.error.is_some());
        if tasks_failed {
            assert_eq!(
                watermark(&db).await,
                before,
                "{case}: the watermark stays: {failed:?}"
            );
        } else {
            assert!(
                failed
                    .table("(activity feed)")
                    .is_some_and(|t| t.error.is_some()),
                "{case}: {failed:?}"
            );
        }

        let rerun = replicate(&client, &options).await;
        assert!(!rerun.failed(), "{case}: {rerun:?}");
        assert_eq!(rerun.table("tasks").unwrap().mode, "incremental", "{case}");
        assert_same_tasks(&db, &sim, &case).await;
        assert_eq!(
            db.texts(&format!("SELECT title FROM tasks WHERE id = {renamed}"))
                .await,
            [Some("Renamed".to_string())],
            "{case}"
        );
        assert_eq!(
            db.ints(&format!("SELECT count(*) FROM tasks WHERE id = {added}"))
                .await,
            [1],
            "{case}"
        );
    }
}
