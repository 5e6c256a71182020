//! Simple and extended query handling.
//!
//! Both protocols share one path: parse with the PostgreSQL-compatible parser
//! from datafusion-pg-catalog, name columns the PostgreSQL way, then either
//! answer the statement here ([`super::statements`]) or plan and run it with
//! the connection's own DataFusion context. Results are encoded batch by
//! batch as they arrive, so the first row reaches the client before the last
//! one is computed, and every batch passes the statement control that stops
//! it on cancel or timeout.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use arrow_pg::datatypes::df::deserialize_parameters_with_server_types;
use arrow_pg::datatypes::into_pg_type;
use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::ParamValues;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{DmlStatement, Expr as DfExpr, LogicalPlan, WriteOp};
use datafusion::scalar::ScalarValue;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{SetExpr, Statement};
use datafusion::sql::sqlparser::parser::ParserError;
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use futures::{Sink, SinkExt, StreamExt, stream};
use pgwire::api::portal::{Format, Portal, PortalExecutionState};
use pgwire::api::query::{
    ExtendedQueryHandler, SimpleQueryHandler, send_describe_response, send_execution_response,
};
use pgwire::api::results::{DescribePortalResponse, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{ClientInfo, ClientPortalStore, DEFAULT_NAME, PgWireConnectionState, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::data::DataRow;
use pgwire::messages::extendedquery::{
    Close, CloseComplete, Describe, Execute, PortalSuspended, TARGET_TYPE_BYTE_PORTAL,
    TARGET_TYPE_BYTE_STATEMENT,
};
use pgwire::messages::response::{EmptyQueryResponse, TransactionStatus};
use pgwire::messages::simplequery::Query;
use pgwire::messages::startup::ParameterStatus;
use tracing::{Instrument, debug};

use super::Backend;
use super::catalog;
use super::copy;
use super::copy_in;
use super::errors::ServerError;
use super::jsonb;
use super::returning;
use super::rewrite;
use super::session::{Cursor, Session, guard_stream};
use super::statements::{self, Route, Utility};
use crate::error::{SqlError, codes};
use crate::write::WriteContext;

/// A statement parsed by an extended-protocol Parse message.
pub type PreparedStatement = Arc<Prepared>;

/// What the extended protocol keeps between Parse and Execute.
#[derive(Debug)]
pub struct Prepared {
    /// The statement after column naming.
    pub statement: Statement,
    pub route: Route,
    /// DataFusion's plan, with placeholders, for planned statements.
    pub plan: Option<LogicalPlan>,
    /// Parameter types as DataFusion inferred them, by position.
    pub param_data_types: Vec<Option<DataType>>,
    /// Parameter types as reported to the client.
    pub param_types: Vec<Type>,
    /// Result columns, `None` when the statement returns no rows.
    pub result_schema: Option<SchemaRef>,
}

/// Answers queries on every connection; per-connection state lives in the
/// [`Session`] found in the client's session extensions.
pub struct QueryHandler {
    backend: Arc<dyn Backend>,
    parser: Arc<Parser>,
}

impl QueryHandler {
    pub(crate) fn new(backend: Arc<dyn Backend>) -> QueryHandler {
        QueryHandler {
            backend: backend.clone(),
            parser: Arc::new(Parser {
                sql: PostgresCompatibilityParser::new(),
                backend,
            }),
        }
    }
}

/// Parses SQL text into statements ready for routing.
pub struct Parser {
    sql: PostgresCompatibilityParser,
    /// Knows the result columns of procedures, for Describe.
    backend: Arc<dyn Backend>,
}

/// Client queries DataFusion cannot run, with an equivalent it can.
///
/// psql 15's `\d+` lists storage options through `array(subquery)`, which
/// DataFusion lacks, over a `reloptions` column the catalog does not have;
/// our tables have no storage options, so an empty list is the answer.
///
/// psql 15's `\du` lists role memberships through `ARRAY(SELECT ...)`; the
/// same subquery aggregated gives the list (NULL rather than `{}` when a
/// role is a member of none).
const CLIENT_QUERY_FIXES: &[(&str, &str)] = &[
    (
        "pg_catalog.array_to_string(c.reloptions || array(select 'toast.' || x \
         from pg_catalog.unnest(tc.reloptions) x), ', ')",
        "''",
    ),
    ("ARRAY(SELECT b.rolname\n", "(SELECT array_agg(b.rolname)\n"),
];

impl Parser {
    fn parse(&self, sql: &str) -> Result<Vec<Statement>, ServerError> {
        let mut fixed = std::borrow::Cow::Borrowed(sql);
        for (from, to) in CLIENT_QUERY_FIXES {
            if fixed.contains(from) {
                fixed = std::borrow::Cow::Owned(fixed.replace(from, to));
            }
        }
        let fixed = rewrite::fix_text(&fixed);
        let mut statements = self.sql.parse(&fixed)?;
        if statements.iter().any(rewrite::too_deep) {
            return Err(ServerError::Parse(ParserError::RecursionLimitExceeded));
        }
        statements.iter_mut().for_each(rewrite::fix_statement);
        statements.iter_mut().for_each(statements::name_columns);
        statements
            .iter_mut()
            .for_each(statements::type_integer_literals);
        Ok(statements)
    }
}

fn session_of(client: &(impl ClientInfo + ?Sized)) -> Result<Arc<Session>, ServerError> {
    client
        .session_extensions()
        .get::<Session>()
        .ok_or_else(|| ServerError::Sql(SqlError::new("08P01", "query before login completed")))
}

/// Keeps log lines short; statements can be megabytes of VALUES.
fn truncate(sql: &str, max: usize) -> &str {
    match sql.char_indices().nth(max) {
        Some((idx, _)) => &sql[..idx],
        None => sql,
    }
}

fn failed_transaction() -> ServerError {
    ServerError::Sql(SqlError::new(
        "25P02",
        "current transaction is aborted, commands ignored until end of transaction block",
    ))
}

fn may_run(route: &Route, status: TransactionStatus) -> Result<(), ServerError> {
    let allowed = match route {
        Route::Utility(u) => u.allowed_when_failed(),
        Route::Plan => false,
    };
    if status == TransactionStatus::Error && !allowed {
        return Err(failed_transaction());
    }
    Ok(())
}

/// Turns a record batch stream into a row stream for pgwire.
fn encode_stream(
    session: &Session,
    batches: datafusion::physical_plan::SendableRecordBatchStream,
    fields: Arc<Vec<FieldInfo>>,
) -> impl futures::Stream<Item = PgWireResult<DataRow>> + Send + 'static {
    guard_stream(session.control.clone(), batches)
        .map(move |batch| {
            let rows: Box<dyn Iterator<Item = PgWireResult<DataRow>> + Send> = match batch {
                Ok(batch) => jsonb::encode(fields.clone(), batch),
                Err(e) => Box::new(std::iter::once(Err(PgWireError::from(e)))),
            };
            stream::iter(rows)
        })
        .flatten()
}

/// A response holding rows that are already in memory.
fn batch_response(
    session: &Session,
    batch: RecordBatch,
    format: &Format,
    tag: &str,
) -> Result<QueryResponse, ServerError> {
    let fields = Arc::new(jsonb::pg_fields(
        batch.schema().as_ref(),
        format,
        Some(session.format_options()),
    )?);
    let rows: Vec<PgWireResult<DataRow>> = jsonb::encode(fields.clone(), batch).collect();
    let mut response = QueryResponse::new(fields, stream::iter(rows));
    response.set_command_tag(tag);
    Ok(response)
}

fn text_batch(
    columns: &[&str],
    rows: Vec<Vec<Option<String>>>,
) -> Result<RecordBatch, ServerError> {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(*c, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let arrays: Vec<ArrayRef> = (0..columns.len())
        .map(|i| {
            Arc::new(StringArray::from(
                rows.iter().map(|r| r[i].clone()).collect::<Vec<_>>(),
            )) as ArrayRef
        })
        .collect();
    Ok(RecordBatch::try_new(schema, arrays).map_err(datafusion::error::DataFusionError::from)?)
}

fn text_schema(columns: &[&str]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(*c, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ))
}

/// Parameter types by position: DataFusion's inference, completed with the
/// target of casts like `$1::int` that DataFusion leaves open.
fn parameter_data_types(plan: &LogicalPlan) -> Result<Vec<Option<DataType>>, ServerError> {
    let mut by_index: BTreeMap<usize, Option<DataType>> = BTreeMap::new();
    for (id, ty) in plan.get_parameter_types()? {
        if let Ok(n) = id.trim_start_matches('$').parse::<usize>() {
            by_index.insert(n, ty);
        }
    }
    plan.apply(|node| {
        for expr in node.expressions() {
            expr.apply(|e| {
                if let DfExpr::Cast(cast) = e
                    && let DfExpr::Placeholder(p) = cast.expr.as_ref()
                    && let Ok(n) = p.id.trim_start_matches('$').parse::<usize>()
                {
                    let slot = by_index.entry(n).or_insert(None);
                    if slot.is_none() {
                        *slot = Some(cast.field.data_type().clone());
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    let count = by_index.keys().next_back().copied().unwrap_or(0);
    Ok((1..=count)
        .map(|n| by_index.get(&n).cloned().flatten())
        .collect())
}

fn is_row_returning(stmt: &Statement) -> bool {
    matches!(
        stmt,
        Statement::Query(_) | Statement::Explain { .. } | Statement::ExplainTable { .. }
    ) || matches!(
        stmt,
        Statement::ShowTables { .. } | Statement::ShowColumns { .. }
    )
}

impl QueryHandler {
    /// Runs a statement DataFusion plans, returning rows or a command tag.
    /// Notices the statement raised are added to `notices`.
    async fn run_plan(
        &self,
        session: &Session,
        stmt: &Statement,
        plan: Option<LogicalPlan>,
        format: &Format,
        notices: &mut Vec<String>,
    ) -> Result<Response, ServerError> {
        let stripped = returning::strip_returning(stmt)?;
        let plan = match plan {
            Some(plan) => plan,
            None => {
                let planned = stripped.as_ref().map(|(s, _)| s).unwrap_or(stmt);
                let state = session.ctx.state();
                state
                    .statement_to_plan(DfStatement::Statement(Box::new(planned.clone())))
                    .await?
            }
        };
        let plan = rewrite::keep_numeric_scale(plan)?;
        if stmt_mentions_descriptions(stmt) {
            catalog::refresh_comments(&session.ctx).await?;
        }
        let dml_op = match &plan {
            LogicalPlan::Dml(DmlStatement { op, .. }) => Some(op.clone()),
            _ => None,
        };
        let writes = WriteContext::of(&session.ctx);
        if dml_op.is_some()
            && let Some(writes) = &writes
        {
            // Whatever an earlier, failed statement left is not ours.
            writes.take_outcome();
        }
        let frame = session.ctx.execute_logical_plan(plan).await?;

        if let Some(op) = dml_op {
            let mut batches = guard_stream(session.control.clone(), frame.execute_stream().await?);
            let mut count: u64 = 0;
            while let Some(batch) = batches.next().await {
                count += affected_rows(&batch?);
            }
            let outcome = writes.map(|w| w.take_outcome()).unwrap_or_default();
            notices.extend(outcome.notices);
            let count = usize::try_from(count).unwrap_or(usize::MAX);
            if let Some((_, returning)) = stripped {
                let frame =
                    returning::returning_frame(&session.ctx, &returning, outcome.returned).await?;
                let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
                let batch =
                    datafusion::arrow::compute::concat_batches(&schema, &frame.collect().await?)
                        .map_err(datafusion::error::DataFusionError::from)?;
                let tag = match op {
                    WriteOp::Insert(_) => "INSERT 0",
                    WriteOp::Update => "UPDATE",
                    _ => "DELETE",
                };
                return Ok(Response::Query(batch_response(
                    session, batch, format, tag,
                )?));
            }
            let tag = match op {
                WriteOp::Insert(_) => Tag::new("INSERT").with_oid(0).with_rows(count),
                WriteOp::Update => Tag::new("UPDATE").with_rows(count),
                WriteOp::Delete => Tag::new("DELETE").with_rows(count),
                WriteOp::Ctas => Tag::new("SELECT").with_rows(count),
                WriteOp::Truncate => Tag::new("TRUNCATE TABLE"),
                other => Tag::new(&other.name().to_ascii_uppercase()).with_rows(count),
            };
            return Ok(Response::Execution(tag));
        }

        let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        if schema.fields().is_empty() && !is_row_returning(stmt) {
            // DDL runs inside `execute_logical_plan`; nothing to stream.
            return Ok(Response::Execution(Tag::new(&statements::command_tag(
                stmt,
            ))));
        }
        let fields = Arc::new(jsonb::pg_fields(
            &schema,
            format,
            Some(session.format_options()),
        )?);
        let batches = frame.execute_stream().await?;
        let mut response =
            QueryResponse::new(fields.clone(), encode_stream(session, batches, fields));
        response.set_command_tag(&statements::command_tag(stmt));
        Ok(Response::Query(response))
    }

    /// Answers a statement the wire layer handles itself.
    async fn run_utility<C>(
        &self,
        session: &Session,
        client: &mut C,
        utility: &Utility,
        format: &Format,
        params: Option<ParamValues>,
    ) -> Result<Response, ServerError>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let status = client.transaction_status();
        match utility {
            Utility::Set { name, value } => {
                if let Some((name, value)) = statements::apply_set(session, name, value.as_deref())?
                {
                    report(client, name, value).await?;
                }
                Ok(Response::Execution(Tag::new("SET")))
            }
            Utility::Show(name) if name.eq_ignore_ascii_case("all") => {
                let rows = statements::show_all(session)
                    .into_iter()
                    .map(|r| r.to_vec())
                    .collect();
                let batch = text_batch(&["name", "setting", "description"], rows)?;
                Ok(Response::Query(batch_response(
                    session, batch, format, "SHOW",
                )?))
            }
            Utility::Show(name) => {
                let (column, value) = statements::show(session, name)?;
                let batch = text_batch(&[column.as_str()], vec![vec![value]])?;
                Ok(Response::Query(batch_response(
                    session, batch, format, "SHOW",
                )?))
            }
            Utility::Reset(name) => {
                for (name, value) in statements::apply_reset(session, name.as_deref())? {
                    report(client, name, value).await?;
                }
                Ok(Response::Execution(Tag::new("RESET")))
            }
            Utility::Begin => {
                if status == TransactionStatus::Error {
                    return Err(failed_transaction());
                }
                Ok(Response::TransactionStart(Tag::new("BEGIN")))
            }
            Utility::Commit => Ok(Response::TransactionEnd(Tag::new(
                if status == TransactionStatus::Error {
                    "ROLLBACK"
                } else {
                    "COMMIT"
                },
            ))),
            Utility::Rollback {
                to_savepoint: false,
            } => Ok(Response::TransactionEnd(Tag::new("ROLLBACK"))),
            Utility::Rollback { to_savepoint: true } => {
                Ok(Response::Execution(Tag::new("ROLLBACK")))
            }
            Utility::Savepoint => Ok(Response::Execution(Tag::new("SAVEPOINT"))),
            Utility::ReleaseSavepoint => Ok(Response::Execution(Tag::new("RELEASE"))),
            Utility::Discard => {
                session.cursors.lock().await.clear();
                for (name, value) in statements::apply_reset(session, None)? {
                    report(client, name, value).await?;
                }
                Ok(Response::Execution(Tag::new("DISCARD ALL")))
            }
            Utility::Deallocate(name) => {
                client.portal_store().rm_statement(name);
                Ok(Response::Execution(Tag::new("DEALLOCATE")))
            }
            Utility::Declare { name, query } => {
                let mut stmt = Statement::Query(query.clone());
                statements::name_columns(&mut stmt);
                let state = session.ctx.state();
                let plan = state
                    .statement_to_plan(DfStatement::Statement(Box::new(stmt)))
                    .await?;
                let frame = session.ctx.execute_logical_plan(plan).await?;
                let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
                let fields = Arc::new(jsonb::pg_fields(
                    &schema,
                    &Format::UnifiedText,
                    Some(session.format_options()),
                )?);
                let batches = frame.execute_stream().await?;
                let rows = Box::pin(encode_stream(session, batches, fields.clone()));
                session.cursors.lock().await.insert(
                    name.clone(),
                    Cursor {
                        schema,
                        fields,
                        rows,
                    },
                );
                Ok(Response::Execution(Tag::new("DECLARE CURSOR")))
            }
            Utility::Fetch { name, count } => {
                let mut cursors = session.cursors.lock().await;
                let cursor = cursors.get_mut(name).ok_or_else(|| missing_cursor(name))?;
                let mut rows = vec![];
                while count.is_none_or(|n| rows.len() < n) {
                    match cursor.rows.next().await {
                        Some(row) => rows.push(row),
                        None => break,
                    }
                }
                let mut response = QueryResponse::new(cursor.fields.clone(), stream::iter(rows));
                response.set_command_tag("FETCH");
                Ok(Response::Query(response))
            }
            Utility::Close(name) => {
                let mut cursors = session.cursors.lock().await;
                match name {
                    Some(name) => {
                        cursors.remove(name).ok_or_else(|| missing_cursor(name))?;
                    }
                    None => cursors.clear(),
                }
                Ok(Response::Execution(Tag::new("CLOSE CURSOR")))
            }
            Utility::Call { name, args } => {
                let values = evaluate_args(session, args, params).await?;
                match self.backend.call(&session.ctx, name, values).await? {
                    Some(batch) => Ok(Response::Query(batch_response(
                        session, batch, format, "CALL",
                    )?)),
                    None => Ok(Response::Execution(Tag::new("CALL"))),
                }
            }
        }
    }

    /// Runs one statement of a simple Query message.
    async fn run_simple<C>(
        &self,
        session: &Session,
        client: &mut C,
        stmt: Statement,
    ) -> Result<Response, ServerError>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if copy_in::is_copy_from(&stmt) {
            may_run(&Route::Plan, client.transaction_status())?;
            let pending = copy_in::pending_of(client);
            if let Some(response) = copy_in::start(session, &pending, &stmt).await? {
                return Ok(response);
            }
        }
        if let Some((query, format)) = copy::to_query(&stmt)? {
            may_run(&Route::Plan, client.transaction_status())?;
            let rows = self
                .run_plan(session, &query, None, &Format::UnifiedText, &mut Vec::new())
                .await?;
            return copy::copy_out(rows, format);
        }
        let route = route_of(self.backend.as_ref(), &stmt)?;
        may_run(&route, client.transaction_status())?;
        match route {
            Route::Plan => {
                let mut notices = Vec::new();
                let response = self
                    .run_plan(session, &stmt, None, &Format::UnifiedText, &mut notices)
                    .await;
                send_notices(client, notices).await?;
                response
            }
            Route::Utility(utility) => {
                self.run_utility(session, client, &utility, &Format::UnifiedText, None)
                    .await
            }
        }
    }
}

fn missing_cursor(name: &str) -> ServerError {
    ServerError::Sql(SqlError::new(
        "34000",
        format!("cursor \"{name}\" does not exist"),
    ))
}

/// Whether the statement reads comments or keys, which are resolved against
/// the session's current table oids first.
fn stmt_mentions_descriptions(stmt: &Statement) -> bool {
    let Statement::Query(query) = stmt else {
        return false;
    };
    if matches!(query.body.as_ref(), SetExpr::Values(_)) {
        return false;
    }
    let text = query.to_string().to_ascii_lowercase();
    [
        "description",
        "pg_constraint",
        "pg_index",
        "pg_class",
        "regclass",
    ]
    .iter()
    .any(|word| text.contains(word))
}

/// Row count reported by a DML plan (one UInt64 `count` column).
fn affected_rows(batch: &RecordBatch) -> u64 {
    batch
        .column_by_name("count")
        .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
        .map(|counts| counts.iter().flatten().sum())
        .unwrap_or(0)
}

/// `SELECT <args>`: how CALL arguments are typed and evaluated.
fn args_query(args: &[datafusion::sql::sqlparser::ast::Expr]) -> String {
    let list = args
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    format!("SELECT {list}")
}

/// `SELECT * FROM proc(args) [AS alias]`, the form JDBC's default escape
/// mode turns `{call proc(?)}` into: the procedure name and its arguments.
fn procedure_select(
    stmt: &Statement,
) -> Option<(String, Vec<datafusion::sql::sqlparser::ast::Expr>)> {
    use datafusion::sql::sqlparser::ast::{FunctionArg, FunctionArgExpr, SelectItem, TableFactor};
    let Statement::Query(query) = stmt else {
        return None;
    };
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    let only_star =
        select.projection.len() == 1 && matches!(select.projection[0], SelectItem::Wildcard(_));
    if !only_star || select.from.len() != 1 || select.selection.is_some() {
        return None;
    }
    let from = &select.from[0];
    if !from.joins.is_empty() {
        return None;
    }
    let TableFactor::Table {
        name,
        args: Some(args),
        ..
    } = &from.relation
    else {
        return None;
    };
    let name = name.0.last()?.as_ident()?.value.clone();
    let args = args
        .args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some((name, args))
}

/// The route of a statement; a `SELECT * FROM proc(...)` of a known
/// procedure is a CALL.
fn route_of(backend: &dyn Backend, stmt: &Statement) -> Result<Route, ServerError> {
    if let Some((name, args)) = procedure_select(stmt)
        && backend.call_schema(&name).is_some()
    {
        return Ok(Route::Utility(Utility::Call { name, args }));
    }
    statements::route(stmt)
}

/// Evaluates CALL arguments as constant expressions, with the values of
/// `$n` parameters when the extended protocol bound some.
async fn evaluate_args(
    session: &Session,
    args: &[datafusion::sql::sqlparser::ast::Expr],
    params: Option<ParamValues>,
) -> Result<Vec<ScalarValue>, ServerError> {
    if args.is_empty() {
        return Ok(vec![]);
    }
    let mut plan = session
        .ctx
        .state()
        .create_logical_plan(&args_query(args))
        .await?;
    if let Some(params) = params {
        plan = plan.replace_params_with_values(&params)?;
    }
    let batches = session
        .ctx
        .execute_logical_plan(plan)
        .await?
        .collect()
        .await?;
    let batch = batches
        .into_iter()
        .find(|b| b.num_rows() > 0)
        .ok_or_else(|| {
            ServerError::Sql(SqlError::new(
                codes::DATA_EXCEPTION,
                "CALL arguments produced no value",
            ))
        })?;
    batch
        .columns()
        .iter()
        .map(|c| ScalarValue::try_from_array(c.as_ref(), 0).map_err(ServerError::from))
        .collect()
}

/// Sends notices raised by a statement, before its completion.
async fn send_notices<C>(client: &mut C, notices: Vec<String>) -> Result<(), ServerError>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    for notice in notices {
        let info = ErrorInfo::new("NOTICE".to_owned(), "00000".to_owned(), notice);
        client
            .feed(PgWireBackendMessage::NoticeResponse(info.into()))
            .await
            .map_err(|e| ServerError::Protocol(PgWireError::from(e)))?;
    }
    Ok(())
}

async fn report<C>(client: &mut C, name: String, value: String) -> Result<(), ServerError>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    client
        .feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
            name, value,
        )))
        .await
        .map_err(|e| ServerError::Protocol(PgWireError::from(e)))
}

#[async_trait]
impl SimpleQueryHandler for QueryHandler {
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = session_of(client)?;
        session.control.begin(session.statement_timeout());
        let span = tracing::debug_span!("statement", sql = %truncate(&query.query, 200));
        let outcome = self._on_query(client, query).instrument(span).await;
        session.control.end();
        outcome
    }

    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = session_of(client)?;
        debug!("simple query");
        let statements = self.parser.parse(query)?;
        if statements.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        let mut responses = Vec::with_capacity(statements.len());
        for stmt in statements {
            crate::table::begin_statement(&session.ctx);
            let control = session.control.clone();
            match control.run(self.run_simple(&session, client, stmt)).await {
                Ok(response) => responses.push(response),
                Err(e) => {
                    // Earlier results still go out, as PostgreSQL sends them
                    // before the error that stops the rest of the string.
                    let info = super::errors::to_error_fields(&e).into_error_info();
                    responses.push(Response::Error(Box::new(info)));
                    break;
                }
            }
        }
        Ok(responses)
    }
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = PreparedStatement;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<PreparedStatement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let span = tracing::debug_span!("parse", sql = %truncate(sql, 200));
        self.prepare(client, sql, types)
            .instrument(span)
            .await
            .map_err(PgWireError::from)
    }

    fn get_parameter_types(&self, stmt: &PreparedStatement) -> PgWireResult<Vec<Type>> {
        Ok(stmt.param_types.clone())
    }

    fn get_result_schema(
        &self,
        stmt: &PreparedStatement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        match &stmt.result_schema {
            Some(schema) => {
                jsonb::pg_fields(schema, column_format.unwrap_or(&Format::UnifiedText), None)
            }
            None => Ok(vec![]),
        }
    }
}

