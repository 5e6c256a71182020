//! SQL values to the JSON the Productive API expects.
//!
//! Each column is cast to its own Arrow type first, so a value that cannot
//! become the column's type fails with a class-22 SQLSTATE naming the
//! column. The SQL value is then written in the attribute's JSON shape from
//! the catalog ([`JsonType`]): ids and decimals as strings, dates as
//! `YYYY-MM-DD`, timestamps in ISO 8601 with milliseconds, times as `HH:MM`.

use chrono::{DateTime, NaiveDate, NaiveTime};
use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::scalar::ScalarValue;
use rust_decimal::Decimal;
use serde_json::{Map, Number, Value};

use crate::catalog::JsonType;
use crate::error::{SqlError, codes};
use crate::table::schema::{ColumnDef, CustomFieldColumn, arrow_type};

/// Casts a column of input values to the Arrow type of `col`.
///
/// # Errors
/// 22P02 when a value has no representation in the column's type.
pub fn cast_column(table: &str, col: &ColumnDef, array: &ArrayRef) -> Result<ArrayRef, SqlError> {
    let target = arrow_type(col.sql_type);
    if array.data_type() == &target {
        return Ok(array.clone());
    }
    // Not the default "safe" cast, which turns a value it cannot convert
    // into NULL: a bad value must fail, not be written as empty.
    let options = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    cast_with_options(array, &target, &options).map_err(|e| {
        SqlError::new(
            codes::INVALID_TEXT_REPRESENTATION,
            format!(
                "invalid value for column \"{}\" of relation \"{table}\" (type {}): {e}",
                col.name,
                col.sql_type.pg_name()
            ),
        )
    })
}

/// The value of one cell as plain JSON: numbers, text, booleans, arrays;
/// decimals, dates, timestamps and times as their ISO text.
///
/// # Errors
/// 22000 for a value type a column never holds (a bug upstream of here).
pub fn natural_value(array: &ArrayRef, row: usize) -> Result<Value, SqlError> {
    if array.is_null(row) {
        return Ok(Value::Null);
    }
    let scalar = ScalarValue::try_from_array(array.as_ref(), row)
        .map_err(|e| SqlError::new(codes::DATA_EXCEPTION, e.to_string()))?;
    scalar_to_value(&scalar)
}

fn scalar_to_value(scalar: &ScalarValue) -> Result<Value, SqlError> {
    if scalar.is_null() {
        return Ok(Value::Null);
    }
    Ok(match scalar {
        ScalarValue::Boolean(Some(b)) => Value::Bool(*b),
        ScalarValue::Int8(Some(v)) => Value::from(*v),
        ScalarValue::Int16(Some(v)) => Value::from(*v),
        ScalarValue::Int32(Some(v)) => Value::from(*v),
        ScalarValue::Int64(Some(v)) => Value::from(*v),
        ScalarValue::UInt8(Some(v)) => Value::from(*v),
        ScalarValue::UInt16(Some(v)) => Value::from(*v),
        ScalarValue::UInt32(Some(v)) => Value::from(*v),
        ScalarValue::UInt64(Some(v)) => Value::from(*v),
        ScalarValue::Float32(Some(v)) => Number::from_f64(f64::from(*v))
            .map(Value::Number)
            .ok_or_else(|| not_finite(f64::from(*v)))?,
        ScalarValue::Float64(Some(v)) => Number::from_f64(*v)
            .map(Value::Number)
            .ok_or_else(|| not_finite(*v))?,
        ScalarValue::Decimal128(Some(v), _, scale) => {
            let d = Decimal::try_from_i128_with_scale(*v, (*scale).max(0) as u32)
                .map_err(|e| SqlError::new(codes::NUMERIC_VALUE_OUT_OF_RANGE, e.to_string()))?;
            Value::String(d.normalize().to_string())
        }
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) => Value::String(s.clone()),
        ScalarValue::Utf8View(Some(s)) => Value::String(s.clone()),
        ScalarValue::Date32(Some(days)) => {
            let date = NaiveDate::from_ymd_opt(1970, 1, 1)
                .and_then(|epoch| {
                    epoch.checked_add_signed(chrono::Duration::days(i64::from(*days)))
                })
                .ok_or_else(|| {
                    SqlError::new(codes::INVALID_DATETIME_FORMAT, "date out of range")
                })?;
            Value::String(date.format("%Y-%m-%d").to_string())
        }
        ScalarValue::TimestampMicrosecond(Some(us), _) => {
            let t = DateTime::from_timestamp_micros(*us).ok_or_else(|| {
                SqlError::new(codes::INVALID_DATETIME_FORMAT, "timestamp out of range")
            })?;
            Value::String(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        }
        ScalarValue::Time64Microsecond(Some(us)) => {
            let secs = (*us / 1_000_000) as u32;
            let t = NaiveTime::from_num_seconds_from_midnight_opt(secs, 0).ok_or_else(|| {
                SqlError::new(codes::INVALID_DATETIME_FORMAT, "time out of range")
            })?;
            Value::String(t.format("%H:%M").to_string())
        }
        ScalarValue::List(list) => {
            let values = list.value(0);
            let mut out = Vec::with_capacity(values.len());
            for i in 0..values.len() {
                out.push(natural_value(&values, i)?);
            }
            Value::Array(out)
        }
        other => {
            return Err(SqlError::new(
                codes::DATA_EXCEPTION,
                format!("a value of type {} cannot be written", other.data_type()),
            ));
        }
    })
}

