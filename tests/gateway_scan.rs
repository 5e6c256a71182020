//! Reading Productive tables through the gateway's DataFusion session,
//! against the simulator: every table, pushdown shapes and the requests
//! they make, joins, deals versus budgets, limits.

mod gateway_support;

use gateway_support::*;
use productive_pg::catalog::Catalog;
use productive_pg::sim::fixture::ids;

#[tokio::test]
async fn every_table_can_be_selected() {
    let env = standard().await;
    for table in Catalog::get().tables() {
        let sql = format!("SELECT * FROM {}", table.name);
        env.try_query(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

#[tokio::test]
async fn id_equality_is_one_get_by_id() {
    let env = standard().await;
    env.take_requests();
    let titles = env
        .column(&format!(
            "SELECT title FROM tasks WHERE id = {}",
            ids::HOMEPAGE_TASK
        ))
        .await;
    assert_eq!(titles.len(), 1);
    let reqs = env.take_requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(
        reqs[0].path,
        format!("/api/v2/tasks/{}", ids::HOMEPAGE_TASK)
    );
}

#[tokio::test]
async fn relationship_filter_is_sent_to_the_api() {
    let env = standard().await;
    env.take_requests();
    let rows = env
        .column(&format!(
            "SELECT project_id FROM tasks WHERE project_id = {}",
            ids::WEBSITE
        ))
        .await;
    assert!(!rows.is_empty());
    assert!(
        rows.iter().all(|r| *r == ids::WEBSITE.to_string()),
        "{rows:?}"
    );
    let reqs = env.take_requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let q = decoded_query(&reqs[0]);
    assert!(
        q.contains(&format!("filter[project_id]={}", ids::WEBSITE)),
        "{q}"
    );
    assert!(q.contains("include=project"), "{q}");
}

#[tokio::test]
async fn joins_tasks_projects_companies() {
    let env = standard().await;
    let out = env
        .table(
            "SELECT c.name AS company, p.name AS project, count(*) AS tasks \
             FROM tasks t JOIN projects p ON t.project_id = p.id \
             JOIN companies c ON p.company_id = c.id GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .await;
    assert!(out.contains("company"), "{out}");
}

#[tokio::test]
async fn deals_and_budgets_are_two_tables() {
    let env = standard().await;
    let deals = env.column("SELECT DISTINCT budget FROM deals").await;
    let budgets = env.column("SELECT DISTINCT budget FROM budgets").await;
    assert_eq!(deals, ["false"]);
    assert_eq!(budgets, ["true"]);
}

#[tokio::test]
async fn limit_asks_for_one_small_page() {
    let env = standard().await;
    env.take_requests();
    let rows = env.column("SELECT id FROM tasks LIMIT 2").await;
    assert_eq!(rows.len(), 2);
    let reqs = env.take_requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert!(
        decoded_query(&reqs[0]).contains("page[size]=2"),
        "{}",
        decoded_query(&reqs[0])
    );
}

#[tokio::test]
async fn pages_after_the_first_are_fetched_concurrently_and_in_order() {
    let env = env_with(many_tasks(1000)).await;
    env.sim
        .set_latency(productive_pg::sim::Latency::new(300, 0));
    env.take_requests();
    let ids = env.column("SELECT id FROM tasks").await;
    assert_eq!(ids.len(), 1000);
    let expected: Vec<String> = (0..1000).map(|i| (10_000 + i).to_string()).collect();
    assert_eq!(ids, expected, "rows stream in page order");

    let reqs = env.take_requests();
    assert_eq!(reqs.len(), 5, "ceil(1000 / 200) requests: {reqs:?}");
    // Page 1 alone, then pages 2-5 together: their answers arrive within a
    // fraction of one request's latency of each other.
    let times: Vec<std::time::SystemTime> = reqs.iter().skip(1).map(|r| r.at).collect();
    let first = *times.iter().min().unwrap();
    let last = *times.iter().max().unwrap();
    let spread = last.duration_since(first).unwrap();
    assert!(
        spread < std::time::Duration::from_millis(200),
        "pages 2-5 spread over {spread:?}"
    );
}

#[tokio::test]
async fn a_scan_stops_fetching_when_the_limit_is_met() {
    let env = env_with(many_tasks(1000)).await;
    env.take_requests();
    let ids = env.column("SELECT id FROM tasks LIMIT 250").await;
    assert_eq!(ids.len(), 250);
    let reqs = env.take_requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
}

#[tokio::test]
async fn max_requests_caps_a_scan() {
    let env = env_with(many_tasks(1000)).await;
    env.query("SET productive.max_requests = 3").await;
    let err = env
        .try_query("SELECT * FROM tasks")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("productive.max_requests (3 API requests)"),
        "{err}"
    );
    env.query("SET productive.max_requests = 0").await;
    assert_eq!(env.column("SELECT count(*) FROM tasks").await, ["1000"]);
}

#[tokio::test]
async fn later_pages_are_read_while_the_client_is_busy_with_earlier_ones() {
    use futures::StreamExt;
    let env = env_with(many_tasks(1000)).await;
    env.sim
        .set_latency(productive_pg::sim::Latency::new(100, 0));
    env.take_requests();
    productive_pg::table::begin_statement(&env.ctx);
    let mut stream = env
        .ctx
        .sql("SELECT id FROM tasks")
        .await
        .unwrap()
        .execute_stream()
        .await
        .unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.num_rows(), 200);
    // The client works on page 1 and does not ask for more for a while:
    // the other pages are fetched meanwhile, not when it asks.
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let reqs = env.take_requests();
    assert_eq!(reqs.len(), 5, "pages 2-5 were read ahead: {reqs:?}");
    let mut rows = first.num_rows();
    while let Some(batch) = stream.next().await {
        rows += batch.unwrap().num_rows();
    }
    assert_eq!(rows, 1000);
    assert!(env.take_requests().is_empty(), "no page was read twice");
}

#[tokio::test]
async fn explain_analyze_counts_each_request_of_a_concurrent_scan_once() {
    let env = env_with(many_tasks(1000)).await;
    env.sim.set_latency(productive_pg::sim::Latency::new(50, 0));
    let plan = env.table("EXPLAIN ANALYZE SELECT id FROM tasks").await;
    let metric = |name: &str| {
        let at = plan
            .find(&format!("{name}="))
            .unwrap_or_else(|| panic!("{plan}"));
        let value = &plan[at + name.len() + 1..];
        value[..value.find([',', ']']).unwrap()].to_string()
    };
    assert_eq!(metric("api_requests"), "5", "{plan}");
    assert_eq!(metric("api_pages"), "5", "{plan}");
    assert_eq!(metric("output_rows"), "1.00 K", "{plan}");
}

#[tokio::test]
async fn a_scan_keeps_at_most_page_concurrency_requests_on_the_wire() {
    let env = env_with(many_tasks(3000)).await;
    env.sim
        .set_latency(productive_pg::sim::Latency::new(200, 0));
    env.ctx
        .sql("SET productive.page_concurrency = 4")
        .await
        .unwrap();
    env.take_requests();
    let ids = env.column("SELECT id FROM tasks").await;
    assert_eq!(ids.len(), 3000);
    let reqs = env.take_requests();
    assert_eq!(reqs.len(), 15, "{reqs:?}");
    // Every request takes 200 ms: answers that arrive within 100 ms of each
    // other were on the wire together.
    let times: Vec<std::time::SystemTime> = reqs.iter().map(|r| r.at).collect();
    for t in &times {
        let together = times
            .iter()
            .filter(|u| {
                let gap = u
                    .duration_since(*t)
                    .or_else(|_| t.duration_since(**u))
                    .unwrap();
                gap < std::time::Duration::from_millis(100)
            })
            .count();
        assert!(together <= 4, "{together} requests on the wire at once");
    }
}

#[tokio::test]
async fn the_next_page_goes_out_while_a_slow_answer_streams_in() {
    let env = env_with(many_tasks(600)).await;
    env.sim
        .set_latency(productive_pg::sim::Latency::new(100, 0));
    env.sim.set_faults(productive_pg::sim::faults::Faults {
        slow_body: std::time::Duration::from_secs(2),
        ..productive_pg::sim::faults::Faults::none()
    });
    // Page 1 is quick, page 2's body takes two seconds to arrive.
    env.sim
        .fail_method("GET", 1, 1, productive_pg::sim::faults::FaultKind::SlowBody);
    env.ctx
        .sql("SET productive.page_concurrency = 1")
        .await
        .unwrap();
    env.take_requests();
    let ids = env.column("SELECT id FROM tasks").await;
    let expected: Vec<String> = (0..600).map(|i| (10_000 + i).to_string()).collect();
    assert_eq!(ids, expected);
    let reqs = env.take_requests();
    assert_eq!(reqs.len(), 3, "{reqs:?}");
    // With one request on the wire, page 3 waits for page 2's answer to
    // begin, not for its whole body.
    let gap = reqs[2].at.duration_since(reqs[1].at).unwrap();
    assert!(
        gap < std::time::Duration::from_secs(1),
        "page 3 was answered {gap:?} after page 2"
    );
}
