//! The benchmark runs end to end on a small organization and reports every
//! figure. It checks that figures are produced, not how fast they are:
//! speed is what `bench/run` measures.

use std::time::Duration;

use productive_pg::bench::{BenchSettings, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benchmark_reports_every_figure() {
    let settings = BenchSettings {
        scale: 1,
        latency: Duration::ZERO,
        sessions: 3,
        statements_per_session: 2,
        postgres_url: std::env::var("PRODUCTIVE_PG_TEST_POSTGRES_URL").ok(),
        stream_rows: 1000,
        skip_sequential: false,
        rate_limits: false,
        rss_rows: 3_000,
        executable: Some(env!("CARGO_BIN_EXE_productive-pg").into()),
    };
    let report = run(&settings).await.expect("the benchmark runs");
    let text = report.render();
    for name in [
        "full scan: requests",
        "full scan: wall time",
        "full scan vs sequential client",
        "lookup: WHERE id",
        "ORDER BY created_at DESC LIMIT 10",
        "join tasks, projects, companies",
        "aggregate time entries by person and month",
        "3 sessions × 2 statements: 429 answers",
        "dashboard refreshed within cache_ttl: requests",
        "simulator store: memory per record",
        "peak RSS of the gateway, 3000-row scan",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
    // Request counts are exact whatever the speed.
    let lookup = report
        .figures
        .iter()
        .find(|f| f.name.starts_with("lookup"))
        .unwrap();
    assert_eq!(lookup.met, Some(true), "{lookup:?}");
    let scan = report
        .figures
        .iter()
        .find(|f| f.name == "full scan: requests")
        .unwrap();
    assert_eq!(scan.met, Some(true), "{scan:?}");
    let cached = report
        .figures
        .iter()
        .find(|f| {
            f.name
                .starts_with("dashboard refreshed within cache_ttl: requests")
        })
        .unwrap();
    assert_eq!(cached.met, Some(true), "{cached:?}");
    if settings.postgres_url.is_some() {
        assert!(
            text.contains("local join") && text.contains("stream 1000 rows"),
            "{text}"
        );
    }
    println!("{text}");
}
