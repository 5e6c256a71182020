//! Two-way sync between Productive tables and a SQLite or PostgreSQL
//! target, built on the replication engine and the write path.
//!
//! A run, per table:
//! 1. **Push.** Reads the changes capture triggers queued in the target
//!    ([`CHANGES_TABLE`](super::target::CHANGES_TABLE)), one entry per row
//!    changed since the last run,
//!    and asks Productive for the current version of those rows. A row
//!    inserted locally (it has no fingerprint) is created with `POST` and
//!    takes the id Productive gives it; an updated row sends the writable
//!    columns that differ from Productive's values with `PATCH`; a deleted
//!    row is deleted. Values go through the write path's encoders and
//!    checks: types, required fields, read-only columns, the
//!    `*_type`/`*_id` pair rule.
//! 2. **Conflicts.** A row changed locally whose Productive version changed
//!    too since the last run (its fingerprint differs from the one stored
//!    with the row, or for a deleted row its `updated_at` is after the last
//!    run) is a conflict, resolved by the [`ConflictPolicy`] and recorded
//!    in [`CONFLICTS_TABLE`](super::target::CONFLICTS_TABLE).
//! 3. **Pull.** Runs the replication engine (incremental after the first
//!    run: `updated_at` filters and the activity feed for deletions). Its
//!    writes skip rows that still have queued changes, checked in the same
//!    transaction, so a change made while the run writes is never
//!    overwritten and is sent on the next run.
//! 4. Installs the capture triggers (first run) so later changes queue.
//!
//! A change Productive refuses (a 422, a local validation error) stays
//! queued with its reason in [`REFUSED_TABLE`] and is sent again next run.
//! A `POST` whose outcome is unknown (a server error or a cut connection:
//! the record may exist) is held instead, never sent again blindly; see
//! `docs/sync.md` for how to release it.
//!
//! With `--plan` nothing is sent and the target's data is not touched: the
//! run writes what it would do into [`PLAN_TABLE`] and prints it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{Map, Value};
use tracing::{info, warn};

use super::progress::Progress;
use super::replicate::{
    self, ChangeMarker, ReplicateError, ReplicateOptions, change_marker, fetch_records, record_row,
    table_spec,
};
use super::target::{
    Batch, BatchOutcome, CapturedChange, ColumnSpec, ConflictRecord, PLAN_TABLE, PlanEntry,
    REFUSED_TABLE, Refusal, Row, SyncWrite, TableSpec, TableState, Target, TargetError,
};
use super::value::{Cell, json_value, stored_cell};
use crate::api::document::ResourceObject;
use crate::api::{ApiClient, ApiError, RequestStats};
use crate::catalog::{Catalog, SqlType, Table};
use crate::table::TableDef;
use crate::write::exec::{RowWrite, delete_request, insert_request, update_request};

/// Tables synced when `--tables` is not given.
pub const DEFAULT_TABLES: [&str; 3] = ["invoices", "bookings", "tasks"];

/// How a row changed on both sides is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConflictPolicy {
    /// Productive's version is kept and overwrites the local row. The
    /// default: Productive is shared with other people and tools, the
    /// target is one user's copy.
    #[default]
    RemoteWins,
    /// The local version is sent to Productive.
    LocalWins,
    /// The side changed last wins: the local change's capture time against
    /// the record's `updated_at`. A deletion in Productive has no time in
    /// the record and wins.
    NewestWins,
}

impl ConflictPolicy {
    /// The name used on the command line and in
    /// [`CONFLICTS_TABLE`](super::target::CONFLICTS_TABLE).
    pub fn name(self) -> &'static str {
        match self {
            ConflictPolicy::RemoteWins => "remote-wins",
            ConflictPolicy::LocalWins => "local-wins",
            ConflictPolicy::NewestWins => "newest-wins",
        }
    }
}

impl FromStr for ConflictPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<ConflictPolicy, String> {
        match s.trim() {
            "remote-wins" => Ok(ConflictPolicy::RemoteWins),
            "local-wins" => Ok(ConflictPolicy::LocalWins),
            "newest-wins" => Ok(ConflictPolicy::NewestWins),
            other => Err(format!(
                "{other:?} is not a conflict policy: use remote-wins, local-wins or newest-wins"
            )),
        }
    }
}

/// What a sync run should do.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// `sqlite:FILE` or a `postgres://` URL.
    pub target: String,
    /// Only these tables (SQL names); `None`: [`DEFAULT_TABLES`].
    pub tables: Option<Vec<String>>,
    pub conflict: ConflictPolicy,
    /// Store and print what would change, change nothing.
    pub plan: bool,
}

/// Why a sync run could not start.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("unknown table {0:?} (see the table list of `productive-pg serve`)")]
    UnknownTable(String),
    #[error("table {0:?} cannot be synced: {1}")]
    NotSyncable(String, String),
    #[error("target database: {0}")]
    Target(#[from] TargetError),
    #[error(transparent)]
    Replicate(#[from] ReplicateError),
}

/// What a run did to one table, on both sides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncSummary {
    pub table: String,
    pub pulled_inserted: u64,
    pub pulled_updated: u64,
    pub pulled_deleted: u64,
    pub pushed_inserted: u64,
    pub pushed_updated: u64,
    pub pushed_deleted: u64,
    pub conflicts: u64,
    /// Local changes refused or held, still queued.
    pub refused: u64,
    /// Records read from Productive that could not be stored.
    pub pull_failed: u64,
    pub requests: u64,
    pub error: Option<String>,
}

