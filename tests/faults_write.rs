//! Writes under API faults, against the simulator's fault injection.
//!
//! Every fault meets every kind of write (one-row and three-row INSERT,
//! UPDATE, DELETE, CALL) and the lookup that finds the rows to change. The
//! outcome is asserted exactly, in the statement's result and in the
//! simulator's store: a 429 is retried (nothing was applied), a 5xx is
//! reported without a retry (nothing was applied), a cut connection or a
//! timeout is reported as an unknown outcome and never repeated (the row
//! exists once or not at all, as the fault dictates), and a success whose
//! answer cannot be read is reported as applied.

mod gateway_support;

use std::time::Duration;

use datafusion::scalar::ScalarValue;
use gateway_support::*;
use productive_pg::api::{ApiClient, ApiConfig, RetryPolicy};
use productive_pg::gateway::{SessionDefaults, new_session};
use productive_pg::server::errors::{ServerError, to_error_fields};
use productive_pg::sim::fixture::{self, ids};
use productive_pg::sim::{FaultKind, Faults, Latency, Limit, RateLimits};
use productive_pg::write::procedures;

/// A failed statement as a client sees it.
#[derive(Debug)]
struct Failed {
    code: String,
    message: String,
    detail: Option<String>,
}

/// The writes of the matrix.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stmt {
    InsertOne,
    /// Three rows; the fault hits the second.
    InsertMany,
    Update,
    Delete,
    Call,
}

const ALL: [Stmt; 5] = [
    Stmt::InsertOne,
    Stmt::InsertMany,
    Stmt::Update,
    Stmt::Delete,
    Stmt::Call,
];

impl Stmt {
    fn method(self) -> &'static str {
        match self {
            Stmt::InsertOne | Stmt::InsertMany => "POST",
            Stmt::Update | Stmt::Call => "PATCH",
            Stmt::Delete => "DELETE",
        }
    }

    /// Rows the statement writes.
    fn rows(self) -> usize {
        match self {
            Stmt::InsertMany => 3,
            _ => 1,
        }
    }

    /// Writes of the statement that pass before the faulted one.
    fn skip(self) -> usize {
        match self {
            Stmt::InsertMany => 1,
            _ => 0,
        }
    }

    /// Whether the statement finds its row with a `GET` first.
    fn looks_up(self) -> bool {
        matches!(self, Stmt::Update | Stmt::Delete)
    }

    /// Whether the API answers the write with a body.
    fn answers_with_body(self) -> bool {
        !matches!(self, Stmt::Delete)
    }

    async fn run(self, env: &Env) -> Result<(), Failed> {
        let sql = match self {
            Stmt::InsertOne => format!(
                "INSERT INTO tasks (title, project_id, task_list_id) \
                 VALUES ('Fault one', {p}, {l})",
                p = ids::WEBSITE,
                l = ids::SPRINT
            ),
            Stmt::InsertMany => format!(
                "INSERT INTO tasks (title, project_id, task_list_id) VALUES \
                 ('Fault many 1', {p}, {l}), ('Fault many 2', {p}, {l}), \
                 ('Fault many 3', {p}, {l})",
                p = ids::WEBSITE,
                l = ids::SPRINT
            ),
            Stmt::Update => format!(
                "UPDATE tasks SET title = 'Fault update' WHERE id = {}",
                ids::HOMEPAGE_TASK
            ),
            Stmt::Delete => format!("DELETE FROM tasks WHERE id = {}", ids::COPY_TASK),
            Stmt::Call => {
                let args = [ScalarValue::Int64(Some(ids::WEBSITE as i64))];
                return procedures::call(&env.ctx, "ArchiveProject", &args)
                    .await
                    .map(|_| ())
                    .map_err(|e| Failed {
                        code: e.code.to_string(),
                        message: e.message,
                        detail: e.detail,
                    });
            }
        };
        match env.try_query(&sql).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let fields = to_error_fields(&ServerError::DataFusion(e));
                Err(Failed {
                    code: fields.code,
                    message: fields.message,
                    detail: fields.detail,
                })
            }
        }
    }

    /// How many of the statement's rows the simulator's store shows as
    /// written; panics when a row was written twice.
    fn applied(self, env: &Env) -> usize {
        let store = env.sim.store();
        let store = store.read().unwrap_or_else(|e| e.into_inner());
        let titled = |title: &str| {
            store
                .all("tasks")
                .filter(|r| r.attributes.get("title").and_then(|t| t.as_str()) == Some(title))
                .count()
        };
        match self {
            Stmt::InsertOne => {
                let n = titled("Fault one");
                assert!(n <= 1, "inserted {n} times");
                n
            }
            Stmt::InsertMany => (1..=3)
                .map(|i| {
                    let n = titled(&format!("Fault many {i}"));
                    assert!(n <= 1, "row {i} inserted {n} times");
                    n
                })
                .sum(),
            Stmt::Update => titled("Fault update"),
            Stmt::Delete => usize::from(store.get("tasks", ids::COPY_TASK).is_none()),
            Stmt::Call => {
                let project = store.get("projects", ids::WEBSITE).expect("project");
                let archived = project.attributes.get("archived_at");
                usize::from(archived.is_some_and(|a| !a.is_null()))
            }
        }
    }

    fn sent(self, env: &Env) -> usize {
        env.sim
            .requests()
            .iter()
            .filter(|r| r.method == self.method())
            .count()
    }
}

