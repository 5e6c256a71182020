//! The simulator's test hooks: rate limits, the request log, injected
//! faults, latency, the shared store, shutdown and large-table listing.

mod sim_support;

use std::time::{Duration, Instant};

use productive_pg::sim::fixture::{self, Fixture, ids};
use productive_pg::sim::{FaultKind, Faults, Latency, RateLimits, SimOptions};
use reqwest::Method;
use serde_json::json;
use sim_support::{Sim, TOKEN, start_standard, start_with, test_options};

async fn raw_get(sim: &Sim, path: &str) -> reqwest::Response {
    sim.request(Method::GET, path)
        .send()
        .await
        .expect("the simulator answers")
}

#[tokio::test]
async fn over_the_limit_answers_429_with_retry_after() {
    let options = SimOptions {
        limits: RateLimits::per_window(3, Duration::from_secs(60)),
        ..test_options()
    };
    let sim = start_with(fixture::standard(), options).await;
    for _ in 0..3 {
        assert_eq!(sim.get("/tasks").await.status, 200);
    }
    let reply = sim.get("/tasks").await;
    assert_eq!(reply.status, 429);
    let retry: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((59..=60).contains(&retry), "{retry}");
    assert_eq!(
        reply.body["errors"][0],
        json!({ "status": "429", "code": "rate_limited", "title": "Too Many Requests",
                "detail": "Rate limit exceeded, retry later", "meta": {}, "source": {} })
    );
    assert_eq!(
        reply.header("content-type"),
        Some("application/vnd.api+json; charset=utf-8")
    );

    // The quota is per token: another token is judged on its own (and
    // refused for being the wrong token, not for the rate).
    let other = sim
        .send(
            sim.client
                .get(sim.url("/tasks"))
                .header("X-Auth-Token", "other"),
        )
        .await;
    assert_eq!(other.status, 401);

    // Lifting the limits at runtime lets requests through again.
    sim.server.set_limits(RateLimits::disabled());
    assert_eq!(sim.get("/tasks").await.status, 200);
}

#[tokio::test]
async fn retry_after_can_be_switched_off() {
    let options = SimOptions {
        limits: RateLimits::per_window(1, Duration::from_secs(60)),
        send_retry_after: false,
        ..test_options()
    };
    let sim = start_with(fixture::standard(), options).await;
    assert_eq!(sim.get("/tasks").await.status, 200);
    let reply = sim.get("/tasks").await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.header("retry-after"), None);
}

#[tokio::test]
async fn the_default_options_enforce_the_real_limits() {
    let options = SimOptions {
        token: TOKEN.to_string(),
        ..SimOptions::default()
    };
    assert_eq!(options.limits, RateLimits::productive());
    let sim = start_with(fixture::standard(), options).await;
    let mut statuses = Vec::new();
    for _ in 0..101 {
        statuses.push(sim.get("/workflows").await.status);
    }
    assert!(statuses[..100].iter().all(|s| *s == 200));
    assert_eq!(statuses[100], 429);
}

#[tokio::test]
async fn the_request_log_records_each_call() {
    let sim = start_standard().await;
    sim.get("/tasks?filter[project_id]=301&page[size]=2").await;
    sim.get("/tasks/999999").await;
    sim.write(Method::POST, "/activities", json!({})).await;
    let log = sim.server.requests();
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].method, "GET");
    assert_eq!(log[0].path, "/api/v2/tasks");
    assert_eq!(
        log[0].query.as_deref(),
        Some("filter[project_id]=301&page[size]=2")
    );
    assert_eq!(log[0].status, 200);
    assert_eq!((log[1].status, log[1].query.as_deref()), (404, None));
    assert_eq!((log[2].method.as_str(), log[2].status), ("POST", 405));
    assert!(log[0].at <= log[2].at);

    sim.server.clear_requests();
    assert!(sim.server.requests().is_empty());
    sim.get("/tasks").await;
    assert_eq!(sim.server.requests().len(), 1);
}

#[tokio::test]
async fn queued_status_faults_answer_before_handling() {
    let sim = start_standard().await;
    sim.server.fail_next(1, FaultKind::Status(503));
    sim.server.fail_next(1, FaultKind::Status(500));
    let first = raw_get(&sim, "/tasks").await;
    assert_eq!(first.status(), 503);
    assert!(first.text().await.unwrap().contains("503"));
    let second = sim.get("/tasks").await;
    assert_eq!(second.status, 500);
    assert_eq!(second.body["errors"][0]["status"], "500");
    assert_eq!(sim.get("/tasks").await.status, 200);

    // A status fault on a write means nothing was written.
    sim.server.fail_next(1, FaultKind::Status(502));
    let reply = raw_get(&sim, "/tasks").await;
    assert_eq!(reply.status(), 502);
    sim.server.fail_next(1, FaultKind::Status(500));
    let created = sim
        .write(
            Method::POST,
            "/companies",
            json!({ "data": { "attributes": { "name": "Ghost" } } }),
        )
        .await;
    assert_eq!(created.status, 500);
    assert_eq!(sim.list_ids("/companies").await.len(), 2);
    let statuses: Vec<u16> = sim.server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![503, 500, 200, 502, 500, 200]);
}

