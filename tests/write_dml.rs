//! INSERT, UPDATE and DELETE through a DataFusion session over the
//! simulator: request shapes, validation before any request, pushdown of
//! the rows to change, and partial multi-row failures.

mod gateway_support;

use gateway_support::*;
use productive_pg::server::errors::{ServerError, to_error_fields};
use productive_pg::sim::fixture::ids;
use productive_pg::write::WriteContext;

/// The SQLSTATE and message a client would see for a failed statement.
async fn fails(env: &Env, sql: &str) -> (String, String, Option<String>) {
    let err = env.try_query(sql).await.expect_err(sql);
    let fields = to_error_fields(&ServerError::DataFusion(err));
    (fields.code, fields.message, fields.detail)
}

fn writes(env: &Env) -> Vec<String> {
    env.take_requests()
        .into_iter()
        .map(|r| format!("{} {}", r.method, r.path.trim_start_matches("/api/v2")))
        .collect()
}

fn count(batches: &[datafusion::arrow::record_batch::RecordBatch]) -> u64 {
    use datafusion::arrow::array::{Array, UInt64Array};
    batches
        .iter()
        .filter_map(|b| b.column_by_name("count"))
        .map(|c| {
            let a = c.as_any().downcast_ref::<UInt64Array>().expect("u64 count");
            (0..a.len()).map(|i| a.value(i)).sum::<u64>()
        })
        .sum()
}

#[tokio::test]
async fn insert_posts_one_record_per_row() {
    let env = standard().await;
    let sql = format!(
        "INSERT INTO tasks (title, project_id, task_list_id, due_date) VALUES \
         ('First', {p}, {l}, DATE '2025-05-01'), ('Second', {p}, {l}, NULL)",
        p = ids::WEBSITE,
        l = ids::SPRINT
    );
    let batches = env.query(&sql).await;
    assert_eq!(count(&batches), 2);
    assert_eq!(writes(&env), vec!["POST /tasks", "POST /tasks"]);
    let titles = env
        .column(&format!(
            "SELECT title FROM tasks WHERE project_id = {} AND task_list_id = {} \
             AND id > {} ORDER BY title",
            ids::WEBSITE,
            ids::SPRINT,
            ids::LOGIN_TASK
        ))
        .await;
    assert_eq!(titles, vec!["First", "Second"]);
    let due = env
        .column("SELECT CAST(due_date AS TEXT) FROM tasks WHERE title = 'First'")
        .await;
    assert_eq!(due, vec!["2025-05-01"]);
}

#[tokio::test]
async fn insert_select_copies_rows() {
    let env = standard().await;
    let sql = format!(
        "INSERT INTO tasks (title, project_id, task_list_id) \
         SELECT title || ' (copy)', project_id, task_list_id FROM tasks WHERE id = {}",
        ids::HOMEPAGE_TASK
    );
    assert_eq!(count(&env.query(&sql).await), 1);
    let titles = env
        .column("SELECT title FROM tasks WHERE title = 'Design homepage (copy)'")
        .await;
    assert_eq!(titles.len(), 1);
}

#[tokio::test]
async fn update_finds_rows_through_pushdown_and_computes_per_row() {
    let env = standard().await;
    let before = env
        .column(&format!(
            "SELECT initial_estimate FROM tasks WHERE id = {}",
            ids::HOMEPAGE_TASK
        ))
        .await;
    env.take_requests();
    let sql = format!(
        "UPDATE tasks SET initial_estimate = initial_estimate + 30, title = title || '!' \
         WHERE id = {}",
        ids::HOMEPAGE_TASK
    );
    assert_eq!(count(&env.query(&sql).await), 1);
    let log = writes(&env);
    assert_eq!(
        log,
        vec![
            format!("GET /tasks/{}", ids::HOMEPAGE_TASK),
            format!("PATCH /tasks/{}", ids::HOMEPAGE_TASK)
        ]
    );
    let after = env
        .column(&format!(
            "SELECT initial_estimate FROM tasks WHERE id = {}",
            ids::HOMEPAGE_TASK
        ))
        .await;
    let before: i64 = before[0].parse().unwrap();
    assert_eq!(after, vec![(before + 30).to_string()]);
}

