//! `COPY table (columns) FROM STDIN` (what psql's `\copy ... from` sends).
//!
//! The statement is checked when it arrives (table, columns, options,
//! `--read-only`) and answered with CopyInResponse; the data the client
//! then streams is kept until CopyDone. Only then is every row parsed and
//! validated, like PostgreSQL does inside its transaction: a bad row fails
//! the statement with its SQLSTATE and `COPY table, line N` as CONTEXT, and
//! nothing is sent. The rows are then created one by one; if the API fails
//! part way, the error names the rows already created, as a multi-row
//! INSERT does. CopyFail drops the data and sends nothing.
//!
//! The data is held in memory until CopyDone (the API writes one record
//! per request, so loads are far smaller than memory).

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::sql::sqlparser::ast::{CopySource, CopyTarget, Statement};
use futures::{Sink, SinkExt};
use parking_lot::Mutex;
use pgwire::api::ClientInfo;
use pgwire::api::copy::CopyHandler;
use pgwire::api::results::{CopyResponse, Response, Tag};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};

use super::copy::{CopyFormat, format_of};
use super::errors::{ServerError, to_error_fields};
use super::session::Session;
use crate::api::{ApiClient, RequestStats};
use crate::error::{SqlError, codes};
use crate::table::ProductiveTable;
use crate::table::provider::session_options;
use crate::transfer::csv_in::{self, InputFormat};
use crate::write::exec::partial_failure;
use crate::write::rows::{RowAction, TextRows};
use crate::write::{WriteContext, check_writable};

/// A `COPY ... FROM STDIN` waiting for its data, kept in the connection's
/// session extensions between the statement and CopyDone.
#[derive(Default)]
pub struct PendingCopy {
    state: Mutex<Option<CopyState>>,
}

struct CopyState {
    table: String,
    rows: TextRows,
    client: ApiClient,
    format: InputFormat,
    max_requests: Option<u64>,
    data: Vec<u8>,
}

/// Whether `stmt` is a `COPY ... FROM`.
pub fn is_copy_from(stmt: &Statement) -> bool {
    matches!(stmt, Statement::Copy { to: false, .. })
}

fn sql(e: SqlError) -> ServerError {
    ServerError::Sql(e)
}

/// Checks a `COPY ... FROM STDIN` and gets ready for its data; answers
/// the CopyInResponse to send. `None` for any other statement.
///
/// # Errors
/// 0A000 for sources other than STDIN, binary data, tables without
/// INSERT; 25006 on a read-only server; 42P01/42703 for unknown tables or
/// columns; 22023 for bad options or encodings.
pub async fn start(
    session: &Session,
    pending: &PendingCopy,
    stmt: &Statement,
) -> Result<Option<Response>, ServerError> {
    let Statement::Copy {
        source,
        to: false,
        target,
        options,
        legacy_options,
        ..
    } = stmt
    else {
        return Ok(None);
    };
    if *target != CopyTarget::Stdin {
        return Err(sql(SqlError::new(
            codes::FEATURE_NOT_SUPPORTED,
            "COPY FROM a file or program is not supported; use COPY ... FROM STDIN \
             (psql: \\copy ... from 'file')",
        )));
    }
    let CopySource::Table {
        table_name,
        columns,
    } = source
    else {
        return Err(sql(SqlError::new(
            codes::SYNTAX_ERROR,
            "COPY FROM needs a table",
        )));
    };
    let (format, encoding) = format_of(options, legacy_options)?;
    if let Some(encoding) = &encoding {
        InputFormat::check_encoding(encoding).map_err(sql)?;
    }
    let format = input_format(&format).map_err(sql)?;

    let context = WriteContext::of(&session.ctx);
    check_writable(context.as_deref(), "COPY FROM").map_err(sql)?;
    let name = table_name.to_string();
    let provider = session.ctx.table_provider(table_name.to_string()).await?;
    let table = provider.downcast_ref::<ProductiveTable>().ok_or_else(|| {
        sql(SqlError::new(
            codes::FEATURE_NOT_SUPPORTED,
            format!("COPY FROM is not supported on \"{name}\": it is not a Productive table"),
        ))
    })?;
    let def = table.def().clone();
    let names: Vec<String> = if columns.is_empty() {
        def.columns
            .iter()
            .filter(|c| c.writable)
            .map(|c| c.name.clone())
            .collect()
    } else {
        columns.iter().map(|c| c.value.clone()).collect()
    };
    let rows = TextRows::new(def, &names, &[RowAction::Insert]).map_err(sql)?;
    let options = session_options(&session.ctx.state());
    let width = rows.width();
    *pending.state.lock() = Some(CopyState {
        table: rows.def().table.name.to_string(),
        rows,
        client: table.client().clone(),
        format,
        max_requests: (options.max_requests > 0).then_some(options.max_requests),
        data: Vec::new(),
    });
    Ok(Some(Response::CopyIn(CopyResponse::new(
        0,
        width,
        futures::stream::empty(),
    ))))
}

