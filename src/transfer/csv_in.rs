//! Reading rows for a bulk load: CSV (through the `csv` crate) and
//! PostgreSQL's text format, as `COPY ... FROM` reads them.
//!
//! Each record keeps the line it starts on, so every error can name it.
//! CSV follows PostgreSQL's rules: an unquoted field equal to the NULL
//! string is NULL, a quoted one is text (`""` is the empty string, not
//! NULL); a quoted field left open is an error rather than the rest of the
//! file. Line ends may be LF or CRLF. Input must be UTF-8.
//! See <https://www.postgresql.org/docs/current/sql-copy.html>.

use crate::error::{SqlError, codes};

/// PostgreSQL's SQLSTATE for malformed COPY data (`bad_copy_file_format`).
pub const BAD_COPY_FORMAT: &str = "22P04";
/// `character_not_in_repertoire`: bytes that are not UTF-8.
pub const NOT_UTF8: &str = "22021";

/// How the input is spelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFormat {
    /// CSV rather than the text format.
    pub csv: bool,
    pub delimiter: u8,
    pub quote: u8,
    pub escape: u8,
    /// The spelling of NULL.
    pub null: String,
    /// The first line holds column names.
    pub header: bool,
}

impl InputFormat {
    /// CSV with PostgreSQL's defaults: `,`, `"`, NULL as an unquoted empty
    /// field.
    pub fn csv() -> InputFormat {
        InputFormat {
            csv: true,
            delimiter: b',',
            quote: b'"',
            escape: b'"',
            null: String::new(),
            header: false,
        }
    }

    /// The text format: tabs, backslash escapes, NULL as `\N`.
    pub fn text() -> InputFormat {
        InputFormat {
            csv: false,
            delimiter: b'\t',
            quote: b'"',
            escape: b'"',
            null: "\\N".to_owned(),
            header: false,
        }
    }

    /// The one-byte spelling of a delimiter, quote or escape character.
    ///
    /// # Errors
    /// 22023 for anything but a single ASCII character.
    pub fn single_byte(what: &str, value: char) -> Result<u8, SqlError> {
        if value.is_ascii() && value != '\n' && value != '\r' {
            Ok(value as u8)
        } else {
            Err(SqlError::new(
                codes::INVALID_PARAMETER_VALUE,
                format!("COPY {what} must be a single one-byte character"),
            ))
        }
    }

    /// Refuses encodings other than UTF-8.
    ///
    /// # Errors
    /// 22023 naming the encoding.
    pub fn check_encoding(name: &str) -> Result<(), SqlError> {
        let normal: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if normal == "utf8" {
            Ok(())
        } else {
            Err(SqlError::new(
                codes::INVALID_PARAMETER_VALUE,
                format!("encoding \"{name}\" is not supported: input must be UTF8"),
            )
            .with_hint("convert the file first, e.g. iconv -t UTF-8"))
        }
    }
}

/// One input record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The line the record starts on (1 for the first line of the input).
    pub line: u64,
    /// The fields; `None` for NULL.
    pub fields: Vec<Option<String>>,
    /// The fields as they were written (for a rejects file).
    pub raw: Vec<String>,
}

/// A record that could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordError {
    pub line: u64,
    pub error: SqlError,
    /// What could be made of its fields (invalid UTF-8 replaced).
    pub raw: Vec<String>,
}

/// The column names of the header and the records of `data`.
pub fn read(
    data: &[u8],
    format: &InputFormat,
) -> (Option<Vec<String>>, Vec<Result<Record, RecordError>>) {
    let mut records = if format.csv {
        read_csv(data, format)
    } else {
        read_text(data, format)
    };
    if !format.header || records.is_empty() {
        return (None, records);
    }
    let header = match records.remove(0) {
        Ok(record) => Ok(record.raw),
        Err(e) => Err(e),
    };
    match header {
        Ok(names) => (Some(names), records),
        Err(e) => {
            records.insert(0, Err(e));
            (None, records)
        }
    }
}

