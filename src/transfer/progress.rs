//! Progress of a run: a bar per table when stderr is a terminal (nothing
//! otherwise), and the summary printed at the end.

use std::fmt::Write as _;
use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Draws progress bars on stderr when it is a terminal, nothing otherwise.
pub struct Progress {
    bars: Option<MultiProgress>,
}

impl Progress {
    /// Bars when stderr is a terminal.
    pub fn for_stderr() -> Progress {
        Progress {
            bars: std::io::stderr()
                .is_terminal()
                .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        }
    }

    /// No bars at all (tests, scheduled runs logging to files).
    pub fn hidden() -> Progress {
        Progress { bars: None }
    }

    /// A bar for one table; hidden when there is no terminal.
    pub fn table(&self, name: &str) -> ProgressBar {
        let Some(bars) = &self.bars else {
            return ProgressBar::hidden();
        };
        let bar = bars.add(ProgressBar::new(0));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>22} {bar:30} {pos:>7}/{len:7} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(name.to_string());
        bar
    }
}

/// What a run did to one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableSummary {
    pub table: String,
    /// `full` or `incremental`.
    pub mode: &'static str,
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
    /// Records that could not be written, queued for the next run.
    pub failed: u64,
    /// API requests the table cost.
    pub requests: u64,
    /// Why the table stopped, when it did.
    pub error: Option<String>,
}

impl TableSummary {
    /// Whether anything about the table failed.
    pub fn failed(&self) -> bool {
        self.failed > 0 || self.error.is_some()
    }
}

/// The summary as a plain-text table.
pub fn render(summaries: &[TableSummary]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<22} {:<11} {:>9} {:>9} {:>9} {:>7} {:>9}  status",
        "table", "mode", "inserted", "updated", "deleted", "failed", "requests"
    );
    for s in summaries {
        let status = match &s.error {
            Some(e) => format!("error: {e}"),
            None if s.failed > 0 => "records failed (retried next run)".to_string(),
            None => "ok".to_string(),
        };
        let _ = writeln!(
            out,
            "{:<22} {:<11} {:>9} {:>9} {:>9} {:>7} {:>9}  {status}",
            s.table, s.mode, s.inserted, s.updated, s.deleted, s.failed, s.requests
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_names_counts_and_errors() {
        let text = render(&[
            TableSummary {
                table: "tasks".into(),
                mode: "incremental",
                inserted: 2,
                updated: 1,
                requests: 3,
                ..Default::default()
            },
            TableSummary {
                table: "projects".into(),
                mode: "full",
                error: Some("HTTP 500".into()),
                ..Default::default()
            },
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].starts_with("tasks"), "{text}");
        assert!(
            lines[1].contains(" 2 ") && lines[1].ends_with("ok"),
            "{text}"
        );
        assert!(lines[2].ends_with("error: HTTP 500"), "{text}");
    }
}
