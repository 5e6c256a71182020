//! The replication engine: Productive tables into a [`Target`] database.
//!
//! Per table, a run:
//! 1. creates the table, or adds the columns it lacks (a new custom field);
//!    a table that gained columns is copied in full again so old rows get
//!    their values;
//! 2. fetches again the records that failed last run, by id;
//! 3. copies the table in full (first run, `--full`, or a table without a
//!    change marker), deleting the ids the API no longer lists (after asking
//!    for them by id once more), or fetches
//!    only the records whose change marker is at or after the watermark;
//! 4. on incremental runs, applies what the activity feed says: deletions,
//!    and updates of tables whose marker only shows creation.
//!
//! Every page is one transaction of upserts, so a killed run leaves whole
//! pages and the next run re-reads them without duplicates. The watermark
//! is stored with the last page of a table and only moves to the newest
//! marker of a row that is in the target; because the API's date filters
//! take dates, each incremental read starts two days before the watermark
//! (time zones of the API and of the records) and unchanged rows are
//! recognised by their fingerprint and not written again.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use indicatif::ProgressBar;
use serde_json::Value;
use tracing::{info, warn};

use super::progress::{Progress, TableSummary};
use super::target::{
    Batch, BatchOutcome, ColumnSpec, Row, TableSpec, TableState, Target, TargetError,
};
use super::value::{cell, row_fingerprint};
use crate::api::document::ResourceObject;
use crate::api::{
    ApiClient, ApiError, FilterCond, FilterExpr, FilterOp, ListRequest, RequestStats,
};
use crate::catalog::{Catalog, FilterKind, Table};
use crate::gateway::custom_fields::{CustomFieldColumns, DefinitionCache};
use crate::table::TableDef;
use crate::table::convert;
use crate::table::schema::ColumnSource;

/// Tables read incrementally when the catalog lists a change marker for
/// them; every other table is copied in full on each run.
pub const INCREMENTAL_TABLES: [&str; 11] = [
    "activities",
    "bookings",
    "budgets",
    "comments",
    "companies",
    "deals",
    "expenses",
    "invoices",
    "people",
    "projects",
    "tasks",
];

/// Days re-read before a watermark: the API filters by date, and a
/// record's date depends on the time zone it is written in.
const OVERLAP_DAYS: i64 = 2;

/// Ids per `filter[id]=` request when fetching records by id.
const IDS_PER_REQUEST: usize = 50;

/// State key of a table's position in the activity feed.
fn feed_key(table: &str) -> String {
    format!("{table}:activity_feed")
}

/// What a replication run should do.
#[derive(Debug, Clone, Default)]
pub struct ReplicateOptions {
    /// `sqlite:FILE` or a `postgres://` URL.
    pub target: String,
    /// Only these tables (SQL names); `None`: every table.
    pub tables: Option<Vec<String>>,
    /// Copy every table in full, ignoring watermarks.
    pub full: bool,
    /// Add a column per custom field.
    pub use_custom_fields: bool,
    /// Declare foreign keys between replicated tables.
    pub foreign_keys: bool,
}

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum ReplicateError {
    #[error("unknown table {0:?} (see the table list of `productive-pg serve`)")]
    UnknownTable(String),
    #[error("target database: {0}")]
    Target(#[from] TargetError),
    #[error("Productive API: {0}")]
    Api(#[from] ApiError),
}

/// How a table's changed records can be found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeMarker {
    /// A date filter (`updated_at` or `created_at`); `updates` says
    /// whether it shows updates too. `attribute` is the timestamp the
    /// records carry for it; where they carry none (expenses filter on
    /// `updated_at` without returning it) the watermark is the time the
    /// table's read started.
    Filter {
        filter: String,
        attribute: Option<String>,
        updates: bool,
    },
    /// No filter, but a `created_at` sort: new records come first when
    /// sorted newest first, so reading stops at the watermark.
    CreationSort { attribute: String },
    /// Nothing: the table is copied in full.
    None,
}

impl ChangeMarker {
    /// Whether the marker shows updated records.
    pub fn shows_updates(&self) -> bool {
        matches!(self, ChangeMarker::Filter { updates: true, .. })
    }
}

/// The change marker of `table`, from the filters and sorts the catalog
/// lists for its resource.
pub fn change_marker(table: &Table) -> ChangeMarker {
    if !INCREMENTAL_TABLES.contains(&table.name) {
        return ChangeMarker::None;
    }
    let resource = &table.resource;
    for (name, updates) in [("updated_at", true), ("created_at", false)] {
        let filter = resource.filter(name).filter(|f| f.kind == FilterKind::Date);
        if filter.is_some() {
            return ChangeMarker::Filter {
                filter: name.to_string(),
                attribute: resource.attribute(name).map(|a| a.name.clone()),
                updates,
            };
        }
    }
    if resource.has_sort("created_at") && resource.attribute("created_at").is_some() {
        return ChangeMarker::CreationSort {
            attribute: "created_at".into(),
        };
    }
    ChangeMarker::None
}

/// What one run did.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// One entry per table, then one for the activity feed when read.
    pub tables: Vec<TableSummary>,
}

