//! Target databases of a replication: SQLite files and PostgreSQL servers.
//!
//! A [`Target`] knows SQL and transactions, nothing about the API: the
//! replication engine hands it table shapes ([`TableSpec`]) and batches of
//! rows ([`Batch`]), and reads back what it needs to decide what to fetch
//! (stored state, row fingerprints, ids, queued failures). Each batch is
//! one transaction, so a run killed at any point leaves whole pages.
//!
//! Targets can also capture changes users make in them
//! ([`Target::install_capture`]): triggers record every insert, update and
//! delete in [`CHANGES_TABLE`], except the replication's own writes, which
//! mark their transaction (a `SET LOCAL` setting on PostgreSQL, a row in a
//! marker table on SQLite). `sync` ([`crate::transfer::sync`]) sends the
//! captured changes to Productive and keeps its bookkeeping in the tables
//! named here ([`Target::prepare_sync`]).

pub mod postgres;
pub mod sqlite;

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::catalog::SqlType;
use crate::transfer::value::Cell;

/// Table of the per-table replication state, in the target database.
pub const STATE_TABLE: &str = "_productive_replication_state";
/// Table of records that could not be written, retried on the next run.
pub const FAILURES_TABLE: &str = "_productive_replication_failures";
/// Table of changes made in the target by anyone but the replication
/// itself, on tables with change capture.
pub const CHANGES_TABLE: &str = "_productive_sync_changes";
/// Conflicts `sync` found and how it resolved them.
pub const CONFLICTS_TABLE: &str = "productive_sync_conflicts";
/// What the last `sync --plan` would change.
pub const PLAN_TABLE: &str = "productive_sync_plan";
/// Local changes Productive refused (or whose outcome is unknown), kept
/// queued with the reason.
pub const REFUSED_TABLE: &str = "productive_sync_refused";
/// Rows inserted in the target: their local id and the Productive id they
/// got when created.
pub const IDS_TABLE: &str = "productive_sync_ids";
/// Column holding each row's fingerprint ([`crate::transfer::value::row_fingerprint`]).
pub const FINGERPRINT_COLUMN: &str = "_productive_fingerprint";

/// Why a target operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("the target {0:?} is neither sqlite:FILE nor postgres://...")]
    UnknownTarget(String),
    #[error("{0}")]
    Other(String),
}

/// One column of a replicated table.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSpec {
    pub name: String,
    pub sql_type: SqlType,
    /// The table whose `id` this column references, with `--foreign-keys`.
    pub references: Option<String>,
}

/// The shape of a replicated table: `id` first, as the primary key.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSpec {
    pub name: String,
    pub columns: Vec<ColumnSpec>,
}

/// One record to write, its cells in [`TableSpec::columns`] order.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: i64,
    pub cells: Vec<Cell>,
    pub fingerprint: String,
}

/// The stored state of one table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TableState {
    /// The newest change marker of a written row; `None` when the table
    /// has no marker (copied in full every run).
    pub watermark: Option<DateTime<Utc>>,
    /// When a complete copy of the table last finished.
    pub completed_at: Option<DateTime<Utc>>,
}

/// What one transaction writes.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    /// Rows inserted or replaced (the caller drops unchanged ones).
    pub upserts: Vec<Row>,
    /// Ids to delete.
    pub deletes: Vec<i64>,
    /// Records that could not be read, with the reason, queued for retry.
    pub failures: Vec<(i64, String)>,
    /// Ids whose queued failure is resolved (written or gone).
    pub resolved: Vec<i64>,
    /// The table's new state, written in the same transaction.
    pub state: Option<TableState>,
    /// Forget the table's state (the next run copies it in full).
    pub reset_state: bool,
    /// Leave rows alone that have captured changes not yet sent (checked
    /// inside the transaction, so a change made meanwhile is never
    /// overwritten).
    pub skip_pending: bool,
}

/// What a committed batch changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
}

/// A change made in the target database, captured by a trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedChange {
    /// Increases with every captured change.
    pub seq: i64,
    pub table: String,
    pub row_id: i64,
    /// `insert`, `update` or `delete`.
    pub operation: String,
    /// When the change was made.
    pub captured_at: Option<DateTime<Utc>>,
}

/// A local change Productive did not take, kept queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub row_id: i64,
    /// `insert`, `update` or `delete`.
    pub operation: String,
    pub reason: String,
    /// The request may have been applied (a server error on a POST): the
    /// change is held until the user decides, never sent again blindly.
    pub outcome_unknown: bool,
}

/// A row changed on both sides since the last sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictRecord {
    pub row_id: i64,
    /// JSON objects of the column values (`null` for a deleted row).
    pub local_values: String,
    pub remote_values: String,
    pub policy: String,
    /// `productive` or `target`.
    pub winner: String,
}

/// One change a `sync --plan` run found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanEntry {
    pub table: String,
    /// Where the change would be made: `productive` or `target`.
    pub side: String,
    /// `insert`, `update`, `delete`, `conflict`, `refused` or `create table`.
    pub action: String,
    pub row_id: Option<i64>,
    pub detail: String,
}

