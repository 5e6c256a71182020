//! The execution plan of a write: collect the rows, validate them all,
//! then send one API request per row.
//!
//! Nothing is sent before every row has passed validation, and nothing is
//! sent at all unless the plan is executed (`EXPLAIN` only displays it).
//! Rows are written one at a time, in order, so that a failure can say
//! exactly which rows were applied: the API has no transactions, and a
//! multi-row statement that fails half way leaves the first rows written.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, RecordBatch, UInt64Array};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, collect,
};
use futures::stream;
use reqwest::Method;
use serde_json::{Map, Value, json};
use tracing::debug;

use super::encode::{attribute_json, cast_column, custom_field_json, linkage, natural_value};
use super::{WriteContext, pair_error, pairs};
use crate::api::document::{Linkage, ResourceObject};
use crate::api::{ApiClient, ApiError, RequestStats, StatementRequests};
use crate::error::{SqlError, codes};
use crate::table::ProductiveOptions;
use crate::table::convert::records_to_batch;
use crate::table::schema::{ColumnDef, ColumnSource, TableDef};

/// The relationships that make a comment visible in the list of comments.
const COMMENT_PARENTS: &[&str] = &[
    "task",
    "deal",
    "company",
    "person",
    "discussion",
    "invoice",
    "purchase_order",
];

/// What a write plan does with its input rows.
#[derive(Debug)]
pub enum WriteKind {
    /// POST each input row.
    Insert,
    /// PATCH each scanned row matching `filter`, with the assignments
    /// (column index, new value) computed on that row.
    Update {
        assignments: Vec<(usize, Arc<dyn PhysicalExpr>)>,
        filter: Option<Arc<dyn PhysicalExpr>>,
        /// The statement had no WHERE clause.
        unfiltered: bool,
    },
    /// DELETE each scanned row matching `filter`.
    Delete {
        filter: Option<Arc<dyn PhysicalExpr>>,
        unfiltered: bool,
    },
}

impl WriteKind {
    fn verb(&self) -> &'static str {
        match self {
            WriteKind::Insert => "INSERT",
            WriteKind::Update { .. } => "UPDATE",
            WriteKind::Delete { .. } => "DELETE",
        }
    }
}

/// A write to one Productive table; yields one row, `count`.
#[derive(Debug)]
pub struct WriteExec {
    job: Arc<Job>,
    /// The rows to insert, or the scan finding the rows to change.
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

#[derive(Debug)]
struct Job {
    def: Arc<TableDef>,
    client: ApiClient,
    kind: WriteKind,
    max_requests: u64,
    unfiltered_limit: u64,
}

fn count_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "count",
        DataType::UInt64,
        false,
    )]))
}

impl WriteExec {
    pub fn new(
        def: Arc<TableDef>,
        client: ApiClient,
        kind: WriteKind,
        input: Arc<dyn ExecutionPlan>,
        options: &ProductiveOptions,
    ) -> WriteExec {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(count_schema()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        WriteExec {
            job: Arc::new(Job {
                def,
                client,
                kind,
                max_requests: options.max_requests,
                unfiltered_limit: options.unfiltered_write_limit,
            }),
            input,
            properties,
        }
    }
}

impl DisplayAs for WriteExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let table = self.job.def.table;
        let request = match self.job.kind {
            WriteKind::Insert => format!("POST {}", table.endpoint()),
            WriteKind::Update { .. } => format!("PATCH {}/{{id}}", table.endpoint()),
            WriteKind::Delete { .. } => format!("DELETE {}/{{id}}", table.endpoint()),
        };
        write!(
            f,
            "ProductiveWrite: {} table={}, request=[{request} per row]",
            self.job.kind.verb(),
            table.name
        )
    }
}

impl ExecutionPlan for WriteExec {
    fn name(&self) -> &str {
        "ProductiveWriteExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match (children.pop(), children.is_empty()) {
            (Some(input), true) => Ok(Arc::new(WriteExec {
                job: self.job.clone(),
                input,
                properties: self.properties.clone(),
            })),
            _ => Err(DataFusionError::Internal(
                "a Productive write has exactly one input".into(),
            )),
        }
    }

    fn execute(
        &self,
        _partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let job = self.job.clone();
        let input = self.input.clone();
        let fut = async move { run(job, input, context).await };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            count_schema(),
            stream::once(fut),
        )))
    }
}