impl RunReport {
    /// Whether anything failed.
    pub fn failed(&self) -> bool {
        self.tables.iter().any(TableSummary::failed)
    }

    /// API requests of the whole run.
    pub fn requests(&self) -> u64 {
        self.tables.iter().map(|t| t.requests).sum()
    }

    /// The entry of `table`.
    pub fn table(&self, table: &str) -> Option<&TableSummary> {
        self.tables.iter().find(|t| t.table == table)
    }
}

/// Changes the activity feed reports, by JSON:API type.
#[derive(Debug, Default)]
struct FeedChanges {
    updated: HashMap<String, BTreeSet<i64>>,
    deleted: HashMap<String, BTreeSet<i64>>,
}

/// Replicates the tables `options` names into its target.
///
/// Failures of single tables are reported in the [`RunReport`] (and make
/// [`RunReport::failed`] true); only problems that stop the whole run are
/// errors.
///
/// # Errors
/// An unknown table, a target that cannot be opened, custom field
/// definitions that cannot be read.
pub async fn run(
    client: &ApiClient,
    options: &ReplicateOptions,
    progress: &Progress,
) -> Result<RunReport, ReplicateError> {
    // An unknown table is reported before the target is opened.
    selected_tables(options)?;
    let mut target = super::target::open(&options.target).await?;
    run_on(client, options, target.as_mut(), progress).await
}

/// The tables `options` names, or every table.
fn selected_tables(options: &ReplicateOptions) -> Result<Vec<&'static Table>, ReplicateError> {
    let catalog = Catalog::get();
    match &options.tables {
        Some(names) => names
            .iter()
            .map(|n| {
                catalog
                    .table(n.trim())
                    .ok_or_else(|| ReplicateError::UnknownTable(n.trim().to_string()))
            })
            .collect(),
        None => Ok(catalog.tables().iter().collect()),
    }
}

