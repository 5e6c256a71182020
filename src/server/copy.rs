//! `COPY ... TO STDOUT` (what psql's `\copy ... to` sends): the table or
//! query runs like a `SELECT`, and its text-format rows are re-framed as
//! COPY data in PostgreSQL's text or CSV format.
//!
//! Re-using the rows the server already renders for `SELECT` keeps values
//! spelled exactly alike in both paths (timestamps, booleans, arrays).
//! `COPY FROM`, `COPY ... TO 'file'` and the binary format are refused:
//! the server has no file system of its users and no bulk-load path.
//! See <https://www.postgresql.org/docs/15/sql-copy.html>.

use bytes::{Buf, Bytes};
use datafusion::sql::sqlparser::ast::{
    CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget, Ident, ObjectName,
    Query, Statement,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use futures::StreamExt;
use pgwire::api::results::{CopyResponse, QueryResponse, Response};
use pgwire::error::PgWireResult;
use pgwire::messages::copy::CopyData;
use pgwire::messages::data::DataRow;

use super::errors::ServerError;
use crate::error::{SqlError, codes};

/// How COPY data is spelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyFormat {
    /// CSV rather than the text format.
    pub csv: bool,
    /// A first line with the column names (CSV only).
    pub header: bool,
    pub delimiter: char,
    pub null: String,
    pub quote: char,
    pub escape: char,
}

impl CopyFormat {
    /// The text format's defaults.
    pub fn text() -> CopyFormat {
        CopyFormat {
            csv: false,
            header: false,
            delimiter: '\t',
            null: "\\N".to_owned(),
            quote: '"',
            escape: '"',
        }
    }

    /// Switches to CSV, with its defaults for the delimiter and NULL.
    pub fn use_csv(&mut self) {
        if !self.csv {
            self.csv = true;
            self.delimiter = ',';
            self.null = String::new();
        }
    }
}

fn unsupported(what: &str) -> ServerError {
    ServerError::Sql(SqlError::new(
        codes::FEATURE_NOT_SUPPORTED,
        format!("{what} is not supported; use COPY ... TO STDOUT"),
    ))
}

/// The query behind a `COPY ... TO STDOUT` and its output format; `None`
/// for any other statement (`COPY ... FROM` included).
///
/// # Errors
/// `0A000` for COPY forms the server does not offer (FROM, files,
/// programs, binary).
pub fn to_query(stmt: &Statement) -> Result<Option<(Statement, CopyFormat)>, ServerError> {
    let Statement::Copy {
        source,
        to,
        target,
        options,
        legacy_options,
        ..
    } = stmt
    else {
        return Ok(None);
    };
    if !to {
        // COPY FROM has its own path (`copy_in`).
        return Ok(None);
    }
    if *target != CopyTarget::Stdout {
        return Err(unsupported("COPY to a file or program"));
    }
    let (format, _) = format_of(options, legacy_options)?;

    let query = match source {
        CopySource::Query(query) => query.as_ref().clone(),
        CopySource::Table {
            table_name,
            columns,
        } => select_from(table_name, columns)?,
    };
    Ok(Some((Statement::Query(Box::new(query)), format)))
}

