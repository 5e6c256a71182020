//! Productive's actions as procedures (`CALL ArchiveProject(42)`) and as
//! functions usable per row (`SELECT archive_project(id) FROM projects`).
//!
//! A procedure answers with the affected record, in its table's columns; a
//! function answers with the same record as JSON text, so it fits in one
//! column of any query. Functions are DataFusion async UDFs: they run only
//! when the query executes, so `EXPLAIN` of a query calling one sends
//! nothing.
//!
//! Booking approval goes through the booking's approval status record
//! (the API has no `approve` on bookings), and deleting a workflow status
//! moves its tasks to a target status in the same request.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::async_udf::{AsyncScalarUDF, AsyncScalarUDFImpl};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use reqwest::Method;
use serde_json::{Value, json};

use super::{WriteContext, check_writable};
use crate::api::document::ResourceObject;
use crate::api::request::{FilterCond, FilterExpr};
use crate::api::{ApiClient, ApiError, ListRequest, RequestStats};
use crate::catalog::Catalog;
use crate::error::{SqlError, codes};
use crate::server::{Routine, RoutineKind};
use crate::table::TableDef;
use crate::table::convert::records_to_batch;

/// What a procedure does at the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `PATCH /<endpoint>/{id}/<verb>`.
    Item(&'static str),
    /// Approve a booking through its approval status record.
    ApproveBooking,
    /// `DELETE /workflow_statuses/{id}` moving the tasks to a target.
    DeleteWorkflowStatus,
}

/// One procedure, as `CALL` and as a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Procedure {
    /// The procedure name (`ArchiveProject`), matched case-insensitively.
    pub name: &'static str,
    /// The function name (`archive_project`).
    pub function: &'static str,
    /// The table of the affected records.
    pub table: &'static str,
    pub action: Action,
    /// Argument names, as `\df` shows them.
    pub args: &'static [&'static str],
}

const fn item(
    name: &'static str,
    function: &'static str,
    table: &'static str,
    verb: &'static str,
    arg: &'static [&'static str],
) -> Procedure {
    Procedure {
        name,
        function,
        table,
        action: Action::Item(verb),
        args: arg,
    }
}

/// Every procedure the gateway offers.
pub const PROCEDURES: &[Procedure] = &[
    Procedure {
        name: "DeleteWorkflowStatus",
        function: "delete_workflow_status",
        table: "workflow_statuses",
        action: Action::DeleteWorkflowStatus,
        args: &["id", "type", "targetid"],
    },
    item(
        "ArchiveCompany",
        "archive_company",
        "companies",
        "archive",
        &["companyId"],
    ),
    item(
        "RestoreCompany",
        "restore_company",
        "companies",
        "restore",
        &["companyId"],
    ),
    item(
        "ArchiveLostReason",
        "archive_lost_reason",
        "lost_reasons",
        "archive",
        &["lostId"],
    ),
    item(
        "ArchiveWorkflow",
        "archive_workflow",
        "workflows",
        "archive",
        &["workflowId"],
    ),
    item(
        "RestoreWorkflow",
        "restore_workflow",
        "workflows",
        "restore",
        &["workflowId"],
    ),
    item(
        "ArchiveDealStatus",
        "archive_deal_status",
        "deal_statuses",
        "archive",
        &["dealStatusId"],
    ),
    Procedure {
        name: "ApproveBooking",
        function: "approve_booking",
        table: "bookings",
        action: Action::ApproveBooking,
        args: &["bookingId"],
    },
    item(
        "UnapproveBooking",
        "unapprove_booking",
        "bookings",
        "unapprove",
        &["bookingId"],
    ),
    item(
        "ArchiveEvent",
        "archive_event",
        "events",
        "archive",
        &["eventId"],
    ),
    item(
        "ApproveExpense",
        "approve_expense",
        "expenses",
        "approve",
        &["expenseId"],
    ),
    item(
        "UnapproveExpense",
        "unapprove_expense",
        "expenses",
        "unapprove",
        &["expenseId"],
    ),
    item(
        "ArchiveProject",
        "archive_project",
        "projects",
        "archive",
        &["projectId"],
    ),
    item(
        "RestoreProject",
        "restore_project",
        "projects",
        "restore",
        &["projectId"],
    ),
    item(
        "ArchiveServiceType",
        "archive_service_type",
        "service_types",
        "archive",
        &["serviceTypeId"],
    ),
    item(
        "ArchiveSubsidiary",
        "archive_subsidiary",
        "subsidiaries",
        "archive",
        &["subsidiaryId"],
    ),
    item(
        "ArchiveTaskList",
        "archive_task_list",
        "task_lists",
        "archive",
        &["taskListId"],
    ),
    item(
        "RestoreTaskList",
        "restore_task_list",
        "task_lists",
        "restore",
        &["taskListId"],
    ),
    item(
        "ArchiveBoards",
        "archive_boards",
        "boards",
        "archive",
        &["boardId"],
    ),
    item(
        "RestoreBoards",
        "restore_boards",
        "boards",
        "restore",
        &["boardId"],
    ),
];

