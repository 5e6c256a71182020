//! Errors that carry a PostgreSQL SQLSTATE.
//!
//! Any layer that knows which SQLSTATE a failure deserves returns a
//! [`SqlError`]; inside DataFusion it travels as
//! `DataFusionError::External`. The wire layer turns every error into a
//! client-visible code in one function, and `XX000` is reserved for our
//! own bugs.

use std::fmt;

/// A failure with the SQLSTATE, message, detail and hint a client sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    /// Five-character SQLSTATE, e.g. `42703`.
    pub code: &'static str,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl SqlError {
    pub fn new(code: &'static str, message: impl Into<String>) -> SqlError {
        SqlError {
            code,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> SqlError {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> SqlError {
        self.hint = Some(hint.into());
        self
    }

    /// Wraps the error for DataFusion, which carries foreign errors boxed.
    pub fn into_datafusion(self) -> datafusion::error::DataFusionError {
        datafusion::error::DataFusionError::External(Box::new(self))
    }
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SqlError {}

/// SQLSTATE codes used across the crate, named as PostgreSQL names them.
pub mod codes {
    pub const SYNTAX_ERROR: &str = "42601";
    pub const UNDEFINED_TABLE: &str = "42P01";
    pub const UNDEFINED_COLUMN: &str = "42703";
    pub const UNDEFINED_FUNCTION: &str = "42883";
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    pub const INVALID_PASSWORD: &str = "28P01";
    pub const INVALID_AUTHORIZATION: &str = "28000";
    pub const NOT_NULL_VIOLATION: &str = "23502";
    pub const CHECK_VIOLATION: &str = "23514";
    pub const INTEGRITY_CONSTRAINT_VIOLATION: &str = "23000";
    pub const FOREIGN_KEY_VIOLATION: &str = "23503";
    pub const DATA_EXCEPTION: &str = "22000";
    pub const INVALID_TEXT_REPRESENTATION: &str = "22P02";
    pub const INVALID_DATETIME_FORMAT: &str = "22007";
    pub const NUMERIC_VALUE_OUT_OF_RANGE: &str = "22003";
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    pub const NULL_VALUE_NOT_ALLOWED: &str = "22004";
    pub const QUERY_CANCELED: &str = "57014";
    pub const ADMIN_SHUTDOWN: &str = "57P01";
    pub const CONNECTION_FAILURE: &str = "08006";
    pub const UNABLE_TO_CONNECT: &str = "08001";
    pub const FDW_ERROR: &str = "HV000";
    pub const FDW_UNABLE_TO_ESTABLISH_CONNECTION: &str = "HV00N";
    pub const FDW_REPLY_HANDLE: &str = "HV00K";
    pub const FDW_INVALID_DATA_TYPE: &str = "HV004";
    pub const CONFIGURATION_LIMIT_EXCEEDED: &str = "53400";
    pub const TOO_MANY_CONNECTIONS: &str = "53300";
    pub const PROGRAM_LIMIT_EXCEEDED: &str = "54000";
    pub const STATEMENT_TOO_COMPLEX: &str = "54001";
    pub const PROTOCOL_VIOLATION: &str = "08P01";
    pub const CHARACTER_NOT_IN_REPERTOIRE: &str = "22021";
    pub const UNDEFINED_OBJECT: &str = "42704";
    pub const DUPLICATE_TABLE: &str = "42P07";
    pub const WRONG_OBJECT_TYPE: &str = "42809";
    pub const INTERNAL_ERROR: &str = "XX000";
}
