//! Failures of the Productive API client and their SQLSTATEs.

use thiserror::Error;

use super::document::ErrorObject;
use crate::error::{SqlError, codes};

/// What went wrong talking to the API. Every variant names the request
/// (method and path, never the token) so a client sees which call failed.
#[derive(Debug, Error)]
pub enum ApiError {
    /// The API answered with an error status.
    #[error(
        "Productive API answered {status} to {method} {path}: {}",
        summary(errors)
    )]
    Status {
        method: String,
        path: String,
        status: u16,
        errors: Vec<ErrorObject>,
    },

    /// Still rate limited after every retry.
    #[error("Productive API rate limit still exceeded after {attempts} attempts on {path}")]
    RateLimited { path: String, attempts: u32 },

    /// The connection failed, timed out or was cut, after every retry.
    #[error("could not reach the Productive API for {method} {path}: {message}")]
    Transport {
        method: String,
        path: String,
        message: String,
    },

    /// The answer was not the JSON:API document expected.
    #[error("the Productive API sent an unreadable answer to {method} {path}: {message}")]
    Decode {
        method: String,
        path: String,
        message: String,
    },

    /// A write was sent but its outcome is unknown (the connection failed
    /// after the request left): it may or may not have been applied.
    #[error("the outcome of {method} {path} is unknown ({message}); it may have been applied")]
    OutcomeUnknown {
        method: String,
        path: String,
        message: String,
    },

    /// A write was applied (the API answered with success) but its answer
    /// could not be read, so what was written is not known here.
    #[error(
        "{method} {path} was applied (status {status}) but its answer could not be read: \
         {message}"
    )]
    UnreadableWriteAnswer {
        method: String,
        path: String,
        status: u16,
        message: String,
    },

    /// The statement used up the API requests it was allowed.
    #[error(
        "statement reached productive.max_requests ({limit} API requests): it sent {sent} \
         and needs more"
    )]
    RequestCapReached { limit: u64, sent: u64 },
}

fn summary(errors: &[ErrorObject]) -> String {
    if errors.is_empty() {
        return "no error details".into();
    }
    errors
        .iter()
        .map(ErrorObject::message)
        .collect::<Vec<_>>()
        .join("; ")
}

impl ApiError {
    /// The HTTP status, for answers that had one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// For a failed write, what is known of whether it took effect: `None`
    /// when it certainly did not.
    pub fn write_effect(&self) -> Option<&'static str> {
        match self {
            ApiError::OutcomeUnknown { .. } => Some("may have been applied"),
            ApiError::UnreadableWriteAnswer { .. } => Some("was applied"),
            _ => None,
        }
    }

    /// The SQLSTATE error a client sees for this failure.
    pub fn to_sql_error(&self) -> SqlError {
        let message = self.to_string();
        match self {
            ApiError::Status { status: 401, .. } => {
                SqlError::new(codes::INVALID_AUTHORIZATION, message)
                    .with_hint("check the Productive API token")
            }
            ApiError::Status { status: 403, .. } => {
                SqlError::new(codes::INSUFFICIENT_PRIVILEGE, message)
            }
            ApiError::Status { status: 404, .. } => SqlError::new(codes::FDW_ERROR, message),
            ApiError::Status {
                status: 422,
                errors,
                ..
            } => validation_error(errors, message),
            ApiError::Status { status: 429, .. } | ApiError::RateLimited { .. } => {
                SqlError::new(codes::FDW_UNABLE_TO_ESTABLISH_CONNECTION, message)
                    .with_hint("the Productive API rate limit was reached; try again shortly")
            }
            ApiError::Status { .. } => SqlError::new(codes::FDW_ERROR, message),
            ApiError::Transport { .. } => SqlError::new(codes::CONNECTION_FAILURE, message),
            ApiError::Decode { .. } => SqlError::new(codes::FDW_REPLY_HANDLE, message),
            ApiError::UnreadableWriteAnswer { .. } => {
                SqlError::new(codes::FDW_REPLY_HANDLE, message)
                    .with_hint("the change was made; check the record in Productive")
            }
            ApiError::OutcomeUnknown { .. } => SqlError::new(codes::CONNECTION_FAILURE, message)
                .with_hint("check the record in Productive before retrying"),
            ApiError::RequestCapReached { .. } => {
                SqlError::new(codes::CONFIGURATION_LIMIT_EXCEEDED, message).with_hint(
                    "raise it with SET productive.max_requests = <n>, or narrow the query",
                )
            }
        }
    }
}

/// A 422 names fields: blank ones are NOT NULL violations, others are
/// invalid values.
fn validation_error(errors: &[ErrorObject], message: String) -> SqlError {
    let blank = errors
        .iter()
        .any(|e| e.detail.as_deref() == Some("can't be blank"));
    let code = if blank {
        codes::NOT_NULL_VIOLATION
    } else {
        codes::CHECK_VIOLATION
    };
    let fields: Vec<&str> = errors.iter().filter_map(ErrorObject::field).collect();
    let err = SqlError::new(code, message);
    if fields.is_empty() {
        err
    } else {
        err.with_detail(format!("fields: {}", fields.join(", ")))
    }
}

impl From<ApiError> for datafusion::error::DataFusionError {
    fn from(e: ApiError) -> Self {
        e.to_sql_error().into_datafusion()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::document::ErrorSource;

    fn status(status: u16, errors: Vec<ErrorObject>) -> ApiError {
        ApiError::Status {
            method: "GET".into(),
            path: "/tasks".into(),
            status,
            errors,
        }
    }

    #[test]
    fn statuses_map_to_sqlstates() {
        assert_eq!(status(401, vec![]).to_sql_error().code, "28000");
        assert_eq!(status(403, vec![]).to_sql_error().code, "42501");
        assert_eq!(status(500, vec![]).to_sql_error().code, "HV000");
        assert_eq!(status(429, vec![]).to_sql_error().code, "HV00N");
        let t = ApiError::Transport {
            method: "GET".into(),
            path: "/x".into(),
            message: "m".into(),
        };
        assert_eq!(t.to_sql_error().code, "08006");
    }

    #[test]
    fn blank_fields_are_not_null_violations() {
        let e = ErrorObject {
            status: Some("422".into()),
            detail: Some("can't be blank".into()),
            title: Some("Invalid Attribute".into()),
            source: Some(ErrorSource {
                pointer: Some("data/attributes/title".into()),
            }),
            ..Default::default()
        };
        let sql = status(422, vec![e]).to_sql_error();
        assert_eq!(sql.code, "23502");
        assert_eq!(sql.detail.as_deref(), Some("fields: title"));
        assert!(sql.message.contains("Invalid Attribute: can't be blank"));
    }
}
