//! The write path: INSERT, UPDATE and DELETE on Productive tables, and
//! Productive's actions as procedures and functions.
//!
//! DataFusion's DML hooks on [`ProductiveTable`] call [`plan_insert`],
//! [`plan_update`] and [`plan_delete`]. Planning checks what can be known
//! from the statement alone (the table's write contract, read-only
//! columns, the `*_type`/`*_id` pair rule for UPDATE) and returns a
//! [`exec::WriteExec`]; every API call happens when that plan executes, so
//! `EXPLAIN` of a write sends nothing. At execution the rows are collected
//! and validated first, then written one by one.
//!
//! What a statement wrote (for `RETURNING`) and the notices it raised reach
//! the wire layer through the session's [`WriteContext`].

pub mod encode;
pub mod exec;
pub mod procedures;
pub mod rows;

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::Session;
use datafusion::common::DFSchema;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, col};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use parking_lot::Mutex;

use crate::api::ApiClient;
use crate::error::{SqlError, codes};
use crate::table::ProductiveTable;
use crate::table::provider::session_options;
use crate::table::schema::{ColumnSource, TableDef};
use exec::{WriteExec, WriteKind};

/// Per-session state of the write path, kept as a `SessionConfig`
/// extension so the server can set it once and statements cannot change it.
#[derive(Debug, Default)]
pub struct WriteContext {
    /// Refuse every write and procedure call (`serve --read-only`).
    pub read_only: bool,
    /// The session's API client, for procedures.
    pub client: Option<ApiClient>,
    outcome: Mutex<StatementOutcome>,
}

/// What the last write statement of a session left for the wire layer.
#[derive(Debug, Default)]
pub struct StatementOutcome {
    /// The records written, in the table's full schema: the API's answer
    /// for INSERT and UPDATE, the rows as they were for DELETE.
    pub returned: Vec<RecordBatch>,
    /// Notices to send before the command completes.
    pub notices: Vec<String>,
}

impl WriteContext {
    /// A context that refuses writes when `read_only` is set.
    pub fn new(read_only: bool) -> WriteContext {
        WriteContext {
            read_only,
            client: None,
            outcome: Mutex::new(StatementOutcome::default()),
        }
    }

    /// A context for a session whose procedures use `client`.
    pub fn with_client(mut self, client: ApiClient) -> WriteContext {
        self.client = Some(client);
        self
    }

    /// The write context of a session, if it has one.
    pub fn of(ctx: &SessionContext) -> Option<Arc<WriteContext>> {
        ctx.state().config().get_extension::<WriteContext>()
    }

    /// Takes what the last statement left (and clears it).
    pub fn take_outcome(&self) -> StatementOutcome {
        std::mem::take(&mut *self.outcome.lock())
    }

    pub(crate) fn record(&self, returned: Vec<RecordBatch>, notices: Vec<String>) {
        let mut outcome = self.outcome.lock();
        outcome.returned.extend(returned);
        outcome.notices.extend(notices);
    }
}

/// Refuses writes on a read-only server.
///
/// # Errors
/// 25006 (read-only SQL transaction) when the session is read-only.
pub fn check_writable(context: Option<&WriteContext>, what: &str) -> Result<(), SqlError> {
    if context.is_some_and(|c| c.read_only) {
        return Err(SqlError::new(
            "25006",
            format!("cannot run {what}: the server was started with --read-only"),
        ));
    }
    Ok(())
}

fn write_context(state: &dyn Session) -> Option<Arc<WriteContext>> {
    state.config().get_extension::<WriteContext>()
}

/// Refuses a statement the table's write contract does not allow.
pub(crate) fn check_allowed(
    def: &TableDef,
    statement: &str,
    allowed: bool,
) -> Result<(), SqlError> {
    if allowed {
        return Ok(());
    }
    let table = def.table;
    Err(SqlError::new(
        codes::FEATURE_NOT_SUPPORTED,
        format!(
            "{statement} is not supported on table \"{}\": it accepts {}",
            table.name,
            table.statements.describe()
        ),
    ))
}

pub(crate) fn read_only_column(def: &TableDef, column: &str) -> SqlError {
    SqlError::new(
        codes::FEATURE_NOT_SUPPORTED,
        format!(
            "column \"{column}\" of relation \"{}\" is read-only",
            def.table.name
        ),
    )
    .with_hint("the Productive API ignores writes to it")
}

/// The plan of an INSERT.
///
/// # Errors
/// 0A000 when the table takes no INSERT or the insert is not an append;
/// 25006 on a read-only server.
pub fn plan_insert(
    table: &ProductiveTable,
    state: &dyn Session,
    input: Arc<dyn ExecutionPlan>,
    op: InsertOp,
) -> Result<Arc<dyn ExecutionPlan>> {
    let def = table.def();
    check_allowed(def, "INSERT", def.table.statements.insert).map_err(SqlError::into_datafusion)?;
    check_writable(write_context(state).as_deref(), "INSERT").map_err(SqlError::into_datafusion)?;
    if op != InsertOp::Append {
        return Err(SqlError::new(
            codes::FEATURE_NOT_SUPPORTED,
            format!("{op} is not supported on Productive tables"),
        )
        .into_datafusion());
    }
    let options = session_options(state);
    Ok(Arc::new(WriteExec::new(
        def.clone(),
        table.client().clone(),
        WriteKind::Insert,
        input,
        &options,
    )))
}

