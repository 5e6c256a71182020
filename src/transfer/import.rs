//! `productive-pg import`: a CSV file into one table, row by row.
//!
//! Unlike `COPY ... FROM`, which is all or nothing, an import writes every
//! row it can: each row is validated on its own (through the write path's
//! rules, [`TextRows`]) and then sent; a row that fails validation or that
//! the API refuses goes to the rejects file with its line and the reason,
//! and the run goes on. The summary counts what happened to every row.
//!
//! A journal next to the input records, as each row is written, its line
//! and the id it was written under (flushed per row). A rerun of an
//! interrupted import reads it: with `--mode upsert` the rows an earlier
//! run created are updated instead of created again; in the other modes
//! they are skipped. A row whose outcome is unknown (the request left, no
//! answer came back) is journaled as such and never sent again by a rerun:
//! it is reported with its line, to be checked in Productive. The journal
//! is removed when a run leaves nothing to finish.

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::ProgressBar;

use super::csv_in::{self, InputFormat};
use crate::api::{ApiClient, ApiError, RequestStats};
use crate::error::SqlError;
use crate::table::TableDef;
use crate::write::rows::{RowAction, TextRows};

/// What an import does with each row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportMode {
    /// Create a record per row.
    Insert,
    /// Change the record named by each row's `id`.
    Update,
    /// Change rows with an `id`, create those without.
    Upsert,
    /// Delete the record named by each row's `id`.
    Delete,
}

impl ImportMode {
    fn actions(self) -> &'static [RowAction] {
        match self {
            ImportMode::Insert => &[RowAction::Insert],
            ImportMode::Update => &[RowAction::Update],
            ImportMode::Upsert => &[RowAction::Insert, RowAction::Update],
            ImportMode::Delete => &[RowAction::Delete],
        }
    }
}

/// How to read and write one file.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub mode: ImportMode,
    /// `csv column → table column` renames.
    pub map: Vec<(String, String)>,
    /// The column names when the file has no header line.
    pub columns: Option<Vec<String>>,
    pub format: InputFormat,
    /// Where rejected rows go (default: nowhere).
    pub rejects: Option<PathBuf>,
    /// The journal (default: the input's name plus `.journal`).
    pub journal: Option<PathBuf>,
    /// Validate every row and send nothing.
    pub dry_run: bool,
}

/// A row that was not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub line: u64,
    pub reason: String,
}

/// What an import did (or, with `--dry-run`, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub table: String,
    pub dry_run: bool,
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
    /// Rows refused by validation or by the API.
    pub rejected: Vec<Rejected>,
    /// Rows whose request left without an answer: they may be written.
    pub unknown: Vec<Rejected>,
    /// Rows an earlier run already wrote, skipped (insert, update, delete)
    /// or updated again (upsert) by this one.
    pub already_written: u64,
    pub requests: u64,
    pub elapsed: Duration,
}

impl ImportSummary {
    /// Whether any row was rejected or may not have been written.
    pub fn failed(&self) -> bool {
        !self.rejected.is_empty() || !self.unknown.is_empty()
    }
}

impl fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run { "would be " } else { "" };
        write!(
            f,
            "{}: {} {verb}inserted, {} {verb}updated, {} {verb}deleted, {} rejected",
            self.table,
            self.inserted,
            self.updated,
            self.deleted,
            self.rejected.len()
        )?;
        if !self.unknown.is_empty() {
            write!(f, ", {} with unknown outcome", self.unknown.len())?;
        }
        if self.already_written > 0 {
            write!(
                f,
                ", {} already written by an earlier run",
                self.already_written
            )?;
        }
        if self.dry_run {
            write!(f, " (dry run: nothing sent)")
        } else {
            write!(
                f,
                " ({} API requests, {:.1}s)",
                self.requests,
                self.elapsed.as_secs_f64()
            )
        }
    }
}

/// What the journal knows about a line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Journaled {
    Written(String),
    Unknown,
}

/// The line → id record of the rows written so far.
struct Journal {
    path: PathBuf,
    known: HashMap<u64, Journaled>,
    file: Option<std::fs::File>,
}

impl Journal {
    fn open(path: PathBuf) -> Result<Journal> {
        let mut known = HashMap::new();
        if let Ok(text) = std::fs::read_to_string(&path) {
            for entry in text.lines() {
                let Some((line, id)) = entry.split_once(',') else {
                    continue;
                };
                let Ok(line) = line.trim().parse::<u64>() else {
                    continue;
                };
                let state = match id.trim() {
                    "?" => Journaled::Unknown,
                    id => Journaled::Written(id.to_owned()),
                };
                known.insert(line, state);
            }
        }
        Ok(Journal {
            path,
            known,
            file: None,
        })
    }

