//! Productive's actions as procedures (`CALL`) and as per-row functions,
//! against the simulator.

mod gateway_support;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::scalar::ScalarValue;
use gateway_support::*;
use productive_pg::sim::fixture::ids;
use productive_pg::write::WriteContext;
use productive_pg::write::procedures::{self, PROCEDURES};

/// Creates a record with an INSERT and returns the id the API assigned.
async fn create(env: &Env, sql: &str) -> i64 {
    env.query(sql).await;
    let outcome = WriteContext::of(&env.ctx).expect("context").take_outcome();
    let batch = outcome.returned.first().expect("a written record");
    batch.column(0).as_primitive::<Int64Type>().value(0)
}

fn text_of(batch: &RecordBatch, column: &str) -> Option<String> {
    let col = batch.column_by_name(column)?;
    let col = datafusion::arrow::compute::cast(col, &datafusion::arrow::datatypes::DataType::Utf8)
        .ok()?;
    let col = col.as_string::<i32>();
    (!col.is_null(0)).then(|| col.value(0).to_string())
}

async fn call(env: &Env, name: &str, args: Vec<ScalarValue>) -> RecordBatch {
    procedures::call(&env.ctx, name, &args)
        .await
        .unwrap_or_else(|e| panic!("CALL {name}: {e}"))
}

fn id(v: u64) -> ScalarValue {
    ScalarValue::Int64(Some(v as i64))
}

/// Archive/restore pairs: the record's `archived_at` is set, then cleared.
#[tokio::test]
async fn archive_and_restore_by_call() {
    let env = standard().await;
    let lost = create(
        &env,
        "INSERT INTO lost_reasons (name) VALUES ('Too pricey')",
    )
    .await;
    let deal_status = create(
        &env,
        "INSERT INTO deal_statuses (name, pipeline_id) VALUES ('Qualified', 1)",
    )
    .await;
    let service_type = create(&env, "INSERT INTO service_types (name) VALUES ('Design')").await;
    let subsidiary = create(&env, "INSERT INTO subsidiaries (name) VALUES ('Acme GmbH')").await;
    let board = create(&env, "INSERT INTO boards (name) VALUES ('Roadmap')").await;
    let cases: Vec<(&str, Option<&str>, u64)> = vec![
        ("ArchiveCompany", Some("RestoreCompany"), ids::ACME),
        ("ArchiveLostReason", None, lost as u64),
        ("ArchiveWorkflow", Some("RestoreWorkflow"), ids::WORKFLOW),
        ("ArchiveDealStatus", None, deal_status as u64),
        ("ArchiveEvent", None, ids::VACATION),
        ("ArchiveProject", Some("RestoreProject"), ids::WEBSITE),
        ("ArchiveServiceType", None, service_type as u64),
        ("ArchiveSubsidiary", None, subsidiary as u64),
        ("ArchiveTaskList", Some("RestoreTaskList"), ids::SPRINT),
        ("ArchiveBoards", Some("RestoreBoards"), board as u64),
    ];
    for (archive, restore, record) in cases {
        let batch = call(&env, archive, vec![id(record)]).await;
        assert_eq!(text_of(&batch, "id"), Some(record.to_string()), "{archive}");
        assert!(text_of(&batch, "archived_at").is_some(), "{archive}");
        if let Some(restore) = restore {
            // Names match case-insensitively.
            let batch = call(&env, &restore.to_ascii_lowercase(), vec![id(record)]).await;
            assert_eq!(text_of(&batch, "archived_at"), None, "{restore}");
        }
    }
}

#[tokio::test]
async fn approvals_by_call() {
    let env = standard().await;
    let batch = call(&env, "ApproveBooking", vec![id(ids::ABSENCE_BOOKING)]).await;
    assert_eq!(text_of(&batch, "approved").as_deref(), Some("true"));
    let batch = call(&env, "UnapproveBooking", vec![id(ids::ABSENCE_BOOKING)]).await;
    assert_eq!(text_of(&batch, "approved").as_deref(), Some("false"));
    let batch = call(&env, "ApproveExpense", vec![id(ids::TRAIN_EXPENSE)]).await;
    assert_eq!(text_of(&batch, "approved").as_deref(), Some("true"));
    let batch = call(&env, "UnapproveExpense", vec![id(ids::TRAIN_EXPENSE)]).await;
    assert_eq!(text_of(&batch, "approved").as_deref(), Some("false"));
}

