//! `RETURNING` on INSERT, UPDATE and DELETE.
//!
//! DataFusion refuses `RETURNING` when planning, so the handler takes the
//! list off the statement ([`strip_returning`]), runs the write, and then
//! evaluates the list over the records the write left in the session's
//! [`WriteContext`](crate::write::WriteContext): the API's answers for
//! INSERT and UPDATE (with the ids it assigned), the rows as they were for
//! DELETE. The list is evaluated by a small SQL query over those records
//! under the table's own name, so `*`, `tasks.id`, expressions and aliases
//! work as in PostgreSQL. The same query over no records gives the
//! extended protocol its RowDescription before anything runs.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::{DataFrame, SessionContext};
use datafusion::sql::sqlparser::ast::{
    FromTable, ObjectName, SelectItem, Statement, TableFactor, TableObject,
};

use super::errors::ServerError;
use crate::error::{SqlError, codes};

/// The RETURNING list of a write, and the table it names.
#[derive(Debug, Clone)]
pub struct Returning {
    /// The table's name as the statement wrote it (last part).
    pub table: String,
    pub items: Vec<SelectItem>,
}

fn last_part(name: &ObjectName) -> Option<String> {
    name.0
        .last()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.clone())
}

/// The statement without its RETURNING list, and the list, when it has
/// one.
///
/// # Errors
/// 0A000 for RETURNING on a write whose target is not a plain table name.
pub fn strip_returning(stmt: &Statement) -> Result<Option<(Statement, Returning)>, ServerError> {
    let mut stmt = stmt.clone();
    let (table, items) = match &mut stmt {
        Statement::Insert(insert) => {
            let Some(items) = insert.returning.take() else {
                return Ok(None);
            };
            let table = match &insert.table {
                TableObject::TableName(name) => last_part(name),
                _ => None,
            };
            (table, items)
        }
        Statement::Update(update) => {
            let Some(items) = update.returning.take() else {
                return Ok(None);
            };
            let table = match &update.table.relation {
                TableFactor::Table { name, .. } => last_part(name),
                _ => None,
            };
            (table, items)
        }
        Statement::Delete(delete) => {
            let Some(items) = delete.returning.take() else {
                return Ok(None);
            };
            let from = match &delete.from {
                FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
            };
            let table = match from.first().map(|t| &t.relation) {
                Some(TableFactor::Table { name, .. }) => last_part(name),
                _ => None,
            };
            (table, items)
        }
        _ => return Ok(None),
    };
    let table = table.ok_or_else(|| {
        ServerError::Sql(SqlError::new(
            codes::FEATURE_NOT_SUPPORTED,
            "RETURNING needs a plain table name as the target",
        ))
    })?;
    Ok(Some((stmt, Returning { table, items })))
}

/// The RETURNING list evaluated over `records`, whose schema is the
/// table's in `session`.
///
/// # Errors
/// Fails when the table is unknown or the list does not plan (an unknown
/// column gives 42703).
pub async fn returning_frame(
    session: &SessionContext,
    returning: &Returning,
    records: Vec<RecordBatch>,
) -> Result<DataFrame, ServerError> {
    let schema: SchemaRef = session
        .table_provider(returning.table.as_str())
        .await?
        .schema();
    let records: Vec<RecordBatch> = records
        .into_iter()
        .filter(|b| b.num_rows() > 0)
        .map(|b| RecordBatch::try_new(schema.clone(), b.columns().to_vec()))
        .collect::<Result<_, _>>()
        .map_err(datafusion::error::DataFusionError::from)?;
    let ctx = SessionContext::new();
    let table = MemTable::try_new(schema, vec![records])?;
    ctx.register_table(returning.table.as_str(), Arc::new(table))?;
    let items = returning
        .items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let name = returning.table.replace('"', "\"\"");
    Ok(ctx.sql(&format!("SELECT {items} FROM \"{name}\"")).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion_pg_catalog::sql::PostgresCompatibilityParser;

    fn parse(sql: &str) -> Statement {
        PostgresCompatibilityParser::new()
            .parse(sql)
            .expect("parses")
            .pop()
            .expect("one statement")
    }

    #[test]
    fn returning_is_taken_off_every_write() {
        for sql in [
            "INSERT INTO tasks (title) VALUES ('x') RETURNING id, title",
            "UPDATE tasks SET title = 'x' WHERE id = 1 RETURNING id, title",
            "DELETE FROM tasks WHERE id = 1 RETURNING id, title",
        ] {
            let (stmt, returning) = strip_returning(&parse(sql)).unwrap().expect(sql);
            assert_eq!(returning.table, "tasks");
            assert_eq!(returning.items.len(), 2);
            assert!(!stmt.to_string().contains("RETURNING"), "{stmt}");
        }
        assert!(
            strip_returning(&parse("DELETE FROM tasks"))
                .unwrap()
                .is_none()
        );
    }
}