impl Parser {
    async fn prepare<C>(
        &self,
        client: &C,
        sql: &str,
        client_types: &[Option<Type>],
    ) -> Result<Option<PreparedStatement>, ServerError>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let session = session_of(client)?;
        let mut statements = self.parse(sql)?;
        if statements.len() > 1 {
            return Err(ServerError::Sql(SqlError::new(
                codes::SYNTAX_ERROR,
                "cannot insert multiple commands into a prepared statement",
            )));
        }
        let Some(statement) = statements.pop() else {
            return Ok(None);
        };
        let route = route_of(self.backend.as_ref(), &statement)?;
        let is_copy = copy_in::is_copy_from(&statement) || copy::to_query(&statement)?.is_some();
        let (plan, param_data_types, result_schema) = match &route {
            // COPY is planned when it runs; it describes as returning no rows.
            Route::Plan if is_copy => (None, vec![], None),
            Route::Plan => {
                let stripped = returning::strip_returning(&statement)?;
                let planned = stripped.as_ref().map(|(s, _)| s).unwrap_or(&statement);
                let state = session.ctx.state();
                let plan = state
                    .statement_to_plan(DfStatement::Statement(Box::new(planned.clone())))
                    .await?;
                let params = parameter_data_types(&plan)?;
                let schema = match &plan {
                    LogicalPlan::Dml(_) if stripped.is_some() => {
                        let returning = stripped.as_ref().map(|(_, r)| r).ok_or_else(|| {
                            ServerError::Sql(SqlError::new(codes::INTERNAL_ERROR, "RETURNING"))
                        })?;
                        let frame =
                            returning::returning_frame(&session.ctx, returning, vec![]).await?;
                        Some(Arc::new(frame.schema().as_arrow().clone()))
                    }
                    LogicalPlan::Dml(_) | LogicalPlan::Ddl(_) => None,
                    plan if plan.schema().fields().is_empty() => None,
                    plan => Some(Arc::new(plan.schema().as_arrow().clone())),
                };
                (Some(plan), params, schema)
            }
            Route::Utility(Utility::Show(name)) if name.eq_ignore_ascii_case("all") => (
                None,
                vec![],
                Some(text_schema(&["name", "setting", "description"])),
            ),
            Route::Utility(Utility::Show(name)) => {
                let (column, _) = statements::show(&session, name)?;
                (None, vec![], Some(text_schema(&[column.as_str()])))
            }
            Route::Utility(Utility::Fetch { name, .. }) => {
                let cursors = session.cursors.lock().await;
                let cursor = cursors.get(name).ok_or_else(|| missing_cursor(name))?;
                (None, vec![], Some(cursor.schema.clone()))
            }
            Route::Utility(Utility::Call { name, args }) => {
                let params = if args.is_empty() {
                    vec![]
                } else {
                    let plan = session
                        .ctx
                        .state()
                        .create_logical_plan(&args_query(args))
                        .await?;
                    let mut types = parameter_data_types(&plan)?;
                    // A bare `$n` argument takes the procedure's argument type.
                    let declared = self.backend.call_argument_types(name).unwrap_or_default();
                    for (arg, ty) in args.iter().zip(declared) {
                        if let datafusion::sql::sqlparser::ast::Expr::Value(v) = arg
                            && let datafusion::sql::sqlparser::ast::Value::Placeholder(p) = &v.value
                            && let Ok(n) = p.trim_start_matches('$').parse::<usize>()
                            && let Some(slot) = n.checked_sub(1).and_then(|i| types.get_mut(i))
                            && slot.is_none()
                        {
                            *slot = Some(ty);
                        }
                    }
                    types
                };
                (None, params, self.backend.call_schema(name))
            }
            Route::Utility(_) => (None, vec![], None),
        };
        let param_types = param_data_types
            .iter()
            .enumerate()
            .map(|(i, ty)| match client_types.get(i).cloned().flatten() {
                Some(ty) => Ok(ty),
                None => match ty {
                    Some(ty) => into_pg_type(ty),
                    None => Ok(Type::UNKNOWN),
                },
            })
            .collect::<PgWireResult<Vec<Type>>>()?;
        Ok(Some(Arc::new(Prepared {
            statement,
            route,
            plan,
            param_data_types,
            param_types,
            result_schema,
        })))
    }
}

