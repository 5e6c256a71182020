//! PostgreSQL's `format(formatstr, args...)`, which Metabase's field sync
//! calls to spell type names (`%s`) and to build a `regclass` name from a
//! schema and a table (`%I.%I`).
//!
//! Supported: `%s` (text, NULL as the empty string), `%I` (an identifier,
//! quoted unless plain lower case; NULL is an error), `%L` (a literal,
//! NULL as unquoted `NULL`), `%%`, explicit positions (`%2$s`) and a width
//! with an optional `-` flag (`%-10s`). A width taken from an argument
//! (`%*s`) is refused with 0A000. Arguments are spelled as DataFusion casts
//! them to text, except booleans, which read `t`/`f` as in PostgreSQL; and
//! `%I` quotes reserved words only when they are not plain lower case.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use crate::error::{SqlError, codes};

/// Registers `format` in `ctx`.
pub fn install(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::new_from_impl(Format {
        signature: Signature::variadic_any(Volatility::Stable),
    }));
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Format {
    signature: Signature,
}

impl ScalarUDFImpl for Format {
    fn name(&self) -> &str {
        "format"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let texts = args
            .args
            .iter()
            .map(|arg| as_text(&arg.to_array(rows)?))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let Some((pattern, values)) = texts.split_first() else {
            return Err(SqlError::new(
                codes::UNDEFINED_FUNCTION,
                "function format() does not exist",
            )
            .with_hint("format takes a format string and its arguments")
            .into_datafusion());
        };
        let pattern = pattern.as_string::<i32>();
        let values: Vec<_> = values.iter().map(|v| v.as_string::<i32>()).collect();
        let mut out = StringBuilder::new();
        let mut row_args = Vec::with_capacity(values.len());
        for row in 0..rows {
            if pattern.is_null(row) {
                out.append_null();
                continue;
            }
            row_args.clear();
            row_args.extend(
                values
                    .iter()
                    .map(|v| (!v.is_null(row)).then(|| v.value(row))),
            );
            out.append_value(format_one(pattern.value(row), &row_args)?);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// The argument as text; booleans as PostgreSQL prints them.
fn as_text(array: &ArrayRef) -> Result<ArrayRef> {
    if let Some(bools) = array.as_boolean_opt() {
        let text: datafusion::arrow::array::StringArray = bools
            .iter()
            .map(|b| b.map(|b| if b { "t" } else { "f" }))
            .collect();
        return Ok(Arc::new(text));
    }
    Ok(cast(array, &DataType::Utf8)?)
}

fn bad_format(message: impl Into<String>) -> datafusion::error::DataFusionError {
    SqlError::new(codes::INVALID_PARAMETER_VALUE, message).into_datafusion()
}

/// Formats one row: `pattern` with its arguments (`None` is NULL).
fn format_one(pattern: &str, args: &[Option<&str>]) -> Result<String> {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars().peekable();
    let mut next = 0usize;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            out.push('%');
            continue;
        }
        // Digits are a position when a `$` follows them, else a width.
        let mut digits = String::new();
        let mut left = false;
        let mut position = None;
        loop {
            match chars.peek() {
                Some(d) if d.is_ascii_digit() => {
                    digits.push(*d);
                    chars.next();
                }
                Some('$') if position.is_none() && !digits.is_empty() && !left => {
                    chars.next();
                    position = Some(std::mem::take(&mut digits));
                }
                Some('-') if digits.is_empty() && !left => {
                    left = true;
                    chars.next();
                }
                Some('*') => {
                    return Err(SqlError::new(
                        codes::FEATURE_NOT_SUPPORTED,
                        "format() widths taken from an argument (%*s) are not supported",
                    )
                    .into_datafusion());
                }
                _ => break,
            }
        }
        let Some(kind) = chars.next() else {
            return Err(bad_format("unterminated format() type specifier"));
        };
        let index = match position {
            Some(p) => {
                let p: usize = p
                    .parse()
                    .map_err(|_| bad_format("format() argument position is out of range"))?;
                if p == 0 {
                    return Err(bad_format(
                        "format specifies argument 0, but arguments are numbered from 1",
                    ));
                }
                p - 1
            }
            None => next,
        };
        let width: usize = if digits.is_empty() {
            0
        } else {
            digits
                .parse()
                .map_err(|_| bad_format("format() width is out of range"))?
        };
        let Some(arg) = args.get(index) else {
            return Err(bad_format("too few arguments for format()"));
        };
        next = index + 1;
        let text = match kind {
            's' => arg.unwrap_or_default().to_owned(),
            'I' => match arg {
                Some(name) => quote_ident(name),
                None => {
                    return Err(SqlError::new(
                        codes::NULL_VALUE_NOT_ALLOWED,
                        "null values cannot be formatted as an SQL identifier",
                    )
                    .into_datafusion());
                }
            },
            'L' => arg.map_or_else(|| "NULL".to_owned(), quote_literal),
            other => {
                return Err(bad_format(format!(
                    "unrecognized format() type specifier \"{other}\""
                )));
            }
        };
        let pad = width.saturating_sub(text.chars().count());
        if left {
            out.push_str(&text);
            out.extend(std::iter::repeat_n(' ', pad));
        } else {
            out.extend(std::iter::repeat_n(' ', pad));
            out.push_str(&text);
        }
    }
    Ok(out)
}

/// An identifier as `quote_ident` prints it: quoted unless plain lower case.
fn quote_ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// A string literal as `quote_literal` prints it (`E'...'` when it holds a
/// backslash).
fn quote_literal(text: &str) -> String {
    let body = text.replace('\'', "''");
    if body.contains('\\') {
        format!("E'{}'", body.replace('\\', "\\\\"))
    } else {
        format!("'{body}'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(err: datafusion::error::DataFusionError) -> String {
        crate::server::errors::to_error_fields(&crate::server::errors::ServerError::from(err)).code
    }

    #[test]
    fn formats_like_postgres() {
        let f = |p: &str, a: &[Option<&str>]| format_one(p, a).expect("formats");
        assert_eq!(f("%s", &[Some("int8")]), "int8");
        assert_eq!(
            f("%I.%I", &[Some("public"), Some("Time entries")]),
            "public.\"Time entries\""
        );
        assert_eq!(f("\"%s\".\"%s\"", &[Some("a"), Some("b")]), "\"a\".\"b\"");
        assert_eq!(f("%L, %L", &[Some("it's"), None]), "'it''s', NULL");
        assert_eq!(f("%L", &[Some("a\\b")]), "E'a\\\\b'");
        assert_eq!(f("[%s]", &[None]), "[]");
        // After an explicit position, the next argument follows it.
        assert_eq!(
            f("%2$s %1$s %s", &[Some("a"), Some("b"), Some("c")]),
            "b a b"
        );
        assert_eq!(f("|%5s|%-5s|", &[Some("ab"), Some("cd")]), "|   ab|cd   |");
        assert_eq!(f("100%%", &[]), "100%");
    }

    #[test]
    fn bad_formats_are_refused() {
        let err = |p: &str, a: &[Option<&str>]| code(format_one(p, a).expect_err(p));
        assert_eq!(err("%s %s", &[Some("a")]), "22023");
        assert_eq!(err("%x", &[Some("a")]), "22023");
        assert_eq!(err("%", &[]), "22023");
        assert_eq!(err("%0$s", &[Some("a")]), "22023");
        assert_eq!(err("%I", &[None]), "22004");
        assert_eq!(err("%*s", &[Some("3"), Some("a")]), "0A000");
    }
}
