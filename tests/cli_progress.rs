//! The `import` and `export` commands as a user runs them: the real
//! binary on the demo organization, with a terminal (through `script`,
//! which gives the command a pseudo-terminal) for the progress bars, and
//! without one for scheduled runs that log to files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_productive-pg")
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cli-progress-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Runs `args` with stdout and stderr on a pseudo-terminal; `None` where
/// util-linux's `script` is missing.
fn on_terminal(args: &[&str]) -> Option<(bool, String)> {
    let line = std::iter::once(binary())
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .output()
        .ok()?;
    Some((out.status.success(), text(&out)))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// 250 good rows with two bad ones among them (lines 11 and 201).
fn tasks_file(d: &Path) -> PathBuf {
    let mut csv = String::from("title,project_id,task_list_id\n");
    for i in 0..252 {
        if i == 9 || i == 199 {
            csv.push_str(",1,1\n");
        } else {
            csv.push_str(&format!("Progress {i},1,1\n"));
        }
    }
    let path = d.join("tasks.csv");
    std::fs::write(&path, csv).expect("write csv");
    path
}

#[test]
fn import_on_a_terminal_draws_a_bar_and_ends_with_a_summary() {
    let d = dir("import-tty");
    let file = tasks_file(&d);
    let rejects = d.join("rejects.csv");
    let Some((ok, out)) = on_terminal(&[
        "import",
        "--demo",
        file.to_str().unwrap(),
        "--table",
        "tasks",
        "--rejects",
        rejects.to_str().unwrap(),
    ]) else {
        eprintln!("skipped: `script` is not installed");
        return;
    };
    // Bad rows make the run fail, after every good row arrived.
    assert!(!ok, "{out}");
    assert!(out.contains("tasks ") && out.contains('█'), "no bar: {out}");
    assert!(
        out.contains("/252"),
        "the bar counts the file's rows: {out}"
    );
    assert!(
        out.contains("tasks: 250 inserted, 0 updated, 0 deleted, 2 rejected"),
        "{out}"
    );
    let rejected = std::fs::read_to_string(&rejects).expect("rejects file");
    let lines: Vec<&str> = rejected.lines().collect();
    assert_eq!(lines.len(), 3, "{rejected}");
    assert!(lines[0].ends_with("line,reason"), "{rejected}");
    assert!(
        lines[1].contains(",11,") && lines[1].contains("title"),
        "{rejected}"
    );
    assert!(lines[2].contains(",201,"), "{rejected}");
}

#[test]
fn import_without_a_terminal_prints_only_the_summary() {
    let d = dir("import-plain");
    let file = tasks_file(&d);
    let out = Command::new(binary())
        .args([
            "import",
            "--demo",
            file.to_str().unwrap(),
            "--table",
            "tasks",
        ])
        .args(["--dry-run"])
        .output()
        .expect("runs");
    let shown = text(&out);
    assert!(!shown.contains('█') && !shown.contains('\u{1b}'), "{shown}");
    assert!(shown.contains("line 11: rejected"), "{shown}");
    assert!(shown.contains("2 rejected"), "{shown}");
    assert!(!out.status.success());
}

#[test]
fn export_on_a_terminal_shows_rows_requests_and_budget_waits() {
    let d = dir("export-tty");
    let output = d.join("tasks.csv");
    let Some((ok, out)) = on_terminal(&[
        "export",
        "--demo",
        "--table",
        "tasks",
        "--output",
        output.to_str().unwrap(),
    ]) else {
        eprintln!("skipped: `script` is not installed");
        return;
    };
    assert!(ok, "{out}");
    assert!(
        out.contains("rows/s") && out.contains("waiting for the rate budget"),
        "{out}"
    );
    // The bar redraws its line with carriage returns.
    let summary = out
        .split(['\r', '\n'])
        .map(|l| l.trim_start_matches("\u{1b}[2K"))
        .find(|l| l.starts_with("exported "))
        .unwrap_or_else(|| panic!("no summary: {out}"));
    let rows: u64 = summary
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("a row count");
    let written = std::fs::read_to_string(&output)
        .expect("csv")
        .lines()
        .count() as u64;
    assert_eq!(written, rows + 1, "header and every row: {summary}");
}