/// The procedure called `name` (case-insensitive; the function name works
/// too).
pub fn find(name: &str) -> Option<&'static Procedure> {
    let name = name.rsplit('.').next().unwrap_or(name).trim_matches('"');
    PROCEDURES
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name) || p.function.eq_ignore_ascii_case(name))
}

/// What an action left: the affected record, or (for a deleted workflow
/// status) only its id.
#[derive(Debug)]
pub enum Outcome {
    Record(Box<ResourceObject>),
    Deleted { id: String },
}

fn bad_arguments(proc: &Procedure, given: usize) -> SqlError {
    SqlError::new(
        codes::UNDEFINED_FUNCTION,
        format!(
            "procedure {}({}) takes {} argument{}, {given} given",
            proc.name,
            proc.args.join(", "),
            proc.args.len(),
            if proc.args.len() == 1 { "" } else { "s" }
        ),
    )
}

/// A record id argument: an integer, or text of digits.
fn id_argument(proc: &Procedure, arg: &str, value: &ScalarValue) -> Result<String, SqlError> {
    let text = match value {
        ScalarValue::Int8(Some(v)) => v.to_string(),
        ScalarValue::Int16(Some(v)) => v.to_string(),
        ScalarValue::Int32(Some(v)) => v.to_string(),
        ScalarValue::Int64(Some(v)) => v.to_string(),
        ScalarValue::UInt8(Some(v)) => v.to_string(),
        ScalarValue::UInt16(Some(v)) => v.to_string(),
        ScalarValue::UInt32(Some(v)) => v.to_string(),
        ScalarValue::UInt64(Some(v)) => v.to_string(),
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) => s.trim().to_string(),
        ScalarValue::Utf8View(Some(s)) => s.trim().to_string(),
        other => other.to_string(),
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SqlError::new(
            codes::INVALID_TEXT_REPRESENTATION,
            format!(
                "argument {arg} of {} must be a record id, got {}",
                proc.name,
                if value.is_null() {
                    "NULL".to_string()
                } else {
                    value.to_string()
                }
            ),
        ));
    }
    Ok(text)
}

/// The error a client sees for a failed action, with the API's reason.
fn action_error(proc: &Procedure, id: &str, e: ApiError) -> SqlError {
    match e.status() {
        Some(404) => SqlError::new(
            "P0002",
            format!("{}: no {} record with id {id}", proc.name, proc.table),
        )
        .with_detail(e.to_string()),
        _ => {
            let effect = e.write_effect();
            let mut err = e.to_sql_error();
            err.message = format!("{} refused for id {id}: {}", proc.name, err.message);
            if let Some(effect) = effect {
                err.detail = Some(format!(
                    "{} of {} {id} {effect}; look at the record before calling it again",
                    proc.name, proc.table
                ));
            }
            err
        }
    }
}

