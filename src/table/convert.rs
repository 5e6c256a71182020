//! JSON:API records to Arrow batches.
//!
//! Values are read tolerantly where the API is inconsistent (ids as numbers
//! or strings, decimals as strings or numbers) and strictly otherwise: a
//! value that cannot be read as its column's type fails the statement with
//! SQLSTATE HV004 naming the table, column and record, instead of turning
//! into a silent NULL.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveTime, Timelike};
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int32Builder,
    Int64Builder, ListBuilder, StringBuilder, Time64MicrosecondBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use rust_decimal::Decimal;
use serde_json::Value;

use super::schema::{ColumnDef, ColumnSource, CustomFieldColumn, NUMERIC_PRECISION, NUMERIC_SCALE};
use crate::api::document::{Linkage, ResourceObject};
use crate::catalog::SqlType;
use crate::error::{SqlError, codes};

/// Why one value could not be read.
type ValueError = String;

/// Builds a batch of `columns` (in `schema` order) from `records`.
///
/// # Errors
/// HV004 when a value does not fit its column's type.
pub fn records_to_batch(
    table: &str,
    columns: &[&ColumnDef],
    schema: &SchemaRef,
    records: &[ResourceObject],
) -> Result<RecordBatch, SqlError> {
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
    for col in columns {
        let values = records.iter().map(|r| (r, extract(r, &col.source)));
        let array = build_array(col.sql_type, values).map_err(|(record, message)| {
            SqlError::new(
                codes::FDW_INVALID_DATA_TYPE,
                format!(
                    "the Productive API sent a value for {table}.{} (record {record}) that is not \
                     a valid {}: {message}",
                    col.name,
                    col.sql_type.pg_name()
                ),
            )
        })?;
        arrays.push(array);
    }
    let options = RecordBatchOptions::new().with_row_count(Some(records.len()));
    RecordBatch::try_new_with_options(schema.clone(), arrays, &options)
        .map_err(|e| SqlError::new(codes::INTERNAL_ERROR, format!("building a batch: {e}")))
}

/// The JSON value of one column in one record (`Value::Null` when absent).
pub fn extract(record: &ResourceObject, source: &ColumnSource) -> Value {
    match source {
        ColumnSource::Id => Value::String(record.id.clone()),
        ColumnSource::Attribute { name, .. } => {
            record.attributes.get(name).cloned().unwrap_or(Value::Null)
        }
        ColumnSource::RelationshipId { relationship } => match record.linkage(relationship) {
            Linkage::One { id, .. } => Value::String(id),
            _ => Value::Null,
        },
        ColumnSource::GroupType { members } | ColumnSource::GroupId { members } => {
            for m in members {
                if let Linkage::One { id, .. } = record.linkage(m) {
                    return if matches!(source, ColumnSource::GroupType { .. }) {
                        Value::String(m.clone())
                    } else {
                        Value::String(id)
                    };
                }
            }
            Value::Null
        }
        ColumnSource::CustomField(cf) => custom_field_value(record, cf),
    }
}