impl SyncSummary {
    /// Whether anything about the table failed.
    pub fn failed(&self) -> bool {
        self.refused > 0 || self.pull_failed > 0 || self.error.is_some()
    }
}

/// What one sync run did (or, with `--plan`, would do).
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    pub tables: Vec<SyncSummary>,
    /// The planned changes (`--plan` only).
    pub plan: Vec<PlanEntry>,
}

impl SyncReport {
    /// Whether anything failed.
    pub fn failed(&self) -> bool {
        self.tables.iter().any(SyncSummary::failed)
    }

    /// API requests of the whole run.
    pub fn requests(&self) -> u64 {
        self.tables.iter().map(|t| t.requests).sum()
    }

    /// The entry of `table`.
    pub fn table(&self, table: &str) -> Option<&SyncSummary> {
        self.tables.iter().find(|t| t.table == table)
    }

    /// The summary (and the plan, when there is one) as plain text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if !self.plan.is_empty() {
            let _ = writeln!(out, "plan (stored in {PLAN_TABLE}):");
            for e in &self.plan {
                let id = e.row_id.map(|i| i.to_string()).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  {:<10} {:<12} {:<12} {:>10}  {}",
                    e.side, e.table, e.action, id, e.detail
                );
            }
        }
        let _ = writeln!(
            out,
            "{:<18} {:>17} {:>17} {:>9} {:>7} {:>8}  status",
            "table", "pulled ins/upd/del", "pushed ins/upd/del", "conflicts", "refused", "requests"
        );
        for s in &self.tables {
            let status = match &s.error {
                Some(e) => format!("error: {e}"),
                None if s.refused > 0 => format!("changes refused (see {REFUSED_TABLE})"),
                None if s.pull_failed > 0 => "records failed (retried next run)".to_string(),
                None => "ok".to_string(),
            };
            let pulled = format!(
                "{}/{}/{}",
                s.pulled_inserted, s.pulled_updated, s.pulled_deleted
            );
            let pushed = format!(
                "{}/{}/{}",
                s.pushed_inserted, s.pushed_updated, s.pushed_deleted
            );
            let _ = writeln!(
                out,
                "{:<18} {:>17} {:>17} {:>9} {:>7} {:>8}  {status}",
                s.table, pulled, pushed, s.conflicts, s.refused, s.requests
            );
        }
        out
    }
}

/// The tables `options` names, each checked to allow what sync needs.
fn sync_tables(options: &SyncOptions) -> Result<Vec<&'static Table>, SyncError> {
    let catalog = Catalog::get();
    let names: Vec<String> = match &options.tables {
        Some(names) => names.iter().map(|n| n.trim().to_string()).collect(),
        None => DEFAULT_TABLES.iter().map(|n| n.to_string()).collect(),
    };
    names
        .iter()
        .map(|name| {
            let table = catalog
                .table(name)
                .ok_or_else(|| SyncError::UnknownTable(name.clone()))?;
            let s = &table.statements;
            if !(s.insert && s.update && s.delete) {
                return Err(SyncError::NotSyncable(
                    name.clone(),
                    format!(
                        "sync needs INSERT, UPDATE and DELETE, it accepts {}",
                        s.describe()
                    ),
                ));
            }
            // A creation marker is enough: updates of such tables come
            // from the activity feed, as in an incremental replication.
            if matches!(change_marker(table), ChangeMarker::None) {
                return Err(SyncError::NotSyncable(
                    name.clone(),
                    "the Productive API cannot list its records changed since a time".into(),
                ));
            }
            Ok(table)
        })
        .collect()
}