impl QueryHandler {
    /// Executes a bound portal; rows are left to the caller.
    async fn run_portal<C>(
        &self,
        session: &Session,
        client: &mut C,
        portal: &Portal<PreparedStatement>,
    ) -> Result<Response, ServerError>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = PreparedStatement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let prepared = &portal.statement.statement;
        may_run(&prepared.route, client.transaction_status())?;
        let pending = copy_in::pending_of(client);
        if let Some(response) = copy_in::start(session, &pending, &prepared.statement).await? {
            return Ok(response);
        }
        if let Some((query, format)) = copy::to_query(&prepared.statement)? {
            let rows = self
                .run_plan(session, &query, None, &Format::UnifiedText, &mut Vec::new())
                .await?;
            return copy::copy_out(rows, format);
        }
        match &prepared.route {
            Route::Plan => {
                let inferred: Vec<Option<&DataType>> = prepared
                    .param_data_types
                    .iter()
                    .map(Option::as_ref)
                    .collect();
                let wire: Vec<Option<&Type>> = prepared.param_types.iter().map(Some).collect();
                let values = deserialize_parameters_with_server_types(portal, &inferred, &wire)?;
                let plan = match &prepared.plan {
                    Some(plan) => {
                        let text_of = |i: usize| {
                            if portal.parameter_format.is_binary(i) {
                                return None;
                            }
                            let bytes = portal.parameters.get(i)?.as_ref()?;
                            std::str::from_utf8(bytes).ok().map(str::to_owned)
                        };
                        let values = rewrite::numeric_params_as_text(plan, values, text_of)?;
                        Some(plan.clone().replace_params_with_values(&values)?)
                    }
                    None => None,
                };
                let mut notices = Vec::new();
                let response = self
                    .run_plan(
                        session,
                        &prepared.statement,
                        plan,
                        &portal.result_column_format,
                        &mut notices,
                    )
                    .await;
                send_notices(client, notices).await?;
                response
            }
            Route::Utility(utility) => {
                // Only CALL arguments can hold parameters.
                let params = match utility {
                    Utility::Call { .. } if !prepared.param_types.is_empty() => {
                        let inferred: Vec<Option<&DataType>> = prepared
                            .param_data_types
                            .iter()
                            .map(Option::as_ref)
                            .collect();
                        let wire: Vec<Option<&Type>> =
                            prepared.param_types.iter().map(Some).collect();
                        Some(deserialize_parameters_with_server_types(
                            portal, &inferred, &wire,
                        )?)
                    }
                    _ => None,
                };
                self.run_utility(
                    session,
                    client,
                    utility,
                    &portal.result_column_format,
                    params,
                )
                .await
            }
        }
    }

    /// Sends up to `max_rows` rows of a started portal (all when 0).
    async fn send_portal_rows<C>(
        &self,
        client: &mut C,
        portal: &Portal<PreparedStatement>,
        max_rows: usize,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut fetched = portal.fetch(max_rows).await?;
        let tag = fetched.response.command_tag().to_owned();
        let mut sent = 0;
        while let Some(row) = fetched.response.data_rows().next().await {
            client.feed(PgWireBackendMessage::DataRow(row?)).await?;
            sent += 1;
        }
        if fetched.suspended {
            client
                .feed(PgWireBackendMessage::PortalSuspended(PortalSuspended::new()))
                .await?;
        } else {
            client
                .feed(PgWireBackendMessage::CommandComplete(
                    Tag::new(&tag).with_rows(sent).into(),
                ))
                .await?;
        }
        Ok(())
    }

    /// Execute of a portal that is a `DECLARE`d cursor: up to `max_rows` of
    /// its remaining rows (all when 0), then PortalSuspended when the limit
    /// was reached, as PostgreSQL does, or CommandComplete when the cursor ran
    /// out. The rows stay in the text format the cursor was declared with.
    async fn execute_cursor<C>(
        &self,
        session: &Session,
        client: &mut C,
        name: &str,
        max_rows: usize,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let rows = {
            let mut cursors = session.cursors.lock().await;
            let Some(cursor) = cursors.get_mut(name) else {
                return Err(ServerError::Sql(SqlError::new(
                    "34000",
                    format!("portal \"{name}\" does not exist"),
                ))
                .into());
            };
            let mut rows = vec![];
            while max_rows == 0 || rows.len() < max_rows {
                match cursor.rows.next().await {
                    Some(row) => rows.push(row?),
                    None => break,
                }
            }
            rows
        };
        let sent = rows.len();
        for row in rows {
            client.feed(PgWireBackendMessage::DataRow(row)).await?;
        }
        let message = if max_rows > 0 && sent == max_rows {
            PgWireBackendMessage::PortalSuspended(PortalSuspended::new())
        } else {
            PgWireBackendMessage::CommandComplete(Tag::new("SELECT").with_rows(sent).into())
        };
        client.feed(message).await?;
        Ok(())
    }

    async fn execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = PreparedStatement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        let session = session_of(client)?;
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        let max_rows = usize::try_from(message.max_rows).unwrap_or(0);
        let portal = match client.portal_store().get_portal(name) {
            Some(Entry::Value(portal)) => portal,
            Some(Entry::Empty) => {
                client
                    .feed(PgWireBackendMessage::EmptyQueryResponse(
                        EmptyQueryResponse::new(),
                    ))
                    .await?;
                return Ok(());
            }
            None => return self.execute_cursor(&session, client, name, max_rows).await,
        };
        let mut status = client.transaction_status();
        client.set_state(PgWireConnectionState::QueryInProgress);

        let started = !matches!(*portal.state().lock().await, PortalExecutionState::Initial);
        if started {
            self.send_portal_rows(client, &portal, max_rows).await?;
        } else {
            let control = session.control.clone();
            let response = control
                .run(self.run_portal(&session, client, &portal))
                .await?;
            match response {
                Response::Query(mut rows) if max_rows == 0 => {
                    // Stream straight to the client instead of buffering the
                    // portal: nothing can fetch from it afterwards.
                    *portal.state().lock().await = PortalExecutionState::Finished;
                    let tag = rows.command_tag().to_owned();
                    let mut sent = 0;
                    while let Some(row) = rows.data_rows().next().await {
                        client.feed(PgWireBackendMessage::DataRow(row?)).await?;
                        sent += 1;
                    }
                    client
                        .feed(PgWireBackendMessage::CommandComplete(
                            Tag::new(&tag).with_rows(sent).into(),
                        ))
                        .await?;
                }
                Response::Query(rows) => {
                    portal.start(rows).await;
                    self.send_portal_rows(client, &portal, max_rows).await?;
                }
                Response::EmptyQuery => {
                    client
                        .feed(PgWireBackendMessage::EmptyQueryResponse(
                            EmptyQueryResponse::new(),
                        ))
                        .await?;
                }
                Response::Execution(tag) => send_execution_response(client, tag).await?,
                Response::TransactionStart(tag) => {
                    send_execution_response(client, tag).await?;
                    status = status.to_in_transaction_state();
                }
                Response::TransactionEnd(tag) => {
                    send_execution_response(client, tag).await?;
                    status = status.to_idle_state();
                }
                Response::Error(info) => return Err(PgWireError::UserError(info)),
                Response::CopyOut(copy) => {
                    *portal.state().lock().await = PortalExecutionState::Finished;
                    pgwire::api::copy::send_copy_out_response(client, copy).await?;
                }
                Response::CopyIn(copy) => {
                    // The data follows; CopyDone and the client's Sync end it.
                    *portal.state().lock().await = PortalExecutionState::Finished;
                    client.set_state(PgWireConnectionState::CopyInProgress(true));
                    pgwire::api::copy::send_copy_in_response(client, copy).await?;
                    return Ok(());
                }
                Response::CopyBoth(_) => {
                    return Err(ServerError::Sql(SqlError::new(
                        codes::FEATURE_NOT_SUPPORTED,
                        "COPY is not supported",
                    ))
                    .into());
                }
            }
        }
        client.set_state(PgWireConnectionState::ReadyForQuery);
        client.set_transaction_status(status);
        Ok(())
    }
}