fn read_csv(data: &[u8], format: &InputFormat) -> Vec<Result<Record, RecordError>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(format.delimiter)
        .quote(format.quote)
        .double_quote(format.escape == format.quote)
        .escape((format.escape != format.quote).then_some(format.escape))
        .terminator(csv::Terminator::CRLF)
        .from_reader(data);
    let mut out = Vec::new();
    let mut record = csv::ByteRecord::new();
    loop {
        let position = reader.position().clone();
        let read = reader.read_byte_record(&mut record);
        // The reader now stands at the next record: the bytes in between
        // are this record's, as written.
        let end = reader.position().byte() as usize;
        let line = position.line();
        match read {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                out.push(Err(RecordError {
                    line,
                    error: SqlError::new(BAD_COPY_FORMAT, e.to_string()),
                    raw: vec![],
                }));
                break;
            }
        }
        let start = position.byte() as usize;
        let bytes = data.get(start..end.min(data.len())).unwrap_or_default();
        // The reader stops after the `\r` of a CRLF, so a record's bytes may
        // begin with the end of the line before it (and blank lines, which
        // it skips).
        let blank = bytes
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        let line = line + bytes[..blank].iter().filter(|b| **b == b'\n').count() as u64;
        out.push(csv_record(line, &record, &bytes[blank..], format));
    }
    out
}

/// One CSV record: text, NULLs, and the checks the `csv` crate leaves out
/// (quotes left open, invalid UTF-8).
fn csv_record(
    line: u64,
    record: &csv::ByteRecord,
    bytes: &[u8],
    format: &InputFormat,
) -> Result<Record, RecordError> {
    let raw: Vec<String> = record
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    let scan = scan_quotes(bytes, format);
    if scan.open {
        return Err(RecordError {
            line,
            error: SqlError::new(BAD_COPY_FORMAT, "unterminated CSV quoted field"),
            raw,
        });
    }
    let mut fields = Vec::with_capacity(record.len());
    for (i, field) in record.iter().enumerate() {
        let text = std::str::from_utf8(field).map_err(|e| RecordError {
            line,
            error: not_utf8(field, &e),
            raw: raw.clone(),
        })?;
        let quoted = scan.quoted.get(i).copied().unwrap_or(false);
        fields.push((quoted || text != format.null).then(|| text.to_owned()));
    }
    Ok(Record { line, fields, raw })
}

struct QuoteScan {
    /// Which fields begin with a quote.
    quoted: Vec<bool>,
    /// The record ends inside quotes.
    open: bool,
}

/// Follows the quoting of one raw CSV record.
fn scan_quotes(bytes: &[u8], format: &InputFormat) -> QuoteScan {
    let mut quoted = vec![false];
    let mut inside = false;
    let mut at_field_start = true;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if inside {
            if b == format.escape && format.escape != format.quote {
                i += 2;
                continue;
            }
            if b == format.quote {
                if format.escape == format.quote && bytes.get(i + 1) == Some(&format.quote) {
                    i += 2;
                    continue;
                }
                inside = false;
            }
        } else if b == format.quote {
            inside = true;
            if at_field_start && let Some(last) = quoted.last_mut() {
                *last = true;
            }
        } else if b == format.delimiter {
            quoted.push(false);
            at_field_start = true;
            i += 1;
            continue;
        } else if b == b'\n' || b == b'\r' {
            break;
        }
        at_field_start = false;
        i += 1;
    }
    QuoteScan {
        quoted,
        open: inside,
    }
}

fn not_utf8(bytes: &[u8], e: &std::str::Utf8Error) -> SqlError {
    let bad = &bytes[e.valid_up_to()..];
    let len = e.error_len().unwrap_or(bad.len()).min(bad.len()).max(1);
    let shown: Vec<String> = bad.iter().take(len).map(|b| format!("0x{b:02x}")).collect();
    SqlError::new(
        NOT_UTF8,
        format!(
            "invalid byte sequence for encoding \"UTF8\": {}",
            shown.join(" ")
        ),
    )
    .with_hint("the input must be UTF-8; convert it first, e.g. iconv -t UTF-8")
}