/// Runs one sync of the tables `options` names.
///
/// Failures of single rows and tables are reported in the [`SyncReport`]
/// (and make [`SyncReport::failed`] true).
///
/// # Errors
/// An unknown or unsyncable table, a target that cannot be opened or
/// prepared.
pub async fn run(
    client: &ApiClient,
    options: &SyncOptions,
    progress: &Progress,
) -> Result<SyncReport, SyncError> {
    let tables = sync_tables(options)?;
    let mut target = super::target::open(&options.target).await?;
    target.prepare().await?;
    target.prepare_sync().await?;

    let pending = target.captured_changes(0).await?;
    let mut report = SyncReport::default();
    let mut plan = Vec::new();
    for table in &tables {
        let def = TableDef::new(table, &[]);
        let spec = table_spec(&def, None);
        let mut push = Push {
            client,
            target: target.as_mut(),
            def: &def,
            spec: &spec,
            policy: options.conflict,
            plan: options.plan.then_some(&mut plan),
            summary: SyncSummary {
                table: table.name.to_string(),
                ..Default::default()
            },
            stats: RequestStats::default(),
            refetch: Vec::new(),
        };
        let changes: Vec<&CapturedChange> =
            pending.iter().filter(|c| c.table == table.name).collect();
        if let Err(e) = push.run(&changes).await {
            warn!(table = table.name, error = %e, "pushing local changes failed");
            push.summary.error = Some(e.to_string());
        }
        push.summary.requests = push.stats.requests();
        report.tables.push(push.summary);
    }

    // The pull: replication, with writes that leave queued rows alone.
    let replicate_options = ReplicateOptions {
        target: options.target.clone(),
        tables: Some(tables.iter().map(|t| t.name.to_string()).collect()),
        ..ReplicateOptions::default()
    };
    let pending_rows: HashSet<(String, i64)> = match options.plan {
        true => pending
            .iter()
            .map(|c| (c.table.clone(), c.row_id))
            .collect(),
        false => HashSet::new(),
    };
    let mut pull = PullTarget {
        inner: target.as_mut(),
        plan: options.plan.then(|| PullPlan {
            entries: Vec::new(),
            pending: pending_rows,
            created: HashMap::new(),
        }),
    };
    let pulled = replicate::run_on(client, &replicate_options, &mut pull, progress).await?;
    if let Some(pull_plan) = pull.plan.take() {
        plan.extend(pull_plan.entries);
    }
    for s in pulled.tables {
        match report.tables.iter_mut().find(|t| t.table == s.table) {
            Some(t) => {
                t.pulled_inserted += s.inserted;
                t.pulled_updated += s.updated;
                t.pulled_deleted += s.deleted;
                t.pull_failed += s.failed;
                t.requests += s.requests;
                if let Some(e) = s.error {
                    t.error.get_or_insert(e);
                }
            }
            // The activity feed's own line.
            None => report.tables.push(SyncSummary {
                table: s.table,
                requests: s.requests,
                error: s.error,
                ..Default::default()
            }),
        }
    }

    if options.plan {
        target.store_plan(&plan).await?;
        report.plan = plan;
    } else {
        for table in &tables {
            if target.columns(table.name).await?.is_some() {
                target.install_capture(table.name).await?;
            }
        }
    }
    for s in &report.tables {
        info!(
            table = s.table,
            pushed_inserted = s.pushed_inserted,
            pushed_updated = s.pushed_updated,
            pushed_deleted = s.pushed_deleted,
            pulled_inserted = s.pulled_inserted,
            pulled_updated = s.pulled_updated,
            pulled_deleted = s.pulled_deleted,
            conflicts = s.conflicts,
            refused = s.refused,
            requests = s.requests,
            "table synced"
        );
    }
    Ok(report)
}

/// The queued changes of one row.
#[derive(Debug)]
struct RowChanges {
    first_operation: String,
    /// The newest queue entry this run takes.
    last_seq: i64,
    last_at: Option<DateTime<Utc>>,
}

/// What a row's queued changes amount to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LocalChange {
    /// A new local row, not in Productive yet.
    Insert,
    Update,
    Delete,
    /// Inserted and deleted again before a sync: nothing to send.
    Cancelled,
}

impl LocalChange {
    fn name(self) -> &'static str {
        match self {
            LocalChange::Insert => "insert",
            LocalChange::Update => "update",
            LocalChange::Delete | LocalChange::Cancelled => "delete",
        }
    }
}

/// Which side a conflict's winner is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Productive,
    Target,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Productive => "productive",
            Side::Target => "target",
        }
    }
}

/// How an API write ended, for the queue.
enum Sent {
    Done(Option<ResourceObject>),
    /// Productive refused it (or it could not be sent); retried next run.
    Refused(String),
    /// It may have been applied: held until the user decides.
    Unknown(String),
}

/// The push phase of one table.
struct Push<'a> {
    client: &'a ApiClient,
    target: &'a mut dyn Target,
    def: &'a TableDef,
    spec: &'a TableSpec,
    policy: ConflictPolicy,
    /// Plan mode: decisions go here, nothing is written.
    plan: Option<&'a mut Vec<PlanEntry>>,
    summary: SyncSummary,
    stats: RequestStats,
    /// Ids written to Productive, read back at the end so the target holds
    /// exactly what the pull would store.
    refetch: Vec<i64>,
}

