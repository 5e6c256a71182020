//! CSV output in PostgreSQL's CSV conventions: NULL is an unquoted empty
//! field (or the chosen null string), an empty string is `""`, booleans are
//! `true`/`false`, timestamps ISO 8601 with their offset, arrays `{a,b}`.
//!
//! The quoting is written here rather than with the `csv` crate's writer,
//! because that writer cannot quote one empty field while leaving NULLs
//! bare, which is what keeps the two apart.

use std::io::Write;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

/// How a CSV file is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvOptions {
    pub delimiter: u8,
    pub quote: u8,
    pub header: bool,
    /// What a NULL is written as (empty by default).
    pub null: String,
    /// Quote every non-NULL field.
    pub force_quote: bool,
}

impl Default for CsvOptions {
    fn default() -> CsvOptions {
        CsvOptions {
            delimiter: b',',
            quote: b'"',
            header: true,
            null: String::new(),
            force_quote: false,
        }
    }
}

/// Writes CSV rows from Arrow batches.
pub struct CsvWriter<W: Write> {
    out: W,
    options: CsvOptions,
}

impl<W: Write> CsvWriter<W> {
    pub fn new(out: W, options: CsvOptions) -> CsvWriter<W> {
        CsvWriter { out, options }
    }

    pub fn write_header(&mut self, names: &[String]) -> std::io::Result<()> {
        if !self.options.header {
            return Ok(());
        }
        let fields: Vec<Option<String>> = names.iter().map(|n| Some(n.clone())).collect();
        self.write_row(&fields)
    }

    /// Writes every row of `batch`.
    pub fn write_batch(&mut self, batch: &RecordBatch) -> std::io::Result<()> {
        let columns: Vec<Vec<Option<String>>> = batch
            .columns()
            .iter()
            .map(|c| format_column(c.as_ref()))
            .collect();
        for row in 0..batch.num_rows() {
            let fields: Vec<Option<String>> = columns.iter().map(|c| c[row].clone()).collect();
            self.write_row(&fields)?;
        }
        Ok(())
    }

