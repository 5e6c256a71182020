//! The `serve` binary's life: SIGTERM lets running statements finish and
//! refuses new connections, a statement still running when the grace period
//! ends is stopped with 57P01, the process exits 0; `--max-connections`.

#![cfg(unix)]

use std::net::{SocketAddr, TcpListener as StdListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};

fn free_port() -> SocketAddr {
    let l = StdListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// The server process; killed if a test fails before it exits.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let addr = free_port();
        let listen = addr.to_string();
        let mut args = vec!["serve", "--demo", "--listen", listen.as_str()];
        args.extend_from_slice(extra);
        let child = Command::new(env!("CARGO_BIN_EXE_productive-pg"))
            .args(&args)
            .env_remove("PRODUCTIVE_PG_SHUTDOWN_GRACE")
            .env_remove("PRODUCTIVE_PG_MAX_CONNECTIONS")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start productive-pg serve");
        Server { child, addr }
    }

    /// A client, once the server takes logins (the demo is built first).
    async fn connect_when_ready(&self) -> Client {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match connect(self.addr).await {
                Ok(client) => return client,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("the server never took a login: {e}"),
            }
        }
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit, at most `limit`.
    async fn exit_status(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "still running after {limit:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn connect(addr: SocketAddr) -> Result<Client, tokio_postgres::Error> {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(addr.port())
        .user("demo")
        .password("demo")
        .dbname("productive")
        .connect_timeout(Duration::from_secs(2));
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

fn code(err: &tokio_postgres::Error) -> String {
    err.as_db_error()
        .map(|e| e.code().code().to_owned())
        .unwrap_or_else(|| format!("{err}"))
}

/// One API request, which the demo's latency makes slow.
const SLOW: &str = "SELECT id FROM projects LIMIT 1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_running_statement_finish_and_exits_zero() {
    let mut server = Server::start(&["--demo-latency-ms", "3000", "--shutdown-grace", "30s"]);
    let client = server.connect_when_ready().await;

    let running = tokio::spawn(async move { client.simple_query(SLOW).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.terminate();
    let signalled = Instant::now();

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        connect(server.addr).await.is_err(),
        "a new connection was accepted during shutdown"
    );

    let answer = running.await.expect("join");
    let rows = answer.expect("the running statement completes");
    assert!(
        rows.iter()
            .any(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_))),
        "the statement returned its row"
    );
    assert!(
        signalled.elapsed() > Duration::from_secs(1),
        "the statement was still running when the signal came"
    );
    let status = server.exit_status(Duration::from_secs(15)).await;
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_past_the_grace_period_gets_admin_shutdown() {
    let mut server = Server::start(&[
        "--demo-latency-ms",
        "30000",
        "--shutdown-grace",
        "1s",
        "--max-connections",
        "1",
    ]);
    let client = server.connect_when_ready().await;

    // The one slot is taken.
    let refused = connect(server.addr).await.err().expect("over the cap");
    assert_eq!(code(&refused), "53300");

    let running = tokio::spawn(async move { client.simple_query(SLOW).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.terminate();
    let signalled = Instant::now();

    let err = running
        .await
        .expect("join")
        .err()
        .expect("the statement is stopped");
    assert_eq!(code(&err), "57P01", "{err}");
    assert!(signalled.elapsed() < Duration::from_secs(10));
    let status = server.exit_status(Duration::from_secs(15)).await;
    assert!(status.success(), "exit status {status:?}");
}