#[async_trait]
impl ExtendedQueryHandler for QueryHandler {
    type Statement = PreparedStatement;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Parser> {
        self.parser.clone()
    }

    /// Describe of a portal also knows the cursors opened with `DECLARE`:
    /// PostgreSQL keeps both in one namespace, and psycopg describes its
    /// server-side cursor that way. A protocol portal of the same name wins.
    /// Execute of such a portal reads the cursor ([`Self::execute_cursor`]).
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = PreparedStatement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if message.target_type == TARGET_TYPE_BYTE_PORTAL {
            let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
            if client.portal_store().get_portal(name).is_none() {
                let session = session_of(client)?;
                let fields = {
                    let cursors = session.cursors.lock().await;
                    cursors
                        .get(name)
                        .map(|cursor| cursor.fields.as_ref().clone())
                };
                let Some(fields) = fields else {
                    return Err(ServerError::Sql(SqlError::new(
                        "34000",
                        format!("portal \"{name}\" does not exist"),
                    ))
                    .into());
                };
                let response = DescribePortalResponse::new(fields);
                return send_describe_response(client, &response).await;
            }
        }
        self._on_describe(client, message).await
    }

    /// Close of a portal also closes the `DECLARE`d cursor of that name.
    /// Closing a name that is neither is not an error, as in PostgreSQL; an
    /// unknown target type is a protocol violation (08P01).
    async fn on_close<C>(&self, client: &mut C, message: Close) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = PreparedStatement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        match message.target_type {
            TARGET_TYPE_BYTE_STATEMENT => client.portal_store().rm_statement(name),
            TARGET_TYPE_BYTE_PORTAL => {
                client.portal_store().rm_portal(name);
                let session = session_of(client)?;
                session.cursors.lock().await.remove(name);
            }
            other => {
                return Err(ServerError::Sql(SqlError::new(
                    codes::PROTOCOL_VIOLATION,
                    format!("invalid CLOSE message subtype {other}"),
                ))
                .into());
            }
        }
        client
            .send(PgWireBackendMessage::CloseComplete(CloseComplete::new()))
            .await?;
        Ok(())
    }

    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = PreparedStatement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = session_of(client)?;
        session.control.begin(session.statement_timeout());
        let span = tracing::debug_span!("execute", portal = message.name.as_deref().unwrap_or(""));
        let outcome = self.execute(client, message).instrument(span).await;
        session.control.end();
        outcome
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<PreparedStatement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = PreparedStatement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = session_of(client)?;
        crate::table::begin_statement(&session.ctx);
        let control = session.control.clone();
        Ok(control
            .run(self.run_portal(&session, client, portal))
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_keeps_char_boundaries() {
        assert_eq!(truncate("äöü", 2), "äö");
        assert_eq!(truncate("abc", 10), "abc");
    }

    #[tokio::test]
    async fn cast_placeholders_get_their_type() {
        let ctx = datafusion::prelude::SessionContext::new();
        let plan = ctx
            .state()
            .create_logical_plan("SELECT $1::int + 1, $2")
            .await
            .expect("plans");
        let types = parameter_data_types(&plan).expect("types");
        assert_eq!(types.len(), 2);
        assert_eq!(types[0], Some(DataType::Int32));
    }
}