/// Runs a procedure with its arguments.
///
/// # Errors
/// 42883 for a wrong argument count, 22P02/22023 for bad arguments, P0002
/// for an unknown record, and the mapped API error for a refused action.
pub async fn run(
    client: &ApiClient,
    proc: &Procedure,
    args: &[ScalarValue],
) -> Result<Outcome, SqlError> {
    if args.len() != proc.args.len() {
        return Err(bad_arguments(proc, args.len()));
    }
    let table = Catalog::get()
        .table(proc.table)
        .ok_or_else(|| SqlError::new(codes::INTERNAL_ERROR, "procedure table missing"))?;
    let endpoint = table.endpoint();
    let kind = table.json_api_type();
    let stats = RequestStats::default();
    let id = id_argument(proc, proc.args[0], &args[0])?;
    match proc.action {
        Action::Item(verb) => {
            let body = json!({ "data": { "type": kind, "attributes": {} } });
            let path = format!("{endpoint}/{id}/{verb}");
            let answer = client
                .write(Method::PATCH, &path, Some(&body), &stats)
                .await
                .map_err(|e| action_error(proc, &id, e))?;
            match answer {
                Some(doc) => Ok(Outcome::Record(Box::new(doc.data))),
                None => fetch(client, proc, endpoint, &id, &stats).await,
            }
        }
        Action::ApproveBooking => {
            let mut request = ListRequest::new("/approval_statuses");
            request
                .filters
                .push(FilterExpr::Cond(FilterCond::eq("booking_id", id.clone())));
            request.page_size = 1;
            let page = client
                .list_page(&request, 1, &stats)
                .await
                .map_err(|e| action_error(proc, &id, e))?;
            let Some(status) = page.data.first() else {
                return Err(SqlError::new(
                    "P0002",
                    format!(
                        "{}: booking {id} has no approval status to approve",
                        proc.name
                    ),
                )
                .with_hint("only bookings that need approval can be approved"));
            };
            let body = json!({ "data": { "type": "approval_statuses", "attributes": {} } });
            client
                .write(
                    Method::PATCH,
                    &format!("/approval_statuses/{}/approve", status.id),
                    Some(&body),
                    &stats,
                )
                .await
                .map_err(|e| action_error(proc, &id, e))?;
            fetch(client, proc, endpoint, &id, &stats).await
        }
        Action::DeleteWorkflowStatus => {
            let kind_arg = match &args[1] {
                ScalarValue::Utf8(Some(s))
                | ScalarValue::LargeUtf8(Some(s))
                | ScalarValue::Utf8View(Some(s)) => s.trim().to_string(),
                other => other.to_string(),
            };
            if kind_arg != "workflow_statuses" {
                return Err(SqlError::new(
                    codes::INVALID_PARAMETER_VALUE,
                    format!(
                        "argument type of {} must be 'workflow_statuses', got '{kind_arg}'",
                        proc.name
                    ),
                ));
            }
            let target = id_argument(proc, proc.args[2], &args[2])?;
            let body = json!({ "data": { "type": "workflow_statuses",
                "attributes": { "target_workflow_status_id": target } } });
            client
                .write(
                    Method::DELETE,
                    &format!("{endpoint}/{id}"),
                    Some(&body),
                    &stats,
                )
                .await
                .map_err(|e| action_error(proc, &id, e))?;
            Ok(Outcome::Deleted { id })
        }
    }
}

async fn fetch(
    client: &ApiClient,
    proc: &Procedure,
    endpoint: &str,
    id: &str,
    stats: &RequestStats,
) -> Result<Outcome, SqlError> {
    match client.get_one(endpoint, id, &[], stats).await {
        Ok(Some(doc)) => Ok(Outcome::Record(Box::new(doc.data))),
        Ok(None) => Err(SqlError::new(
            "P0002",
            format!("{}: no {} record with id {id}", proc.name, proc.table),
        )),
        Err(e) => Err(action_error(proc, id, e)),
    }
}

/// The outcome as a row: the record in its table's columns, or `(id,
/// status)` for a deletion.
///
/// # Errors
/// HV004 when the API's record does not fit the table's columns.
pub fn outcome_batch(proc: &Procedure, outcome: &Outcome) -> Result<RecordBatch, SqlError> {
    match outcome {
        Outcome::Record(record) => {
            let table = Catalog::get()
                .table(proc.table)
                .ok_or_else(|| SqlError::new(codes::INTERNAL_ERROR, "procedure table missing"))?;
            let def = TableDef::new(table, &[]);
            let columns: Vec<_> = def.columns.iter().collect();
            records_to_batch(
                table.name,
                &columns,
                &def.schema,
                std::slice::from_ref(record),
            )
        }
        Outcome::Deleted { id } => {
            let schema = deleted_schema();
            let id: i64 = id.parse().unwrap_or_default();
            let arrays: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from(vec![id])),
                Arc::new(StringArray::from(vec!["deleted"])),
            ];
            RecordBatch::try_new(schema, arrays)
                .map_err(|e| SqlError::new(codes::INTERNAL_ERROR, e.to_string()))
        }
    }
}

/// The argument types of a procedure: record ids are `bigint`, the
/// constant `type` of `DeleteWorkflowStatus` is text.
pub fn argument_types(proc: &Procedure) -> Vec<DataType> {
    proc.args
        .iter()
        .map(|a| {
            if *a == "type" {
                DataType::Utf8
            } else {
                DataType::Int64
            }
        })
        .collect()
}

/// Every procedure and its function form, as `pg_proc` lists them.
pub fn routines() -> Vec<Routine> {
    let mut out = Vec::with_capacity(PROCEDURES.len() * 2);
    for proc in PROCEDURES {
        let args: Vec<(String, DataType)> = proc
            .args
            .iter()
            .map(|a| a.to_string())
            .zip(argument_types(proc))
            .collect();
        out.push(Routine {
            name: proc.name.to_owned(),
            kind: RoutineKind::Procedure,
            args: args.clone(),
            returns: None,
        });
        out.push(Routine {
            name: proc.function.to_owned(),
            kind: RoutineKind::Function,
            args,
            returns: Some(DataType::Utf8),
        });
    }
    out
}