/// One API request of a write, prepared before anything is sent.
#[derive(Debug, Clone)]
pub struct RowWrite {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) body: Option<Value>,
    /// Relationships as known before the answer (sent or scanned), used
    /// where the answer hides a linkage.
    links: Map<String, Value>,
    /// Whether an inserted comment has no parent.
    orphan_comment: bool,
}

impl RowWrite {
    /// Sends the request; answers the record as the API returned it (none
    /// for DELETE) and the id it was written under.
    ///
    /// # Errors
    /// The API's failure; [`ApiError::OutcomeUnknown`] when the request
    /// left but no answer came back.
    pub async fn send(
        &self,
        client: &ApiClient,
        stats: &RequestStats,
    ) -> Result<(String, Option<ResourceObject>), ApiError> {
        debug!(method = %self.method, path = %self.path, "write");
        let doc = client
            .write(self.method.clone(), &self.path, self.body.as_ref(), stats)
            .await?;
        Ok(match doc {
            Some(mut doc) => {
                overlay_links(&mut doc.data, &self.links);
                (doc.data.id.clone(), Some(doc.data))
            }
            None => (
                self.path.rsplit('/').next().unwrap_or_default().to_string(),
                None,
            ),
        })
    }
}

async fn run(
    job: Arc<Job>,
    input: Arc<dyn ExecutionPlan>,
    task: Arc<TaskContext>,
) -> Result<RecordBatch> {
    let context = task.session_config().get_extension::<WriteContext>();
    let batches = collect(input, task.clone()).await?;
    let def = &job.def;

    // Everything is checked before the first request.
    let (writes, matched) = match &job.kind {
        WriteKind::Insert => (prepare_inserts(def, &batches)?, vec![]),
        WriteKind::Update {
            assignments,
            filter,
            unfiltered,
        } => {
            let matched = matching_rows(&batches, filter.as_ref())?;
            check_unfiltered(&job, *unfiltered, &matched)?;
            (prepare_updates(def, &matched, assignments)?, vec![])
        }
        WriteKind::Delete { filter, unfiltered } => {
            let matched = matching_rows(&batches, filter.as_ref())?;
            check_unfiltered(&job, *unfiltered, &matched)?;
            (prepare_deletes(def, &matched)?, matched)
        }
    };

    // The writes share the statement's request cap with the scan that
    // found the rows.
    let statement = task
        .session_config()
        .get_extension::<StatementRequests>()
        .unwrap_or_default();
    // A statement that cannot make all its writes within the cap makes
    // none of them.
    let needed = statement.sent() + writes.len() as u64;
    if job.max_requests > 0 && needed > job.max_requests {
        return Err(ApiError::RequestCapReached {
            limit: job.max_requests,
            sent: statement.sent(),
        }
        .into());
    }
    let stats = RequestStats::for_statement(statement, job.max_requests);
    let total = writes.len();
    let mut applied: Vec<String> = Vec::new();
    let mut records: Vec<ResourceObject> = Vec::new();
    let mut notices = Vec::new();
    for write in writes {
        match write.send(&job.client, &stats).await {
            Ok((id, record)) => {
                if write.orphan_comment {
                    notices.push(format!(
                        "comment {id} has no parent: it is stored, but the Productive API does \
                         not list it in SELECT * FROM comments; read it with WHERE id = {id}"
                    ));
                }
                records.extend(record);
                applied.push(id);
            }
            Err(e) => {
                let err = partial_failure(job.kind.verb(), e, &applied, total);
                if let Some(context) = &context {
                    context.record(vec![], notices);
                }
                return Err(err.into_datafusion());
            }
        }
    }

    let returned = match &job.kind {
        WriteKind::Delete { .. } => matched,
        _ => {
            let columns: Vec<&ColumnDef> = def.columns.iter().collect();
            vec![
                records_to_batch(def.table.name, &columns, &def.schema, &records)
                    .map_err(SqlError::into_datafusion)?,
            ]
        }
    };
    if let Some(context) = &context {
        context.record(returned, notices);
    }
    let count: ArrayRef = Arc::new(UInt64Array::from(vec![applied.len() as u64]));
    Ok(RecordBatch::try_new(count_schema(), vec![count])?)
}