/// What a fault on the write must lead to.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Retried; the statement succeeds.
    Succeeds,
    /// Not retried, not applied, reported with this SQLSTATE.
    Refused(&'static str),
    /// Not retried, reported as unknown (08006); `applied` says whether
    /// the simulator did write it.
    Unknown { applied: bool },
    /// Applied, the answer unreadable (HV00K).
    Unreadable,
}

/// The faults of the matrix with their outcome on a write that answers
/// with a body.
fn matrix() -> Vec<(FaultKind, usize, Expect)> {
    vec![
        (FaultKind::Status(429), 2, Expect::Succeeds),
        (FaultKind::Status(500), 1, Expect::Refused("HV000")),
        (FaultKind::Status(502), 1, Expect::Refused("HV000")),
        (FaultKind::Status(503), 1, Expect::Refused("HV000")),
        (
            FaultKind::HangUp { handled: false },
            1,
            Expect::Unknown { applied: false },
        ),
        (
            FaultKind::HangUp { handled: true },
            1,
            Expect::Unknown { applied: true },
        ),
        (
            FaultKind::DropConnection,
            1,
            Expect::Unknown { applied: true },
        ),
        (FaultKind::MalformedJson, 1, Expect::Unreadable),
        (FaultKind::TruncatedJson, 1, Expect::Unreadable),
        (FaultKind::WrongType, 1, Expect::Unreadable),
    ]
}

fn expected(stmt: Stmt, fault: FaultKind, expect: Expect) -> Expect {
    let body_fault = matches!(
        fault,
        FaultKind::MalformedJson | FaultKind::TruncatedJson | FaultKind::WrongType
    );
    if body_fault && !stmt.answers_with_body() {
        // A 204 has no body to break.
        Expect::Succeeds
    } else {
        expect
    }
}

async fn fresh_env() -> Env {
    env_with(fixture::standard()).await
}