/// The format a COPY statement's options describe, and the ENCODING it
/// names, if any.
///
/// # Errors
/// `0A000` for the binary format and formats COPY does not know.
pub fn format_of(
    options: &[CopyOption],
    legacy_options: &[CopyLegacyOption],
) -> Result<(CopyFormat, Option<String>), ServerError> {
    let mut format = CopyFormat::text();
    let mut encoding = None;
    for option in options {
        match option {
            CopyOption::Format(name) => match name.value.to_ascii_lowercase().as_str() {
                "csv" => format.use_csv(),
                "text" => {}
                _ => return Err(unsupported("this COPY format")),
            },
            CopyOption::Header(on) => format.header = *on,
            CopyOption::Delimiter(c) => format.delimiter = *c,
            CopyOption::Null(s) => format.null = s.clone(),
            CopyOption::Quote(c) => format.quote = *c,
            CopyOption::Escape(c) => format.escape = *c,
            CopyOption::Encoding(name) => encoding = Some(name.clone()),
            _ => {}
        }
    }
    for option in legacy_options {
        match option {
            CopyLegacyOption::Binary => return Err(unsupported("binary COPY")),
            CopyLegacyOption::Delimiter(c) => format.delimiter = *c,
            CopyLegacyOption::Null(s) => format.null = s.clone(),
            CopyLegacyOption::Csv(csv) => {
                format.use_csv();
                for item in csv {
                    match item {
                        CopyLegacyCsvOption::Header => format.header = true,
                        CopyLegacyCsvOption::Quote(c) => format.quote = *c,
                        CopyLegacyCsvOption::Escape(c) => format.escape = *c,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    // Options may come before FORMAT csv, whose defaults must not win.
    for option in options {
        match option {
            CopyOption::Delimiter(c) => format.delimiter = *c,
            CopyOption::Null(s) => format.null = s.clone(),
            _ => {}
        }
    }
    Ok((format, encoding))
}

/// `SELECT columns FROM table` (all columns when none are named), built
/// from the names' SQL spelling so quoting carries over.
fn select_from(table: &ObjectName, columns: &[Ident]) -> Result<Query, ServerError> {
    let projection = if columns.is_empty() {
        "*".to_owned()
    } else {
        columns
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let sql = format!("SELECT {projection} FROM {table}");
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, &sql)
        .map_err(|e| ServerError::Sql(SqlError::new(codes::SYNTAX_ERROR, e.to_string())))?;
    match statements.pop() {
        Some(Statement::Query(query)) => Ok(*query),
        _ => Err(ServerError::Sql(SqlError::new(
            codes::SYNTAX_ERROR,
            format!("cannot copy from {table}"),
        ))),
    }
}

/// Re-frames the text-format rows of `response` as COPY data.
pub fn copy_out(response: Response, format: CopyFormat) -> Result<Response, ServerError> {
    let Response::Query(mut query) = response else {
        return Err(ServerError::Sql(SqlError::new(
            codes::FEATURE_NOT_SUPPORTED,
            "COPY needs a statement that returns rows",
        )));
    };
    let names: Vec<String> = query
        .row_schema()
        .iter()
        .map(|f| f.name().to_owned())
        .collect();
    let header = (format.csv && format.header).then(|| {
        let fields: Vec<Option<&[u8]>> = names.iter().map(|n| Some(n.as_bytes())).collect();
        Ok(CopyData::new(Bytes::from(render_line(&fields, &format))))
    });
    let rows = take_rows(&mut query);
    let lines = rows.map(move |row| {
        row.map(|row| CopyData::new(Bytes::from(render_line(&fields_of(&row), &format))))
    });
    let stream = futures::stream::iter(header).chain(lines);
    Ok(Response::CopyOut(CopyResponse::new(0, names.len(), stream)))
}

fn take_rows(
    query: &mut QueryResponse,
) -> std::pin::Pin<Box<dyn futures::Stream<Item = PgWireResult<DataRow>> + Send>> {
    std::mem::replace(query.data_rows(), Box::pin(futures::stream::empty()))
}

/// The fields of a text-format data row; `None` for NULL.
fn fields_of(row: &DataRow) -> Vec<Option<&[u8]>> {
    let mut data: &[u8] = &row.data;
    let mut fields = Vec::with_capacity(row.field_count.max(0) as usize);
    for _ in 0..row.field_count {
        if data.remaining() < 4 {
            break;
        }
        let len = data.get_i32();
        if len < 0 {
            fields.push(None);
            continue;
        }
        let len = (len as usize).min(data.len());
        fields.push(Some(&data[..len]));
        data = &data[len..];
    }
    fields
}

/// One line of COPY output, newline included.
fn render_line(fields: &[Option<&[u8]>], format: &CopyFormat) -> Vec<u8> {
    let mut out = Vec::new();
    let mut delimiter = [0u8; 4];
    let delimiter = format.delimiter.encode_utf8(&mut delimiter).as_bytes();
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(delimiter);
        }
        let Some(value) = field else {
            out.extend_from_slice(format.null.as_bytes());
            continue;
        };
        let value = String::from_utf8_lossy(value);
        if format.csv {
            // Quote what would otherwise read back differently: the
            // delimiter, quotes, line breaks, and a value spelled like NULL.
            let needs_quotes = value.contains(format.delimiter)
                || value.contains(format.quote)
                || value.contains(['\r', '\n'])
                || *value == format.null;
            if needs_quotes {
                out.extend(format.quote.to_string().bytes());
                for c in value.chars() {
                    if c == format.quote || c == format.escape {
                        out.extend(format.escape.to_string().bytes());
                    }
                    out.extend(c.to_string().bytes());
                }
                out.extend(format.quote.to_string().bytes());
            } else {
                out.extend_from_slice(value.as_bytes());
            }
        } else {
            for c in value.chars() {
                match c {
                    '\\' => out.extend_from_slice(b"\\\\"),
                    '\n' => out.extend_from_slice(b"\\n"),
                    '\r' => out.extend_from_slice(b"\\r"),
                    '\t' => out.extend_from_slice(b"\\t"),
                    c if c == format.delimiter => {
                        out.push(b'\\');
                        out.extend(c.to_string().bytes());
                    }
                    c => out.extend(c.to_string().bytes()),
                }
            }
        }
    }
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(sql: &str) -> Statement {
        Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .expect("valid SQL")
            .remove(0)
    }

    #[test]
    fn copy_to_stdout_becomes_a_query() {
        let (query, format) = to_query(&parse("COPY tasks (id, title) TO STDOUT"))
            .expect("supported")
            .expect("a COPY");
        assert_eq!(query.to_string(), "SELECT id, title FROM tasks");
        assert_eq!(format, CopyFormat::text());

        let (query, format) = to_query(&parse(
            "COPY (SELECT 1 AS a) TO STDOUT WITH (FORMAT csv, HEADER, DELIMITER ';')",
        ))
        .expect("supported")
        .expect("a COPY");
        assert_eq!(query.to_string(), "SELECT 1 AS a");
        assert!(format.csv && format.header);
        assert_eq!(format.delimiter, ';');

        let (_, format) = to_query(&parse("COPY tasks TO STDOUT WITH CSV HEADER"))
            .expect("supported")
            .expect("a COPY");
        assert!(format.csv && format.header && format.delimiter == ',');

        assert!(to_query(&parse("SELECT 1")).expect("not a COPY").is_none());
        assert!(
            to_query(&parse("COPY tasks FROM STDIN"))
                .expect("other path")
                .is_none()
        );
        assert!(to_query(&parse("COPY tasks TO '/tmp/x'")).is_err());
    }

    #[test]
    fn lines_are_escaped_like_postgres() {
        let text = CopyFormat::text();
        let fields: Vec<Option<&[u8]>> = vec![Some(b"a\tb\\c"), None, Some(b"line\nbreak")];
        assert_eq!(
            render_line(&fields, &text),
            b"a\\tb\\\\c\t\\N\tline\\nbreak\n"
        );

        let mut csv = CopyFormat::text();
        csv.use_csv();
        let fields: Vec<Option<&[u8]>> = vec![Some(b"x,y"), None, Some(b"say \"hi\""), Some(b"")];
        assert_eq!(
            render_line(&fields, &csv),
            b"\"x,y\",,\"say \"\"hi\"\"\",\"\"\n"
        );
    }

    #[test]
    fn data_rows_split_into_fields() {
        let mut data = bytes::BytesMut::new();
        bytes::BufMut::put_i32(&mut data, 2);
        data.extend_from_slice(b"42");
        bytes::BufMut::put_i32(&mut data, -1);
        let row = DataRow::new(data, 2);
        assert_eq!(fields_of(&row), vec![Some(&b"42"[..]), None]);
    }
}