impl Push<'_> {
    async fn run(&mut self, changes: &[&CapturedChange]) -> Result<(), SyncError> {
        let name = self.def.table.name;
        if changes.is_empty() || self.target.columns(name).await?.is_none() {
            return Ok(());
        }
        let mut rows: BTreeMap<i64, RowChanges> = BTreeMap::new();
        for c in changes {
            let entry = rows.entry(c.row_id).or_insert_with(|| RowChanges {
                first_operation: c.operation.clone(),
                last_seq: c.seq,
                last_at: c.captured_at,
            });
            entry.last_seq = entry.last_seq.max(c.seq);
            entry.last_at = entry.last_at.max(c.captured_at);
        }
        let ids: Vec<i64> = rows.keys().copied().collect();
        let local = self.target.rows(self.spec, &ids).await?;
        let fingerprints = self.target.fingerprints(name, &ids).await?;
        let refusals = self.target.refusals(name).await?;
        let last_sync = self
            .target
            .state(name)
            .await?
            .and_then(|s: TableState| s.completed_at);

        let kinds: BTreeMap<i64, LocalChange> = rows
            .iter()
            .map(|(id, r)| {
                let kind = match (local.contains_key(id), fingerprints.get(id)) {
                    (true, Some(fp)) if !fp.is_empty() => LocalChange::Update,
                    (true, _) => LocalChange::Insert,
                    (false, _) if r.first_operation == "insert" => LocalChange::Cancelled,
                    (false, _) => LocalChange::Delete,
                };
                (*id, kind)
            })
            .collect();
        let known: Vec<i64> = kinds
            .iter()
            .filter(|(_, k)| matches!(k, LocalChange::Update | LocalChange::Delete))
            .map(|(id, _)| *id)
            .collect();
        let remote: HashMap<i64, ResourceObject> =
            fetch_records(self.client, self.def, &known, &self.stats)
                .await
                .map_err(ReplicateError::from)?
                .into_iter()
                .filter_map(|r| Some((r.id.parse::<i64>().ok()?, r)))
                .collect();

        for (id, changes) in &rows {
            if let Some(r) = refusals.get(id).filter(|r| r.outcome_unknown) {
                self.summary.refused += 1;
                self.note(Side::Productive, "held", Some(*id), r.reason.clone());
                continue;
            }
            let kind = kinds[id];
            let local_cells = local.get(id);
            let result = match kind {
                LocalChange::Cancelled => self.consume(*id, changes, None).await,
                LocalChange::Insert => {
                    let cells = local_cells.cloned().unwrap_or_default();
                    self.create(*id, changes, &cells, None).await
                }
                LocalChange::Update => {
                    let cells = local_cells.cloned().unwrap_or_default();
                    self.update(*id, changes, &cells, fingerprints.get(id), remote.get(id))
                        .await
                }
                LocalChange::Delete => self.delete(*id, changes, remote.get(id), last_sync).await,
            };
            result?;
        }
        self.read_back().await
    }

    /// Records a planned change (plan mode only).
    fn note(&mut self, side: Side, action: &str, row_id: Option<i64>, detail: String) {
        if let Some(plan) = self.plan.as_deref_mut() {
            plan.push(PlanEntry {
                table: self.def.table.name.to_string(),
                side: side.name().to_string(),
                action: action.to_string(),
                row_id,
                detail,
            });
        }
    }

    fn planning(&self) -> bool {
        self.plan.is_some()
    }

    /// The local cells read in their columns' types.
    fn read_local(&self, cells: &[Cell]) -> Result<Vec<Cell>, String> {
        cells
            .iter()
            .zip(&self.spec.columns)
            .map(|(c, col): (&Cell, &ColumnSpec)| {
                stored_cell(c.clone(), col.sql_type).map_err(|e| format!("{}: {e}", col.name))
            })
            .collect()
    }

    /// Values as a JSON object, for conflict records.
    fn values_json(&self, cells: Option<&[Cell]>) -> String {
        match cells {
            None => "null".to_string(),
            Some(cells) => {
                let map: Map<String, Value> = self
                    .spec
                    .columns
                    .iter()
                    .zip(cells)
                    .map(|(col, c)| (col.name.clone(), json_value(c)))
                    .collect();
                Value::Object(map).to_string()
            }
        }
    }

    /// Drops the row's queue entries this run took, with `then` done in
    /// the same transaction.
    async fn consume(
        &mut self,
        id: i64,
        changes: &RowChanges,
        then: Option<SyncWrite>,
    ) -> Result<(), SyncError> {
        if self.planning() {
            return Ok(());
        }
        let mut write = then.unwrap_or_default();
        write.table = self.def.table.name.to_string();
        write.consumed = Some((id, changes.last_seq));
        write.clear_refusal = Some(id);
        self.target.apply_sync(&write).await?;
        Ok(())
    }

    /// Keeps the row's change queued with `reason`.
    async fn refuse(
        &mut self,
        id: i64,
        kind: LocalChange,
        reason: String,
        outcome_unknown: bool,
    ) -> Result<(), SyncError> {
        self.summary.refused += 1;
        warn!(table = self.def.table.name, id, %reason, "local change refused");
        if self.planning() {
            self.note(Side::Productive, "refused", Some(id), reason);
            return Ok(());
        }
        let write = SyncWrite {
            table: self.def.table.name.to_string(),
            refusal: Some(Refusal {
                row_id: id,
                operation: kind.name().to_string(),
                reason,
                outcome_unknown,
            }),
            ..Default::default()
        };
        self.target.apply_sync(&write).await?;
        Ok(())
    }

    /// Writes rows into the target (after their queue entries are gone).
    async fn store(&mut self, rows: Vec<Row>, deletes: Vec<i64>) -> Result<(), SyncError> {
        if self.planning() {
            return Ok(());
        }
        let batch = Batch {
            upserts: rows,
            deletes,
            skip_pending: true,
            ..Default::default()
        };
        self.target.commit(self.spec, &batch).await?;
        Ok(())
    }

    /// Sends one request; `None` in plan mode.
    async fn send(&mut self, write: RowWrite) -> Sent {
        let is_post = write.method == Method::POST;
        match write.send(&self.client, &self.stats).await {
            Ok((_, record)) => Sent::Done(record),
            Err(e @ ApiError::OutcomeUnknown { .. }) if is_post => Sent::Unknown(e.to_string()),
            Err(e @ ApiError::Transport { .. }) if is_post => Sent::Unknown(e.to_string()),
            Err(e @ ApiError::Status { status, .. }) if is_post && status >= 500 => {
                Sent::Unknown(e.to_string())
            }
            Err(e) => Sent::Refused(e.to_string()),
        }
    }

    /// Creates a local row in Productive; `conflict` is recorded with it.
    async fn create(
        &mut self,
        id: i64,
        changes: &RowChanges,
        cells: &[Cell],
        conflict: Option<ConflictRecord>,
    ) -> Result<(), SyncError> {
        let cells = match self.read_local(cells) {
            Ok(c) => c,
            Err(reason) => return self.refuse(id, LocalChange::Insert, reason, false).await,
        };
        let def = self.def;
        let values = def
            .columns
            .iter()
            .zip(&cells)
            .filter(|(col, _)| col.name != "id")
            .map(|(col, c)| (col, json_value(c)))
            .collect();
        let request = match insert_request(def, values) {
            Ok(r) => r,
            Err(e) => {
                let reason = format!("{}: {}", e.code, e.message);
                return self.refuse(id, LocalChange::Insert, reason, false).await;
            }
        };
        if self.planning() {
            let body = request
                .body
                .as_ref()
                .map(Value::to_string)
                .unwrap_or_default();
            self.summary.pushed_inserted += 1;
            self.note(Side::Productive, "insert", Some(id), body);
            return Ok(());
        }
        match self.send(request).await {
            Sent::Done(Some(record)) => {
                let Ok(new_id) = record.id.parse::<i64>() else {
                    let reason = format!("Productive answered with id {:?}", record.id);
                    return self.refuse(id, LocalChange::Insert, reason, true).await;
                };
                let fingerprint = record_row(self.def, &record)
                    .map(|r| r.fingerprint)
                    .unwrap_or_else(|_| "created".to_string());
                let write = SyncWrite {
                    reid: Some((id, new_id, fingerprint)),
                    conflict,
                    ..Default::default()
                };
                self.consume(id, changes, Some(write)).await?;
                self.summary.pushed_inserted += 1;
                self.refetch.push(new_id);
                Ok(())
            }
            Sent::Done(None) => {
                let reason = "Productive answered the POST without the created record".into();
                self.refuse(id, LocalChange::Insert, reason, true).await
            }
            Sent::Refused(reason) => self.refuse(id, LocalChange::Insert, reason, false).await,
            Sent::Unknown(reason) => self.refuse(id, LocalChange::Insert, reason, true).await,
        }
    }

    /// Sends the columns of `cells` that differ from `remote`; with
    /// `strict`, a differing read-only column refuses the change.
    async fn patch(
        &mut self,
        id: i64,
        changes: &RowChanges,
        cells: &[Cell],
        remote: &Row,
        strict: bool,
        conflict: Option<ConflictRecord>,
    ) -> Result<(), SyncError> {
        let def = self.def;
        let mut values = Vec::new();
        for ((col, local), theirs) in def.columns.iter().zip(cells).zip(&remote.cells) {
            if same_cell(col.sql_type, local, theirs) {
                continue;
            }
            if !col.writable {
                if strict {
                    let reason = format!(
                        "column \"{}\" is read-only: the Productive API ignores writes to it",
                        col.name
                    );
                    return self.refuse(id, LocalChange::Update, reason, false).await;
                }
                continue;
            }
            values.push((col, json_value(local)));
        }
        if values.is_empty() {
            // Both sides hold the same values: only the bookkeeping moves.
            if conflict.is_some() {
                self.record_conflict_only(id, changes, conflict).await?;
            } else {
                self.consume(id, changes, None).await?;
            }
            return self.store(vec![remote.clone()], vec![]).await;
        }
        let custom = remote_custom_fields(def, &remote.cells);
        let columns: Vec<String> = values.iter().map(|(c, _)| c.name.clone()).collect();
        let request = match update_request(def, &id.to_string(), values, || custom) {
            Ok(r) => r,
            Err(e) => {
                let reason = format!("{}: {}", e.code, e.message);
                return self.refuse(id, LocalChange::Update, reason, false).await;
            }
        };
        if self.planning() {
            self.summary.pushed_updated += 1;
            self.note(
                Side::Productive,
                "update",
                Some(id),
                format!("columns: {}", columns.join(", ")),
            );
            return Ok(());
        }
        match self.send(request).await {
            Sent::Done(_) => {
                let write = SyncWrite {
                    conflict,
                    ..Default::default()
                };
                self.consume(id, changes, Some(write)).await?;
                self.summary.pushed_updated += 1;
                self.refetch.push(id);
                Ok(())
            }
            Sent::Refused(reason) | Sent::Unknown(reason) => {
                self.refuse(id, LocalChange::Update, reason, false).await
            }
        }
    }

    async fn record_conflict_only(
        &mut self,
        id: i64,
        changes: &RowChanges,
        conflict: Option<ConflictRecord>,
    ) -> Result<(), SyncError> {
        let write = SyncWrite {
            conflict,
            ..Default::default()
        };
        self.consume(id, changes, Some(write)).await
    }

    /// Decides a conflict and counts it.
    fn decide(
        &mut self,
        id: i64,
        local_at: Option<DateTime<Utc>>,
        remote: Option<&ResourceObject>,
        local_values: String,
        remote_values: String,
    ) -> (Side, ConflictRecord) {
        let winner = match self.policy {
            ConflictPolicy::RemoteWins => Side::Productive,
            ConflictPolicy::LocalWins => Side::Target,
            ConflictPolicy::NewestWins => {
                let remote_at = remote
                    .and_then(|r| r.attributes.get("updated_at"))
                    .and_then(replicate::timestamp);
                match (local_at, remote_at) {
                    (Some(l), Some(r)) if l > r => Side::Target,
                    _ => Side::Productive,
                }
            }
        };
        self.summary.conflicts += 1;
        self.note(
            winner,
            "conflict",
            Some(id),
            format!("{}: {} wins", self.policy.name(), winner.name()),
        );
        let record = ConflictRecord {
            row_id: id,
            local_values,
            remote_values,
            policy: self.policy.name().to_string(),
            winner: winner.name().to_string(),
        };
        (winner, record)
    }

    /// A row updated locally.
    async fn update(
        &mut self,
        id: i64,
        changes: &RowChanges,
        stored: &[Cell],
        base: Option<&String>,
        remote: Option<&ResourceObject>,
    ) -> Result<(), SyncError> {
        let cells = match self.read_local(stored) {
            Ok(c) => c,
            Err(reason) => return self.refuse(id, LocalChange::Update, reason, false).await,
        };
        let Some(record) = remote else {
            // Deleted in Productive, updated here.
            let (winner, conflict) = self.decide(
                id,
                changes.last_at,
                None,
                self.values_json(Some(&cells)),
                "null".into(),
            );
            return match winner {
                Side::Target => self.create(id, changes, stored, Some(conflict)).await,
                Side::Productive => {
                    self.note(
                        Side::Target,
                        "delete",
                        Some(id),
                        "deleted in Productive".into(),
                    );
                    self.record_conflict_only(id, changes, Some(conflict))
                        .await?;
                    self.store(vec![], vec![id]).await
                }
            };
        };
        let theirs = match record_row(self.def, record) {
            Ok(r) => r,
            Err(reason) => return self.refuse(id, LocalChange::Update, reason, false).await,
        };
        if base == Some(&theirs.fingerprint) {
            return self.patch(id, changes, &cells, &theirs, true, None).await;
        }
        let same = self
            .spec
            .columns
            .iter()
            .zip(cells.iter().zip(&theirs.cells))
            .all(|(col, (a, b))| same_cell(col.sql_type, a, b));
        if same {
            // Both sides made the same change.
            self.consume(id, changes, None).await?;
            return self.store(vec![theirs], vec![]).await;
        }
        let (winner, conflict) = self.decide(
            id,
            changes.last_at,
            Some(record),
            self.values_json(Some(&cells)),
            self.values_json(Some(&theirs.cells)),
        );
        match winner {
            Side::Target => {
                self.patch(id, changes, &cells, &theirs, false, Some(conflict))
                    .await
            }
            Side::Productive => {
                self.note(
                    Side::Target,
                    "update",
                    Some(id),
                    "Productive's version".into(),
                );
                self.record_conflict_only(id, changes, Some(conflict))
                    .await?;
                self.store(vec![theirs], vec![]).await
            }
        }
    }

    /// A row deleted locally.
    async fn delete(
        &mut self,
        id: i64,
        changes: &RowChanges,
        remote: Option<&ResourceObject>,
        last_sync: Option<DateTime<Utc>>,
    ) -> Result<(), SyncError> {
        let Some(record) = remote else {
            // Gone on both sides.
            return self.consume(id, changes, None).await;
        };
        let remote_at = record
            .attributes
            .get("updated_at")
            .and_then(replicate::timestamp);
        let changed_remotely = matches!((remote_at, last_sync), (Some(r), Some(s)) if r > s);
        let mut conflict = None;
        if changed_remotely {
            let theirs = record_row(self.def, record).ok();
            let (winner, record_) = self.decide(
                id,
                changes.last_at,
                Some(record),
                "null".into(),
                self.values_json(theirs.as_ref().map(|r| r.cells.as_slice())),
            );
            if winner == Side::Productive {
                self.note(
                    Side::Target,
                    "insert",
                    Some(id),
                    "Productive's version".into(),
                );
                self.record_conflict_only(id, changes, Some(record_))
                    .await?;
                return self.store(theirs.into_iter().collect(), vec![]).await;
            }
            conflict = Some(record_);
        }
        let request = delete_request(self.def, &id.to_string());
        if self.planning() {
            self.summary.pushed_deleted += 1;
            let detail = format!("DELETE {}", request.path);
            self.note(Side::Productive, "delete", Some(id), detail);
            return Ok(());
        }
        match self.send(request).await {
            Sent::Done(_) => {
                let write = SyncWrite {
                    conflict,
                    ..Default::default()
                };
                self.consume(id, changes, Some(write)).await?;
                self.summary.pushed_deleted += 1;
                Ok(())
            }
            Sent::Refused(reason) | Sent::Unknown(reason) => {
                self.refuse(id, LocalChange::Delete, reason, false).await
            }
        }
    }

    /// Reads the written records back and stores them as the pull would.
    async fn read_back(&mut self) -> Result<(), SyncError> {
        if self.refetch.is_empty() || self.planning() {
            return Ok(());
        }
        let ids = std::mem::take(&mut self.refetch);
        let records = fetch_records(self.client, self.def, &ids, &self.stats)
            .await
            .map_err(ReplicateError::from)?;
        let rows = records
            .iter()
            .filter_map(|r| record_row(self.def, r).ok())
            .collect();
        self.store(rows, vec![]).await
    }
}

