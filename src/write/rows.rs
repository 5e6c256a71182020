//! Writes from rows of text (`COPY ... FROM STDIN`, `productive-pg import`).
//!
//! A bulk load names its columns once and then brings one row of text
//! fields at a time. [`TextRows`] checks the names against the table's write
//! contract once (unknown and read-only columns, the statements the table
//! accepts), and [`TextRows::prepare`] turns each row into the same API
//! request an `INSERT`, `UPDATE ... WHERE id = ...` or `DELETE ... WHERE
//! id = ...` of that row would send, through the same validation: values
//! cast to the column types, required fields, the `*_type`/`*_id` pair
//! rule, option labels of custom fields. Preparing sends nothing.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, ListBuilder, StringArray, StringBuilder};
use datafusion::arrow::record_batch::RecordBatch;

use super::exec::{RowWrite, cast_batch, delete_request, prepare_insert_row, prepare_update_row};
use super::{check_allowed, check_pairs_named, read_only_column};
use crate::catalog::SqlType;
use crate::error::{SqlError, codes};
use crate::table::schema::TableDef;

/// What one row of a bulk load does to its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowAction {
    /// Create a record (POST).
    Insert,
    /// Change the record named by the row's `id` (PATCH).
    Update,
    /// Delete the record named by the row's `id`.
    Delete,
}

impl RowAction {
    fn statement(self) -> &'static str {
        match self {
            RowAction::Insert => "INSERT",
            RowAction::Update => "UPDATE",
            RowAction::Delete => "DELETE",
        }
    }
}

/// The columns of a bulk load into one table, checked once.
#[derive(Debug, Clone)]
pub struct TextRows {
    def: Arc<TableDef>,
    /// Index into the table's columns of each input field.
    columns: Vec<usize>,
}

impl TextRows {
    /// Checks the column names of a load that may use any of `actions`.
    ///
    /// # Errors
    /// 42703 for a column the table lacks; 0A000 for a statement the table
    /// does not accept or a read-only column (`id` is the exception for
    /// UPDATE and DELETE, whose rows it names); 23514 when an UPDATE sets
    /// one column of a `*_type`/`*_id` pair; 42701 for a column named twice;
    /// 23502 when UPDATE or DELETE has no `id` column.
    pub fn new(
        def: Arc<TableDef>,
        names: &[String],
        actions: &[RowAction],
    ) -> Result<TextRows, SqlError> {
        let table = def.table;
        for action in actions {
            let allowed = match action {
                RowAction::Insert => table.statements.insert,
                RowAction::Update => table.statements.update,
                RowAction::Delete => table.statements.delete,
            };
            check_allowed(&def, action.statement(), allowed)?;
        }
        let matches_by_id = actions.iter().any(|a| *a != RowAction::Insert);
        let mut columns = Vec::with_capacity(names.len());
        for name in names {
            let index = def.index_of(name).ok_or_else(|| {
                SqlError::new(
                    codes::UNDEFINED_COLUMN,
                    format!(
                        "column \"{name}\" of relation \"{}\" does not exist",
                        table.name
                    ),
                )
            })?;
            if columns.contains(&index) {
                return Err(SqlError::new(
                    "42701",
                    format!("column \"{name}\" specified more than once"),
                ));
            }
            let column = &def.columns[index];
            let is_id = column.name == "id";
            let deleting_only = actions.iter().all(|a| *a == RowAction::Delete);
            if !column.writable && !(is_id && matches_by_id) && !deleting_only {
                return Err(if is_id {
                    SqlError::new(
                        codes::FEATURE_NOT_SUPPORTED,
                        format!(
                            "column \"id\" of relation \"{}\" is assigned by the Productive API",
                            table.name
                        ),
                    )
                    .with_hint("leave id out to create records; update and upsert match on it")
                } else {
                    read_only_column(&def, name)
                });
            }
            columns.push(index);
        }
        if matches_by_id && !names.iter().any(|n| n == "id") {
            return Err(SqlError::new(
                codes::NOT_NULL_VIOLATION,
                format!(
                    "an \"id\" column is needed to update or delete rows of \"{}\"",
                    table.name
                ),
            ));
        }
        if actions.contains(&RowAction::Update) {
            let named: Vec<&str> = names
                .iter()
                .map(String::as_str)
                .filter(|n| *n != "id")
                .collect();
            check_pairs_named(&def, &named)?;
        }
        Ok(TextRows { def, columns })
    }

    /// The table written to.
    pub fn def(&self) -> &Arc<TableDef> {
        &self.def
    }

    /// How many fields each row has.
    pub fn width(&self) -> usize {
        self.columns.len()
    }