/// The error of a write that stopped at one row, saying which rows were
/// applied before it.
///
/// A row whose write may or did take effect without an answer to show for
/// it is named too, so nobody repeats it blindly.
pub fn partial_failure(verb: &str, e: ApiError, applied: &[String], total: usize) -> SqlError {
    let effect = e.write_effect();
    let mut err = e.to_sql_error();
    let row = applied.len() + 1;
    let uncertain = effect.map(|effect| format!("row {row} of {total} {effect}"));
    if total <= 1 {
        if let Some(uncertain) = uncertain {
            err.detail = Some(uncertain);
        }
        return err;
    }
    let ids = if applied.is_empty() {
        "none".to_string()
    } else {
        applied.join(", ")
    };
    err.message = format!(
        "{verb} stopped at row {row} of {total}: {}; {} of {total} rows were applied \
         (ids: {ids})",
        err.message,
        applied.len()
    );
    let mut detail = format!("applied ids: {ids}");
    if let Some(uncertain) = uncertain {
        err.message = format!("{}; {uncertain}", err.message);
        detail = format!("{detail}; {uncertain}");
    }
    err.detail = Some(match err.detail.take() {
        Some(d) => format!("{d}; {detail}"),
        None => detail,
    });
    err
}

/// Refuses an UPDATE or DELETE without WHERE that reaches many rows.
fn check_unfiltered(job: &Job, unfiltered: bool, matched: &[RecordBatch]) -> Result<()> {
    let rows: usize = matched.iter().map(RecordBatch::num_rows).sum();
    let limit = job.unfiltered_limit;
    if unfiltered && limit > 0 && rows as u64 > limit {
        return Err(SqlError::new(
            codes::FEATURE_NOT_SUPPORTED,
            format!(
                "{} without WHERE would change all {rows} rows of \"{}\"",
                job.kind.verb(),
                job.def.table.name
            ),
        )
        .with_hint(format!(
            "add a WHERE clause, or allow it with SET productive.unfiltered_write_limit = 0 \
             (it is {limit})"
        ))
        .into_datafusion());
    }
    Ok(())
}

/// The scanned rows the WHERE clause selects.
fn matching_rows(
    batches: &[RecordBatch],
    filter: Option<&Arc<dyn PhysicalExpr>>,
) -> Result<Vec<RecordBatch>> {
    let Some(filter) = filter else {
        return Ok(batches.to_vec());
    };
    let mut out = Vec::new();
    for batch in batches {
        let mask = filter.evaluate(batch)?.into_array(batch.num_rows())?;
        let mask = mask
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(|| DataFusionError::Internal("WHERE is not boolean".into()))?;
        let kept = filter_record_batch(batch, mask)?;
        if kept.num_rows() > 0 {
            out.push(kept);
        }
    }
    Ok(out)
}

/// The column values of one row being written.
struct RowValues<'a> {
    def: &'a TableDef,
    /// (column, value) for the columns the statement sets.
    values: Vec<(&'a ColumnDef, Value)>,
}

/// Attributes, relationships and custom fields of one row's request.
#[derive(Default)]
struct Body {
    attributes: Map<String, Value>,
    relationships: Map<String, Value>,
    custom_fields: Map<String, Value>,
}

fn relationship_type(def: &TableDef, relationship: &str) -> String {
    def.table
        .resource
        .relationship(relationship)
        .and_then(|r| r.target_type.clone())
        .unwrap_or_else(|| format!("{relationship}s"))
}

fn id_text(v: &Value) -> Value {
    match v {
        Value::Null => Value::Null,
        Value::String(s) => Value::String(s.clone()),
        other => Value::String(other.to_string()),
    }
}

