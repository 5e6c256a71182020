//! One column of one record as a value a target database stores.
//!
//! The JSON value comes from [`convert::extract`] and is read with the same
//! per-type readers the gateway's Arrow batches use, so a replica and a
//! `SELECT` through the gateway agree on every value. Types a target has no
//! parameter for travel as canonical text that both targets parse: decimals
//! as plain digits, timestamps as RFC 3339 in UTC with microseconds, arrays
//! and objects as JSON.

use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::api::document::ResourceObject;
use crate::catalog::SqlType;
use crate::table::convert;
use crate::table::schema::{ColumnDef, NUMERIC_SCALE};

/// A value ready to bind as a statement parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Bool(bool),
    Float(f64),
    /// Text, or the canonical text of a decimal, date, time, timestamp or
    /// JSON value (the column's SQL type says which).
    Text(String),
    /// A `text[]` value.
    TextList(Vec<Option<String>>),
}

impl Cell {
    /// A stable text form, for change detection.
    fn fingerprint(&self, out: &mut String) {
        match self {
            Cell::Null => out.push('\u{0}'),
            Cell::Int(n) => out.push_str(&n.to_string()),
            Cell::Bool(b) => out.push_str(if *b { "t" } else { "f" }),
            Cell::Float(f) => out.push_str(&f.to_bits().to_string()),
            Cell::Text(s) => out.push_str(s),
            Cell::TextList(items) => {
                for item in items {
                    out.push_str(item.as_deref().unwrap_or("\u{0}"));
                    out.push('\u{1}');
                }
            }
        }
    }
}