/// PostgreSQL's text format: one line per record, fields split on the
/// delimiter, backslash escapes, `\.` alone ends the data.
fn read_text(data: &[u8], format: &InputFormat) -> Vec<Result<Record, RecordError>> {
    let mut out = Vec::new();
    let mut line_no = 0u64;
    let mut rest = data;
    while !rest.is_empty() {
        line_no += 1;
        let (line, next) = match rest.iter().position(|b| *b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line == b"\\." {
            break;
        }
        out.push(text_record(line_no, line, format));
    }
    out
}

fn text_record(line: u64, bytes: &[u8], format: &InputFormat) -> Result<Record, RecordError> {
    let text = std::str::from_utf8(bytes).map_err(|e| RecordError {
        line,
        error: not_utf8(bytes, &e),
        raw: vec![String::from_utf8_lossy(bytes).into_owned()],
    })?;
    let delimiter = format.delimiter as char;
    // Split on delimiters that are not escaped.
    let mut raw = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            current.push(c);
            if let Some(n) = chars.next() {
                current.push(n);
            }
        } else if c == delimiter {
            raw.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    raw.push(current);
    let mut fields = Vec::with_capacity(raw.len());
    for field in &raw {
        if *field == format.null {
            fields.push(None);
            continue;
        }
        fields.push(Some(unescape(field).map_err(|message| RecordError {
            line,
            error: SqlError::new(BAD_COPY_FORMAT, message),
            raw: raw.clone(),
        })?));
    }
    Ok(Record { line, fields, raw })
}

/// Resolves the text format's backslash escapes.
fn unescape(field: &str) -> Result<String, String> {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(n) = chars.next() else {
            return Err("a backslash ends the field".to_owned());
        };
        match n {
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            'x' => {
                let mut value = 0u32;
                let mut digits = 0;
                while digits < 2
                    && let Some(d) = chars.peek().and_then(|c| c.to_digit(16))
                {
                    value = value * 16 + d;
                    digits += 1;
                    chars.next();
                }
                if digits == 0 {
                    out.push('x');
                } else {
                    out.push(byte_char(value)?);
                }
            }
            '0'..='7' => {
                let mut value = n.to_digit(8).unwrap_or(0);
                let mut digits = 1;
                while digits < 3
                    && let Some(d) = chars.peek().and_then(|c| c.to_digit(8))
                {
                    value = value * 8 + d;
                    digits += 1;
                    chars.next();
                }
                out.push(byte_char(value)?);
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// A byte escape; only ASCII makes valid UTF-8 on its own.
fn byte_char(value: u32) -> Result<char, String> {
    char::from_u32(value)
        .filter(|c| c.is_ascii() && value != 0)
        .ok_or_else(|| format!("escape \\x{value:02x} is not a valid UTF-8 character"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(r: &Result<Record, RecordError>) -> Vec<Option<&str>> {
        r.as_ref()
            .expect("a record")
            .fields
            .iter()
            .map(Option::as_deref)
            .collect()
    }

    #[test]
    fn csv_follows_postgres_null_and_quote_rules() {
        let mut format = InputFormat::csv();
        format.header = true;
        let data = b"a,b,c\r\n1,,\"\"\r\n\"x,\"\"y\"\"\",2,\"multi\nline\"\n3,4,5";
        let (header, records) = read(data, &format);
        assert_eq!(header, Some(vec!["a".into(), "b".into(), "c".into()]));
        assert_eq!(records.len(), 3);
        assert_eq!(fields(&records[0]), vec![Some("1"), None, Some("")]);
        assert_eq!(records[0].as_ref().expect("row").line, 2);
        assert_eq!(
            fields(&records[1]),
            vec![Some("x,\"y\""), Some("2"), Some("multi\nline")]
        );
        assert_eq!(records[2].as_ref().expect("row").line, 5);
    }

    #[test]
    fn csv_errors_name_their_line() {
        let format = InputFormat::csv();
        let (_, records) = read(b"1,2\n3,\"open\n4,5\n", &format);
        let err = records[1].as_ref().unwrap_err();
        assert_eq!((err.line, err.error.code), (2, BAD_COPY_FORMAT));

        let (_, records) = read(b"ok\nbad \xff byte\n", &format);
        let err = records[1].as_ref().unwrap_err();
        assert_eq!((err.line, err.error.code), (2, NOT_UTF8));
        assert!(err.error.message.contains("0xff"), "{}", err.error.message);
    }

    #[test]
    fn other_delimiters_and_null_strings() {
        let mut format = InputFormat::csv();
        format.delimiter = b';';
        format.null = "NULL".into();
        let (_, records) = read(b"a;NULL;\"NULL\";\n", &format);
        assert_eq!(
            fields(&records[0]),
            vec![Some("a"), None, Some("NULL"), Some("")]
        );
    }

    #[test]
    fn text_format_unescapes() {
        let format = InputFormat::text();
        let (_, records) = read(b"a\\tb\t\\N\tx\\\\y\\n\r\n\\.\nignored\n", &format);
        assert_eq!(records.len(), 1);
        assert_eq!(
            fields(&records[0]),
            vec![Some("a\tb"), None, Some("x\\y\n")]
        );
        let (_, records) = read(b"ab\\x41\\101\n", &format);
        assert_eq!(fields(&records[0]), vec![Some("abAA")]);
    }

    #[test]
    fn only_utf8_is_accepted() {
        assert!(InputFormat::check_encoding("UTF8").is_ok());
        assert!(InputFormat::check_encoding("utf-8").is_ok());
        assert_eq!(
            InputFormat::check_encoding("LATIN1").unwrap_err().code,
            "22023"
        );
        assert!(InputFormat::single_byte("delimiter", 'é').is_err());
    }
}