    /// The row's `id` field, if the load has one and it is not NULL.
    pub fn id_of<'a>(&self, fields: &'a [Option<String>]) -> Option<&'a str> {
        let id = self.def.index_of("id")?;
        let position = self.columns.iter().position(|c| *c == id)?;
        fields
            .get(position)
            .and_then(Option::as_deref)
            .filter(|s| !s.is_empty())
    }

    /// The API request for one row (`None` for SQL NULL).
    ///
    /// # Errors
    /// 22P04 when the row has the wrong number of fields; the class-22 or
    /// class-23 error of the first field that does not pass validation.
    pub fn prepare(
        &self,
        action: RowAction,
        fields: &[Option<String>],
    ) -> Result<RowWrite, SqlError> {
        if fields.len() != self.columns.len() {
            let what = if fields.len() < self.columns.len() {
                "missing data for a column"
            } else {
                "extra data after last expected column"
            };
            return Err(SqlError::new(
                "22P04",
                format!(
                    "{what}: {} fields, {} expected",
                    fields.len(),
                    self.columns.len()
                ),
            ));
        }
        let batch = self.batch(fields)?;
        match action {
            RowAction::Insert => {
                let arrays = cast_batch(&self.def, &batch)?;
                prepare_insert_row(&self.def, &arrays, 0)
            }
            RowAction::Update => {
                let id = self.def.index_of("id");
                let mut new_values = Vec::new();
                for index in self.columns.iter().filter(|c| Some(**c) != id) {
                    let column = &self.def.columns[*index];
                    let array = crate::write::encode::cast_column(
                        self.def.table.name,
                        column,
                        batch.column(*index),
                    )?;
                    new_values.push((*index, array));
                }
                let batch = self.with_cast_id(batch)?;
                prepare_update_row(&self.def, &batch, 0, &new_values)
            }
            RowAction::Delete => match self.id_of(fields) {
                Some(id) => {
                    let id: i64 = id.trim().parse().map_err(|_| bad_id(id))?;
                    Ok(delete_request(&self.def, &id.to_string()))
                }
                None => Err(SqlError::new(
                    codes::NOT_NULL_VIOLATION,
                    "null value in column \"id\": the row to delete has no id",
                )),
            },
        }
    }

    /// One row in the table's full schema: the given fields as text, NULL
    /// elsewhere (text-array columns parsed from `{a,b}`).
    fn batch(&self, fields: &[Option<String>]) -> Result<RecordBatch, SqlError> {
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.def.columns.len());
        let mut fields_of_column = vec![None; self.def.columns.len()];
        for (field, index) in fields.iter().zip(&self.columns) {
            fields_of_column[*index] = field.as_deref();
        }
        let mut types = Vec::with_capacity(arrays.capacity());
        for (column, field) in self.def.columns.iter().zip(fields_of_column) {
            if column.sql_type == SqlType::TextArray {
                let mut builder = ListBuilder::new(StringBuilder::new());
                match field {
                    Some(text) => {
                        for item in text_array(&self.def, &column.name, text)? {
                            builder.values().append_option(item);
                        }
                        builder.append(true);
                    }
                    None => builder.append(false),
                }
                let array: ArrayRef = Arc::new(builder.finish());
                types.push(array.data_type().clone());
                arrays.push(array);
            } else {
                arrays.push(Arc::new(StringArray::from(vec![field])));
                types.push(datafusion::arrow::datatypes::DataType::Utf8);
            }
        }
        let schema = datafusion::arrow::datatypes::Schema::new(
            self.def
                .columns
                .iter()
                .zip(types)
                .map(|(c, t)| datafusion::arrow::datatypes::Field::new(&c.name, t, true))
                .collect::<Vec<_>>(),
        );
        RecordBatch::try_new(Arc::new(schema), arrays)
            .map_err(|e| SqlError::new(codes::INTERNAL_ERROR, e.to_string()))
    }

    /// The row with its `id` as the integer the scan would have given.
    fn with_cast_id(&self, batch: RecordBatch) -> Result<RecordBatch, SqlError> {
        let Some(index) = self.def.index_of("id") else {
            return Ok(batch);
        };
        let raw = batch.column(index).clone();
        let text = raw
            .as_any()
            .downcast_ref::<StringArray>()
            .and_then(|a| (!datafusion::arrow::array::Array::is_null(a, 0)).then(|| a.value(0)));
        if let Some(text) = text {
            text.trim().parse::<i64>().map_err(|_| bad_id(text))?;
        }
        let column = &self.def.columns[index];
        let cast = crate::write::encode::cast_column(self.def.table.name, column, &raw)?;
        let mut columns = batch.columns().to_vec();
        columns[index] = cast;
        let mut fields: Vec<_> = batch.schema().fields().iter().cloned().collect();
        fields[index] = Arc::new(datafusion::arrow::datatypes::Field::new(
            "id",
            columns[index].data_type().clone(),
            true,
        ));
        RecordBatch::try_new(
            Arc::new(datafusion::arrow::datatypes::Schema::new(fields)),
            columns,
        )
        .map_err(|e| SqlError::new(codes::INTERNAL_ERROR, e.to_string()))
    }
}