#[tokio::test]
async fn a_dropped_connection_breaks_the_body() {
    let sim = start_standard().await;
    sim.server.fail_next(1, FaultKind::DropConnection);
    let response = raw_get(&sim, "/tasks").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.bytes().await.is_err(),
        "the body must not complete"
    );
    assert_eq!(sim.get("/tasks").await.status, 200);
}

#[tokio::test]
async fn malformed_and_truncated_bodies_do_not_parse() {
    let sim = start_standard().await;
    let whole = raw_get(&sim, "/tasks").await.bytes().await.unwrap();

    sim.server.fail_next(1, FaultKind::MalformedJson);
    let malformed = raw_get(&sim, "/tasks").await;
    assert_eq!(malformed.status(), 200);
    let bytes = malformed.bytes().await.unwrap();
    assert_eq!(bytes.len(), whole.len() + 1);
    assert!(serde_json::from_slice::<serde_json::Value>(&bytes).is_err());

    sim.server.fail_next(1, FaultKind::TruncatedJson);
    let truncated = raw_get(&sim, "/tasks").await;
    assert_eq!(truncated.content_length(), Some((whole.len() / 2) as u64));
    let bytes = truncated.bytes().await.unwrap();
    assert_eq!(&bytes[..], &whole[..whole.len() / 2]);
    assert!(serde_json::from_slice::<serde_json::Value>(&bytes).is_err());
}

#[tokio::test]
async fn a_slow_body_arrives_whole_but_late() {
    let sim = start_standard().await;
    sim.server.set_faults(Faults {
        slow_body: Duration::from_millis(300),
        ..Faults::none()
    });
    sim.server.fail_next(1, FaultKind::SlowBody);
    let started = Instant::now();
    let reply = sim.get("/tasks").await;
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.ids().len(), 4);
}

#[tokio::test]
async fn random_faults_follow_the_seed() {
    let faults = Faults {
        server_error_rate: 0.5,
        ..Faults::none()
    };
    let run = |seed: u64| async move {
        let options = SimOptions {
            faults,
            seed,
            ..test_options()
        };
        let sim = start_with(fixture::standard(), options).await;
        let mut statuses = Vec::new();
        for _ in 0..20 {
            statuses.push(raw_get(&sim, "/workflows").await.status().as_u16());
        }
        statuses
    };
    let first = run(42).await;
    assert_eq!(first, run(42).await);
    assert!(first.contains(&200));
    assert!(first.iter().any(|s| [500, 502, 503].contains(s)));

    // Settable at runtime: every request fails, then none.
    let sim = start_standard().await;
    sim.server.set_faults(Faults {
        server_error_rate: 1.0,
        ..Faults::none()
    });
    assert!(raw_get(&sim, "/workflows").await.status().is_server_error());
    sim.server.set_faults(Faults::none());
    assert_eq!(raw_get(&sim, "/workflows").await.status(), 200);
}

#[tokio::test]
async fn latency_delays_each_request() {
    let options = SimOptions {
        latency: Latency::new(120, 0),
        ..test_options()
    };
    let sim = start_with(fixture::standard(), options).await;
    let started = Instant::now();
    assert_eq!(sim.get("/workflows").await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(120));

    sim.server.set_latency(Latency::new(0, 0));
    let started = Instant::now();
    sim.get("/workflows").await;
    assert!(started.elapsed() < Duration::from_millis(120));
}

#[tokio::test]
async fn plain_values_build_options() {
    let options = SimOptions::from_values("abc", Some(9), 5, 3, false);
    assert_eq!(options.token, "abc");
    assert_eq!(options.organization_id, Some(9));
    assert_eq!(options.latency, Latency::new(5, 0));
    assert_eq!(options.seed, 3);
    assert_eq!(options.limits, RateLimits::disabled());
    // The organization id defaults to the store's.
    let sim = start_with(fixture::standard(), SimOptions::default()).await;
    assert_eq!(sim.server.organization_id(), ids::ORGANIZATION);
    assert!(sim.server.base_url().starts_with("http://127.0.0.1:"));
    assert!(sim.server.base_url().ends_with("/api/v2"));
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let sim = start_standard().await;
    assert_eq!(sim.get("/tasks").await.status, 200);
    let url = sim.url("/tasks");
    let Sim { server, client } = sim;
    server.shutdown().await;
    let fresh = reqwest::Client::new();
    assert!(fresh.get(&url).send().await.is_err());
    drop(client);
}

#[tokio::test]
async fn a_page_of_a_large_table_is_served_quickly() {
    let mut fixture = Fixture::new(ids::ORGANIZATION, "Big Agency");
    for id in 1..=50_000u64 {
        fixture.add(
            "tasks",
            1_000 + id,
            json!({ "title": format!("Task {id}"), "closed": id % 2 == 0 }),
            &[("project", "projects", 10 + id % 5)],
        );
    }
    let sim = start_with(fixture.build(), test_options()).await;
    let started = Instant::now();
    let reply = sim
        .get("/tasks?filter[project_id]=12&filter[status]=1&page[number]=3&page[size]=200")
        .await;
    let elapsed = started.elapsed();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.ids().len(), 200);
    assert_eq!(reply.body["meta"]["total_count"], 5_000);
    assert_eq!(reply.body["meta"]["total_pages"], 25);
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}
