//! Reads under API faults: they complete correctly after retries, or fail
//! with a clear SQLSTATE naming the cause; never a silently short result.

mod gateway_support;

use std::time::Duration;

use gateway_support::*;
use productive_pg::api::{ApiConfig, RetryPolicy};
use productive_pg::gateway::{SessionDefaults, new_session};
use productive_pg::sim::store::Store;
use productive_pg::sim::{FaultKind, Latency, Limit, RateLimits};

/// The SQLSTATE inside a DataFusion error, if it carries one of ours.
fn sqlstate(e: &datafusion::error::DataFusionError) -> String {
    let mut current: &dyn std::error::Error = e;
    loop {
        if let Some(s) = current.downcast_ref::<productive_pg::error::SqlError>() {
            return s.code.to_string();
        }
        match current.source() {
            Some(next) => current = next,
            None => return format!("no SQLSTATE in {e}"),
        }
    }
}

async fn env_with_retry(
    store: Store,
    options: productive_pg::sim::SimOptions,
    retry: RetryPolicy,
) -> Env {
    let sim = start_sim(store, options).await;
    let mut config: ApiConfig = client_for(&sim).config().clone();
    config.retry = retry;
    let client = productive_pg::api::ApiClient::new(config).unwrap();
    let ctx = new_session(client.clone(), &SessionDefaults::default());
    Env { sim, ctx, client }
}

#[tokio::test]
async fn a_429_storm_with_retry_after_completes() {
    let mut options = sim_options();
    options.limits = RateLimits {
        general: vec![Limit::new(2, Duration::from_secs(1))],
        reports: vec![],
    };
    let retry = RetryPolicy {
        max_attempts: 8,
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_secs(2),
    };
    let env = env_with_retry(many_tasks(1000), options, retry).await;
    assert_eq!(env.column("SELECT count(*) FROM tasks").await, ["1000"]);
    let reqs = env.take_requests();
    assert!(reqs.iter().any(|r| r.status == 429), "the storm happened");
    assert_eq!(reqs.iter().filter(|r| r.status == 200).count(), 5);
}

#[tokio::test]
async fn a_429_storm_without_retry_after_backs_off_and_completes() {
    let mut options = sim_options();
    options.limits = RateLimits {
        general: vec![Limit::new(2, Duration::from_secs(1))],
        reports: vec![],
    };
    options.send_retry_after = false;
    let retry = RetryPolicy {
        max_attempts: 10,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
    };
    let env = env_with_retry(many_tasks(600), options, retry).await;
    assert_eq!(env.column("SELECT count(*) FROM tasks").await, ["600"]);
    assert!(env.take_requests().iter().any(|r| r.status == 429));
}

#[tokio::test]
async fn a_429_that_never_ends_fails_with_an_upstream_error() {
    let env = env_with(many_tasks(10)).await;
    env.sim.fail_next(50, FaultKind::Status(429));
    let err = env.try_query("SELECT * FROM tasks").await.unwrap_err();
    assert_eq!(sqlstate(&err), "HV00N", "{err}");
    assert!(err.to_string().contains("rate limit"), "{err}");
}

#[tokio::test]
async fn server_error_bursts_are_retried() {
    let env = env_with(many_tasks(450)).await;
    for status in [500, 502, 503] {
        env.sim.fail_next(2, FaultKind::Status(status));
        assert_eq!(
            env.column("SELECT count(*) FROM tasks").await,
            ["450"],
            "after {status}s"
        );
    }
}

#[tokio::test]
async fn persistent_server_errors_fail_the_statement() {
    let env = env_with(many_tasks(450)).await;
    env.sim.fail_next(50, FaultKind::Status(503));
    let err = env.try_query("SELECT * FROM tasks").await.unwrap_err();
    assert_eq!(sqlstate(&err), "08006", "{err}");
    assert!(err.to_string().contains("503"), "{err}");
}

#[tokio::test]
async fn dropped_connections_and_broken_bodies_are_retried() {
    let env = env_with(many_tasks(450)).await;
    for fault in [
        FaultKind::DropConnection,
        FaultKind::MalformedJson,
        FaultKind::TruncatedJson,
    ] {
        env.sim.fail_next(1, fault);
        assert_eq!(
            env.column("SELECT count(*) FROM tasks").await,
            ["450"],
            "after {fault:?}"
        );
    }
}

#[tokio::test]
async fn answers_that_stay_unreadable_fail_with_hv00k() {
    let env = env_with(many_tasks(10)).await;
    env.sim.fail_next(50, FaultKind::MalformedJson);
    let err = env.try_query("SELECT * FROM tasks").await.unwrap_err();
    let code = sqlstate(&err);
    assert!(code == "HV00K" || code == "08006", "{code}: {err}");
}

#[tokio::test]
async fn timeouts_are_retried() {
    let sim = start_sim(many_tasks(10), sim_options()).await;
    let mut config: ApiConfig = client_for(&sim).config().clone();
    config.timeout = Duration::from_millis(300);
    let client = productive_pg::api::ApiClient::new(config).unwrap();
    let ctx = new_session(client.clone(), &SessionDefaults::default());
    let env = Env { sim, ctx, client };
    env.sim.set_latency(Latency::new(1000, 0));
    let slow = env.try_query("SELECT count(*) FROM tasks");
    // Drop the latency while the first attempts time out.
    let sim_ref = &env.sim;
    let (result, ()) = tokio::join!(slow, async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        sim_ref.set_latency(Latency::new(0, 0));
    });
    let batches = result.expect("completes after the timeout is retried");
    assert_eq!(batches[0].num_rows(), 1);
}

#[tokio::test]
async fn a_value_of_the_wrong_type_is_a_clear_error() {
    let mut f = productive_pg::sim::fixture::Fixture::new(9, "Odd");
    f.add(
        "tasks",
        77,
        serde_json::json!({ "title": "x", "due_date": 12345 }),
        &[],
    );
    let env = env_with(f.build()).await;
    let err = env
        .try_query("SELECT due_date FROM tasks")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "HV004", "{err}");
    assert!(
        err.to_string().contains("tasks.due_date (record 77)"),
        "{err}"
    );
}

#[tokio::test]
async fn a_list_that_changes_while_it_is_read_fails_instead_of_losing_rows() {
    let env = env_with(many_tasks(1000)).await;
    env.sim.set_latency(Latency::new(400, 0));
    let store = env.sim.store();
    let query = env.try_query("SELECT id FROM tasks");
    let (result, ()) = tokio::join!(query, async {
        // The simulator reads a list when the request arrives and answers
        // it 400 ms later: page 1 is read at once, pages 2-5 at ~400 ms.
        // Delete rows in between.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut s = store.write().unwrap_or_else(|p| p.into_inner());
        for i in 0..100 {
            s.remove("tasks", 10_000 + i);
        }
    });
    let err = result.expect_err("a shifted list must not pass as complete");
    assert!(
        err.to_string().contains("changed while it was read"),
        "{err}"
    );
    assert_eq!(sqlstate(&err), "HV000");
}