/// Checks one statement under one fault on its write, on a fresh store.
async fn check(stmt: Stmt, fault: FaultKind, times: usize, expect: Expect) {
    let env = fresh_env().await;
    env.sim
        .fail_method(stmt.method(), stmt.skip(), times, fault);
    let result = stmt.run(&env).await;
    let case = format!("{stmt:?} under {fault:?}: {result:?}");
    if let (Stmt::InsertMany, Err(failed)) = (stmt, &result) {
        assert!(failed.message.contains("stopped at row 2 of 3"), "{case}");
        assert!(
            failed.message.contains("1 of 3 rows were applied"),
            "{case}"
        );
    }
    let before = stmt.skip();
    match expected(stmt, fault, expect) {
        Expect::Succeeds => {
            assert!(result.is_ok(), "{case}");
            assert_eq!(stmt.applied(&env), stmt.rows(), "{case}");
            let retries = if matches!(fault, FaultKind::Status(429)) {
                times
            } else {
                0
            };
            assert_eq!(stmt.sent(&env), stmt.rows() + retries, "{case}");
        }
        Expect::Refused(code) => {
            let failed = result.expect_err(&case);
            assert_eq!(failed.code, code, "{case}");
            assert_eq!(stmt.applied(&env), before, "{case}");
            assert_eq!(stmt.sent(&env), before + 1, "not retried: {case}");
        }
        Expect::Unknown { applied } => {
            let failed = result.expect_err(&case);
            assert_eq!(failed.code, "08006", "{case}");
            assert!(failed.message.contains("is unknown"), "{case}");
            assert_eq!(stmt.applied(&env), before + usize::from(applied), "{case}");
            assert_eq!(stmt.sent(&env), before + 1, "not retried: {case}");
            let row = match stmt {
                Stmt::Call => format!("ArchiveProject of projects {} may", ids::WEBSITE),
                _ => format!(
                    "row {} of {} may have been applied",
                    before + 1,
                    stmt.rows()
                ),
            };
            let detail = failed.detail.unwrap_or_default();
            assert!(detail.contains(&row), "{case}");
        }
        Expect::Unreadable => {
            let failed = result.expect_err(&case);
            assert_eq!(failed.code, "HV00K", "{case}");
            assert!(failed.message.contains("was applied"), "{case}");
            assert_eq!(stmt.applied(&env), before + 1, "{case}");
            assert_eq!(stmt.sent(&env), before + 1, "not retried: {case}");
            let row = match stmt {
                Stmt::Call => format!("ArchiveProject of projects {} was", ids::WEBSITE),
                _ => format!("row {} of {} was applied", before + 1, stmt.rows()),
            };
            let detail = failed.detail.unwrap_or_default();
            assert!(detail.contains(&row), "{case}");
        }
    }
}

async fn matrix_for(stmt: Stmt) {
    for (fault, times, expect) in matrix() {
        check(stmt, fault, times, expect).await;
    }
}

#[tokio::test]
async fn insert_of_one_row_under_every_fault() {
    matrix_for(Stmt::InsertOne).await;
}

#[tokio::test]
async fn insert_of_three_rows_under_every_fault_on_the_second() {
    matrix_for(Stmt::InsertMany).await;
}

#[tokio::test]
async fn update_under_every_fault() {
    matrix_for(Stmt::Update).await;
}

#[tokio::test]
async fn delete_under_every_fault() {
    matrix_for(Stmt::Delete).await;
}

#[tokio::test]
async fn call_under_every_fault() {
    matrix_for(Stmt::Call).await;
}

/// The lookup is a read: every fault is retried and the write then made
/// exactly once.
#[tokio::test]
async fn faults_on_the_lookup_are_retried() {
    let faults = [
        FaultKind::Status(429),
        FaultKind::Status(500),
        FaultKind::Status(502),
        FaultKind::Status(503),
        FaultKind::HangUp { handled: false },
        FaultKind::HangUp { handled: true },
        FaultKind::DropConnection,
        FaultKind::MalformedJson,
        FaultKind::TruncatedJson,
        FaultKind::WrongType,
    ];
    for stmt in ALL.into_iter().filter(|s| s.looks_up()) {
        for fault in faults {
            let env = fresh_env().await;
            env.sim.fail_method("GET", 0, 2, fault);
            let result = stmt.run(&env).await;
            assert!(result.is_ok(), "{stmt:?} under {fault:?}: {result:?}");
            assert_eq!(stmt.applied(&env), 1, "{stmt:?} under {fault:?}");
            assert_eq!(stmt.sent(&env), 1, "{stmt:?} under {fault:?}");
        }
    }
}

/// A lookup that keeps failing fails the statement before any write.
#[tokio::test]
async fn a_lookup_that_keeps_failing_writes_nothing() {
    for stmt in ALL.into_iter().filter(|s| s.looks_up()) {
        let env = fresh_env().await;
        env.sim.fail_method("GET", 0, 20, FaultKind::Status(503));
        let failed = stmt.run(&env).await.expect_err("the lookup fails");
        assert_eq!(failed.code, "08006", "{stmt:?}: {failed:?}");
        assert_eq!(stmt.sent(&env), 0, "{stmt:?}");
        assert_eq!(stmt.applied(&env), 0, "{stmt:?}");
    }
}

