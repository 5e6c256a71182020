//! The one place where a failure becomes what a PostgreSQL client sees.
//!
//! Every error the wire layer can meet (DataFusion planning and execution,
//! SQL parsing, [`SqlError`]s raised by the table layer, cancellation, login
//! failures) is turned into severity, SQLSTATE, message, detail and hint by
//! [`to_error_fields`]. `XX000` is kept for failures that point at a bug in
//! this product; anything caused by the client's SQL gets a class-42 or
//! class-22 code so that drivers can react to it.
//!
//! See <https://www.postgresql.org/docs/current/errcodes-appendix.html>.

use std::error::Error as StdError;

use datafusion::arrow::error::ArrowError;
use datafusion::common::SchemaError;
use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::parser::ParserError;
use pgwire::error::{ErrorInfo, PgWireError};

use crate::error::{SqlError, codes};

/// Why a running statement was stopped before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interruption {
    /// A CancelRequest carrying this connection's key arrived.
    UserRequest,
    /// The session's `statement_timeout` elapsed.
    Timeout,
}

/// Failures of the wire layer, before they are mapped to a SQLSTATE.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A failure that already carries its SQLSTATE.
    #[error("{0}")]
    Sql(#[from] SqlError),
    /// Planning or execution failed inside DataFusion.
    #[error("{0}")]
    DataFusion(#[from] DataFusionError),
    /// The SQL text could not be parsed.
    #[error("{0}")]
    Parse(#[from] ParserError),
    /// The statement was cancelled or timed out.
    #[error("canceling statement")]
    Interrupted(Interruption),
    /// A protocol-level failure reported by pgwire.
    #[error("{0}")]
    Protocol(#[from] PgWireError),
}

/// What the client is told about a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorFields {
    /// `ERROR` or `FATAL`.
    pub severity: &'static str,
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl ErrorFields {
    fn error(code: &str, message: impl Into<String>) -> ErrorFields {
        ErrorFields {
            severity: "ERROR",
            code: code.to_owned(),
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    fn from_sql(e: &SqlError) -> ErrorFields {
        ErrorFields {
            severity: "ERROR",
            code: e.code.to_owned(),
            message: e.message.clone(),
            detail: e.detail.clone(),
            hint: e.hint.clone(),
        }
    }

    /// Converts into pgwire's error message.
    pub fn into_error_info(self) -> ErrorInfo {
        let mut info = ErrorInfo::new(self.severity.to_owned(), self.code, self.message);
        info.detail = self.detail;
        info.hint = self.hint;
        info
    }
}

/// Maps any wire-layer failure to the fields sent in an ErrorResponse.
pub fn to_error_fields(err: &ServerError) -> ErrorFields {
    match err {
        ServerError::Sql(e) => ErrorFields::from_sql(e),
        ServerError::DataFusion(e) => from_datafusion(e),
        ServerError::Parse(ParserError::RecursionLimitExceeded) => ErrorFields::error(
            codes::STATEMENT_TOO_COMPLEX,
            parser_message(&ParserError::RecursionLimitExceeded),
        ),
        ServerError::Parse(e) => ErrorFields::error(codes::SYNTAX_ERROR, parser_message(e)),
        ServerError::Interrupted(Interruption::UserRequest) => ErrorFields::error(
            codes::QUERY_CANCELED,
            "canceling statement due to user request",
        ),
        ServerError::Interrupted(Interruption::Timeout) => ErrorFields::error(
            codes::QUERY_CANCELED,
            "canceling statement due to statement timeout",
        ),
        ServerError::Protocol(e) => from_pgwire(e),
    }
}

impl From<ServerError> for PgWireError {
    fn from(err: ServerError) -> PgWireError {
        PgWireError::UserError(Box::new(to_error_fields(&err).into_error_info()))
    }
}

fn parser_message(e: &ParserError) -> String {
    match e {
        ParserError::ParserError(m) | ParserError::TokenizerError(m) => {
            format!("syntax error: {m}")
        }
        ParserError::RecursionLimitExceeded => "statement is nested too deeply".to_owned(),
    }
}

/// pgwire's own errors keep its codes, except the generic `ApiError`, which
/// may wrap one of ours.
fn from_pgwire(e: &PgWireError) -> ErrorFields {
    match e {
        PgWireError::ApiError(inner) => from_std_error(inner.as_ref())
            .unwrap_or_else(|| ErrorFields::error(codes::INTERNAL_ERROR, inner.to_string())),
        PgWireError::UserError(info) => ErrorFields {
            severity: if info.is_fatal() { "FATAL" } else { "ERROR" },
            code: info.code.clone(),
            message: info.message.clone(),
            detail: info.detail.clone(),
            hint: info.hint.clone(),
        },
        other => {
            let code = match other {
                PgWireError::FailedToParseParameter(_) => codes::INVALID_TEXT_REPRESENTATION,
                PgWireError::ParameterIndexOutOfBound(_)
                | PgWireError::InvalidRustTypeForParameter(_)
                | PgWireError::InvalidOptionValue(_) => codes::INVALID_PARAMETER_VALUE,
                PgWireError::PortalNotFound(_) | PgWireError::StatementNotFound(_) => "26000",
                PgWireError::QueryCanceled => codes::QUERY_CANCELED,
                PgWireError::IoError(_) => "58030",
                _ => "08P01",
            };
            ErrorFields::error(code, other.to_string())
        }
    }
}

/// Looks for one of the errors we know inside a boxed foreign error.
fn from_std_error(e: &(dyn StdError + 'static)) -> Option<ErrorFields> {
    if let Some(sql) = e.downcast_ref::<SqlError>() {
        return Some(ErrorFields::from_sql(sql));
    }
    if let Some(df) = e.downcast_ref::<DataFusionError>() {
        return Some(from_datafusion(df));
    }
    if let Some(arrow) = e.downcast_ref::<ArrowError>() {
        return Some(from_arrow(arrow));
    }
    if let Some(server) = e.downcast_ref::<ServerError>() {
        return Some(to_error_fields(server));
    }
    if let Some(pg) = e.downcast_ref::<PgWireError>() {
        return Some(from_pgwire(pg));
    }
    None
}

fn from_arrow(e: &ArrowError) -> ErrorFields {
    match e {
        ArrowError::ExternalError(inner) => from_std_error(inner.as_ref())
            .unwrap_or_else(|| ErrorFields::error(codes::INTERNAL_ERROR, inner.to_string())),
        ArrowError::DivideByZero => ErrorFields::error("22012", "division by zero"),
        ArrowError::ArithmeticOverflow(m) => {
            ErrorFields::error(codes::NUMERIC_VALUE_OUT_OF_RANGE, m.clone())
        }
        ArrowError::CastError(m) | ArrowError::ParseError(m) => {
            ErrorFields::error(codes::INVALID_TEXT_REPRESENTATION, m.clone())
        }
        ArrowError::ComputeError(m) | ArrowError::InvalidArgumentError(m) => {
            ErrorFields::error(codes::DATA_EXCEPTION, m.clone())
        }
        other => ErrorFields::error(codes::INTERNAL_ERROR, other.to_string()),
    }
}

fn from_datafusion(e: &DataFusionError) -> ErrorFields {
    match e {
        DataFusionError::External(inner) => from_std_error(inner.as_ref())
            .unwrap_or_else(|| ErrorFields::error(codes::INTERNAL_ERROR, inner.to_string())),
        DataFusionError::Context(_, inner) => from_datafusion(inner),
        DataFusionError::Diagnostic(_, inner) => from_datafusion(inner),
        DataFusionError::Shared(inner) => from_datafusion(inner),
        DataFusionError::Collection(errors) => match errors.first() {
            Some(first) => from_datafusion(first),
            None => ErrorFields::error(codes::INTERNAL_ERROR, "empty error collection"),
        },
        DataFusionError::ArrowError(arrow, _) => from_arrow(arrow),
        DataFusionError::SQL(parser, _) => {
            ErrorFields::error(codes::SYNTAX_ERROR, parser_message(parser))
        }
        DataFusionError::SchemaError(schema, _) => from_schema(schema),
        DataFusionError::NotImplemented(m) => {
            ErrorFields::error(codes::FEATURE_NOT_SUPPORTED, m.clone())
        }
        DataFusionError::Plan(m) => from_plan_message(m),
        DataFusionError::Configuration(m) => {
            ErrorFields::error(codes::INVALID_PARAMETER_VALUE, m.clone())
        }
        DataFusionError::ResourcesExhausted(m) => ErrorFields::error("53200", m.clone()),
        DataFusionError::Execution(m) => from_execution_message(m),
        DataFusionError::IoError(io) => ErrorFields::error("58030", io.to_string()),
        other => ErrorFields::error(codes::INTERNAL_ERROR, other.to_string()),
    }
}

fn from_schema(e: &SchemaError) -> ErrorFields {
    match e {
        SchemaError::FieldNotFound { field, .. } => ErrorFields::error(
            codes::UNDEFINED_COLUMN,
            format!("column \"{}\" does not exist", field.name),
        ),
        SchemaError::AmbiguousReference { field } => ErrorFields::error(
            "42702",
            format!("column reference \"{}\" is ambiguous", field.name),
        ),
        SchemaError::DuplicateQualifiedField { .. }
        | SchemaError::DuplicateUnqualifiedField { .. } => {
            ErrorFields::error("42701", e.to_string())
        }
        #[allow(unreachable_patterns)]
        other => ErrorFields::error(codes::INTERNAL_ERROR, other.to_string()),
    }
}

/// DataFusion reports most user mistakes as `Plan` errors that differ only by
/// their text, so the class is recovered from the wording.
fn from_plan_message(m: &str) -> ErrorFields {
    let lower = m.to_ascii_lowercase();
    let code = if lower.starts_with("table '") && lower.contains("not found")
        || lower.starts_with("table function") && lower.contains("not found")
    {
        if lower.starts_with("table function") {
            codes::UNDEFINED_FUNCTION
        } else {
            codes::UNDEFINED_TABLE
        }
    } else if lower.starts_with("invalid function") {
        codes::UNDEFINED_FUNCTION
    } else if lower.contains("no function matches")
        || lower.contains("does not support")
        || lower.contains("coercion")
        || lower.contains("cannot infer common")
        || lower.contains("cannot be cast")
        || lower.contains("failed to coerce")
        || lower.contains("type mismatch")
        || lower.contains("expected type")
    {
        "42804"
    } else if lower.contains("column '") && lower.contains("not found") {
        codes::UNDEFINED_COLUMN
    } else {
        // Unclassified plan errors still come from the client's statement
        // (DataFusion reached no execution), so they are reported as a
        // statement problem rather than as our bug.
        "42000"
    };
    let message = if code == codes::UNDEFINED_TABLE {
        relation_message(m)
    } else {
        m.to_owned()
    };
    ErrorFields::error(code, message)
}

/// Rewrites `table 'a.b.c' not found` the way PostgreSQL words it.
fn relation_message(m: &str) -> String {
    let name = m
        .split('\'')
        .nth(1)
        .map(|full| full.rsplit('.').next().unwrap_or(full).to_owned());
    match name {
        Some(name) => format!("relation \"{name}\" does not exist"),
        None => m.to_owned(),
    }
}

fn from_execution_message(m: &str) -> ErrorFields {
    let lower = m.to_ascii_lowercase();
    if lower.contains("divide by zero") || lower.contains("division by zero") {
        ErrorFields::error("22012", "division by zero")
    } else if lower.contains("overflow") {
        ErrorFields::error(codes::NUMERIC_VALUE_OUT_OF_RANGE, m.to_owned())
    } else if lower.starts_with("placeholder '") && lower.contains("not provided a value") {
        // `$n` in a statement sent without parameters (simple query).
        let name = m.split('\'').nth(1).unwrap_or("$?");
        ErrorFields::error("42P02", format!("there is no parameter {name}"))
    } else {
        ErrorFields::error(codes::INTERNAL_ERROR, m.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::common::Column;

    use super::*;

    fn code_of(e: DataFusionError) -> String {
        to_error_fields(&ServerError::DataFusion(e)).code
    }

    #[test]
    fn sql_error_keeps_its_code_through_wrappers() {
        let sql = SqlError::new(codes::FDW_ERROR, "upstream failed").with_hint("retry later");
        let wrapped = DataFusionError::Context(
            "scanning".into(),
            Box::new(DataFusionError::Shared(Arc::new(
                sql.clone().into_datafusion(),
            ))),
        );
        let fields = to_error_fields(&ServerError::DataFusion(wrapped));
        assert_eq!(fields.code, codes::FDW_ERROR);
        assert_eq!(fields.message, "upstream failed");
        assert_eq!(fields.hint.as_deref(), Some("retry later"));

        let in_arrow =
            DataFusionError::ArrowError(Box::new(ArrowError::ExternalError(Box::new(sql))), None);
        assert_eq!(code_of(in_arrow), codes::FDW_ERROR);
    }

    #[test]
    fn parser_errors_are_syntax_errors() {
        let e = ParserError::ParserError("Expected: an expression".into());
        assert_eq!(
            to_error_fields(&ServerError::Parse(e.clone())).code,
            "42601"
        );
        assert_eq!(code_of(DataFusionError::SQL(Box::new(e), None)), "42601");
        let unbound = DataFusionError::Execution(
            "Placeholder '$1' was not provided a value for execution.".into(),
        );
        let fields = to_error_fields(&ServerError::DataFusion(unbound));
        assert_eq!(
            (fields.code.as_str(), fields.message.as_str()),
            ("42P02", "there is no parameter $1")
        );
        let deep = ServerError::Parse(ParserError::RecursionLimitExceeded);
        assert_eq!(to_error_fields(&deep).code, "54001");
    }

    #[test]
    fn unknown_table_column_and_function() {
        let table = to_error_fields(&ServerError::DataFusion(DataFusionError::Plan(
            "table 'productive.public.nope' not found".into(),
        )));
        assert_eq!(table.code, "42P01");
        assert_eq!(table.message, "relation \"nope\" does not exist");

        let column = DataFusionError::SchemaError(
            Box::new(SchemaError::FieldNotFound {
                field: Box::new(Column::from_name("nope")),
                valid_fields: vec![],
            }),
            Box::new(None),
        );
        assert_eq!(code_of(column), "42703");
        assert_eq!(
            code_of(DataFusionError::Plan("Invalid function 'nope'.".into())),
            "42883"
        );
    }

    #[test]
    fn unsupported_type_and_internal() {
        assert_eq!(
            code_of(DataFusionError::NotImplemented("x".into())),
            "0A000"
        );
        assert_eq!(
            code_of(DataFusionError::Plan(
                "Cannot infer common argument type for comparison operation Utf8 = Int64".into()
            )),
            "42804"
        );
        assert_eq!(code_of(DataFusionError::Internal("bug".into())), "XX000");
        assert_eq!(code_of(DataFusionError::Execution("odd".into())), "XX000");
        assert_eq!(
            code_of(DataFusionError::ArrowError(
                Box::new(ArrowError::DivideByZero),
                None
            )),
            "22012"
        );
    }

    #[test]
    fn interruptions_are_query_canceled() {
        let user = to_error_fields(&ServerError::Interrupted(Interruption::UserRequest));
        assert_eq!(user.code, "57014");
        assert_eq!(user.message, "canceling statement due to user request");
        let timeout = to_error_fields(&ServerError::Interrupted(Interruption::Timeout));
        assert_eq!(
            timeout.message,
            "canceling statement due to statement timeout"
        );
    }
}