fn not_finite(v: f64) -> SqlError {
    SqlError::new(
        codes::NUMERIC_VALUE_OUT_OF_RANGE,
        format!("{v} cannot be sent to the Productive API"),
    )
}

fn type_error(table: &str, column: &str, expected: &str, value: &Value) -> SqlError {
    SqlError::new(
        codes::INVALID_TEXT_REPRESENTATION,
        format!(
            "invalid input for column \"{column}\" of relation \"{table}\": \
             {expected} expected, got {value}"
        ),
    )
}

/// A plain value written in an attribute's JSON shape.
///
/// # Errors
/// 22P02 when the value does not fit the shape (text that is not JSON for
/// an object column, a fraction for an integer attribute).
pub fn attribute_json(
    table: &str,
    column: &str,
    json_type: JsonType,
    value: Value,
) -> Result<Value, SqlError> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    let as_text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Ok(match json_type {
        JsonType::String
        | JsonType::DateString
        | JsonType::TimestampString
        | JsonType::TimeString
        | JsonType::IdString
        | JsonType::DecimalString => Value::String(as_text(&value)),
        JsonType::Integer => match &value {
            Value::Number(n) if n.is_i64() || n.is_u64() => value,
            Value::String(s) => {
                let d: Decimal = s
                    .parse()
                    .map_err(|_| type_error(table, column, "an integer", &value))?;
                if d.fract() != Decimal::ZERO {
                    return Err(type_error(table, column, "an integer", &value));
                }
                let n: i64 = d
                    .trunc()
                    .to_string()
                    .parse()
                    .map_err(|_| type_error(table, column, "an integer", &value))?;
                Value::from(n)
            }
            _ => return Err(type_error(table, column, "an integer", &value)),
        },
        JsonType::Number => match &value {
            Value::Number(_) => value,
            Value::String(s) => {
                let f: f64 = s
                    .parse()
                    .map_err(|_| type_error(table, column, "a number", &value))?;
                Number::from_f64(f)
                    .map(Value::Number)
                    .ok_or_else(|| type_error(table, column, "a number", &value))?
            }
            _ => return Err(type_error(table, column, "a number", &value)),
        },
        JsonType::Boolean => match value {
            Value::Bool(_) => value,
            _ => return Err(type_error(table, column, "a boolean", &value)),
        },
        JsonType::Object | JsonType::Array => match &value {
            Value::String(s) => {
                let parsed: Value = serde_json::from_str(s).map_err(|e| {
                    SqlError::new(
                        codes::INVALID_TEXT_REPRESENTATION,
                        format!(
                            "invalid input syntax for type json in column \"{column}\" of \
                             relation \"{table}\": {e}"
                        ),
                    )
                })?;
                let fits = match json_type {
                    JsonType::Object => parsed.is_object() || parsed.is_null(),
                    _ => parsed.is_array() || parsed.is_null(),
                };
                if !fits {
                    let what = if json_type == JsonType::Object {
                        "a JSON object"
                    } else {
                        "a JSON array"
                    };
                    return Err(type_error(table, column, what, &parsed));
                }
                parsed
            }
            _ => value,
        },
        JsonType::StringArray => match value {
            Value::Array(items) => Value::Array(
                items
                    .into_iter()
                    .map(|i| match i {
                        Value::Null => Value::Null,
                        other => Value::String(as_text(&other)),
                    })
                    .collect(),
            ),
            _ => return Err(type_error(table, column, "an array of text", &value)),
        },
    })
}