    /// Appends one entry and flushes it, so a killed run loses nothing.
    fn record(&mut self, line: u64, id: Option<&str>) -> Result<()> {
        if self.file.is_none() {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .with_context(|| format!("cannot write the journal {}", self.path.display()))?;
            self.file = Some(file);
        }
        if let Some(file) = &mut self.file {
            writeln!(file, "{line},{}", id.unwrap_or("?"))?;
            file.sync_data()?;
        }
        Ok(())
    }
}

/// The default journal of an input file.
pub fn journal_path(input: &Path) -> PathBuf {
    let mut name = input.as_os_str().to_owned();
    name.push(".journal");
    PathBuf::from(name)
}

/// The rejects file: the original fields, then `line` and `reason`.
struct Rejects {
    writer: Option<csv::Writer<std::fs::File>>,
}

impl Rejects {
    fn create(path: Option<&Path>, header: &[String], format: &InputFormat) -> Result<Rejects> {
        let Some(path) = path else {
            return Ok(Rejects { writer: None });
        };
        let mut writer = csv::WriterBuilder::new()
            .flexible(true)
            .delimiter(format.delimiter)
            .quote(format.quote)
            .from_path(path)
            .with_context(|| format!("cannot create the rejects file {}", path.display()))?;
        let mut names: Vec<&str> = header.iter().map(String::as_str).collect();
        names.extend(["line", "reason"]);
        writer.write_record(&names)?;
        Ok(Rejects {
            writer: Some(writer),
        })
    }

    fn add(&mut self, raw: &[String], line: u64, reason: &str) -> Result<()> {
        if let Some(writer) = &mut self.writer {
            let line = line.to_string();
            let mut fields: Vec<&str> = raw.iter().map(String::as_str).collect();
            fields.push(&line);
            fields.push(reason);
            writer.write_record(&fields)?;
            writer.flush()?;
        }
        Ok(())
    }
}

/// An error's text as a rejects file shows it: message and detail.
fn reason(e: &SqlError) -> String {
    match &e.detail {
        Some(detail) => format!("{} ({detail})", e.message),
        None => e.message.clone(),
    }
}

/// Failures that no later row can escape: stop the run.
fn is_fatal(e: &ApiError) -> bool {
    matches!(e.status(), Some(401 | 403)) || matches!(e, ApiError::RequestCapReached { .. })
}

/// Whether a failed request may have been applied: no answer came back,
/// or a POST got a server error (the record may exist; sending it again
/// could create it twice).
fn outcome_unknown(e: &ApiError, action: RowAction) -> bool {
    matches!(e, ApiError::OutcomeUnknown { .. })
        || (action == RowAction::Insert && e.status().is_some_and(|s| s >= 500))
}

