//! The answer cache (`productive.cache_ttl`), counted in simulator
//! requests: repeated reads within the time to live make none, later ones
//! do, writes bring fresh data, and another token never sees the answers.

mod gateway_support;

use std::time::Duration;

use gateway_support::*;
use productive_pg::api::{ApiClient, ApiConfig};
use productive_pg::gateway::{SessionDefaults, new_session};
use productive_pg::sim::fixture::ids;

const DASHBOARD: &str = "SELECT project_id, count(*) FROM tasks GROUP BY 1 ORDER BY 1";

#[tokio::test]
async fn off_by_default() {
    let env = standard().await;
    env.query(DASHBOARD).await;
    env.take_requests();
    env.query(DASHBOARD).await;
    assert_eq!(env.take_requests().len(), 1);
}

#[tokio::test]
async fn a_repeat_within_the_ttl_makes_no_request() {
    let env = standard().await;
    env.query("SET productive.cache_ttl = '60s'").await;
    env.take_requests();
    let first = env.table(DASHBOARD).await;
    assert_eq!(env.take_requests().len(), 1);
    let again = env.table(DASHBOARD).await;
    assert_eq!(again, first);
    assert!(env.take_requests().is_empty());

    // Lookups by id are kept too.
    let lookup = format!("SELECT title FROM tasks WHERE id = {}", ids::HOMEPAGE_TASK);
    env.query(&lookup).await;
    assert_eq!(env.take_requests().len(), 1);
    env.query(&lookup).await;
    assert!(env.take_requests().is_empty());

    // Other filters are other requests.
    let other = format!(
        "SELECT title FROM tasks WHERE project_id = {}",
        ids::WEBSITE
    );
    env.query(&other).await;
    assert_eq!(env.take_requests().len(), 1);
}

#[tokio::test]
async fn sessions_of_one_credential_share_answers() {
    let env = standard().await;
    let defaults = SessionDefaults {
        cache_ttl: Some(Duration::from_secs(60)),
        ..SessionDefaults::default()
    };
    let first = new_session(client_for(&env.sim), &defaults);
    let second = new_session(client_for(&env.sim), &defaults);
    env.take_requests();
    first.sql(DASHBOARD).await.unwrap().collect().await.unwrap();
    assert_eq!(env.take_requests().len(), 1);
    second
        .sql(DASHBOARD)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!(env.take_requests().is_empty());
}

#[tokio::test]
async fn answers_older_than_the_ttl_are_fetched_again() {
    let env = standard().await;
    env.query("SET productive.cache_ttl = '1s'").await;
    env.take_requests();
    env.query(DASHBOARD).await;
    assert_eq!(env.take_requests().len(), 1);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    env.query(DASHBOARD).await;
    assert_eq!(env.take_requests().len(), 1);

    // A shorter time set later applies to answers already kept.
    env.query(DASHBOARD).await;
    assert!(env.take_requests().is_empty());
    tokio::time::sleep(Duration::from_millis(20)).await;
    env.query("SET productive.cache_ttl = '10ms'").await;
    env.query(DASHBOARD).await;
    assert_eq!(env.take_requests().len(), 1);
}

#[tokio::test]
async fn a_write_brings_fresh_data() {
    let env = standard().await;
    env.query("SET productive.cache_ttl = '5m'").await;
    let by_id = format!("SELECT title FROM tasks WHERE id = {}", ids::HOMEPAGE_TASK);
    let listed = format!(
        "SELECT title FROM tasks WHERE project_id = {} AND id = {}",
        ids::WEBSITE,
        ids::HOMEPAGE_TASK
    );
    let old = env.column(&by_id).await;
    assert_eq!(env.column(&listed).await, old);
    env.query(&format!(
        "UPDATE tasks SET title = 'Renamed' WHERE id = {}",
        ids::HOMEPAGE_TASK
    ))
    .await;
    env.take_requests();
    assert_eq!(env.column(&by_id).await, vec!["Renamed".to_string()]);
    assert_eq!(env.column(&listed).await, vec!["Renamed".to_string()]);
    assert_eq!(env.take_requests().len(), 2);
}

#[tokio::test]
async fn another_token_never_sees_the_answers() {
    let env = standard().await;
    env.query("SET productive.cache_ttl = '60s'").await;
    env.query(DASHBOARD).await;
    env.take_requests();

    // Same API and organization, another token: the simulator refuses it,
    // which only happens if the request is really sent.
    let mut config = ApiConfig::new(
        env.sim.base_url(),
        &env.sim.organization_id().to_string(),
        "another-token".into(),
    );
    config.retry.max_attempts = 1;
    let other = new_session(
        ApiClient::new(config).expect("client"),
        &SessionDefaults {
            cache_ttl: Some(Duration::from_secs(60)),
            ..SessionDefaults::default()
        },
    );
    let result = match other.sql(DASHBOARD).await {
        Ok(df) => df.collect().await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(
        result.is_err(),
        "the other token was answered from the cache"
    );
    assert_eq!(env.take_requests().len(), 1);
}

#[tokio::test]
async fn a_table_can_have_its_own_ttl() {
    let env = standard().await;
    let (addr, _stop) = serve(&env.sim).await;
    let (client, _connection) = connect(addr).await;
    client
        .batch_execute("SET productive.cache_ttl.tasks = '5m'")
        .await
        .expect("set");
    let shown = client
        .query_one("SHOW productive.cache_ttl.tasks", &[])
        .await
        .expect("show");
    assert_eq!(shown.get::<_, String>(0), "5m");
    env.take_requests();
    for _ in 0..2 {
        client
            .simple_query("SELECT count(*) FROM tasks")
            .await
            .expect("tasks");
        client
            .simple_query("SELECT count(*) FROM projects")
            .await
            .expect("projects");
    }
    let paths: Vec<String> = env.take_requests().into_iter().map(|r| r.path).collect();
    let tasks = paths.iter().filter(|p| p.ends_with("/tasks")).count();
    let projects = paths.iter().filter(|p| p.ends_with("/projects")).count();
    assert_eq!((tasks, projects), (1, 2), "{paths:?}");
}

#[tokio::test]
async fn explain_analyze_shows_cache_hits() {
    let env = standard().await;
    env.query("SET productive.cache_ttl = '60s'").await;
    let plan = env.table("EXPLAIN SELECT count(*) FROM tasks").await;
    assert!(plan.contains("cache_ttl=1m"), "{plan}");
    env.query("SELECT count(*) FROM tasks").await;
    let plan = env
        .table("EXPLAIN ANALYZE SELECT count(*) FROM tasks")
        .await;
    assert!(plan.contains("api_cache_hits=1"), "{plan}");
    assert!(plan.contains("api_requests=0"), "{plan}");
}

#[tokio::test]
async fn bad_durations_are_refused() {
    let env = standard().await;
    let err = env
        .try_query("SET productive.cache_ttl = 'soon'")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("productive.cache_ttl"), "{err}");
    let err = env
        .try_query("SET productive.cache_ttl.no_such_table = '5s'")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no_such_table"), "{err}");
}