/// The bookkeeping of one synced row, written in one transaction without
/// being captured as a change.
#[derive(Debug, Clone, Default)]
pub struct SyncWrite {
    pub table: String,
    /// Drop the row's captured changes up to this sequence number.
    pub consumed: Option<(i64, i64)>,
    /// A row created in Productive: (local id, Productive id, fingerprint
    /// of the created record). The row and its queued changes take the new
    /// id, and the pair is kept in [`IDS_TABLE`].
    pub reid: Option<(i64, i64, String)>,
    /// Queue the row's change with this reason.
    pub refusal: Option<Refusal>,
    /// Forget a refusal of this row id.
    pub clear_refusal: Option<i64>,
    pub conflict: Option<ConflictRecord>,
}

/// A database replicated into.
#[async_trait]
pub trait Target: Send {
    /// Creates the state and failure tables when missing.
    async fn prepare(&mut self) -> Result<(), TargetError>;
    /// The column names of `table`, `None` when it does not exist.
    async fn columns(&mut self, table: &str) -> Result<Option<Vec<String>>, TargetError>;
    /// Creates `spec` with `id` as primary key and the fingerprint column.
    async fn create_table(&mut self, spec: &TableSpec) -> Result<(), TargetError>;
    /// Adds a column to an existing table; existing rows get NULL.
    async fn add_column(&mut self, table: &str, column: &ColumnSpec) -> Result<(), TargetError>;
    /// The stored state of `table`.
    async fn state(&mut self, table: &str) -> Result<Option<TableState>, TargetError>;
    /// Fingerprints of the rows with these ids that exist.
    async fn fingerprints(
        &mut self,
        table: &str,
        ids: &[i64],
    ) -> Result<HashMap<i64, String>, TargetError>;
    /// Every id in `table`.
    async fn ids(&mut self, table: &str) -> Result<HashSet<i64>, TargetError>;
    /// Ids of records of `table` queued for retry.
    async fn queued_failures(&mut self, table: &str) -> Result<Vec<i64>, TargetError>;
    /// Installs triggers on `table` that record every insert, update and
    /// delete made by others than the replication in [`CHANGES_TABLE`],
    /// including changes made while a run writes.
    async fn install_capture(&mut self, table: &str) -> Result<(), TargetError>;
    /// Captured changes with a sequence number above `after`, oldest first.
    async fn captured_changes(&mut self, after: i64) -> Result<Vec<CapturedChange>, TargetError>;
    /// Creates the tables of `sync` (and the change table) when missing.
    async fn prepare_sync(&mut self) -> Result<(), TargetError>;
    /// The cells of the rows with these ids that exist, in `spec`'s column
    /// order, as stored (see [`crate::transfer::value::stored_cell`]).
    async fn rows(
        &mut self,
        spec: &TableSpec,
        ids: &[i64],
    ) -> Result<HashMap<i64, Vec<Cell>>, TargetError>;
    /// The queued refusals of `table`, by row id.
    async fn refusals(&mut self, table: &str) -> Result<HashMap<i64, Refusal>, TargetError>;
    /// Writes the bookkeeping of one synced row in one transaction.
    async fn apply_sync(&mut self, write: &SyncWrite) -> Result<(), TargetError>;
    /// Replaces the contents of [`PLAN_TABLE`] with `entries`.
    async fn store_plan(&mut self, entries: &[PlanEntry]) -> Result<(), TargetError>;
    /// Writes `batch` into `spec` in one transaction; its writes are not
    /// captured as changes.
    async fn commit(
        &mut self,
        spec: &TableSpec,
        batch: &Batch,
    ) -> Result<BatchOutcome, TargetError>;
}

/// Opens the target a `--target` value names: `sqlite:FILE` (or a path
/// ending in `.db`/`.sqlite`) or a `postgres://` / `postgresql://` URL.
///
/// # Errors
/// An unknown form, a file or server that cannot be opened.
pub async fn open(target: &str) -> Result<Box<dyn Target>, TargetError> {
    if target.starts_with("postgres://") || target.starts_with("postgresql://") {
        return Ok(Box::new(postgres::PostgresTarget::connect(target).await?));
    }
    let path = target
        .strip_prefix("sqlite://")
        .or_else(|| target.strip_prefix("sqlite:"))
        .or_else(|| (target.ends_with(".db") || target.ends_with(".sqlite")).then_some(target));
    match path {
        Some(p) if !p.is_empty() => Ok(Box::new(sqlite::SqliteTarget::open(p)?)),
        _ => Err(TargetError::UnknownTarget(target.to_string())),
    }
}

/// Quotes an identifier for both SQLite and PostgreSQL.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Parses a stored timestamp.
pub(crate) fn parse_stored_time(text: Option<String>) -> Option<DateTime<Utc>> {
    text.and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote("tasks"), "\"tasks\"");
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
    }
}