/// Reads one column of one record.
///
/// # Errors
/// A message naming what is wrong when the value does not fit the column's
/// type; the caller records the record as failed.
pub fn cell(record: &ResourceObject, column: &ColumnDef) -> Result<Cell, String> {
    let v = convert::extract(record, &column.source);
    if v.is_null() {
        return Ok(Cell::Null);
    }
    Ok(match column.sql_type {
        SqlType::BigInt => Cell::Int(convert::read_i64(&v)?),
        SqlType::Integer => {
            let n = convert::read_i64(&v)?;
            i32::try_from(n).map_err(|_| format!("{n} is out of range for integer"))?;
            Cell::Int(n)
        }
        SqlType::Boolean => Cell::Bool(convert::read_bool(&v)?),
        SqlType::Double => Cell::Float(convert::read_f64(&v)?),
        SqlType::Text => Cell::Text(convert::read_text(&v)?),
        SqlType::Jsonb => Cell::Text(v.to_string()),
        SqlType::Numeric => {
            let mantissa = convert::read_decimal(&v)?;
            let d = Decimal::try_from_i128_with_scale(mantissa, NUMERIC_SCALE as u32)
                .map_err(|e| format!("{v} is not a decimal: {e}"))?;
            Cell::Text(d.normalize().to_string())
        }
        SqlType::Date => {
            let days = convert::read_date(&v)?;
            let date = NaiveDate::from_num_days_from_ce_opt(days + UNIX_EPOCH_DAYS_FROM_CE)
                .ok_or_else(|| format!("{v} is out of range for a date"))?;
            Cell::Text(date.format("%Y-%m-%d").to_string())
        }
        SqlType::Timestamptz => {
            let micros = convert::read_timestamp(&v)?;
            let at = DateTime::<Utc>::from_timestamp_micros(micros)
                .ok_or_else(|| format!("{v} is out of range for a timestamp"))?;
            Cell::Text(format_timestamp(at))
        }
        SqlType::Time => {
            let micros = convert::read_time(&v)?;
            let secs = u32::try_from(micros / 1_000_000).unwrap_or(0);
            let nanos = u32::try_from((micros % 1_000_000) * 1000).unwrap_or(0);
            let t = NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos)
                .ok_or_else(|| format!("{v} is not a time of day"))?;
            Cell::Text(t.format("%H:%M:%S%.6f").to_string())
        }
        SqlType::TextArray => match &v {
            Value::Array(items) => Cell::TextList(
                items
                    .iter()
                    .map(|i| match i {
                        Value::Null => Ok(None),
                        other => convert::read_text(other).map(Some),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            other => return Err(format!("expected an array, got {other}")),
        },
    })
}

const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// Reads a value a target stores (or a user wrote there) in the column's
/// type, in the same canonical form [`cell`] gives a record's value, so a
/// row read back compares equal to the record it was written from.
///
/// # Errors
/// A message naming what is wrong when the value does not fit the type
/// (text in an integer column, a date that is not `YYYY-MM-DD`).
pub fn stored_cell(stored: Cell, sql_type: SqlType) -> Result<Cell, String> {
    let bad = |what: &str, v: &Cell| format!("{} expected, got {}", what, describe(v));
    Ok(match (sql_type, stored) {
        (_, Cell::Null) => Cell::Null,
        (SqlType::BigInt | SqlType::Integer, c) => {
            let n = match &c {
                Cell::Int(n) => *n,
                Cell::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => *f as i64,
                Cell::Text(s) => s.trim().parse().map_err(|_| bad("an integer", &c))?,
                _ => return Err(bad("an integer", &c)),
            };
            if sql_type == SqlType::Integer {
                i32::try_from(n).map_err(|_| format!("{n} is out of range for integer"))?;
            }
            Cell::Int(n)
        }
        (SqlType::Boolean, c) => match &c {
            Cell::Bool(b) => Cell::Bool(*b),
            Cell::Int(0) => Cell::Bool(false),
            Cell::Int(1) => Cell::Bool(true),
            Cell::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
                "t" | "true" | "1" => Cell::Bool(true),
                "f" | "false" | "0" => Cell::Bool(false),
                _ => return Err(bad("a boolean", &c)),
            },
            _ => return Err(bad("a boolean", &c)),
        },
        (SqlType::Double, c) => match &c {
            Cell::Float(f) => Cell::Float(*f),
            Cell::Int(n) => Cell::Float(*n as f64),
            Cell::Text(s) => Cell::Float(s.trim().parse().map_err(|_| bad("a number", &c))?),
            _ => return Err(bad("a number", &c)),
        },
        (SqlType::Numeric, c) => {
            let d = match &c {
                Cell::Int(n) => Decimal::from(*n),
                Cell::Float(f) => Decimal::try_from(*f).map_err(|_| bad("a decimal", &c))?,
                Cell::Text(s) => s.trim().parse().map_err(|_| bad("a decimal", &c))?,
                _ => return Err(bad("a decimal", &c)),
            };
            Cell::Text(d.normalize().to_string())
        }
        (SqlType::Text, c) => match c {
            Cell::Text(s) => Cell::Text(s),
            Cell::Int(n) => Cell::Text(n.to_string()),
            Cell::Float(f) => Cell::Text(f.to_string()),
            other => return Err(bad("text", &other)),
        },
        (SqlType::Jsonb, c) => match &c {
            Cell::Text(s) => {
                let v: Value = serde_json::from_str(s).map_err(|_| bad("JSON", &c))?;
                Cell::Text(v.to_string())
            }
            _ => return Err(bad("JSON", &c)),
        },
        (SqlType::Date, c) => match &c {
            Cell::Text(s) => {
                let d = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                    .map_err(|_| bad("a date (YYYY-MM-DD)", &c))?;
                Cell::Text(d.format("%Y-%m-%d").to_string())
            }
            _ => return Err(bad("a date (YYYY-MM-DD)", &c)),
        },
        (SqlType::Timestamptz, c) => match &c {
            Cell::Text(s) => {
                let s = s.trim();
                let at = DateTime::parse_from_rfc3339(s)
                    .map(|t| t.with_timezone(&Utc))
                    .or_else(|_| {
                        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
                            .map(|t| t.and_utc())
                    })
                    .map_err(|_| bad("a timestamp (RFC 3339)", &c))?;
                Cell::Text(format_timestamp(at))
            }
            _ => return Err(bad("a timestamp (RFC 3339)", &c)),
        },
        (SqlType::Time, c) => match &c {
            Cell::Text(s) => {
                let t = NaiveTime::parse_from_str(s.trim(), "%H:%M:%S%.f")
                    .or_else(|_| NaiveTime::parse_from_str(s.trim(), "%H:%M"))
                    .map_err(|_| bad("a time of day", &c))?;
                Cell::Text(t.format("%H:%M:%S%.6f").to_string())
            }
            _ => return Err(bad("a time of day", &c)),
        },
        (SqlType::TextArray, c) => match c {
            Cell::TextList(items) => Cell::TextList(items),
            Cell::Text(s) => {
                let items: Vec<Option<String>> = serde_json::from_str(&s)
                    .map_err(|_| format!("a JSON array of text expected, got {s:?}"))?;
                Cell::TextList(items)
            }
            other => return Err(bad("an array of text", &other)),
        },
    })
}

fn describe(cell: &Cell) -> String {
    match cell {
        Cell::Null => "NULL".into(),
        Cell::Int(n) => n.to_string(),
        Cell::Bool(b) => b.to_string(),
        Cell::Float(f) => f.to_string(),
        Cell::Text(s) => format!("{s:?}"),
        Cell::TextList(items) => format!("{items:?}"),
    }
}

/// A cell as plain JSON, the form the write path's encoders take: numbers,
/// booleans, text (decimals, dates, times and JSON as their text), arrays.
pub fn json_value(cell: &Cell) -> Value {
    match cell {
        Cell::Null => Value::Null,
        Cell::Int(n) => Value::from(*n),
        Cell::Bool(b) => Value::Bool(*b),
        Cell::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Cell::Text(s) => Value::String(s.clone()),
        Cell::TextList(items) => Value::Array(
            items
                .iter()
                .map(|i| i.clone().map(Value::String).unwrap_or(Value::Null))
                .collect(),
        ),
    }
}

/// A timestamp as the targets store it: RFC 3339, UTC, microseconds, so
/// text comparison in SQLite orders like time.
pub fn format_timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A fingerprint of a row's values: equal rows have equal fingerprints,
/// so an unchanged record is not written again.
pub fn row_fingerprint(cells: &[Cell]) -> String {
    let mut text = String::new();
    for c in cells {
        c.fingerprint(&mut text);
        text.push('\u{2}');
    }
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::table::TableDef;

    fn record(json: &str) -> ResourceObject {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn values_become_canonical_cells() {
        let def = TableDef::new(Catalog::get().table("tasks").unwrap(), &[]);
        let r = record(
            r#"{"id":"12","type":"tasks","attributes":{"title":"A","due_date":"2026-01-31",
            "created_at":"2026-03-23T20:43:26.943+01:00","closed":false,"tag_list":["x"]},
            "relationships":{"project":{"data":{"type":"projects","id":"5"}}}}"#,
        );
        let get = |name: &str| cell(&r, def.column(name).unwrap()).unwrap();
        assert_eq!(get("id"), Cell::Int(12));
        assert_eq!(get("title"), Cell::Text("A".into()));
        assert_eq!(get("due_date"), Cell::Text("2026-01-31".into()));
        assert_eq!(
            get("created_at"),
            Cell::Text("2026-03-23T19:43:26.943000Z".into())
        );
        assert_eq!(get("closed"), Cell::Bool(false));
        assert_eq!(get("project_id"), Cell::Int(5));
        assert_eq!(get("tag_list"), Cell::TextList(vec![Some("x".into())]));
        assert_eq!(get("start_date"), Cell::Null);
    }

    #[test]
    fn decimals_keep_their_digits() {
        let def = TableDef::new(Catalog::get().table("expenses").unwrap(), &[]);
        let r = record(r#"{"id":"1","type":"expenses","attributes":{"quantity":"12.50"}}"#);
        let c = cell(&r, def.column("quantity").unwrap()).unwrap();
        assert_eq!(c, Cell::Text("12.5".into()));
    }

    #[test]
    fn a_bad_value_is_an_error() {
        let def = TableDef::new(Catalog::get().table("tasks").unwrap(), &[]);
        let r = record(r#"{"id":"1","type":"tasks","attributes":{"due_date":"soon"}}"#);
        assert!(cell(&r, def.column("due_date").unwrap()).is_err());
    }

    #[test]
    fn stored_values_read_back_like_records() {
        let r = record(
            r#"{"id":"12","type":"tasks","attributes":{"due_date":"2026-01-31",
            "created_at":"2026-03-23T20:43:26.943+01:00","closed":false,"tag_list":["x"]}}"#,
        );
        let def = TableDef::new(Catalog::get().table("tasks").unwrap(), &[]);
        for (name, stored) in [
            ("id", Cell::Text("12".into())),
            ("due_date", Cell::Text("2026-01-31".into())),
            ("created_at", Cell::Text("2026-03-23 19:43:26.943".into())),
            ("closed", Cell::Int(0)),
            ("tag_list", Cell::Text(r#"["x"]"#.into())),
        ] {
            let col = def.column(name).unwrap();
            assert_eq!(
                stored_cell(stored, col.sql_type).unwrap(),
                cell(&r, col).unwrap(),
                "{name}"
            );
        }
        assert_eq!(
            stored_cell(Cell::Float(12.5), SqlType::Numeric).unwrap(),
            Cell::Text("12.5".into())
        );
        let e = stored_cell(Cell::Text("soon".into()), SqlType::Date).unwrap_err();
        assert!(e.contains("\"soon\""), "{e}");
        assert!(stored_cell(Cell::Text("x".into()), SqlType::BigInt).is_err());
    }

    #[test]
    fn fingerprints_follow_values() {
        let a = [Cell::Int(1), Cell::Text("x".into())];
        let b = [Cell::Int(1), Cell::Text("y".into())];
        assert_eq!(row_fingerprint(&a), row_fingerprint(&a.clone()));
        assert_ne!(row_fingerprint(&a), row_fingerprint(&b));
        assert_ne!(
            row_fingerprint(&[Cell::Null]),
            row_fingerprint(&[Cell::Text(String::new())])
        );
    }
}