/// A custom field value as the API stores it: option labels become option
/// ids (a comma-separated list for multiselect fields), numbers become JSON
/// numbers, people are ids.
///
/// # Errors
/// 22023 for a label that is not one of the field's options, naming them.
pub fn custom_field_json(
    table: &str,
    column: &str,
    cf: &CustomFieldColumn,
    value: Value,
) -> Result<Value, SqlError> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    let text = match &value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let option_id = |label: &str| -> Result<Value, SqlError> {
        let label = label.trim();
        cf.options
            .iter()
            .find(|(id, name)| name.eq_ignore_ascii_case(label) || id == label)
            .map(|(id, _)| Value::String(id.clone()))
            .ok_or_else(|| {
                let known: Vec<&str> = cf.options.iter().map(|(_, n)| n.as_str()).collect();
                SqlError::new(
                    codes::INVALID_PARAMETER_VALUE,
                    format!(
                        "\"{label}\" is not an option of custom field column \"{column}\" of \
                         relation \"{table}\""
                    ),
                )
                .with_detail(format!("options: {}", known.join(", ")))
            })
    };
    Ok(match cf.data_type {
        2 => attribute_json(table, column, JsonType::Number, value)?,
        3 => option_id(&text)?,
        5 => Value::Array(
            text.split(',')
                .filter(|s| !s.trim().is_empty())
                .map(option_id)
                .collect::<Result<Vec<_>, _>>()?,
        ),
        6 => attribute_json(table, column, JsonType::IdString, value)?,
        _ => Value::String(text),
    })
}

/// `{"type": kind, "id": "<id>"}`, or JSON null for no record.
pub fn linkage(kind: &str, id: &Value) -> Value {
    match id {
        Value::Null => Value::Null,
        Value::String(s) => {
            let mut m = Map::new();
            m.insert("type".into(), Value::String(kind.to_string()));
            m.insert("id".into(), Value::String(s.clone()));
            Value::Object(m)
        }
        other => linkage(kind, &Value::String(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use datafusion::arrow::array::{Date32Array, Decimal128Array, TimestampMicrosecondArray};

    #[test]
    fn values_take_the_api_shapes() {
        let d: ArrayRef = Arc::new(
            Decimal128Array::from(vec![Some(12_500_000)])
                .with_precision_and_scale(38, 6)
                .unwrap(),
        );
        let v = natural_value(&d, 0).unwrap();
        assert_eq!(v, Value::String("12.5".into()));
        assert_eq!(
            attribute_json("t", "c", JsonType::DecimalString, v).unwrap(),
            Value::String("12.5".into())
        );
        let date: ArrayRef = Arc::new(Date32Array::from(vec![Some(19_000)]));
        assert_eq!(
            natural_value(&date, 0).unwrap(),
            Value::String("2022-01-08".into())
        );
        let ts: ArrayRef =
            Arc::new(TimestampMicrosecondArray::from(vec![Some(1_500_000)]).with_timezone("UTC"));
        assert_eq!(
            natural_value(&ts, 0).unwrap(),
            Value::String("1970-01-01T00:00:01.500Z".into())
        );
        assert_eq!(
            attribute_json("t", "c", JsonType::IdString, Value::from(42)).unwrap(),
            Value::String("42".into())
        );
    }

    #[test]
    fn wrong_shapes_are_type_errors() {
        let e = attribute_json("t", "meta", JsonType::Object, Value::String("{".into()));
        assert_eq!(e.unwrap_err().code, "22P02");
        let e = attribute_json("t", "n", JsonType::Integer, Value::String("1.5".into()));
        assert_eq!(e.unwrap_err().code, "22P02");
    }

    #[test]
    fn option_labels_become_ids() {
        let cf = CustomFieldColumn {
            field_id: "9".into(),
            data_type: 5,
            options: vec![("1".into(), "Red".into()), ("2".into(), "Blue".into())],
        };
        let v = custom_field_json("t", "labels", &cf, Value::String("red, Blue".into()));
        assert_eq!(v.unwrap(), serde_json::json!(["1", "2"]));
        let e = custom_field_json("t", "labels", &cf, Value::String("Green".into()));
        let e = e.unwrap_err();
        assert_eq!(e.code, "22023");
        assert!(e.detail.unwrap().contains("Red, Blue"));
    }
}
