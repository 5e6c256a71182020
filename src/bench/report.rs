//! Figures of a benchmark run, printed as a table.

use std::fmt::Write as _;
use std::time::Duration;

/// One measured figure with what it is compared to.
#[derive(Debug, Clone)]
pub struct Figure {
    pub name: String,
    pub value: String,
    /// What it is compared with, and the ratio.
    pub compared: String,
    pub target: String,
    /// `Some(true)` met, `Some(false)` missed, `None` no target.
    pub met: Option<bool>,
}

impl Figure {
    /// A count against an exact expected count.
    pub fn count(name: &str, value: f64, expected: f64, target: &str) -> Figure {
        Figure {
            name: name.into(),
            value: format!("{value}"),
            compared: format!("expected {expected}"),
            target: target.into(),
            met: Some(value == expected),
        }
    }

    /// A figure without a target.
    pub fn plain(name: &str, value: f64, unit: &str) -> Figure {
        Figure {
            name: name.into(),
            value: format!("{value:.1} {unit}"),
            compared: String::new(),
            target: String::new(),
            met: None,
        }
    }

    /// A value that must stay at or under `limit`.
    pub fn ratio_target(name: &str, value: f64, limit: f64, target: &str) -> Figure {
        Figure {
            name: name.into(),
            value: format!("{value:.2}"),
            compared: String::new(),
            target: target.into(),
            met: Some(value <= limit),
        }
    }

    /// A time against a reference time, which it may exceed by `factor`.
    pub fn time(
        name: &str,
        value: Duration,
        reference: Duration,
        factor: f64,
        target: &str,
    ) -> Figure {
        let ratio = value.as_secs_f64() / reference.as_secs_f64().max(1e-9);
        Figure {
            name: name.into(),
            value: format!("{:.3} s", value.as_secs_f64()),
            compared: format!("{:.3} s, ratio {ratio:.2}", reference.as_secs_f64()),
            target: target.into(),
            met: Some(ratio <= factor),
        }
    }

    /// How many times faster `ours` is than `theirs`; at least `min`.
    pub fn speedup(name: &str, theirs: Duration, ours: Duration, min: f64) -> Figure {
        let ratio = theirs.as_secs_f64() / ours.as_secs_f64().max(1e-9);
        Figure {
            name: name.into(),
            value: format!(
                "{:.3} s vs {:.3} s",
                ours.as_secs_f64(),
                theirs.as_secs_f64()
            ),
            compared: format!("{ratio:.1}× faster"),
            target: format!("≥ {min}× faster"),
            met: Some(ratio >= min),
        }
    }

    /// Requests a statement made, against an expected count if any.
    pub fn requests(
        name: &str,
        requests: f64,
        expected: Option<f64>,
        elapsed: Duration,
        rows: usize,
    ) -> Figure {
        Figure {
            name: name.into(),
            value: format!(
                "{requests} requests, {:.3} s, {rows} rows",
                elapsed.as_secs_f64()
            ),
            compared: expected
                .map(|e| format!("expected {e} requests"))
                .unwrap_or_default(),
            target: expected
                .map(|e| format!("= {e} requests"))
                .unwrap_or_default(),
            met: expected.map(|e| requests == e),
        }
    }

    /// Our time against PostgreSQL's, allowed to be `factor` times slower.
    pub fn versus_postgres(name: &str, ours: Duration, postgres: Duration, factor: f64) -> Figure {
        let ratio = ours.as_secs_f64() / postgres.as_secs_f64().max(1e-9);
        Figure {
            name: name.into(),
            value: format!("{:.3} s", ours.as_secs_f64()),
            compared: format!(
                "PostgreSQL {:.3} s, ratio {ratio:.2}",
                postgres.as_secs_f64()
            ),
            target: format!("≤ {factor}× PostgreSQL"),
            met: Some(ratio <= factor),
        }
    }
}

/// All figures of a run, with notes.
#[derive(Debug, Default)]
pub struct Report {
    pub figures: Vec<Figure>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn push(&mut self, figure: Figure) {
        self.figures.push(figure);
    }

    pub fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    /// The report as a Markdown table, ready for the README.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for n in &self.notes {
            let _ = writeln!(out, "- {n}");
        }
        let _ = writeln!(out, "\n| figure | value | compared with | target | met |");
        let _ = writeln!(out, "|---|---|---|---|---|");
        for f in &self.figures {
            let met = match f.met {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {met} |",
                f.name, f.value, f.compared, f.target
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_judge_their_targets() {
        let f = Figure::time(
            "t",
            Duration::from_millis(105),
            Duration::from_millis(100),
            1.1,
            "",
        );
        assert_eq!(f.met, Some(true));
        let f = Figure::speedup("s", Duration::from_secs(5), Duration::from_secs(1), 10.0);
        assert_eq!(f.met, Some(false));
        assert!(f.compared.contains("5.0×"));
        let mut r = Report::default();
        r.push(Figure::count(
            "requests",
            100.0,
            100.0,
            "= ceil(rows / 200)",
        ));
        assert!(
            r.render()
                .contains("| requests | 100 | expected 100 | = ceil(rows / 200) | yes |")
        );
    }

    #[test]
    fn the_scan_lower_bound_counts_rounds_and_the_rate_limit() {
        use super::super::scan_lower_bound;
        let l = Duration::from_millis(100);
        assert_eq!(scan_lower_bound(1, l, 8), l);
        assert_eq!(scan_lower_bound(9, l, 8), l * 2);
        assert_eq!(scan_lower_bound(100, l, 8), l * 14);
        // 250 pages: two full windows of 100 must pass before the last 50.
        assert_eq!(scan_lower_bound(250, l, 8), Duration::from_secs(20) + l);
    }
}