/// [`run`] on a target already open (`options.target` is not read).
///
/// # Errors
/// As [`run`].
pub async fn run_on(
    client: &ApiClient,
    options: &ReplicateOptions,
    target: &mut dyn Target,
    progress: &Progress,
) -> Result<RunReport, ReplicateError> {
    let catalog = Catalog::get();
    let tables = selected_tables(options)?;
    target.prepare().await?;
    let run_started = Utc::now();

    let custom = if options.use_custom_fields {
        let cache = DefinitionCache::for_client(client);
        // A run must see fields added since the last one.
        cache.refresh().await;
        let taken = |t: &str| -> HashSet<String> {
            catalog
                .table(t)
                .map(|table| {
                    TableDef::new(table, &[])
                        .columns
                        .into_iter()
                        .map(|c| c.name)
                        .collect()
                })
                .unwrap_or_default()
        };
        (*cache.columns(client, &taken).await?).clone()
    } else {
        CustomFieldColumns::new()
    };

    let mut report = RunReport::default();

    // Each incremental table remembers how far into the activity feed it
    // has taken changes; the feed is read once, from the oldest position.
    let mut positions: HashMap<&str, Option<DateTime<Utc>>> = HashMap::new();
    for t in tables
        .iter()
        .filter(|t| change_marker(t) != ChangeMarker::None)
    {
        let position = match options.full {
            true => None,
            false => target
                .state(&feed_key(t.name))
                .await?
                .and_then(|s| s.watermark),
        };
        positions.insert(t.name, position);
    }
    let mut feed = None;
    let mut feed_newest = None;
    if let Some(since) = positions.values().flatten().min().copied() {
        let stats = RequestStats::default();
        let result = read_feed(client, since, &stats).await;
        let mut summary = TableSummary {
            table: "(activity feed)".into(),
            mode: "incremental",
            ..Default::default()
        };
        match result {
            Ok((changes, newest)) => {
                feed_newest = newest.max(Some(since));
                feed = Some(changes);
            }
            Err(e) => {
                warn!(error = %e, "reading the activity feed failed");
                summary.error = Some(e.to_string());
            }
        }
        summary.requests = stats.requests();
        report.tables.push(summary);
    }

    let selected: HashSet<&str> = tables.iter().map(|t| t.name).collect();
    let mut jobs: Vec<(&'static Table, TableDef, TableSpec)> = tables
        .iter()
        .map(|table| {
            let columns = custom.get(table.name).cloned().unwrap_or_default();
            let def = TableDef::new(table, &columns);
            let spec = table_spec(&def, options.foreign_keys.then_some(&selected));
            (*table, def, spec)
        })
        .collect();
    if options.foreign_keys {
        jobs = referenced_first(jobs);
    }
    for (table, def, spec) in &jobs {
        let bar = progress.table(table.name);
        // A table that never took changes from the feed cannot trust an
        // incremental read: deletions since its last copy would be missed.
        let position = positions.get(table.name).copied();
        let full = options.full || position == Some(None);
        let mut job = TableJob {
            client,
            target: &mut *target,
            table,
            def,
            spec,
            stats: Arc::new(RequestStats::default()),
            summary: TableSummary {
                table: table.name.to_string(),
                mode: "full",
                ..Default::default()
            },
            bar: bar.clone(),
        };
        let mut result = job.run(full, feed.as_ref()).await;
        let mut summary = job.summary;
        summary.requests = job.stats.requests();

        // The table's feed position moves once the table took the feed's
        // changes in (an incremental read) or did not need them (a copy
        // in full covers everything before the run started).
        let new_position = match summary.mode {
            "full" => feed_newest.or(Some(run_started)),
            _ => feed_newest,
        };
        if result.is_ok()
            && position.is_some()
            && let Some(watermark) = new_position
        {
            let state = TableState {
                watermark: Some(watermark),
                completed_at: Some(Utc::now()),
            };
            let spec = TableSpec {
                name: feed_key(table.name),
                columns: Vec::new(),
            };
            let batch = Batch {
                state: Some(state),
                ..Default::default()
            };
            if let Err(e) = target.commit(&spec, &batch).await {
                result = Err(e.into());
            }
        }
        if let Err(e) = result {
            warn!(table = table.name, error = %e, "table failed");
            summary.error = Some(e.to_string());
        }
        bar.finish_and_clear();
        info!(
            table = table.name,
            mode = summary.mode,
            inserted = summary.inserted,
            updated = summary.updated,
            deleted = summary.deleted,
            failed = summary.failed,
            requests = summary.requests,
            "table replicated"
        );
        report.tables.push(summary);
    }
    Ok(report)
}

/// Orders tables so that a table comes after the tables its foreign keys
/// point at (a cycle is broken in the given order), so a page never
/// references a record of a table not written yet.
fn referenced_first<T>(mut jobs: Vec<(T, TableDef, TableSpec)>) -> Vec<(T, TableDef, TableSpec)> {
    let mut ordered = Vec::with_capacity(jobs.len());
    let mut done: HashSet<String> = HashSet::new();
    while !jobs.is_empty() {
        let ready = jobs
            .iter()
            .position(|(_, _, spec)| {
                spec.columns.iter().all(|c| {
                    c.references
                        .as_ref()
                        .is_none_or(|r| done.contains(r) || !jobs.iter().any(|j| j.2.name == *r))
                })
            })
            .unwrap_or(0);
        let job = jobs.remove(ready);
        done.insert(job.2.name.clone());
        ordered.push(job);
    }
    ordered
}

/// The target table for `def`; with `references`, relationship columns
/// pointing at another of those tables get a foreign key. References of a
/// table to itself (a task's parent task) get none: a page may hold a
/// child before its parent.
pub(crate) fn table_spec(def: &TableDef, references: Option<&HashSet<&str>>) -> TableSpec {
    let catalog = Catalog::get();
    let columns = def
        .columns
        .iter()
        .map(|c| {
            let target = match (&c.source, references) {
                (ColumnSource::RelationshipId { relationship }, Some(selected)) => def
                    .table
                    .resource
                    .relationship(relationship)
                    .and_then(|r| r.target_type.as_deref())
                    .and_then(|kind| {
                        // A type served by two tables (deals and budgets)
                        // has no single table to point at.
                        let mut owners = catalog
                            .tables()
                            .iter()
                            .filter(|t| t.resource.json_api_type == kind);
                        match (owners.next(), owners.next()) {
                            (Some(t), None)
                                if selected.contains(t.name) && t.name != def.table.name =>
                            {
                                Some(t.name.to_string())
                            }
                            _ => None,
                        }
                    }),
                _ => None,
            };
            ColumnSpec {
                name: c.name.clone(),
                sql_type: c.sql_type,
                references: target,
            }
        })
        .collect();
    TableSpec {
        name: def.table.name.to_string(),
        columns,
    }
}

/// The list request of a table: its fixed filter and the includes its
/// relationship columns need.
pub(crate) fn base_request(def: &TableDef) -> ListRequest {
    let mut req = ListRequest::new(def.table.endpoint());
    if let Some(fixed) = def.table.fixed_filter {
        req.filters
            .push(FilterExpr::Cond(FilterCond::eq(fixed.name, fixed.value)));
    }
    let mut includes: Vec<String> = Vec::new();
    for c in &def.columns {
        for i in c.includes() {
            if !includes.contains(&i) {
                includes.push(i);
            }
        }
    }
    req.include = includes;
    req
}

/// The records of `def`'s table with these ids that exist (at most
/// [`IDS_PER_REQUEST`] ids a call keeps it to one request per page).
pub(crate) async fn fetch_records(
    client: &ApiClient,
    def: &TableDef,
    ids: &[i64],
    stats: &RequestStats,
) -> Result<Vec<ResourceObject>, ApiError> {
    let table = def.table;
    let base = base_request(def);
    let mut records = Vec::new();
    if table.resource.filter("id").is_some() {
        for chunk in ids.chunks(IDS_PER_REQUEST) {
            let mut req = base.clone();
            req.filters.push(FilterExpr::Cond(FilterCond::any_of(
                "id",
                chunk.iter().map(i64::to_string).collect(),
            )));
            let mut page = 1;
            loop {
                let doc = client.list_page(&req, page, stats).await?;
                let total = doc.meta.total_pages.unwrap_or(1);
                let empty = doc.data.is_empty();
                records.extend(doc.data);
                if page >= total || empty {
                    break;
                }
                page += 1;
            }
        }
    } else {
        for id in ids {
            let found = client
                .get_one(table.endpoint(), &id.to_string(), &base.include, stats)
                .await?;
            records.extend(found.map(|d| d.data));
        }
    }
    // A record of the other table on a shared endpoint (a budget fetched
    // by id as a deal) does not belong here.
    if let Some(fixed) = table.fixed_filter {
        records.retain(|r| {
            r.attributes.get(fixed.attribute) == Some(&Value::Bool(fixed.attribute_value))
        });
    }
    Ok(records)
}

/// A record as a row of `def`'s table.
///
/// # Errors
/// A message naming the column whose value does not fit its type.
pub(crate) fn record_row(def: &TableDef, record: &ResourceObject) -> Result<Row, String> {
    let id = record
        .id
        .parse::<i64>()
        .map_err(|_| format!("record id {:?} is not a number", record.id))?;
    let cells = def
        .columns
        .iter()
        .map(|c| cell(record, c).map_err(|e| format!("{}: {e}", c.name)))
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Row {
        id,
        fingerprint: row_fingerprint(&cells),
        cells,
    })
}