/// A client with a short timeout and patient retries over a fresh store.
async fn env_with_client(tune: impl Fn(&mut ApiConfig)) -> Env {
    let sim = start_sim(fixture::standard(), sim_options()).await;
    let mut config = client_for(&sim).config().clone();
    tune(&mut config);
    let client = ApiClient::new(config).expect("client");
    let ctx = new_session(client.clone(), &SessionDefaults::default());
    Env { sim, ctx, client }
}

/// A write that times out before the API handled it is unknown to the
/// client, is not repeated, and was not applied.
#[tokio::test]
async fn a_timeout_before_the_write_is_handled_is_unknown_and_not_applied() {
    for stmt in ALL.into_iter().filter(|s| !s.looks_up()) {
        let env = env_with_client(|c| c.timeout = Duration::from_millis(300)).await;
        env.sim.set_latency(Latency::new(1000, 0));
        let failed = stmt.run(&env).await.expect_err("times out");
        assert_eq!(failed.code, "08006", "{stmt:?}: {failed:?}");
        assert!(failed.message.contains("timed out"), "{failed:?}");
        assert!(failed.message.contains("is unknown"), "{failed:?}");
        // Past the latency: a handler that was still running would have
        // written by now.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_eq!(stmt.sent(&env), 0, "the request was never handled");
        assert_eq!(stmt.applied(&env), 0, "{stmt:?}");
    }
}

/// A write handled by the API whose answer is too slow to arrive is
/// unknown to the client, is not repeated, and was applied once.
#[tokio::test]
async fn a_timeout_while_the_answer_arrives_is_unknown_and_applied_once() {
    for stmt in ALL.into_iter().filter(|s| s.answers_with_body()) {
        let env = env_with_client(|c| c.timeout = Duration::from_millis(300)).await;
        env.sim.set_faults(Faults {
            slow_body: Duration::from_secs(2),
            ..Faults::none()
        });
        env.sim
            .fail_method(stmt.method(), stmt.skip(), 1, FaultKind::SlowBody);
        let failed = stmt.run(&env).await.expect_err("times out");
        assert_eq!(failed.code, "08006", "{stmt:?}: {failed:?}");
        assert!(failed.message.contains("is unknown"), "{failed:?}");
        assert_eq!(stmt.sent(&env), stmt.skip() + 1, "{stmt:?}");
        assert_eq!(stmt.applied(&env), stmt.skip() + 1, "{stmt:?}");
    }
}

/// A real rate limit with `Retry-After`: every write waits and completes.
#[tokio::test]
async fn a_429_storm_with_retry_after_delays_every_write() {
    for stmt in ALL {
        let env = env_with_client(|c| {
            c.retry = RetryPolicy {
                max_attempts: 8,
                base_delay: Duration::from_millis(50),
                max_delay: Duration::from_secs(2),
            }
        })
        .await;
        env.sim.set_limits(RateLimits {
            general: vec![Limit::new(1, Duration::from_secs(1))],
            reports: vec![],
        });
        // Use up the window, so the statement's first request is limited.
        env.query(&format!(
            "SELECT id FROM tasks WHERE id = {}",
            ids::LOGIN_TASK
        ))
        .await;
        env.sim.clear_requests();
        stmt.run(&env).await.expect("completes after waiting");
        assert_eq!(stmt.applied(&env), stmt.rows(), "{stmt:?}");
        let requests = env.sim.requests();
        let limited: Vec<_> = requests.iter().filter(|r| r.status == 429).collect();
        assert!(!limited.is_empty(), "{stmt:?}: the storm happened");
        let done = requests
            .iter()
            .filter(|r| r.method == stmt.method() && r.status < 300)
            .count();
        assert_eq!(done, stmt.rows(), "{stmt:?}: each row written once");
    }
}