/// Whether two cells hold the same value: JSON compares as JSON, since
/// PostgreSQL's `jsonb` orders keys its own way.
fn same_cell(sql_type: SqlType, a: &Cell, b: &Cell) -> bool {
    match (sql_type, a, b) {
        (SqlType::Jsonb, Cell::Text(x), Cell::Text(y)) => {
            match (
                serde_json::from_str::<Value>(x),
                serde_json::from_str::<Value>(y),
            ) {
                (Ok(x), Ok(y)) => x == y,
                _ => x == y,
            }
        }
        _ => a == b,
    }
}

/// The record's custom field values from its cells (sent along with a
/// changed one, as UPDATE does).
fn remote_custom_fields(def: &TableDef, cells: &[Cell]) -> Map<String, Value> {
    def.index_of("custom_fields")
        .and_then(|i| cells.get(i))
        .and_then(|c| match c {
            Cell::Text(t) => serde_json::from_str::<Value>(t).ok(),
            _ => None,
        })
        .and_then(|v| match v {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .unwrap_or_default()
}

/// What a plan-mode pull would write.
struct PullPlan {
    entries: Vec<PlanEntry>,
    /// Rows with queued changes: the push decides them, the pull skips them.
    pending: HashSet<(String, i64)>,
    /// Tables the pull would create, with their columns.
    created: HashMap<String, Vec<String>>,
}

/// The target as the pull sees it: every batch skips rows with queued
/// changes; in plan mode batches are recorded instead of written.
struct PullTarget<'a> {
    inner: &'a mut dyn Target,
    plan: Option<PullPlan>,
}

impl PullTarget<'_> {
    fn created(&self, table: &str) -> bool {
        self.plan
            .as_ref()
            .is_some_and(|p| p.created.contains_key(table))
    }

    fn is_pending(&self, table: &str, id: i64) -> bool {
        self.plan
            .as_ref()
            .is_some_and(|p| p.pending.contains(&(table.to_string(), id)))
    }

    async fn plan_batch(
        &mut self,
        spec: &TableSpec,
        batch: &Batch,
    ) -> Result<BatchOutcome, TargetError> {
        let name = spec.name.as_str();
        let upserts: Vec<i64> = batch
            .upserts
            .iter()
            .map(|r| r.id)
            .filter(|id| !self.is_pending(name, *id))
            .collect();
        let deletes: Vec<i64> = batch
            .deletes
            .iter()
            .copied()
            .filter(|id| !self.is_pending(name, *id))
            .collect();
        let existing: HashSet<i64> = match self.created(name) || spec.columns.is_empty() {
            true => HashSet::new(),
            false => {
                let mut ids = upserts.clone();
                ids.extend(&deletes);
                self.inner
                    .fingerprints(name, &ids)
                    .await?
                    .into_keys()
                    .collect()
            }
        };
        let mut outcome = BatchOutcome::default();
        let mut entries = Vec::new();
        for id in upserts {
            let action = match existing.contains(&id) {
                true => {
                    outcome.updated += 1;
                    "update"
                }
                false => {
                    outcome.inserted += 1;
                    "insert"
                }
            };
            entries.push((action, id));
        }
        for id in deletes.into_iter().filter(|id| existing.contains(id)) {
            outcome.deleted += 1;
            entries.push(("delete", id));
        }
        if let Some(plan) = self.plan.as_mut() {
            plan.entries
                .extend(entries.into_iter().map(|(action, id)| PlanEntry {
                    table: name.to_string(),
                    side: Side::Target.name().to_string(),
                    action: action.to_string(),
                    row_id: Some(id),
                    detail: "from Productive".to_string(),
                }));
        }
        Ok(outcome)
    }
}