/// The columns a procedure answers with.
pub fn result_schema(proc: &Procedure) -> SchemaRef {
    match (proc.action, Catalog::get().table(proc.table)) {
        (Action::DeleteWorkflowStatus, _) | (_, None) => deleted_schema(),
        (_, Some(table)) => TableDef::new(table, &[]).schema.clone(),
    }
}

fn deleted_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("status", DataType::Utf8, false),
    ]))
}

/// The outcome as JSON text, the value of the function form.
pub fn outcome_json(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Record(record) => {
            let mut object = serde_json::Map::new();
            object.insert("id".into(), Value::String(record.id.clone()));
            object.insert("type".into(), Value::String(record.kind.clone()));
            for (k, v) in &record.attributes {
                object.insert(k.clone(), v.clone());
            }
            Value::Object(object).to_string()
        }
        Outcome::Deleted { id } => json!({ "id": id, "status": "deleted" }).to_string(),
    }
}

/// `CALL name(args)` in a session.
///
/// # Errors
/// 42883 for an unknown procedure, 25006 on a read-only server, and the
/// errors of [`run`].
pub async fn call(
    ctx: &SessionContext,
    name: &str,
    args: &[ScalarValue],
) -> Result<RecordBatch, SqlError> {
    let proc = find(name).ok_or_else(|| {
        SqlError::new(
            codes::UNDEFINED_FUNCTION,
            format!("procedure {name} does not exist"),
        )
        .with_hint(format!(
            "the procedures are {}",
            PROCEDURES
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let context = WriteContext::of(ctx);
    check_writable(context.as_deref(), &format!("CALL {}", proc.name))?;
    let client = context
        .as_ref()
        .and_then(|c| c.client.clone())
        .ok_or_else(|| SqlError::new(codes::INTERNAL_ERROR, "the session has no API client"))?;
    let outcome = run(&client, proc, args).await?;
    outcome_batch(proc, &outcome)
}

/// A procedure as a per-row function returning the outcome as JSON text.
#[derive(Debug)]
pub struct ActionFunction {
    proc: &'static Procedure,
    client: ApiClient,
    read_only: bool,
    signature: Signature,
}

impl PartialEq for ActionFunction {
    fn eq(&self, other: &Self) -> bool {
        self.proc == other.proc
    }
}

impl Eq for ActionFunction {}

impl std::hash::Hash for ActionFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.proc.function.hash(state);
    }
}

impl ActionFunction {
    pub fn new(proc: &'static Procedure, client: ApiClient, read_only: bool) -> ActionFunction {
        ActionFunction {
            proc,
            client,
            read_only,
            signature: Signature::any(proc.args.len(), Volatility::Volatile),
        }
    }
}

impl ScalarUDFImpl for ActionFunction {
    fn name(&self) -> &str {
        self.proc.function
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Err(DataFusionError::Internal(format!(
            "{} runs asynchronously",
            self.proc.function
        )))
    }
}

#[async_trait::async_trait]
impl AsyncScalarUDFImpl for ActionFunction {
    async fn invoke_async_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let what = format!("{}()", self.proc.function);
        if self.read_only {
            check_writable(Some(&WriteContext::new(true)), &what)
                .map_err(SqlError::into_datafusion)?;
        }
        let rows = args.number_rows;
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<Vec<_>>>()?;
        let mut out = StringBuilder::new();
        for row in 0..rows {
            let values = arrays
                .iter()
                .map(|a| ScalarValue::try_from_array(a.as_ref(), row))
                .collect::<Result<Vec<_>>>()?;
            if values.first().is_some_and(ScalarValue::is_null) {
                out.append_null();
                continue;
            }
            let outcome = run(&self.client, self.proc, &values)
                .await
                .map_err(SqlError::into_datafusion)?;
            out.append_value(outcome_json(&outcome));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// Registers every procedure's function form in a session.
pub fn register_functions(ctx: &SessionContext, client: &ApiClient, read_only: bool) {
    for proc in PROCEDURES {
        let function = ActionFunction::new(proc, client.clone(), read_only);
        let udf: ScalarUDF = AsyncScalarUDF::new(Arc::new(function)).into_scalar_udf();
        ctx.register_udf(udf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_action_is_in_the_catalog() {
        for proc in PROCEDURES {
            let table = Catalog::get().table(proc.table).expect(proc.table);
            if let Action::Item(verb) = proc.action {
                assert!(
                    table.resource.has_item_action(verb),
                    "{} has no {verb}",
                    proc.table
                );
            }
        }
    }

    #[test]
    fn names_match_case_insensitively() {
        assert_eq!(find("archiveproject").unwrap().function, "archive_project");
        assert_eq!(find("ARCHIVE_PROJECT").unwrap().name, "ArchiveProject");
        assert!(find("DropEverything").is_none());
    }
}
