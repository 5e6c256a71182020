//! Memory: the peak resident set of the gateway while it streams a very
//! large scan to a client, and the simulator store's bytes per record.
//!
//! The gateway and the simulator run as separate `productive-pg serve` and
//! `productive-pg sim` processes so the gateway's figure holds only the
//! gateway: its peak is the kernel's high-water mark (`VmHWM`) of that
//! process. The client reads the rows as a stream and counts them without
//! keeping any. Only Linux has `/proc`; elsewhere the figure is skipped.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use tokio::process::{Child, Command};

use super::report::{Figure, Report};
use super::{PASSWORD, TOKEN, USER};
use crate::sim::demo::DEMO_ORGANIZATION_ID;

/// The gateway's peak RSS must stay under this during the big scan.
const TARGET_MB: f64 = 200.0;

/// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
pub(crate) fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// This process's resident set in bytes, if the platform tells.
pub(crate) fn own_rss_bytes() -> Option<u64> {
    status_kib(std::process::id(), "VmRSS").map(|k| k * 1024)
}

fn free_port() -> Result<u16> {
    let socket = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(socket.local_addr()?.port())
}

/// Waits until `port` accepts connections or `child` exits.
async fn wait_for_port(child: &mut Child, port: u16, limit: Duration) -> Result<()> {
    let started = Instant::now();
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("the process for port {port} exited early: {status}");
        }
        if started.elapsed() > limit {
            bail!("nothing listened on port {port} after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn spawn(executable: &Path, args: &[String]) -> Result<Child> {
    Command::new(executable)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {} {}", executable.display(), args.join(" ")))
}

/// Scans `rows` tasks through a separate gateway over a separate simulator
/// and reports the gateway's peak RSS.
pub(crate) async fn big_scan(executable: &Path, rows: u64, report: &mut Report) -> Result<()> {
    if status_kib(std::process::id(), "VmHWM").is_none() {
        report.note("peak RSS not measured: /proc/<pid>/status is not available here".into());
        return Ok(());
    }
    let sim_port = free_port()?;
    let mut sim = spawn(
        executable,
        &[
            "sim".into(),
            "--listen".into(),
            format!("127.0.0.1:{sim_port}"),
            "--token".into(),
            TOKEN.into(),
            "--no-rate-limits".into(),
            "--tasks".into(),
            rows.to_string(),
        ],
    )?;
    let built = Instant::now();
    wait_for_port(&mut sim, sim_port, Duration::from_secs(1800)).await?;
    let sim_pid = sim.id().context("simulator process id")?;
    let sim_mb = status_kib(sim_pid, "VmRSS").unwrap_or(0) as f64 / 1024.0;
    report.note(format!(
        "separate simulator with {rows} tasks: built in {:.1} s, RSS {sim_mb:.0} MB",
        built.elapsed().as_secs_f64()
    ));

    let gateway_port = free_port()?;
    let mut gateway = spawn(
        executable,
        &[
            "serve".into(),
            "--listen".into(),
            format!("127.0.0.1:{gateway_port}"),
            "--api-url".into(),
            format!("http://127.0.0.1:{sim_port}/api/v2"),
            "--org-id".into(),
            DEMO_ORGANIZATION_ID.to_string(),
            "--token".into(),
            TOKEN.into(),
            "--user".into(),
            USER.into(),
            "--password".into(),
            PASSWORD.into(),
            // The simulator has no limits either: Productive's 4,000
            // requests per 30 minutes would hold a million-row scan (5,000
            // pages) for most of half an hour, and memory is measured here.
            "--rate-limits".into(),
            "off".into(),
        ],
    )?;
    wait_for_port(&mut gateway, gateway_port, Duration::from_secs(60)).await?;
    let pid = gateway.id().context("gateway process id")?;
    let idle_mb = status_kib(pid, "VmRSS").unwrap_or(0) as f64 / 1024.0;

    let client = super::connect(std::net::SocketAddr::from(([127, 0, 0, 1], gateway_port))).await?;
    let started = Instant::now();
    let stream = client
        .query_raw("SELECT * FROM tasks", std::iter::empty::<i32>())
        .await
        .context("SELECT * FROM tasks on the separate gateway")?;
    futures::pin_mut!(stream);
    let mut seen = 0u64;
    while let Some(row) = stream.next().await {
        row?;
        seen += 1;
    }
    let elapsed = started.elapsed();
    let peak_mb = status_kib(pid, "VmHWM").unwrap_or(0) as f64 / 1024.0;
    drop(client);
    let _ = gateway.kill().await;
    let _ = sim.kill().await;

    report.push(Figure::ratio_target(
        &format!("peak RSS of the gateway, {seen}-row scan (MB)"),
        peak_mb,
        TARGET_MB,
        &format!("< {TARGET_MB} MB"),
    ));
    report.note(format!(
        "{seen}-row scan through the separate gateway: {:.1} s, {:.0} rows/s; gateway RSS \
         {idle_mb:.0} MB idle",
        elapsed.as_secs_f64(),
        seen as f64 / elapsed.as_secs_f64().max(1e-9)
    ));
    Ok(())
}
