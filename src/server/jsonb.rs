//! `jsonb` result columns.
//!
//! Arrow has no JSON type that arrow-pg describes as `jsonb`, so the JSON
//! attributes of a table (an activity's `changeset`, custom field values)
//! are strings whose Arrow field carries [`PG_TYPE_KEY`] = `jsonb`. A result
//! column that keeps that field (a column selected as it is, through joins
//! and subqueries) is described to the client as `jsonb`; an expression
//! over it is `text`, as DataFusion computes it. In the text format a jsonb
//! value is its JSON text; in the binary format it is a version byte (1)
//! followed by that text, which is added here before arrow-pg encodes the
//! rows.
//! See <https://www.postgresql.org/docs/current/datatype-json.html>.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch};
use datafusion::arrow::array::{Array, ArrayRef, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldFormat, FieldInfo};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;
use pgwire::types::format::FormatOptions;

/// The Arrow field metadata key naming the PostgreSQL type of a column
/// whose Arrow type alone does not tell it.
pub const PG_TYPE_KEY: &str = "productive.pg_type";

/// The version byte that starts every binary `jsonb` value.
const JSONB_VERSION: char = '\u{1}';

/// `field`, marked as holding JSON documents.
pub fn mark(field: Field) -> Field {
    let mut metadata = field.metadata().clone();
    metadata.insert(PG_TYPE_KEY.to_owned(), "jsonb".to_owned());
    field.with_metadata(metadata)
}

/// Whether `field` holds JSON documents.
pub fn is_jsonb(field: &Field) -> bool {
    field
        .metadata()
        .get(PG_TYPE_KEY)
        .is_some_and(|t| t == "jsonb")
        && matches!(
            field.data_type(),
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
        )
}

/// The row description of `schema`, with `jsonb` for marked columns.
///
/// # Errors
/// A column type arrow-pg cannot describe.
pub fn pg_fields(
    schema: &Schema,
    format: &Format,
    options: Option<Arc<FormatOptions>>,
) -> PgWireResult<Vec<FieldInfo>> {
    let infos = arrow_schema_to_pg_fields(schema, format, options)?;
    Ok(infos
        .into_iter()
        .zip(schema.fields())
        .map(|(info, field)| {
            if is_jsonb(field) {
                let options = info.format_options().clone();
                FieldInfo::new(
                    info.name().to_owned(),
                    info.table_id(),
                    info.column_id(),
                    Type::JSONB,
                    info.format(),
                )
                .with_format_options(options)
            } else {
                info
            }
        })
        .collect())
}

/// The data rows of `batch` under `fields` (from [`pg_fields`]).
pub fn encode(
    fields: Arc<Vec<FieldInfo>>,
    batch: RecordBatch,
) -> Box<dyn Iterator<Item = PgWireResult<DataRow>> + Send> {
    let binary: Vec<usize> = fields
        .iter()
        .enumerate()
        .filter(|(_, f)| *f.datatype() == Type::JSONB && f.format() == FieldFormat::Binary)
        .map(|(i, _)| i)
        .collect();
    if binary.is_empty() {
        return encode_recordbatch(fields, batch);
    }
    match with_version_byte(&batch, &binary) {
        Ok(batch) => encode_recordbatch(fields, batch),
        Err(e) => Box::new(std::iter::once(Err(e))),
    }
}

/// `batch` with the version byte in front of every value of `columns`.
fn with_version_byte(batch: &RecordBatch, columns: &[usize]) -> PgWireResult<RecordBatch> {
    let schema = batch.schema();
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    let mut arrays: Vec<ArrayRef> = batch.columns().to_vec();
    for &i in columns {
        let text =
            cast(&arrays[i], &DataType::Utf8).map_err(|e| PgWireError::ApiError(e.into()))?;
        let text = text
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("cast to Utf8 gives a StringArray");
        let prefixed: StringArray = text
            .iter()
            .map(|v| v.map(|v| format!("{JSONB_VERSION}{v}")))
            .collect();
        arrays[i] = Arc::new(prefixed);
        fields[i] = fields[i].clone().with_data_type(DataType::Utf8);
    }
    let schema = Schema::new_with_metadata(fields, HashMap::clone(schema.metadata()));
    RecordBatch::try_new(Arc::new(schema), arrays).map_err(|e| PgWireError::ApiError(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> RecordBatch {
        let schema = Schema::new(vec![
            mark(Field::new("changeset", DataType::Utf8, true)),
            Field::new("title", DataType::Utf8, true),
        ]);
        let json: ArrayRef = Arc::new(StringArray::from(vec![Some("{\"a\":1}"), None]));
        let title: ArrayRef = Arc::new(StringArray::from(vec![Some("x"), Some("y")]));
        RecordBatch::try_new(Arc::new(schema), vec![json, title]).expect("batch")
    }

    #[test]
    fn marked_columns_are_described_as_jsonb() {
        let b = batch();
        let fields = pg_fields(&b.schema(), &Format::UnifiedText, None).expect("fields");
        assert_eq!(fields[0].datatype(), &Type::JSONB);
        assert_eq!(fields[1].datatype(), &Type::TEXT);
    }

    #[test]
    fn binary_values_carry_the_version_byte() {
        let b = batch();
        let prefixed = with_version_byte(&b, &[0]).expect("prefixed");
        let column = prefixed
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("strings");
        assert_eq!(column.value(0).as_bytes(), b"\x01{\"a\":1}");
        assert!(column.is_null(1));
        let fields = Arc::new(pg_fields(&b.schema(), &Format::UnifiedBinary, None).expect("f"));
        assert_eq!(encode(fields, b).count(), 2);
    }
}