impl RowValues<'_> {
    /// Builds the request body; `clear_other_members` sets the other
    /// relationships of a pair's group to null (an UPDATE moving a booking
    /// from a service to an event).
    fn body(&self, clear_other_members: bool) -> Result<Body, SqlError> {
        let table = self.def.table.name;
        let mut body = Body::default();
        let mut groups: Vec<(&ColumnDef, Option<Value>, Option<Value>)> = Vec::new();
        for (col, value) in &self.values {
            match &col.source {
                ColumnSource::Id => {}
                ColumnSource::Attribute { name, json_type } => {
                    let v = attribute_json(table, &col.name, *json_type, value.clone())?;
                    body.attributes.insert(name.clone(), v);
                }
                ColumnSource::RelationshipId { relationship } => {
                    let kind = relationship_type(self.def, relationship);
                    body.relationships.insert(
                        relationship.clone(),
                        json!({ "data": linkage(&kind, &id_text(value)) }),
                    );
                }
                ColumnSource::GroupType { .. } | ColumnSource::GroupId { .. } => {
                    let group = col
                        .name
                        .rsplit_once('_')
                        .map(|(g, _)| g)
                        .unwrap_or(&col.name);
                    let slot = match groups.iter_mut().position(|(c, _, _)| {
                        c.name.rsplit_once('_').map(|(g, _)| g) == Some(group)
                    }) {
                        Some(i) => i,
                        None => {
                            groups.push((col, None, None));
                            groups.len() - 1
                        }
                    };
                    if matches!(col.source, ColumnSource::GroupType { .. }) {
                        groups[slot].1 = Some(value.clone());
                    } else {
                        groups[slot].2 = Some(value.clone());
                    }
                }
                ColumnSource::CustomField(cf) => {
                    let v = custom_field_json(table, &col.name, cf, value.clone())?;
                    body.custom_fields.insert(cf.field_id.clone(), v);
                }
            }
        }
        for (col, kind, id) in groups {
            let (ColumnSource::GroupType { members } | ColumnSource::GroupId { members }) =
                &col.source
            else {
                continue;
            };
            let group = col
                .name
                .rsplit_once('_')
                .map(|(g, _)| g)
                .unwrap_or_default();
            let kind_col = format!("{group}_type");
            let id_col = format!("{group}_id");
            let kind = kind.unwrap_or(Value::Null);
            let id = id.unwrap_or(Value::Null);
            if kind.is_null() != id.is_null() {
                return Err(pair_error(self.def, &kind_col, &id_col));
            }
            let chosen = match &kind {
                Value::String(k) => Some(
                    members
                        .iter()
                        .find(|m| {
                            m.eq_ignore_ascii_case(k)
                                || relationship_type(self.def, m).eq_ignore_ascii_case(k)
                        })
                        .ok_or_else(|| {
                            SqlError::new(
                                codes::CHECK_VIOLATION,
                                format!(
                                    "\"{k}\" is not a valid {kind_col} of relation \"{table}\": \
                                     use one of {}",
                                    members.join(", ")
                                ),
                            )
                        })?,
                ),
                _ => None,
            };
            for member in members {
                if Some(member) == chosen {
                    let target = relationship_type(self.def, member);
                    body.relationships.insert(
                        member.clone(),
                        json!({ "data": linkage(&target, &id_text(&id)) }),
                    );
                } else if clear_other_members {
                    body.relationships
                        .insert(member.clone(), json!({ "data": null }));
                }
            }
        }
        Ok(body)
    }
}

/// The cells of `row` in `columns` (already cast to the columns' types).
fn row_value(array: &ArrayRef, row: usize) -> Result<Value, SqlError> {
    natural_value(array, row)
}

/// POST bodies for every input row.
fn prepare_inserts(def: &TableDef, batches: &[RecordBatch]) -> Result<Vec<RowWrite>> {
    let mut writes = Vec::new();
    for batch in batches {
        let arrays = cast_batch(def, batch).map_err(SqlError::into_datafusion)?;
        for row in 0..batch.num_rows() {
            writes.push(prepare_insert_row(def, &arrays, row).map_err(SqlError::into_datafusion)?);
        }
    }
    Ok(writes)
}

/// The POST of one row, from the table's columns (cast to their types; a
/// missing trailing column counts as NULL).
pub(crate) fn prepare_insert_row(
    def: &TableDef,
    arrays: &[ArrayRef],
    row: usize,
) -> Result<RowWrite, SqlError> {
    let mut values = Vec::new();
    for (col, array) in def.columns.iter().zip(arrays) {
        values.push((col, row_value(array, row)?));
    }
    insert_request(def, values)
}