/// The feed's `item_type` for a JSON:API type: the singular of the
/// resource name (`Task`, `Person`, `Company`).
pub fn item_type_name(json_api_type: &str) -> Option<String> {
    let plural = Catalog::get().resource(json_api_type)?.name.clone();
    Some(if let Some(stem) = plural.strip_suffix("People") {
        format!("{stem}Person")
    } else if let Some(stem) = plural.strip_suffix("ies") {
        format!("{stem}y")
    } else if plural.ends_with("uses") || plural.ends_with("sses") {
        plural[..plural.len() - 2].to_string()
    } else if let Some(stem) = plural.strip_suffix('s') {
        stem.to_string()
    } else {
        plural
    })
}

/// Reads the activity feed from two days before `since`: updated and
/// deleted ids per JSON:API type, and the newest entry's time.
async fn read_feed(
    client: &ApiClient,
    since: DateTime<Utc>,
    stats: &RequestStats,
) -> Result<(FeedChanges, Option<DateTime<Utc>>), ApiError> {
    let types: BTreeMap<String, String> = Catalog::get()
        .tables()
        .iter()
        .filter_map(|t| {
            let kind = t.resource.json_api_type.clone();
            item_type_name(&kind).map(|name| (name, kind))
        })
        .collect();
    let mut req = ListRequest::new("/activities");
    req.filters.push(FilterExpr::Cond(FilterCond::op(
        "created_at",
        FilterOp::Gt,
        overlap_date(since),
    )));
    let mut changes = FeedChanges::default();
    let mut newest: Option<DateTime<Utc>> = None;
    let mut page = 1;
    loop {
        let doc = client.list_page(&req, page, stats).await?;
        for a in &doc.data {
            let created = a.attributes.get("created_at").and_then(timestamp);
            newest = newest.max(created);
            let event = a.attributes.get("event").and_then(Value::as_str);
            let kind = a
                .attributes
                .get("item_type")
                .and_then(Value::as_str)
                .and_then(|t| types.get(t));
            let id = a
                .attributes
                .get("item_id")
                .and_then(|v| convert::read_i64(v).ok());
            let (Some(kind), Some(id)) = (kind, id) else {
                continue;
            };
            let set = match event {
                Some("delete") => &mut changes.deleted,
                Some("update") => &mut changes.updated,
                _ => continue,
            };
            set.entry(kind.clone()).or_default().insert(id);
        }
        let total = doc.meta.total_pages.unwrap_or(1);
        if page >= total || doc.data.is_empty() {
            break;
        }
        page += 1;
    }
    Ok((changes, newest))
}