fn bad_id(text: &str) -> SqlError {
    SqlError::new(
        codes::INVALID_TEXT_REPRESENTATION,
        format!("invalid input syntax for type bigint: \"{text}\" (column \"id\")"),
    )
}

/// The items of a PostgreSQL array literal such as `{a,"b c",NULL}`.
fn text_array(def: &TableDef, column: &str, text: &str) -> Result<Vec<Option<String>>, SqlError> {
    let malformed = || {
        SqlError::new(
            codes::INVALID_TEXT_REPRESENTATION,
            format!(
                "malformed array literal for column \"{column}\" of relation \"{}\": \"{text}\"",
                def.table.name
            ),
        )
        .with_detail("write arrays as {a,b,\"c d\"}")
    };
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(malformed)?;
    let mut items = Vec::new();
    if inner.trim().is_empty() {
        return Ok(items);
    }
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut item = String::new();
        let quoted = chars.peek() == Some(&'"');
        if quoted {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => item.push(chars.next().ok_or_else(malformed)?),
                    Some(c) => item.push(c),
                    None => return Err(malformed()),
                }
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                item.push(c);
                chars.next();
            }
            item = item.trim().to_string();
        }
        let null = !quoted && item.eq_ignore_ascii_case("NULL");
        items.push((!null).then_some(item));
        match chars.next() {
            Some(',') => continue,
            None => break,
            Some(_) => return Err(malformed()),
        }
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    fn tasks() -> Arc<TableDef> {
        let table = Catalog::get().table("tasks").expect("tasks table");
        Arc::new(TableDef::new(table, &[]))
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn row(list: &[Option<&str>]) -> Vec<Option<String>> {
        list.iter().map(|s| s.map(str::to_string)).collect()
    }

    #[test]
    fn column_names_are_checked_once() {
        let err = TextRows::new(tasks(), &names(&["nope"]), &[RowAction::Insert]).unwrap_err();
        assert_eq!(err.code, "42703");
        let err = TextRows::new(tasks(), &names(&["id", "title"]), &[RowAction::Insert]);
        assert_eq!(err.unwrap_err().code, "0A000");
        let err = TextRows::new(tasks(), &names(&["title"]), &[RowAction::Update]);
        assert_eq!(err.unwrap_err().code, "23502");
        assert!(TextRows::new(tasks(), &names(&["id", "title"]), &[RowAction::Update]).is_ok());
    }

    #[test]
    fn rows_become_the_requests_of_the_write_path() {
        let rows = TextRows::new(
            tasks(),
            &names(&["title", "project_id", "task_list_id"]),
            &[RowAction::Insert],
        )
        .expect("columns");
        let write = rows
            .prepare(RowAction::Insert, &row(&[Some("A"), Some("1"), Some("2")]))
            .expect("valid row");
        assert_eq!(write.method.as_str(), "POST");
        let body = write.body.as_ref().expect("body");
        assert_eq!(body["data"]["attributes"]["title"], "A");
        assert_eq!(body["data"]["relationships"]["project"]["data"]["id"], "1");

        let err = rows
            .prepare(RowAction::Insert, &row(&[None, Some("1"), Some("2")]))
            .unwrap_err();
        assert_eq!(err.code, "23502");
        let err = rows
            .prepare(RowAction::Insert, &row(&[Some("A"), Some("x"), Some("2")]))
            .unwrap_err();
        assert_eq!(err.code, "22P02");
        let err = rows
            .prepare(RowAction::Insert, &row(&[Some("A")]))
            .unwrap_err();
        assert_eq!(err.code, "22P04");
    }

    #[test]
    fn updates_and_deletes_name_the_record() {
        let rows = TextRows::new(
            tasks(),
            &names(&["id", "title"]),
            &[RowAction::Insert, RowAction::Update],
        )
        .expect("columns");
        let write = rows
            .prepare(RowAction::Update, &row(&[Some("7"), Some("B")]))
            .expect("valid row");
        assert_eq!(write.method.as_str(), "PATCH");
        assert!(write.path.ends_with("/tasks/7"));
        assert_eq!(rows.id_of(&row(&[Some("7"), Some("B")])), Some("7"));
        let err = rows
            .prepare(RowAction::Update, &row(&[Some("x"), Some("B")]))
            .unwrap_err();
        assert_eq!(err.code, "22P02");
        let write = rows
            .prepare(RowAction::Delete, &row(&[Some("7"), None]))
            .expect("delete");
        assert_eq!(write.method.as_str(), "DELETE");
    }

    #[test]
    fn array_literals_parse() {
        let def = tasks();
        let items = text_array(&def, "c", "{a, \"b,c\" ,NULL}").expect("array");
        assert_eq!(
            items,
            vec![Some("a".into()), Some("b,c".into()), None::<String>]
        );
        assert!(text_array(&def, "c", "a,b").is_err());
        assert_eq!(text_array(&def, "c", "{}").expect("empty"), vec![]);
    }
}