#[tokio::test]
async fn delete_workflow_status_moves_its_tasks() {
    let env = standard().await;
    let batch = call(
        &env,
        "DeleteWorkflowStatus",
        vec![
            id(ids::TO_DO),
            ScalarValue::Utf8(Some("workflow_statuses".into())),
            id(ids::IN_PROGRESS),
        ],
    )
    .await;
    assert_eq!(text_of(&batch, "status").as_deref(), Some("deleted"));
    let status = env
        .column(&format!(
            "SELECT workflow_status_id FROM tasks WHERE id = {}",
            ids::HOMEPAGE_TASK
        ))
        .await;
    assert_eq!(status, vec![ids::IN_PROGRESS.to_string()]);

    let err = procedures::call(
        &env.ctx,
        "DeleteWorkflowStatus",
        &[
            id(ids::BLOCKED),
            ScalarValue::Utf8(Some("tasks".into())),
            id(ids::DONE),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "22023");
}

#[tokio::test]
async fn bad_calls_give_clear_errors() {
    let env = standard().await;
    let err = procedures::call(&env.ctx, "ArchiveProject", &[])
        .await
        .unwrap_err();
    assert_eq!(err.code, "42883");
    assert!(err.message.contains("1 argument"), "{}", err.message);
    let err = procedures::call(
        &env.ctx,
        "ArchiveProject",
        &[ScalarValue::Utf8(Some("abc".into()))],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "22P02");
    let err = procedures::call(&env.ctx, "ArchiveProject", &[id(999_999)])
        .await
        .unwrap_err();
    assert_eq!(err.code, "P0002");
    let err = procedures::call(&env.ctx, "NoSuchThing", &[])
        .await
        .unwrap_err();
    assert_eq!(err.code, "42883");
    // A booking without approval status cannot be approved.
    let err = procedures::call(&env.ctx, "ApproveBooking", &[id(ids::WORK_BOOKING)])
        .await
        .unwrap_err();
    assert_eq!(err.code, "P0002");
}

#[tokio::test]
async fn every_procedure_is_a_function_too() {
    let env = standard().await;
    for proc in PROCEDURES {
        let sql = format!(
            "EXPLAIN SELECT {}(1{}) ",
            proc.function,
            ", 1".repeat(proc.args.len() - 1)
        );
        env.take_requests();
        let plan = env.table(&sql).await;
        assert!(plan.contains(proc.function), "{plan}");
        assert!(
            env.take_requests().is_empty(),
            "EXPLAIN of {} sent requests",
            proc.function
        );
    }
}

#[tokio::test]
async fn functions_run_per_row() {
    let env = standard().await;
    let out = env
        .column(&format!(
            "SELECT archive_project(id) FROM projects WHERE id IN ({}, {}) ORDER BY id",
            ids::WEBSITE,
            ids::INTERNAL_TOOLS
        ))
        .await;
    assert_eq!(out.len(), 2);
    for json in &out {
        let v: serde_json::Value = serde_json::from_str(json).expect("json");
        assert!(v["archived_at"].is_string(), "{v}");
    }
    let archived = env
        .column(&format!(
            "SELECT id FROM projects WHERE archived_at IS NOT NULL AND id IN ({}, {})",
            ids::WEBSITE,
            ids::INTERNAL_TOOLS
        ))
        .await;
    assert_eq!(archived.len(), 2);
    let out = env
        .column(&format!(
            "SELECT approve_expense({}), unapprove_booking({})",
            ids::TRAIN_EXPENSE,
            ids::ABSENCE_BOOKING
        ))
        .await;
    assert!(out[0].contains("\"approved\":true"), "{out:?}");
}

#[tokio::test]
async fn read_only_sessions_refuse_writes_and_calls() {
    let sim = start_sim(productive_pg::sim::fixture::standard(), sim_options()).await;
    let client = client_for(&sim);
    let defaults = productive_pg::gateway::SessionDefaults {
        read_only: true,
        ..Default::default()
    };
    let ctx = productive_pg::gateway::new_session(client.clone(), &defaults);
    let env = Env { sim, ctx, client };
    env.take_requests();
    for sql in [
        "INSERT INTO companies (name) VALUES ('x')",
        "UPDATE companies SET name = 'x' WHERE id = 1",
        "DELETE FROM tasks WHERE id = 1",
        "SELECT archive_project(1)",
    ] {
        let err = env.try_query(sql).await.expect_err(sql);
        assert!(err.to_string().contains("--read-only"), "{sql}: {err}");
    }
    let err = procedures::call(&env.ctx, "ArchiveProject", &[id(1)])
        .await
        .unwrap_err();
    assert_eq!(err.code, "25006");
    assert!(env.take_requests().is_empty());
    assert_eq!(
        env.column("SELECT name FROM companies ORDER BY id LIMIT 1")
            .await
            .len(),
        1
    );
}