/// The date filter value that re-reads the overlap window before `at`.
fn overlap_date(at: DateTime<Utc>) -> String {
    (at - Duration::days(OVERLAP_DAYS + 1))
        .format("%Y-%m-%d")
        .to_string()
}

pub(crate) fn timestamp(v: &Value) -> Option<DateTime<Utc>> {
    convert::read_timestamp(v)
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_micros)
}

/// One table of one run.
struct TableJob<'a> {
    client: &'a ApiClient,
    target: &'a mut dyn Target,
    table: &'static Table,
    def: &'a TableDef,
    spec: &'a TableSpec,
    stats: Arc<RequestStats>,
    summary: TableSummary,
    bar: ProgressBar,
}

/// What a batch of records came to.
#[derive(Default)]
struct PageResult {
    /// The newest change marker among rows now in the target.
    newest: Option<DateTime<Utc>>,
}

impl TableJob<'_> {
    async fn run(&mut self, full: bool, feed: Option<&FeedChanges>) -> Result<(), ReplicateError> {
        let name = self.table.name;

        // Table and columns.
        let mut state = self.target.state(name).await?;
        match self.target.columns(name).await? {
            None => {
                self.target.create_table(self.spec).await?;
                state = None;
            }
            Some(existing) => {
                let missing: Vec<&ColumnSpec> = self
                    .spec
                    .columns
                    .iter()
                    .filter(|c| !existing.contains(&c.name))
                    .collect();
                for column in &missing {
                    info!(table = name, column = %column.name, "adding a column");
                    self.target.add_column(name, column).await?;
                }
                if !missing.is_empty() {
                    // Old rows need the new columns' values: copy in full.
                    state = None;
                }
            }
        }

        let marker = change_marker(self.table);
        let incremental_from = match (&state, &marker) {
            (_, ChangeMarker::None) => None,
            _ if full => None,
            (Some(s), _) => s.watermark,
            (None, _) => None,
        };

        // Records that failed before, fetched again by id.
        let queued = self.target.queued_failures(name).await?;
        if !queued.is_empty() {
            info!(
                table = name,
                count = queued.len(),
                "retrying failed records"
            );
            self.fetch_ids(&queued, true).await?;
        }

        let previous = state.as_ref().and_then(|s| s.watermark);
        let started = Utc::now();
        let newest = match incremental_from {
            None => self.copy_full().await?,
            Some(since) => {
                self.summary.mode = "incremental";
                let newest = self.copy_changed(&marker, since).await?;
                if let Some(feed) = feed {
                    self.apply_feed(feed, &marker).await?;
                }
                newest
            }
        };
        let state = TableState {
            watermark: match marker {
                ChangeMarker::None => None,
                ChangeMarker::Filter {
                    attribute: None, ..
                } => Some(started),
                _ => newest.max(previous),
            },
            completed_at: Some(Utc::now()),
        };
        self.commit(Batch {
            state: Some(state),
            ..Default::default()
        })
        .await?;
        Ok(())
    }

    /// The list request of this table: its fixed filter and the includes
    /// its relationship columns need.
    fn base_request(&self) -> ListRequest {
        base_request(self.def)
    }

    /// Copies every record, then deletes rows the API no longer lists.
    async fn copy_full(&mut self) -> Result<Option<DateTime<Utc>>, ReplicateError> {
        let mut req = self.base_request();
        if self.table.resource.has_sort("id") {
            // New records land on the last page instead of shifting others.
            req.sort = vec!["id".into()];
        }
        let mut seen: HashSet<i64> = HashSet::new();
        let first = self.client.list_page(&req, 1, &self.stats).await?;
        self.bar.set_length(first.meta.total_count.unwrap_or(0));
        let total = if first.data.is_empty() {
            1
        } else {
            first.meta.total_pages.unwrap_or(1).max(1)
        };

        // Later pages are fetched a few at a time while earlier ones are
        // written, in page order; the client's rate budget paces them.
        let client = self.client.clone();
        let stats = self.stats.clone();
        let concurrency = self.client.config().page_concurrency.clamp(1, 4);
        let mut pages = futures::stream::iter(2..=total)
            .map(move |page| {
                let (client, stats, req) = (client.clone(), stats.clone(), req.clone());
                async move { client.list_page(&req, page, &stats).await }
            })
            .buffered(concurrency);
        let mut next = Some(first);
        let mut newest = None;
        loop {
            let doc = match next.take() {
                Some(doc) => doc,
                None => match pages.next().await {
                    Some(doc) => doc?,
                    None => break,
                },
            };
            seen.extend(doc.data.iter().filter_map(|r| r.id.parse::<i64>().ok()));
            let result = self.write_records(&doc.data).await?;
            newest = newest.max(result.newest);
            self.bar.inc(doc.data.len() as u64);
        }
        let mut gone: Vec<i64> = self
            .target
            .ids(self.table.name)
            .await?
            .difference(&seen)
            .copied()
            .collect();
        gone.sort_unstable();
        // Offset pages shift when records are created or deleted during the
        // copy, so a missing id is asked for once more before its row goes.
        if !gone.is_empty() {
            self.fetch_ids(&gone, true).await?;
        }
        Ok(newest)
    }

    /// Copies the records whose marker is on or after the overlap window
    /// before `since`.
    async fn copy_changed(
        &mut self,
        marker: &ChangeMarker,
        since: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, ReplicateError> {
        let mut req = self.base_request();
        let from = overlap_date(since);
        let stop_before = since - Duration::days(OVERLAP_DAYS);
        match marker {
            ChangeMarker::Filter { filter, .. } => {
                req.filters
                    .push(FilterExpr::Cond(FilterCond::op(filter, FilterOp::Gt, from)));
            }
            ChangeMarker::CreationSort { attribute } => {
                req.sort = vec![format!("-{attribute}")];
            }
            ChangeMarker::None => return self.copy_full().await,
        }
        let mut newest = None;
        let mut page = 1;
        loop {
            let doc = self.client.list_page(&req, page, &self.stats).await?;
            if page == 1 {
                self.bar.set_length(doc.meta.total_count.unwrap_or(0));
            }
            let result = self.write_records(&doc.data).await?;
            newest = newest.max(result.newest);
            self.bar.inc(doc.data.len() as u64);
            let total = doc.meta.total_pages.unwrap_or(1);
            let reached_old = match marker {
                ChangeMarker::CreationSort { attribute } => doc.data.last().is_some_and(|r| {
                    r.attributes
                        .get(attribute)
                        .and_then(timestamp)
                        .is_some_and(|t| t < stop_before)
                }),
                _ => false,
            };
            if page >= total || doc.data.is_empty() || reached_old {
                break;
            }
            page += 1;
        }
        Ok(newest)
    }

    /// Applies the feed's deletions of this table's type, and fetches
    /// again the records it says were updated when the marker cannot.
    async fn apply_feed(
        &mut self,
        feed: &FeedChanges,
        marker: &ChangeMarker,
    ) -> Result<(), ReplicateError> {
        let kind = self.table.json_api_type();
        if let Some(deleted) = feed.deleted.get(kind) {
            let ids: Vec<i64> = deleted.iter().copied().collect();
            self.commit(Batch {
                resolved: ids.clone(),
                deletes: ids,
                ..Default::default()
            })
            .await?;
        }
        if !marker.shows_updates()
            && let Some(updated) = feed.updated.get(kind)
        {
            let deleted = feed.deleted.get(kind);
            let ids: Vec<i64> = updated
                .iter()
                .filter(|id| deleted.is_none_or(|d| !d.contains(id)))
                .copied()
                .collect();
            self.fetch_ids(&ids, false).await?;
        }
        Ok(())
    }

    /// Fetches records by id and writes them. With `resolve_missing`, ids
    /// the API does not return any more are removed (row and queue entry).
    async fn fetch_ids(
        &mut self,
        ids: &[i64],
        resolve_missing: bool,
    ) -> Result<(), ReplicateError> {
        for chunk in ids.chunks(IDS_PER_REQUEST) {
            let records = fetch_records(self.client, self.def, chunk, &self.stats).await?;
            self.write_records(&records).await?;
            if resolve_missing {
                let found: HashSet<i64> =
                    records.iter().filter_map(|r| r.id.parse().ok()).collect();
                let gone: Vec<i64> = chunk
                    .iter()
                    .filter(|id| !found.contains(id))
                    .copied()
                    .collect();
                if !gone.is_empty() {
                    self.commit(Batch {
                        resolved: gone.clone(),
                        deletes: gone,
                        ..Default::default()
                    })
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// Converts and writes one page of records in one transaction.
    async fn write_records(
        &mut self,
        records: &[ResourceObject],
    ) -> Result<PageResult, ReplicateError> {
        let marker_attribute = match change_marker(self.table) {
            ChangeMarker::Filter { attribute, .. } => attribute,
            ChangeMarker::CreationSort { attribute } => Some(attribute),
            ChangeMarker::None => self
                .table
                .resource
                .attribute("updated_at")
                .map(|a| a.name.clone()),
        };
        let mut batch = Batch::default();
        let mut result = PageResult::default();
        let mut rows = Vec::with_capacity(records.len());
        for record in records {
            let Ok(id) = record.id.parse::<i64>() else {
                warn!(table = self.table.name, id = %record.id, "record id is not a number");
                continue;
            };
            match record_row(self.def, record) {
                Ok(row) => {
                    let marker = marker_attribute
                        .as_ref()
                        .and_then(|a| record.attributes.get(a))
                        .and_then(timestamp);
                    result.newest = result.newest.max(marker);
                    rows.push(row);
                }
                Err(reason) => {
                    warn!(table = self.table.name, id, %reason, "record cannot be stored");
                    batch.failures.push((id, reason));
                }
            }
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let stored = self.target.fingerprints(self.table.name, &ids).await?;
        for row in rows {
            if stored.get(&row.id) == Some(&row.fingerprint) {
                batch.resolved.push(row.id);
            } else {
                batch.upserts.push(row);
            }
        }
        self.summary.failed += batch.failures.len() as u64;
        self.commit(batch).await?;
        Ok(result)
    }

    async fn commit(&mut self, batch: Batch) -> Result<BatchOutcome, ReplicateError> {
        let outcome = self.target.commit(self.spec, &batch).await?;
        self.summary.inserted += outcome.inserted;
        self.summary.updated += outcome.updated;
        self.summary.deleted += outcome.deleted;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_follow_the_catalog() {
        let c = Catalog::get();
        let marker = |t: &str| change_marker(c.table(t).unwrap());
        assert!(marker("tasks").shows_updates());
        assert!(marker("bookings").shows_updates());
        assert!(matches!(
            marker("expenses"),
            ChangeMarker::Filter {
                attribute: None,
                updates: true,
                ..
            }
        ));
        assert_eq!(
            marker("projects"),
            ChangeMarker::Filter {
                filter: "created_at".into(),
                attribute: Some("created_at".into()),
                updates: false
            }
        );
        assert_eq!(
            marker("comments"),
            ChangeMarker::CreationSort {
                attribute: "created_at".into()
            }
        );
        assert_eq!(marker("workflows"), ChangeMarker::None);
        assert_eq!(marker("time_entries"), ChangeMarker::None);
    }

    #[test]
    fn feed_item_types_are_singular_resource_names() {
        assert_eq!(item_type_name("tasks").as_deref(), Some("Task"));
        assert_eq!(item_type_name("people").as_deref(), Some("Person"));
        assert_eq!(item_type_name("companies").as_deref(), Some("Company"));
        assert_eq!(item_type_name("deals").as_deref(), Some("Deal"));
        assert_eq!(
            item_type_name("workflow_statuses").as_deref(),
            Some("WorkflowStatus")
        );
    }

    #[test]
    fn overlap_starts_before_the_watermark_day() {
        let at = DateTime::parse_from_rfc3339("2026-03-10T00:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        // `gt` this date: records dated from 8 March on.
        assert_eq!(overlap_date(at), "2026-03-07");
    }
}