/// A custom field's value as its column shows it: option labels for select
/// fields (comma-separated for multiselect), the value otherwise.
fn custom_field_value(record: &ResourceObject, cf: &CustomFieldColumn) -> Value {
    let Some(Value::Object(values)) = record.attributes.get("custom_fields") else {
        return Value::Null;
    };
    let Some(raw) = values.get(&cf.field_id) else {
        return Value::Null;
    };
    let label = |id: &Value| {
        let id = match id {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        cf.options
            .iter()
            .find(|(oid, _)| *oid == id)
            .map(|(_, l)| l.clone())
            .unwrap_or(id)
    };
    match (cf.data_type, raw) {
        (3, Value::Null) | (5, Value::Null) => Value::Null,
        (3, v) => Value::String(label(v)),
        (5, Value::Array(items)) => {
            Value::String(items.iter().map(label).collect::<Vec<_>>().join(", "))
        }
        (5, v) => Value::String(label(v)),
        (_, v) => v.clone(),
    }
}

fn build_array<'a>(
    sql: SqlType,
    values: impl Iterator<Item = (&'a ResourceObject, Value)>,
) -> Result<ArrayRef, (String, ValueError)> {
    macro_rules! fill {
        ($builder:expr, $read:expr) => {{
            let mut b = $builder;
            for (record, v) in values {
                if v.is_null() {
                    b.append_null();
                } else {
                    let x = $read(&v).map_err(|e| (record.id.clone(), e))?;
                    b.append_value(x);
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    Ok(match sql {
        SqlType::BigInt => fill!(Int64Builder::new(), read_i64),
        SqlType::Integer => fill!(Int32Builder::new(), |v: &Value| {
            let n = read_i64(v)?;
            i32::try_from(n).map_err(|_| format!("{n} is out of range for integer"))
        }),
        SqlType::Text => fill!(StringBuilder::new(), read_text),
        SqlType::Jsonb => fill!(StringBuilder::new(), |v: &Value| Ok::<_, ValueError>(
            v.to_string()
        )),
        SqlType::Boolean => fill!(BooleanBuilder::new(), read_bool),
        SqlType::Numeric => fill!(
            Decimal128Builder::new()
                .with_precision_and_scale(NUMERIC_PRECISION, NUMERIC_SCALE)
                .expect("numeric precision and scale are valid"),
            read_decimal
        ),
        SqlType::Double => fill!(Float64Builder::new(), read_f64),
        SqlType::Date => fill!(Date32Builder::new(), read_date),
        SqlType::Timestamptz => {
            fill!(
                TimestampMicrosecondBuilder::new().with_timezone("UTC"),
                read_timestamp
            )
        }
        SqlType::Time => fill!(Time64MicrosecondBuilder::new(), read_time),
        SqlType::TextArray => {
            let mut b = ListBuilder::new(StringBuilder::new());
            for (record, v) in values {
                match v {
                    Value::Null => b.append_null(),
                    Value::Array(items) => {
                        for item in &items {
                            match item {
                                Value::Null => b.values().append_null(),
                                other => b.values().append_value(
                                    read_text(other).map_err(|e| (record.id.clone(), e))?,
                                ),
                            }
                        }
                        b.append(true);
                    }
                    other => {
                        return Err((record.id.clone(), format!("expected an array, got {other}")));
                    }
                }
            }
            Arc::new(b.finish())
        }
    })
}

pub(crate) fn read_i64(v: &Value) -> Result<i64, ValueError> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18)
                    .map(|f| f as i64)
            })
            .ok_or_else(|| format!("{n} is not a whole number")),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a whole number")),
        other => Err(format!("expected a number, got {other}")),
    }
}

pub(crate) fn read_f64(v: &Value) -> Result<f64, ValueError> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| format!("{n} is not a number")),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a number")),
        other => Err(format!("expected a number, got {other}")),
    }
}

pub(crate) fn read_decimal(v: &Value) -> Result<i128, ValueError> {
    let d: Decimal = match v {
        Value::Number(n) => {
            let s = n.to_string();
            s.parse::<Decimal>()
                .or_else(|_| Decimal::from_scientific(&s))
                .map_err(|_| format!("{s} is not a decimal"))?
        }
        Value::String(s) => s
            .trim()
            .parse::<Decimal>()
            .or_else(|_| Decimal::from_scientific(s.trim()))
            .map_err(|_| format!("{s:?} is not a decimal"))?,
        other => return Err(format!("expected a decimal, got {other}")),
    };
    decimal_to_i128(d)
}

/// A decimal as an Arrow Decimal128 mantissa at [`NUMERIC_SCALE`].
pub(crate) fn decimal_to_i128(d: Decimal) -> Result<i128, ValueError> {
    let mut d = d;
    d.rescale(NUMERIC_SCALE as u32);
    if d.scale() != NUMERIC_SCALE as u32 {
        return Err(format!("{d} has too many digits"));
    }
    Ok(d.mantissa())
}

pub(crate) fn read_text(v: &Value) -> Result<String, ValueError> {
    Ok(match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    })
}

pub(crate) fn read_bool(v: &Value) -> Result<bool, ValueError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" => Ok(true),
        Value::String(s) if s == "false" => Ok(false),
        Value::Number(n) if n.as_i64() == Some(1) => Ok(true),
        Value::Number(n) if n.as_i64() == Some(0) => Ok(false),
        other => Err(format!("expected true or false, got {other}")),
    }
}

const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

pub(crate) fn read_date(v: &Value) -> Result<i32, ValueError> {
    let Value::String(s) = v else {
        return Err(format!("expected a date string, got {v}"));
    };
    let day = s.get(..10).unwrap_or(s);
    let date = NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map_err(|_| format!("{s:?} is not a YYYY-MM-DD date"))?;
    Ok(chrono::Datelike::num_days_from_ce(&date) - UNIX_EPOCH_DAYS_FROM_CE)
}