/// The POST of one new record from its column values (a column left out
/// or NULL is not sent).
///
/// # Errors
/// 23502 for a NULL in a column the API requires on creation; 0A000 for a
/// value in `id` or a read-only column; 23514 for half a `*_type`/`*_id`
/// pair; class 22 for a value that does not fit its attribute.
pub(crate) fn insert_request(
    def: &TableDef,
    all_values: Vec<(&ColumnDef, Value)>,
) -> Result<RowWrite, SqlError> {
    let table = def.table;
    let mut values = Vec::new();
    for (col, value) in all_values {
        if value.is_null() {
            if col.required_on_create {
                return Err(SqlError::new(
                    codes::NOT_NULL_VIOLATION,
                    format!(
                        "null value in column \"{}\" of relation \"{}\" violates not-null \
                         constraint",
                        col.name, table.name
                    ),
                )
                .with_detail(format!(
                    "the Productive API requires {} when creating a record",
                    col.name
                )));
            }
            continue;
        }
        if !col.writable {
            return Err(if col.name == "id" {
                SqlError::new(
                    codes::FEATURE_NOT_SUPPORTED,
                    format!(
                        "column \"id\" of relation \"{}\" is assigned by the Productive API",
                        table.name
                    ),
                )
                .with_hint("leave id out; RETURNING id shows the assigned id")
            } else {
                super::read_only_column(def, &col.name)
            });
        }
        values.push((col, value));
    }
    for (kind, id) in pairs(def) {
        let set = |n: &str| values.iter().any(|(c, _)| c.name == n);
        if set(&kind) != set(&id) {
            return Err(pair_error(def, &kind, &id));
        }
    }
    let row_values = RowValues { def, values };
    let mut body = row_values.body(false)?;
    if let Some(fixed) = &table.fixed_filter {
        body.attributes
            .entry(fixed.attribute.to_string())
            .or_insert(Value::Bool(fixed.attribute_value));
    }
    if !body.custom_fields.is_empty() {
        let mut merged = match body.attributes.remove("custom_fields") {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        merged.extend(std::mem::take(&mut body.custom_fields));
        body.attributes
            .insert("custom_fields".into(), Value::Object(merged));
    }
    let orphan_comment = table.name == "comments"
        && !COMMENT_PARENTS.iter().any(|p| {
            body.relationships
                .get(*p)
                .is_some_and(|l| !l["data"].is_null())
        });
    let links = body.relationships.clone();
    Ok(RowWrite {
        method: Method::POST,
        path: table.endpoint().to_string(),
        body: Some(json!({
            "data": {
                "type": table.json_api_type(),
                "attributes": body.attributes,
                "relationships": body.relationships,
            }
        })),
        links,
        orphan_comment,
    })
}

/// The table's columns of `batch`, each cast to its column's type.
pub(crate) fn cast_batch(def: &TableDef, batch: &RecordBatch) -> Result<Vec<ArrayRef>, SqlError> {
    def.columns
        .iter()
        .enumerate()
        .filter(|(i, _)| *i < batch.num_columns())
        .map(|(i, col)| cast_column(def.table.name, col, batch.column(i)))
        .collect()
}

/// The id of a scanned row.
fn row_id(def: &TableDef, batch: &RecordBatch, row: usize) -> Result<String, SqlError> {
    let index = def.index_of("id").unwrap_or(0);
    match natural_value(batch.column(index), row)? {
        Value::Null => Err(SqlError::new(
            codes::NOT_NULL_VIOLATION,
            format!(
                "null value in column \"id\" of relation \"{}\": the row to change has no id",
                def.table.name
            ),
        )),
        Value::String(s) => Ok(s),
        other => Ok(other.to_string()),
    }
}

/// The relationships of a scanned row, as linkage, to complete answers.
fn links_of_row(def: &TableDef, batch: &RecordBatch, row: usize) -> Map<String, Value> {
    let mut links = Map::new();
    let mut group_kinds: Vec<(String, String)> = Vec::new();
    for (i, col) in def.columns.iter().enumerate() {
        let Ok(value) = natural_value(batch.column(i), row) else {
            continue;
        };
        match &col.source {
            ColumnSource::RelationshipId { relationship } => {
                let kind = relationship_type(def, relationship);
                links.insert(
                    relationship.clone(),
                    json!({ "data": linkage(&kind, &id_text(&value)) }),
                );
            }
            ColumnSource::GroupType { .. } => {
                if let Value::String(member) = value {
                    group_kinds.push((col.name.clone(), member));
                }
            }
            _ => {}
        }
    }
    for (kind_col, member) in group_kinds {
        let Some(group) = kind_col.strip_suffix("_type") else {
            continue;
        };
        if let Some(i) = def.index_of(&format!("{group}_id"))
            && let Ok(id) = natural_value(batch.column(i), row)
        {
            let target = relationship_type(def, &member);
            links.insert(member, json!({ "data": linkage(&target, &id_text(&id)) }));
        }
    }
    links
}

/// PATCH bodies for every matched row.
fn prepare_updates(
    def: &TableDef,
    matched: &[RecordBatch],
    assignments: &[(usize, Arc<dyn PhysicalExpr>)],
) -> Result<Vec<RowWrite>> {
    let mut writes = Vec::new();
    for batch in matched {
        let mut new_values: Vec<(usize, ArrayRef)> = Vec::new();
        for (index, expr) in assignments {
            let array = expr.evaluate(batch)?.into_array(batch.num_rows())?;
            let col = &def.columns[*index];
            let array =
                cast_column(def.table.name, col, &array).map_err(SqlError::into_datafusion)?;
            new_values.push((*index, array));
        }
        for row in 0..batch.num_rows() {
            writes.push(
                prepare_update_row(def, batch, row, &new_values)
                    .map_err(SqlError::into_datafusion)?,
            );
        }
    }
    Ok(writes)
}

/// The PATCH of one row of `batch` (in the table's schema, `id` set),
/// setting the columns of `new_values` (column index, values cast to the
/// column's type) to their value in that row.
pub(crate) fn prepare_update_row(
    def: &TableDef,
    batch: &RecordBatch,
    row: usize,
    new_values: &[(usize, ArrayRef)],
) -> Result<RowWrite, SqlError> {
    let custom_index = def.index_of("custom_fields");
    let id = row_id(def, batch, row)?;
    let mut values = Vec::new();
    for (index, array) in new_values {
        values.push((&def.columns[*index], row_value(array, row)?));
    }
    let current_custom = || match custom_index.map(|i| natural_value(batch.column(i), row)) {
        Some(Ok(Value::String(text))) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        },
        _ => Map::new(),
    };
    let mut write = update_request(def, &id, values, current_custom)?;
    let mut links = links_of_row(def, batch, row);
    links.extend(std::mem::take(&mut write.links));
    write.links = links;
    Ok(write)
}