#[tokio::test]
async fn update_with_a_list_filter_sends_it_to_the_api() {
    let env = standard().await;
    let sql = format!(
        "UPDATE tasks SET private = true WHERE project_id = {}",
        ids::MOBILE_APP
    );
    let n = count(&env.query(&sql).await);
    let requests = env.take_requests();
    let list = &requests[0];
    assert_eq!(list.method, "GET");
    assert!(
        decoded_query(list).contains(&format!("filter[project_id]={}", ids::MOBILE_APP)),
        "{}",
        decoded_query(list)
    );
    let patches = requests.iter().filter(|r| r.method == "PATCH").count();
    assert_eq!(patches as u64, n);
}

#[tokio::test]
async fn delete_removes_the_matching_rows_only() {
    let env = standard().await;
    let sql = format!("DELETE FROM tasks WHERE id = {}", ids::LOGIN_TASK);
    assert_eq!(count(&env.query(&sql).await), 1);
    assert_eq!(
        writes(&env),
        vec![
            format!("GET /tasks/{}", ids::LOGIN_TASK),
            format!("DELETE /tasks/{}", ids::LOGIN_TASK)
        ]
    );
    let left = env
        .column(&format!(
            "SELECT id FROM tasks WHERE id = {}",
            ids::LOGIN_TASK
        ))
        .await;
    assert!(left.is_empty());
}

#[tokio::test]
async fn explain_of_a_write_sends_nothing() {
    let env = standard().await;
    env.take_requests();
    for sql in [
        format!(
            "EXPLAIN INSERT INTO tasks (title, project_id, task_list_id) VALUES ('x', {}, {})",
            ids::WEBSITE,
            ids::SPRINT
        ),
        "EXPLAIN UPDATE tasks SET title = 'y' WHERE id = 1".to_string(),
        "EXPLAIN DELETE FROM tasks WHERE id = 1".to_string(),
    ] {
        let plan = env.table(&sql).await;
        assert!(plan.contains("ProductiveWrite"), "{plan}");
    }
    assert!(env.take_requests().is_empty());
}

#[tokio::test]
async fn missing_required_fields_are_refused_before_any_request() {
    let env = standard().await;
    env.take_requests();
    let (code, message, _) = fails(
        &env,
        &format!(
            "INSERT INTO tasks (title, project_id) VALUES ('x', {})",
            ids::WEBSITE
        ),
    )
    .await;
    assert_eq!(code, "23502");
    assert!(message.contains("\"task_list_id\""), "{message}");
    assert!(env.take_requests().is_empty());
}

#[tokio::test]
async fn unknown_and_read_only_columns_are_refused() {
    let env = standard().await;
    env.take_requests();
    let (code, _, _) = fails(&env, "UPDATE tasks SET no_such_column = 1 WHERE id = 1").await;
    assert_eq!(code, "42703");
    let (code, _, _) = fails(&env, "INSERT INTO tasks (nope) VALUES (1)").await;
    assert_eq!(code, "42703");
    let (code, message, _) = fails(&env, "UPDATE tasks SET closed = true WHERE id = 1").await;
    assert_eq!(code, "0A000");
    assert!(message.contains("\"closed\""), "{message}");
    let (code, message, _) = fails(
        &env,
        &format!(
            "INSERT INTO tasks (title, project_id, task_list_id, created_at) \
             VALUES ('x', {}, {}, now())",
            ids::WEBSITE,
            ids::SPRINT
        ),
    )
    .await;
    assert_eq!(code, "0A000");
    assert!(message.contains("created_at"), "{message}");
    let (code, _, _) = fails(
        &env,
        &format!(
            "INSERT INTO tasks (id, title, project_id, task_list_id) VALUES (9, 'x', {}, {})",
            ids::WEBSITE,
            ids::SPRINT
        ),
    )
    .await;
    assert_eq!(code, "0A000");
    assert!(env.take_requests().is_empty());
}

#[tokio::test]
async fn type_errors_are_class_22() {
    let env = standard().await;
    env.take_requests();
    let (code, _, _) = fails(
        &env,
        &format!(
            "INSERT INTO tasks (title, project_id, task_list_id, due_date) \
             VALUES ('x', {}, {}, 'not a date')",
            ids::WEBSITE,
            ids::SPRINT
        ),
    )
    .await;
    assert!(code.starts_with("22"), "{code}");
    let (code, _, _) = fails(
        &env,
        &format!(
            "UPDATE tasks SET custom_fields = '{{broken' WHERE id = {}",
            ids::HOMEPAGE_TASK
        ),
    )
    .await;
    assert_eq!(code, "22P02");
    let requests = env.take_requests();
    assert!(requests.iter().all(|r| r.method == "GET"), "{requests:?}");
}

