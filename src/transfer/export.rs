//! `productive-pg export`: a table or a query to a CSV file, streamed as
//! pages arrive.

use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

use super::csv_out::{CsvOptions, CsvWriter};
use crate::api::ApiClient;
use crate::catalog::Catalog;

/// What to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportSource {
    /// A table, optionally narrowed to columns and filtered by a SQL
    /// condition.
    Table {
        table: String,
        columns: Option<Vec<String>>,
        filter: Option<String>,
    },
    /// Any query.
    Query(String),
}

/// A SQL identifier, quoted.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl ExportSource {
    /// The statement that produces the rows.
    ///
    /// # Errors
    /// An unknown table.
    pub fn sql(&self) -> Result<String> {
        match self {
            ExportSource::Query(q) => Ok(q.clone()),
            ExportSource::Table {
                table,
                columns,
                filter,
            } => {
                if Catalog::get().table(table).is_none() {
                    bail!("there is no table {table:?}; `\\dt` in psql lists them");
                }
                let cols = match columns {
                    Some(c) if !c.is_empty() => c
                        .iter()
                        .map(|c| quote_ident(c.trim()))
                        .collect::<Vec<_>>()
                        .join(", "),
                    _ => "*".to_string(),
                };
                let mut sql = format!("SELECT {cols} FROM {}", quote_ident(table));
                if let Some(f) = filter {
                    sql.push_str(&format!(" WHERE {f}"));
                }
                Ok(sql)
            }
        }
    }
}

/// What an export did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    pub rows: u64,
    pub requests: u64,
    pub budget_wait: Duration,
    pub elapsed: Duration,
}

impl std::fmt::Display for ExportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exported {} rows in {:.1} s with {} API requests \
             ({:.1} s waiting for the rate budget)",
            self.rows,
            self.elapsed.as_secs_f64(),
            self.requests,
            self.budget_wait.as_secs_f64()
        )
    }
}

/// Streams the rows of `source` into `out` as CSV. With `progress`, a
/// progress line on stderr shows rows, requests, rate and budget waits.
///
/// # Errors
/// Bad SQL, API failures, write failures.
pub async fn export_csv<W: Write>(
    ctx: &SessionContext,
    client: &ApiClient,
    source: &ExportSource,
    options: &CsvOptions,
    out: W,
    progress: bool,
) -> Result<(ExportSummary, W)> {
    let started = Instant::now();
    let totals = client.totals();
    let requests_before = totals.requests.load(Ordering::Relaxed);
    let wait_before = totals.budget_wait_ms.load(Ordering::Relaxed);

    let sql = source.sql()?;
    let df = ctx
        .sql(&sql)
        .await
        .with_context(|| format!("planning {sql}"))?;
    let names: Vec<String> = df
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut stream = df.execute_stream().await?;
    let mut writer = CsvWriter::new(out, options.clone());
    writer.write_header(&names)?;

    let bar = (progress && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new_spinner();
        bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let mut rows = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        writer.write_batch(&batch)?;
        rows += batch.num_rows() as u64;
        if let Some(bar) = &bar {
            let secs = started.elapsed().as_secs_f64().max(0.001);
            bar.set_message(format!(
                "{rows} rows, {} API requests, {:.0} rows/s, {:.1} s waiting for the rate budget",
                totals.requests.load(Ordering::Relaxed) - requests_before,
                rows as f64 / secs,
                (totals.budget_wait_ms.load(Ordering::Relaxed) - wait_before) as f64 / 1000.0
            ));
        }
    }
    writer.flush()?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let summary = ExportSummary {
        rows,
        requests: totals.requests.load(Ordering::Relaxed) - requests_before,
        budget_wait: Duration::from_millis(
            totals.budget_wait_ms.load(Ordering::Relaxed) - wait_before,
        ),
        elapsed: started.elapsed(),
    };
    Ok((summary, writer.into_inner()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_export_is_a_select() {
        let s = ExportSource::Table {
            table: "tasks".into(),
            columns: Some(vec!["id".into(), " title".into()]),
            filter: Some("project_id = 5".into()),
        };
        assert_eq!(
            s.sql().unwrap(),
            "SELECT \"id\", \"title\" FROM \"tasks\" WHERE project_id = 5"
        );
        let bad = ExportSource::Table {
            table: "nope".into(),
            columns: None,
            filter: None,
        };
        assert!(
            bad.sql()
                .unwrap_err()
                .to_string()
                .contains("no table \"nope\"")
        );
    }
}