/// The PATCH of record `id` setting `values`; `current_custom` gives the
/// record's custom field values, sent along when one of them changes.
///
/// # Errors
/// 23514 for an invalid `*_type` value; class 22 for a value that does
/// not fit its attribute.
pub(crate) fn update_request(
    def: &TableDef,
    id: &str,
    values: Vec<(&ColumnDef, Value)>,
    current_custom: impl FnOnce() -> Map<String, Value>,
) -> Result<RowWrite, SqlError> {
    let table = def.table;
    let row_values = RowValues { def, values };
    let mut body = row_values.body(true)?;
    if !body.custom_fields.is_empty() {
        // The API may replace the whole object on PATCH: send the
        // current values with the changed ones merged in.
        let mut merged = match body.attributes.remove("custom_fields") {
            Some(Value::Object(m)) => m,
            _ => current_custom(),
        };
        merged.extend(std::mem::take(&mut body.custom_fields));
        body.attributes
            .insert("custom_fields".into(), Value::Object(merged));
    }
    let links = body.relationships.clone();
    let mut data = json!({
        "type": table.json_api_type(),
        "id": id,
        "attributes": body.attributes,
    });
    if !body.relationships.is_empty() {
        data["relationships"] = Value::Object(body.relationships);
    }
    Ok(RowWrite {
        method: Method::PATCH,
        path: format!("{}/{id}", table.endpoint()),
        body: Some(json!({ "data": data })),
        links,
        orphan_comment: false,
    })
}

/// DELETE requests for every matched row.
fn prepare_deletes(def: &TableDef, matched: &[RecordBatch]) -> Result<Vec<RowWrite>> {
    let mut writes = Vec::new();
    for batch in matched {
        for row in 0..batch.num_rows() {
            let id = row_id(def, batch, row).map_err(SqlError::into_datafusion)?;
            writes.push(delete_request(def, &id));
        }
    }
    Ok(writes)
}

/// The DELETE of record `id`.
pub(crate) fn delete_request(def: &TableDef, id: &str) -> RowWrite {
    RowWrite {
        method: Method::DELETE,
        path: format!("{}/{id}", def.table.endpoint()),
        body: None,
        links: Map::new(),
        orphan_comment: false,
    }
}

/// Fills relationships the answer hides (`included: false`) from what was
/// sent or scanned, so RETURNING shows them.
fn overlay_links(record: &mut ResourceObject, links: &Map<String, Value>) {
    for (name, link) in links {
        if record.linkage(name) == Linkage::Hidden {
            record.relationships.insert(name.clone(), link.clone());
        }
    }
}
