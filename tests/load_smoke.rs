//! A small run of the load test (`productive-pg bench --load`): clients at
//! once over the demo organization, with a rate budget tight enough to
//! matter.

use std::time::Duration;

use productive_pg::bench::load::{LoadSettings, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_clients_run_a_mixed_load_without_errors() {
    let settings = LoadSettings {
        clients: 8,
        statements: 50,
        scale: 1,
        latency: Duration::from_millis(5),
        // Below what the run asks for in ten seconds, so the server's
        // budget has to hold the clients back.
        requests_per_10s: 200,
    };
    let report = run(&settings).await.expect("load run");
    let shown = report.render();
    assert_eq!(report.statements, 400, "{shown}");
    assert_eq!(report.errors, 0, "{shown}");
    assert_eq!(report.throttled, 0, "the simulator answered 429: {shown}");
    assert!(report.api_requests > 200, "{shown}");
    if cfg!(target_os = "linux") {
        assert!(report.peak_rss_kib.is_some_and(|k| k > 0), "{shown}");
    }
}