/// Imports `data` (the file at `input`) into the table `def`.
///
/// # Errors
/// A header that names unknown or read-only columns, a mode the table does
/// not accept, unwritable rejects or journal files, or an API failure that
/// every row would meet (bad token). Rows that fail on their own are
/// counted in the summary instead.
pub async fn import(
    client: &ApiClient,
    def: Arc<TableDef>,
    input: &Path,
    data: &[u8],
    options: &ImportOptions,
    bar: &ProgressBar,
) -> Result<ImportSummary> {
    let started = Instant::now();
    let (header, records) = csv_in::read(data, &options.format);
    let file_columns: Vec<String> = match (&options.columns, header) {
        (Some(columns), _) => columns.clone(),
        (None, Some(header)) => header,
        (None, None) => bail!("the file has no header line: name its columns with --columns"),
    };
    let mut names: Vec<String> = file_columns
        .iter()
        .map(|name| {
            let name = name.trim();
            options
                .map
                .iter()
                .find(|(from, _)| from == name)
                .map(|(_, to)| to.clone())
                .unwrap_or_else(|| name.to_owned())
        })
        .collect();
    // Upsert also matches rows an earlier run created, which the file
    // cannot name: give it an id column of its own when it has none.
    let added_id = options.mode == ImportMode::Upsert && !names.iter().any(|n| n == "id");
    if added_id {
        names.push("id".to_owned());
    }
    let rows = TextRows::new(def.clone(), &names, options.mode.actions())
        .map_err(|e| anyhow::anyhow!("{}: {}", def.table.name, reason(&e)))?;

    let journal_file = options
        .journal
        .clone()
        .unwrap_or_else(|| journal_path(input));
    let mut journal = Journal::open(journal_file)?;
    let mut rejects = Rejects::create(options.rejects.as_deref(), &file_columns, &options.format)?;
    let mut summary = ImportSummary {
        table: def.table.name.to_string(),
        dry_run: options.dry_run,
        ..ImportSummary::default()
    };
    let stats = RequestStats::default();
    bar.set_length(records.len() as u64);

    for record in records {
        bar.inc(1);
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let text = reason(&e.error);
                rejects.add(&e.raw, e.line, &text)?;
                summary.rejected.push(Rejected {
                    line: e.line,
                    reason: text,
                });
                continue;
            }
        };
        let line = record.line;
        let mut fields = record.fields.clone();
        if added_id {
            fields.push(None);
        }
        match journal.known.get(&line) {
            Some(Journaled::Unknown) => {
                summary.unknown.push(Rejected {
                    line,
                    reason: "an earlier run sent this row without learning its outcome; \
                             check it in Productive"
                        .to_owned(),
                });
                continue;
            }
            Some(Journaled::Written(id)) => {
                summary.already_written += 1;
                if options.mode != ImportMode::Upsert {
                    continue;
                }
                if let Some(slot) = names.iter().position(|n| n == "id") {
                    fields[slot] = Some(id.clone());
                }
            }
            None => {}
        }
        let action = match options.mode {
            ImportMode::Insert => RowAction::Insert,
            ImportMode::Update => RowAction::Update,
            ImportMode::Delete => RowAction::Delete,
            ImportMode::Upsert if rows.id_of(&fields).is_some() => RowAction::Update,
            ImportMode::Upsert => RowAction::Insert,
        };
        let write = match rows.prepare(action, &fields) {
            Ok(write) => write,
            Err(e) => {
                let text = reason(&e);
                rejects.add(&record.raw, line, &text)?;
                summary.rejected.push(Rejected { line, reason: text });
                continue;
            }
        };
        if !options.dry_run {
            match write.send(client, &stats).await {
                Ok((id, _)) => {
                    if action == RowAction::Insert {
                        journal.record(line, Some(&id))?;
                    }
                }
                Err(e) if is_fatal(&e) => {
                    bail!("line {line}: {e}; stopped (rows before it were written)");
                }
                Err(e) if outcome_unknown(&e, action) => {
                    if action == RowAction::Insert {
                        journal.record(line, None)?;
                    }
                    summary.unknown.push(Rejected {
                        line,
                        reason: e.to_string(),
                    });
                    continue;
                }
                Err(e) => {
                    let text = reason(&e.to_sql_error());
                    rejects.add(&record.raw, line, &text)?;
                    summary.rejected.push(Rejected { line, reason: text });
                    continue;
                }
            }
        }
        match action {
            RowAction::Insert => summary.inserted += 1,
            RowAction::Update => summary.updated += 1,
            RowAction::Delete => summary.deleted += 1,
        }
    }
    bar.finish_and_clear();
    if !options.dry_run && !summary.failed() && journal.path.exists() {
        // Nothing is left for a rerun to finish.
        std::fs::remove_file(&journal.path)
            .with_context(|| format!("cannot remove the journal {}", journal.path.display()))?;
    }
    summary.requests = stats.requests();
    summary.elapsed = started.elapsed();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_reads_back_what_it_wrote() {
        let dir = std::env::temp_dir().join(format!("pp-journal-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("rows.csv.journal");
        let _ = std::fs::remove_file(&path);
        let mut journal = Journal::open(path.clone()).expect("opens");
        journal.record(2, Some("41")).expect("writes");
        journal.record(3, None).expect("writes");
        let again = Journal::open(path.clone()).expect("reopens");
        assert_eq!(again.known.get(&2), Some(&Journaled::Written("41".into())));
        assert_eq!(again.known.get(&3), Some(&Journaled::Unknown));
        assert_eq!(again.known.get(&4), None);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            journal_path(Path::new("/x/in.csv")),
            PathBuf::from("/x/in.csv.journal")
        );
    }

    #[test]
    fn the_summary_line_counts_every_outcome() {
        let summary = ImportSummary {
            table: "tasks".into(),
            inserted: 3,
            rejected: vec![Rejected {
                line: 4,
                reason: "bad".into(),
            }],
            already_written: 2,
            ..ImportSummary::default()
        };
        let text = summary.to_string();
        assert!(text.starts_with("tasks: 3 inserted, 0 updated, 0 deleted, 1 rejected"));
        assert!(text.contains("2 already written"), "{text}");
        assert!(summary.failed());
    }
}
