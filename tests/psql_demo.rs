//! Real psql against `serve --demo`, as a new user would try it: every
//! table, a join of tasks, projects and companies, time entries by person
//! and month, custom fields, and `\d+` with column comments.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::process::Command;
use std::time::Duration;

use productive_pg::app::{ServeSettings, serve};
use productive_pg::catalog::Catalog;
use productive_pg::sim::demo::DemoOptions;

fn free_port() -> SocketAddr {
    let l = StdListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

fn psql(addr: SocketAddr, commands: &[&str]) -> (bool, String) {
    let mut cmd = Command::new("psql");
    cmd.arg(format!(
        "host=127.0.0.1 port={} user=demo password=demo dbname=productive",
        addr.port()
    ))
    .args(["-X", "-v", "ON_ERROR_STOP=1", "-P", "pager=off"]);
    for c in commands {
        cmd.args(["-c", c]);
    }
    let out = cmd.output().expect("psql runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_user_tries_the_demo_with_psql() {
    if Command::new("psql").arg("--version").output().is_err() {
        eprintln!("psql is not installed: skipped (scripts/test installs it)");
        return;
    }
    let addr = free_port();
    let settings = ServeSettings {
        listen: addr,
        api_url: String::new(),
        credentials: None,
        login: None,
        use_custom_fields: false,
        tls: None,
        max_connections: 8,
        shutdown_grace: productive_pg::server::DEFAULT_SHUTDOWN_GRACE,
        demo_latency: Duration::ZERO,
        demo: Some(DemoOptions::default()),
        read_only: false,
        cache_ttl: None,
        rate_limits: productive_pg::api::budget::RateLimits::default(),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(settings, async move {
        let _ = stopped.await;
    }));

    // Wait until logins work (the demo organization is built first).
    let mut ready = false;
    for _ in 0..120 {
        if tokio::task::spawn_blocking(move || psql(addr, &["SELECT 1"]).0)
            .await
            .unwrap()
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(ready, "the demo server never accepted a login");

    let result = tokio::task::spawn_blocking(move || {
        let counts: Vec<String> = Catalog::get()
            .tables()
            .iter()
            .map(|t| format!("SELECT '{0}' AS t, count(*) FROM {0}", t.name))
            .collect();
        let sql = counts.join(" UNION ALL ");
        let (ok, out) = psql(addr, &[&sql]);
        assert!(ok, "{out}");
        assert!(out.contains("(32 rows)"), "{out}");
        assert!(!out.contains("| 0\n"), "every demo table has rows: {out}");

        let (ok, out) = psql(
            addr,
            &["SELECT c.name AS company, count(*) AS tasks FROM tasks t \
               JOIN projects p ON p.id = t.project_id JOIN companies c ON c.id = p.company_id \
               GROUP BY 1 ORDER BY 2 DESC LIMIT 3"],
        );
        assert!(ok && out.contains("(3 rows)"), "{out}");

        let (ok, out) = psql(
            addr,
            &["SELECT p.first_name, date_trunc('month', te.date) AS month, sum(te.time) AS minutes \
               FROM time_entries te JOIN people p ON p.id = te.person_id \
               GROUP BY 1, 2 ORDER BY 1, 2 LIMIT 5"],
        );
        assert!(ok && out.contains("minutes") && out.contains("(5 rows)"), "{out}");

        let (ok, out) = psql(
            addr,
            &[
                "SET productive.use_custom_fields = on",
                "SELECT title, priority FROM tasks WHERE priority IS NOT NULL LIMIT 3",
            ],
        );
        assert!(ok && out.contains("(3 rows)"), "{out}");

        let (ok, out) = psql(addr, &["\\d+ time_entries"]);
        assert!(ok && out.contains("money in cents") && out.contains("in minutes"), "{out}");

        let (ok, out) = psql(addr, &["SELECT * FROM nope"]);
        assert!(!ok && out.contains("does not exist"), "{out}");
    })
    .await;

    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}