/// The plan of an UPDATE: a scan for the matching rows (with pushdown),
/// then one PATCH per row with the assignments computed on that row.
///
/// # Errors
/// 0A000 for a table without UPDATE or a read-only column; 23514 when only
/// one column of a `*_type`/`*_id` pair is set; 25006 on a read-only server.
pub fn plan_update(
    table: &ProductiveTable,
    state: &dyn Session,
    assignments: Vec<(String, Expr)>,
    filters: Vec<Expr>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let def = table.def();
    check_allowed(def, "UPDATE", def.table.statements.update).map_err(SqlError::into_datafusion)?;
    check_writable(write_context(state).as_deref(), "UPDATE").map_err(SqlError::into_datafusion)?;
    for (name, _) in &assignments {
        let column = def.column(name).ok_or_else(|| {
            SqlError::new(
                codes::UNDEFINED_COLUMN,
                format!(
                    "column \"{name}\" of relation \"{}\" does not exist",
                    def.table.name
                ),
            )
            .into_datafusion()
        })?;
        if !column.writable {
            return Err(read_only_column(def, name).into_datafusion());
        }
    }
    let names: Vec<&str> = assignments.iter().map(|(n, _)| n.as_str()).collect();
    check_pairs_named(def, &names).map_err(SqlError::into_datafusion)?;

    let df_schema = DFSchema::try_from(def.schema.clone())?;
    let mut physical = Vec::with_capacity(assignments.len());
    for (name, expr) in assignments {
        let index = def.index_of(&name).unwrap_or_default();
        let expr = state.create_physical_expr(unqualify(expr)?, &df_schema)?;
        physical.push((index, expr));
    }
    let filter = physical_filter(&filters, &df_schema, state)?;
    let options = session_options(state);
    let scan = table.plan_scan(None, &filters, None, &options);
    Ok(Arc::new(WriteExec::new(
        def.clone(),
        table.client().clone(),
        WriteKind::Update {
            assignments: physical,
            filter,
            unfiltered: filters.is_empty(),
        },
        scan,
        &options,
    )))
}

/// The plan of a DELETE: a scan for the matching rows, then one DELETE per
/// row.
///
/// # Errors
/// 0A000 for a table without DELETE; 25006 on a read-only server.
pub fn plan_delete(
    table: &ProductiveTable,
    state: &dyn Session,
    filters: Vec<Expr>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let def = table.def();
    check_allowed(def, "DELETE", def.table.statements.delete).map_err(SqlError::into_datafusion)?;
    check_writable(write_context(state).as_deref(), "DELETE").map_err(SqlError::into_datafusion)?;
    let df_schema = DFSchema::try_from(def.schema.clone())?;
    let filter = physical_filter(&filters, &df_schema, state)?;
    let options = session_options(state);
    let scan = table.plan_scan(None, &filters, None, &options);
    Ok(Arc::new(WriteExec::new(
        def.clone(),
        table.client().clone(),
        WriteKind::Delete {
            filter,
            unfiltered: filters.is_empty(),
        },
        scan,
        &options,
    )))
}

/// Strips table qualifiers: the expressions are evaluated on the table's
/// own rows.
fn unqualify(expr: Expr) -> Result<Expr> {
    expr.transform(|e| match e {
        Expr::Column(c) if c.relation.is_some() => Ok(Transformed::yes(col(c.name))),
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
}

/// The WHERE clause as one physical predicate over the table's rows; the
/// scan's pushdown may be inexact, so every row is checked again.
fn physical_filter(
    filters: &[Expr],
    schema: &DFSchema,
    state: &dyn Session,
) -> Result<Option<Arc<dyn PhysicalExpr>>> {
    let mut conjunction: Option<Expr> = None;
    for f in filters {
        let f = unqualify(f.clone())?;
        conjunction = Some(match conjunction {
            Some(c) => c.and(f),
            None => f,
        });
    }
    conjunction
        .map(|e| state.create_physical_expr(e, schema))
        .transpose()
}

/// The `*_type`/`*_id` pairs of a table.
pub(crate) fn pairs(def: &TableDef) -> Vec<(String, String)> {
    def.columns
        .iter()
        .filter(|c| matches!(c.source, ColumnSource::GroupType { .. }))
        .filter_map(|c| {
            let group = c.name.strip_suffix("_type")?;
            let id = format!("{group}_id");
            def.column(&id).map(|_| (c.name.clone(), id))
        })
        .collect()
}

pub(crate) fn pair_error(def: &TableDef, kind: &str, id: &str) -> SqlError {
    SqlError::new(
        codes::CHECK_VIOLATION,
        format!(
            "columns \"{kind}\" and \"{id}\" of relation \"{}\" must be given together or not \
             at all",
            def.table.name
        ),
    )
}

/// Refuses a statement that names one column of a pair without the other.
pub(crate) fn check_pairs_named(def: &TableDef, names: &[&str]) -> Result<(), SqlError> {
    for (kind, id) in pairs(def) {
        let has_kind = names.contains(&kind.as_str());
        let has_id = names.contains(&id.as_str());
        if has_kind != has_id {
            return Err(pair_error(def, &kind, &id));
        }
    }
    Ok(())
}