pub(crate) fn read_timestamp(v: &Value) -> Result<i64, ValueError> {
    let Value::String(s) = v else {
        return Err(format!("expected a timestamp string, got {v}"));
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_micros());
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()
            .timestamp_micros());
    }
    Err(format!("{s:?} is not an ISO 8601 timestamp"))
}

pub(crate) fn read_time(v: &Value) -> Result<i64, ValueError> {
    let Value::String(s) = v else {
        return Err(format!("expected a time string, got {v}"));
    };
    let t = NaiveTime::parse_from_str(s, "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M"))
        .map_err(|_| format!("{s:?} is not a time of day"))?;
    Ok(t.num_seconds_from_midnight() as i64 * 1_000_000 + (t.nanosecond() / 1000) as i64)
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{
        Date32Type, Decimal128Type, Int64Type, TimestampMicrosecondType,
    };

    use super::*;
    use crate::catalog::Catalog;
    use crate::table::schema::TableDef;

    fn record(json: &str) -> ResourceObject {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn values_convert_to_their_column_types() {
        let def = TableDef::new(Catalog::get().table("tasks").unwrap(), &[]);
        let cols: Vec<&ColumnDef> = [
            "id",
            "title",
            "due_date",
            "created_at",
            "closed",
            "project_id",
        ]
        .iter()
        .map(|n| def.column(n).unwrap())
        .collect();
        let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(
            cols.iter()
                .map(|c| def.schema.field_with_name(&c.name).unwrap().clone())
                .collect::<Vec<_>>(),
        ));
        let recs = vec![
            record(
                r#"{"id":"12","type":"tasks","attributes":{"title":"A","due_date":"2026-01-31",
                "created_at":"2026-03-23T20:43:26.943+01:00","closed":false},
                "relationships":{"project":{"data":{"type":"projects","id":"5"}}}}"#,
            ),
            record(
                r#"{"id":"13","type":"tasks","attributes":{"title":null,"due_date":null,
                "created_at":"2026-03-23T19:43:26.943Z","closed":true},
                "relationships":{"project":{"meta":{"included":false}}}}"#,
            ),
        ];
        let batch = records_to_batch("tasks", &cols, &schema, &recs).unwrap();
        assert_eq!(batch.column(0).as_primitive::<Int64Type>().value(1), 13);
        assert_eq!(batch.column(1).as_string::<i32>().value(0), "A");
        assert!(batch.column(1).is_null(1));
        assert_eq!(batch.column(2).as_primitive::<Date32Type>().value(0), 20484);
        let ts = batch.column(3).as_primitive::<TimestampMicrosecondType>();
        assert_eq!(ts.value(0), ts.value(1), "offsets are honoured");
        assert_eq!(batch.column(5).as_primitive::<Int64Type>().value(0), 5);
        assert!(batch.column(5).is_null(1));
    }

    #[test]
    fn decimals_come_as_strings_or_numbers() {
        assert_eq!(
            read_decimal(&Value::String("1.5".into())).unwrap(),
            1_500_000
        );
        assert_eq!(
            read_decimal(&serde_json::json!(12345.0)).unwrap(),
            12_345_000_000
        );
        let arr = build_array(
            SqlType::Numeric,
            std::iter::once((
                &record(r#"{"id":"1","type":"x"}"#),
                Value::String("100.0".into()),
            )),
        )
        .unwrap();
        assert_eq!(arr.as_primitive::<Decimal128Type>().value(0), 100_000_000);
    }

    #[test]
    fn a_wrong_value_names_table_column_and_record() {
        let def = TableDef::new(Catalog::get().table("tasks").unwrap(), &[]);
        let col = def.column("due_date").unwrap();
        let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
            def.schema.field_with_name("due_date").unwrap().clone(),
        ]));
        let recs = vec![record(
            r#"{"id":"77","type":"tasks","attributes":{"due_date":"soon"}}"#,
        )];
        let err = records_to_batch("tasks", &[col], &schema, &recs).unwrap_err();
        assert_eq!(err.code, "HV004");
        assert!(
            err.message.contains("tasks.due_date (record 77)"),
            "{}",
            err.message
        );
    }

    #[test]
    fn select_custom_fields_show_labels() {
        let cf = CustomFieldColumn {
            field_id: "9".into(),
            data_type: 5,
            options: vec![("1".into(), "Red".into()), ("2".into(), "Blue".into())],
        };
        let r =
            record(r#"{"id":"1","type":"tasks","attributes":{"custom_fields":{"9":["2","1"]}}}"#);
        assert_eq!(
            custom_field_value(&r, &cf),
            Value::String("Blue, Red".into())
        );
    }
}