#[tokio::test]
async fn pairs_must_be_given_together() {
    let env = standard().await;
    env.take_requests();
    let (code, message, _) = fails(
        &env,
        &format!(
            "UPDATE bookings SET bookable_type = 'event' WHERE id = {}",
            ids::WORK_BOOKING
        ),
    )
    .await;
    assert_eq!(code, "23514");
    assert!(
        message.contains("bookable_type") && message.contains("bookable_id"),
        "{message}"
    );
    let (code, _, _) = fails(
        &env,
        &format!(
            "INSERT INTO bookings (person_id, started_on, ended_on, bookable_id, time) \
             VALUES ({}, DATE '2025-06-02', DATE '2025-06-03', {}, 240)",
            ids::ANN,
            ids::DESIGN_SERVICE
        ),
    )
    .await;
    assert_eq!(code, "23514");
    assert!(env.take_requests().iter().all(|r| r.method == "GET"));
}

#[tokio::test]
async fn a_pair_becomes_the_right_relationship() {
    let env = standard().await;
    let sql = format!(
        "UPDATE bookings SET bookable_type = 'event', bookable_id = {} WHERE id = {}",
        ids::VACATION,
        ids::WORK_BOOKING
    );
    assert_eq!(count(&env.query(&sql).await), 1);
    let row = env
        .table(&format!(
            "SELECT bookable_type, bookable_id, event_id, service_id FROM bookings WHERE id = {}",
            ids::WORK_BOOKING
        ))
        .await;
    assert!(
        row.contains(&format!("| event         | {}", ids::VACATION)),
        "{row}"
    );
}

#[tokio::test]
async fn unfiltered_writes_on_many_rows_need_a_setting() {
    let env = standard().await;
    env.query("SET productive.unfiltered_write_limit = 1").await;
    env.take_requests();
    let (code, message, _) = fails(&env, "UPDATE tasks SET private = false").await;
    assert_eq!(code, "0A000");
    assert!(message.contains("without WHERE"), "{message}");
    assert!(env.take_requests().iter().all(|r| r.method == "GET"));
    env.query("SET productive.unfiltered_write_limit = 0").await;
    let n = count(&env.query("UPDATE tasks SET private = false").await);
    assert!(n > 1);
}

#[tokio::test]
async fn a_failing_row_reports_the_rows_applied_before_it() {
    // A simulator that refuses a comment without parent; the gateway lets
    // it through, so the second row fails at the API after the first row.
    let mut options = sim_options();
    options.write_rules.comments_need_parent = true;
    let env = env_with_options(productive_pg::sim::fixture::standard(), options).await;
    let sql = format!(
        "INSERT INTO comments (body, task_id) VALUES ('<p>one</p>', {t}), ('<p>two</p>', NULL), \
         ('<p>three</p>', {t})",
        t = ids::HOMEPAGE_TASK
    );
    let (code, message, detail) = fails(&env, &sql).await;
    assert!(code.starts_with("23"), "{code}");
    assert!(message.contains("row 2 of 3"), "{message}");
    assert!(message.contains("1 of 3 rows were applied"), "{message}");
    let posts: Vec<_> = env
        .take_requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 2, "the third row is not sent");
    let ids = env
        .column("SELECT id FROM comments WHERE body = '<p>one</p>'")
        .await;
    assert_eq!(ids.len(), 1);
    let detail = detail.expect("detail");
    assert!(
        detail.contains(&format!("applied ids: {}", ids[0])),
        "{detail}"
    );
}