#[async_trait]
impl Target for PullTarget<'_> {
    async fn prepare(&mut self) -> Result<(), TargetError> {
        self.inner.prepare().await
    }

    async fn columns(&mut self, table: &str) -> Result<Option<Vec<String>>, TargetError> {
        if let Some(columns) = self.plan.as_ref().and_then(|p| p.created.get(table)) {
            return Ok(Some(columns.clone()));
        }
        self.inner.columns(table).await
    }

    async fn create_table(&mut self, spec: &TableSpec) -> Result<(), TargetError> {
        match self.plan.as_mut() {
            Some(plan) => {
                plan.entries.push(PlanEntry {
                    table: spec.name.clone(),
                    side: Side::Target.name().to_string(),
                    action: "create table".to_string(),
                    row_id: None,
                    detail: format!("{} columns", spec.columns.len()),
                });
                let columns = spec.columns.iter().map(|c| c.name.clone()).collect();
                plan.created.insert(spec.name.clone(), columns);
                Ok(())
            }
            None => self.inner.create_table(spec).await,
        }
    }

    async fn add_column(&mut self, table: &str, column: &ColumnSpec) -> Result<(), TargetError> {
        match self.plan.as_mut() {
            Some(plan) => {
                plan.entries.push(PlanEntry {
                    table: table.to_string(),
                    side: Side::Target.name().to_string(),
                    action: "add column".to_string(),
                    row_id: None,
                    detail: column.name.clone(),
                });
                Ok(())
            }
            None => self.inner.add_column(table, column).await,
        }
    }

    async fn state(&mut self, table: &str) -> Result<Option<TableState>, TargetError> {
        self.inner.state(table).await
    }

    async fn fingerprints(
        &mut self,
        table: &str,
        ids: &[i64],
    ) -> Result<HashMap<i64, String>, TargetError> {
        if self.created(table) {
            return Ok(HashMap::new());
        }
        self.inner.fingerprints(table, ids).await
    }

    async fn ids(&mut self, table: &str) -> Result<HashSet<i64>, TargetError> {
        if self.created(table) {
            return Ok(HashSet::new());
        }
        self.inner.ids(table).await
    }

    async fn queued_failures(&mut self, table: &str) -> Result<Vec<i64>, TargetError> {
        self.inner.queued_failures(table).await
    }

    async fn install_capture(&mut self, table: &str) -> Result<(), TargetError> {
        self.inner.install_capture(table).await
    }

    async fn captured_changes(&mut self, after: i64) -> Result<Vec<CapturedChange>, TargetError> {
        self.inner.captured_changes(after).await
    }

    async fn prepare_sync(&mut self) -> Result<(), TargetError> {
        self.inner.prepare_sync().await
    }

    async fn rows(
        &mut self,
        spec: &TableSpec,
        ids: &[i64],
    ) -> Result<HashMap<i64, Vec<Cell>>, TargetError> {
        self.inner.rows(spec, ids).await
    }

    async fn refusals(&mut self, table: &str) -> Result<HashMap<i64, Refusal>, TargetError> {
        self.inner.refusals(table).await
    }

    async fn apply_sync(&mut self, write: &SyncWrite) -> Result<(), TargetError> {
        self.inner.apply_sync(write).await
    }

    async fn store_plan(&mut self, entries: &[PlanEntry]) -> Result<(), TargetError> {
        self.inner.store_plan(entries).await
    }

    async fn commit(
        &mut self,
        spec: &TableSpec,
        batch: &Batch,
    ) -> Result<BatchOutcome, TargetError> {
        if self.plan.is_some() {
            return self.plan_batch(spec, batch).await;
        }
        let mut guarded = batch.clone();
        guarded.skip_pending = true;
        self.inner.commit(spec, &guarded).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_compares_without_key_order() {
        let a = Cell::Text(r#"{"601":"611","602":["621"]}"#.into());
        let b = Cell::Text(r#"{"602": ["621"], "601": "611"}"#.into());
        assert!(same_cell(SqlType::Jsonb, &a, &b));
        assert!(!same_cell(SqlType::Text, &a, &b));
        let c = Cell::Text(r#"{"601":"612"}"#.into());
        assert!(!same_cell(SqlType::Jsonb, &a, &c));
    }

    #[test]
    fn policies_parse_by_name() {
        for p in [
            ConflictPolicy::RemoteWins,
            ConflictPolicy::LocalWins,
            ConflictPolicy::NewestWins,
        ] {
            assert_eq!(p.name().parse::<ConflictPolicy>(), Ok(p));
        }
        assert_eq!(ConflictPolicy::default(), ConflictPolicy::RemoteWins);
        assert!("last-wins".parse::<ConflictPolicy>().is_err());
    }

    #[test]
    fn only_tables_with_writes_and_change_markers_sync() {
        let options = |t: &str| SyncOptions {
            tables: Some(vec![t.to_string()]),
            ..Default::default()
        };
        assert!(sync_tables(&SyncOptions::default()).is_ok());
        assert!(matches!(
            sync_tables(&options("workflows")),
            Err(SyncError::NotSyncable(..))
        ));
        assert!(matches!(
            sync_tables(&options("nope")),
            Err(SyncError::UnknownTable(_))
        ));
        // Projects show only creation by date; the feed shows updates.
        let projects = Catalog::get().table("projects").unwrap();
        assert!(!change_marker(projects).shows_updates());
        assert!(sync_tables(&options("projects")).is_ok());
        // Time entries take writes but have no change marker at all.
        assert!(matches!(
            sync_tables(&options("time_entries")),
            Err(SyncError::NotSyncable(..))
        ));
    }
}