/// The reader's view of COPY's options.
fn input_format(format: &CopyFormat) -> Result<InputFormat, SqlError> {
    let mut input = if format.csv {
        InputFormat::csv()
    } else {
        InputFormat::text()
    };
    input.header = format.header;
    input.delimiter = InputFormat::single_byte("delimiter", format.delimiter)?;
    input.quote = InputFormat::single_byte("quote", format.quote)?;
    input.escape = InputFormat::single_byte("escape", format.escape)?;
    input.null = format.null.clone();
    if input.delimiter == input.quote && input.csv {
        return Err(SqlError::new(
            codes::INVALID_PARAMETER_VALUE,
            "COPY delimiter and quote must be different",
        ));
    }
    Ok(input)
}

/// Receives the data of `COPY ... FROM STDIN`.
pub struct CopyInHandler;

/// The COPY state of a connection.
pub fn pending_of(client: &(impl ClientInfo + ?Sized)) -> Arc<PendingCopy> {
    client
        .session_extensions()
        .get_or_insert_with(PendingCopy::default)
}

fn wire_error(e: SqlError, context: Option<String>) -> PgWireError {
    let mut info: ErrorInfo = to_error_fields(&ServerError::Sql(e)).into_error_info();
    info.where_context = context;
    PgWireError::UserError(Box::new(info))
}

/// Parses, validates and writes the rows of a finished COPY; the number
/// of records created.
async fn load(state: CopyState) -> Result<u64, PgWireError> {
    let context = |line: u64| Some(format!("COPY {}, line {line}", state.table));
    let (_, records) = csv_in::read(&state.data, &state.format);
    let mut writes = Vec::with_capacity(records.len());
    for record in records {
        let record = record.map_err(|e| wire_error(e.error, context(e.line)))?;
        let write = state
            .rows
            .prepare(RowAction::Insert, &record.fields)
            .map_err(|e| wire_error(e, context(record.line)))?;
        writes.push((record.line, write));
    }
    let stats = RequestStats::with_cap(state.max_requests);
    let total = writes.len();
    let mut applied = Vec::with_capacity(total);
    for (line, write) in writes {
        match write.send(&state.client, &stats).await {
            Ok((id, _)) => applied.push(id),
            Err(e) => {
                let err = partial_failure("COPY", e, &applied, total);
                return Err(wire_error(err, context(line)));
            }
        }
    }
    Ok(applied.len() as u64)
}

#[async_trait]
impl CopyHandler for CopyInHandler {
    async fn on_copy_data<C>(&self, client: &mut C, copy_data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let Some(state) = pending_of(client).state.lock().as_mut() {
            state.data.extend_from_slice(&copy_data.data);
        }
        Ok(())
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let Some(state) = pending_of(client).state.lock().take() else {
            return Err(wire_error(
                SqlError::new("08P01", "CopyDone without COPY FROM STDIN"),
                None,
            ));
        };
        let count = load(state).await?;
        let tag = Tag::new("COPY").with_rows(count as usize);
        client
            .send(PgWireBackendMessage::CommandComplete(tag.into()))
            .await?;
        Ok(())
    }

    async fn on_copy_fail<C>(&self, client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        pending_of(client).state.lock().take();
        wire_error(
            SqlError::new(
                codes::QUERY_CANCELED,
                format!("COPY from stdin failed: {}", fail.message),
            ),
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_options_become_the_reader_format() {
        let mut format = CopyFormat::text();
        format.use_csv();
        format.delimiter = ';';
        let input = input_format(&format).expect("valid");
        assert!(input.csv);
        assert_eq!(input.delimiter, b';');
        assert_eq!(input.null, "");
        format.quote = ';';
        assert_eq!(input_format(&format).unwrap_err().code, "22023");
        format.quote = '"';
        format.delimiter = '€';
        assert_eq!(input_format(&format).unwrap_err().code, "22023");
    }
}