#[tokio::test]
async fn a_comment_without_parent_raises_a_notice() {
    let mut options = sim_options();
    options.write_rules.comments_need_parent = false;
    let sim = start_sim(productive_pg::sim::fixture::standard(), options).await;
    let client = client_for(&sim);
    let ctx = productive_pg::gateway::new_session(client.clone(), &Default::default());
    let env = Env { sim, ctx, client };
    env.query("INSERT INTO comments (body) VALUES ('<p>alone</p>')")
        .await;
    let outcome = WriteContext::of(&env.ctx).expect("context").take_outcome();
    assert_eq!(outcome.notices.len(), 1, "{:?}", outcome.notices);
    assert!(outcome.notices[0].contains("has no parent"));
    let listed = env
        .column("SELECT id FROM comments WHERE body = '<p>alone</p>'")
        .await;
    assert!(listed.is_empty(), "the API does not list it");

    env.query(&format!(
        "INSERT INTO comments (body, task_id) VALUES ('<p>child</p>', {})",
        ids::HOMEPAGE_TASK
    ))
    .await;
    let outcome = WriteContext::of(&env.ctx).expect("context").take_outcome();
    assert!(outcome.notices.is_empty());
    let listed = env
        .column(&format!(
            "SELECT body FROM comments WHERE task_id = {}",
            ids::HOMEPAGE_TASK
        ))
        .await;
    assert!(listed.contains(&"<p>child</p>".to_string()), "{listed:?}");
}

#[tokio::test]
async fn custom_fields_are_written_by_name_with_option_labels() {
    let env = standard().await;
    env.query("SET productive.use_custom_fields = true").await;
    let sql = format!(
        "UPDATE tasks SET priority = 'Low' WHERE id = {}",
        ids::HOMEPAGE_TASK
    );
    assert_eq!(count(&env.query(&sql).await), 1);
    let value = env
        .column(&format!(
            "SELECT priority FROM tasks WHERE id = {}",
            ids::HOMEPAGE_TASK
        ))
        .await;
    assert_eq!(value, vec!["Low"]);
    let raw = env
        .column(&format!(
            "SELECT custom_fields FROM tasks WHERE id = {}",
            ids::HOMEPAGE_TASK
        ))
        .await;
    assert!(raw[0].contains(&format!("\"{}\"", ids::LOW)), "{raw:?}");

    // Multiselect: labels become an array of option ids; other fields of
    // the object are kept (read, merge, write).
    let sql = format!(
        "UPDATE projects SET labels = 'Red' WHERE id = {}",
        ids::INTERNAL_TOOLS
    );
    assert_eq!(count(&env.query(&sql).await), 1);
    let value = env
        .column(&format!(
            "SELECT labels FROM projects WHERE id = {}",
            ids::INTERNAL_TOOLS
        ))
        .await;
    assert_eq!(value, vec!["Red"]);

    let (code, _, detail) = fails(
        &env,
        &format!(
            "UPDATE tasks SET priority = 'Urgent' WHERE id = {}",
            ids::HOMEPAGE_TASK
        ),
    )
    .await;
    assert_eq!(code, "22023");
    assert!(detail.unwrap_or_default().contains("High"));

    let sql = format!(
        "INSERT INTO tasks (title, project_id, task_list_id, priority) \
         VALUES ('cf', {}, {}, 'High')",
        ids::WEBSITE,
        ids::SPRINT
    );
    assert_eq!(count(&env.query(&sql).await), 1);
    let value = env
        .column("SELECT priority FROM tasks WHERE title = 'cf'")
        .await;
    assert_eq!(value, vec!["High"]);
}

#[tokio::test]
async fn time_entries_take_inserts_updates_and_deletes() {
    let env = standard().await;
    let sql = format!(
        "INSERT INTO time_entries (person_id, service_id, date, time) \
         VALUES ({}, {}, DATE '2025-06-02', 90)",
        ids::ANN,
        ids::DESIGN_SERVICE
    );
    assert_eq!(count(&env.query(&sql).await), 1);
    let outcome = WriteContext::of(&env.ctx).expect("context").take_outcome();
    let batch = &outcome.returned[0];
    let id = datafusion::arrow::compute::cast(
        batch.column(0),
        &datafusion::arrow::datatypes::DataType::Utf8,
    )
    .unwrap();
    let id = id
        .as_any()
        .downcast_ref::<datafusion::arrow::array::StringArray>()
        .unwrap()
        .value(0)
        .to_string();
    let sql = format!("UPDATE time_entries SET time = time * 2 WHERE id = {id}");
    assert_eq!(count(&env.query(&sql).await), 1);
    let time = env
        .column(&format!("SELECT time FROM time_entries WHERE id = {id}"))
        .await;
    assert_eq!(time, vec!["180"]);
    let sql = format!("DELETE FROM time_entries WHERE id = {id}");
    assert_eq!(count(&env.query(&sql).await), 1);
}