    fn write_row(&mut self, fields: &[Option<String>]) -> std::io::Result<()> {
        let mut line = Vec::new();
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                line.push(self.options.delimiter);
            }
            match field {
                None => line.extend_from_slice(self.options.null.as_bytes()),
                Some(v) => self.push_field(&mut line, v),
            }
        }
        line.push(b'\n');
        self.out.write_all(&line)
    }

    fn push_field(&self, line: &mut Vec<u8>, value: &str) {
        let o = &self.options;
        let needs = o.force_quote
            || value.is_empty()
            || value == o.null
            || value
                .bytes()
                .any(|b| b == o.delimiter || b == o.quote || b == b'\n' || b == b'\r')
            || value.starts_with(' ')
            || value.ends_with(' ');
        if !needs {
            line.extend_from_slice(value.as_bytes());
            return;
        }
        line.push(o.quote);
        for b in value.bytes() {
            if b == o.quote {
                line.push(o.quote);
            }
            line.push(b);
        }
        line.push(o.quote);
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// The text of every value of a column; `None` for NULL.
pub fn format_column(array: &dyn Array) -> Vec<Option<String>> {
    match array.data_type() {
        DataType::List(_) => {
            let list = array.as_list::<i32>();
            (0..list.len())
                .map(|i| {
                    (!list.is_null(i)).then(|| {
                        let items = format_column(list.value(i).as_ref());
                        let parts: Vec<String> = items
                            .into_iter()
                            .map(|v| match v {
                                None => "NULL".to_string(),
                                Some(s) => pg_array_item(&s),
                            })
                            .collect();
                        format!("{{{}}}", parts.join(","))
                    })
                })
                .collect()
        }
        dt => {
            let options = FormatOptions::new()
                .with_timestamp_tz_format(Some("%Y-%m-%dT%H:%M:%S%.f%:z"))
                .with_timestamp_format(Some("%Y-%m-%dT%H:%M:%S%.f"));
            let decimal = matches!(dt, DataType::Decimal128(_, _));
            // Logical nulls: a NullArray (an untyped NULL) has no null
            // buffer, yet every value is NULL.
            let nulls = array.logical_nulls();
            let is_null = |i: usize| nulls.as_ref().is_some_and(|n| n.is_null(i));
            match ArrayFormatter::try_new(array, &options) {
                Ok(f) => (0..array.len())
                    .map(|i| {
                        (!is_null(i)).then(|| {
                            let s = f.value(i).to_string();
                            if decimal { trim_decimal(&s) } else { s }
                        })
                    })
                    .collect(),
                Err(_) => vec![None; array.len()],
            }
        }
    }
}

/// `1.500000` → `1.5`, `100.000000` → `100`.
fn trim_decimal(s: &str) -> String {
    if !s.contains('.') {
        return s.to_string();
    }
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// An element of a PostgreSQL array literal, quoted when it must be.
fn pg_array_item(s: &str) -> String {
    let plain = !s.is_empty()
        && !s.eq_ignore_ascii_case("null")
        && !s.contains(|c: char| matches!(c, ',' | '{' | '}' | '"' | '\\') || c.is_whitespace());
    if plain {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        BooleanArray, Decimal128Array, ListBuilder, StringArray, StringBuilder,
        TimestampMicrosecondArray,
    };
    use datafusion::arrow::datatypes::{Field, Schema};

    use super::*;

    fn write(batch: &RecordBatch, options: CsvOptions) -> String {
        let mut w = CsvWriter::new(Vec::new(), options);
        w.write_header(
            &batch
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect::<Vec<_>>(),
        )
        .unwrap();
        w.write_batch(batch).unwrap();
        String::from_utf8(w.into_inner()).unwrap()
    }

    #[test]
    fn nulls_and_empty_strings_stay_apart() {
        let text = StringArray::from(vec![
            Some(""),
            None,
            Some("a,b"),
            Some("say \"hi\""),
            Some("x\ny"),
        ]);
        let untyped = format_column(&datafusion::arrow::array::NullArray::new(2));
        assert_eq!(untyped, vec![None, None]);
        let schema = Arc::new(Schema::new(vec![Field::new("t", DataType::Utf8, true)]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(text)]).unwrap();
        assert_eq!(
            write(&batch, CsvOptions::default()),
            "t\n\"\"\n\n\"a,b\"\n\"say \"\"hi\"\"\"\n\"x\ny\"\n"
        );
        let custom = CsvOptions {
            null: "NULL".into(),
            delimiter: b';',
            ..CsvOptions::default()
        };
        assert_eq!(write(&batch, custom).lines().nth(2), Some("NULL"));
    }

    #[test]
    fn an_untyped_null_is_null() {
        let untyped = format_column(&datafusion::arrow::array::NullArray::new(2));
        assert_eq!(untyped, vec![None, None]);
    }

    #[test]
    fn typed_values_are_written_to_round_trip() {
        let ts =
            TimestampMicrosecondArray::from(vec![Some(1_774_295_006_943_000)]).with_timezone("UTC");
        let dec = Decimal128Array::from(vec![Some(1_500_000i128)])
            .with_precision_and_scale(38, 6)
            .unwrap();
        let b = BooleanArray::from(vec![Some(true)]);
        let mut list = ListBuilder::new(StringBuilder::new());
        list.values().append_value("a b");
        list.values().append_value("c");
        list.append(true);
        let schema = Arc::new(Schema::new(vec![
            Field::new("ts", ts.data_type().clone(), true),
            Field::new("d", dec.data_type().clone(), true),
            Field::new("b", DataType::Boolean, true),
            Field::new(
                "l",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                true,
            ),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(ts),
                Arc::new(dec),
                Arc::new(b),
                Arc::new(list.finish()),
            ],
        )
        .unwrap();
        let out = write(
            &batch,
            CsvOptions {
                header: false,
                ..CsvOptions::default()
            },
        );
        assert_eq!(
            out,
            "2026-03-23T19:43:26.943+00:00,1.5,true,\"{\"\"a b\"\",c}\"\n"
        );
    }
}
