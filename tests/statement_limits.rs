//! Limits on what one statement may cost: `productive.max_requests` across
//! every scan and write of a statement, the refusal of unbounded scans of
//! large tables (`productive.max_scan_rows`), and work stopping when the
//! client that asked for it hangs up.

mod gateway_support;

use std::time::Duration;

use gateway_support::*;
use productive_pg::sim::Latency;

#[tokio::test]
async fn max_requests_caps_the_statement_not_each_scan() {
    let env = env_with(many_tasks(1000)).await;
    env.query("SET productive.max_requests = 6").await;

    // One scan of five pages fits.
    assert_eq!(env.column("SELECT count(*) FROM tasks").await, ["1000"]);

    // Two scans of five pages each do not, though each would alone.
    env.take_requests();
    let (code, message, hint) = env
        .sql_error("SELECT count(*) FROM tasks a JOIN tasks b ON a.id = b.id")
        .await;
    assert_eq!(code, "53400", "{message}");
    assert!(
        message.contains("productive.max_requests (6 API requests)") && message.contains("sent 6"),
        "{message}"
    );
    assert!(
        hint.is_some_and(|h| h.contains("SET productive.max_requests")),
        "hint"
    );
    let sent = env.take_requests().len();
    assert!(sent <= 6, "the statement sent {sent} requests past its cap");

    // The count starts again with the next statement.
    assert_eq!(env.column("SELECT count(*) FROM tasks").await, ["1000"]);
}

#[tokio::test]
async fn writes_share_the_cap_and_none_is_made_past_it() {
    let env = env_with(many_tasks(10)).await;
    env.query("SET productive.max_requests = 4").await;
    env.take_requests();

    // Three lookups and three writes make six requests.
    let (code, message, _) = env
        .sql_error("UPDATE tasks SET title = 'renamed' WHERE id IN (10000, 10001, 10002)")
        .await;
    assert_eq!(code, "53400", "{message}");
    let methods: Vec<String> = env.take_requests().into_iter().map(|r| r.method).collect();
    assert!(
        methods.iter().all(|m| m == "GET"),
        "no write may be sent: {methods:?}"
    );

    env.query("SET productive.max_requests = 6").await;
    env.query("UPDATE tasks SET title = 'renamed' WHERE id IN (10000, 10001, 10002)")
        .await;
    assert_eq!(
        env.column("SELECT count(*) FROM tasks WHERE title = 'renamed'")
            .await,
        ["3"]
    );
}

#[tokio::test]
async fn an_unbounded_scan_of_a_large_table_is_refused_after_page_one() {
    let env = env_with(many_tasks(1000)).await;
    env.query("SET productive.max_scan_rows = 500").await;
    env.take_requests();

    let (code, message, hint) = env.sql_error("SELECT * FROM tasks").await;
    assert_eq!(code, "54000", "{message}");
    assert!(
        message.contains("tasks") && message.contains("1000") && message.contains("500"),
        "{message}"
    );
    let hint = hint.unwrap_or_default();
    assert!(
        hint.contains("SET productive.max_scan_rows = 0") && hint.contains("WHERE"),
        "{hint}"
    );
    assert_eq!(env.take_requests().len(), 1, "only page 1 is fetched");

    // A LIMIT or a filter the API applies bounds the scan.
    assert_eq!(
        env.column("SELECT id FROM tasks LIMIT 600").await.len(),
        600
    );
    assert_eq!(
        env.column("SELECT count(*) FROM tasks WHERE project_id = 1")
            .await,
        ["0"]
    );
    // A table no larger than the setting is read whole.
    env.query("SET productive.max_scan_rows = 1000").await;
    assert_eq!(env.column("SELECT count(*) FROM tasks").await, ["1000"]);
    // 0 turns the guard off.
    env.query("SET productive.max_scan_rows = 0").await;
    env.query("SET productive.max_requests = 0").await;
    assert_eq!(env.column("SELECT count(*) FROM tasks").await, ["1000"]);
}

#[tokio::test]
async fn the_scan_guard_defaults_to_a_large_table() {
    let sim = start_sim(many_tasks(10), sim_options()).await;
    let (addr, _stop) = serve(&sim).await;
    let (client, _connection) = connect(addr).await;
    let shown = client
        .query_one("SHOW productive.max_scan_rows", &[])
        .await
        .expect("show");
    assert_eq!(
        shown.get::<_, String>(0),
        productive_pg::table::options::DEFAULT_MAX_SCAN_ROWS.to_string()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_stops_its_api_requests() {
    let sim = start_sim(many_tasks(5000), sim_options()).await;
    let (addr, _stop) = serve(&sim).await;
    let (client, connection) = connect(addr).await;
    // 25 pages one after the other, 200 ms each: five seconds of work that
    // sends nothing to the client until its end.
    client
        .simple_query("SET productive.page_concurrency = 1")
        .await
        .expect("SET");
    sim.set_latency(Latency::new(200, 0));
    sim.clear_requests();
    let query = tokio::spawn(async move {
        let _ = client.simple_query("SELECT count(*) FROM tasks").await;
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!sim.requests().is_empty(), "the scan has started");

    // The client goes away without a word: its socket is closed.
    connection.abort();
    query.abort();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let settled = sim.requests().len();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let later = sim.requests().len();
    assert_eq!(settled, later, "requests went on after the client left");
    assert!(later < 25, "the whole scan ran: {later} requests");
}
