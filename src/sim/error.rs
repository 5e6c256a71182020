//! Errors the simulator answers with, as JSON:API error documents.
//!
//! Every client-visible status, code, title and detail is decided in
//! [`ApiError::to_objects`], so the codes of the real API (fact sheet §9)
//! live in one place. Codes the real API was never seen to send
//! (`unsupported_media_type`, `method_not_allowed`, `rate_limited`,
//! `route_not_found`, `bad_request`) are our own choice.

use serde_json::{Value, json};

/// One failed field of a write: a `422 invalid_attribute` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The attribute or relationship name used in the `source.pointer`
    /// (`data/attributes/<field>`).
    pub field: String,
    /// What is wrong, e.g. `can't be blank`.
    pub detail: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, detail: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            detail: detail.into(),
        }
    }

    /// The Rails-style presence failure.
    pub fn blank(field: impl Into<String>) -> FieldError {
        FieldError::new(field, "can't be blank")
    }
}

/// A request the simulator refuses, with the HTTP status it maps to.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error("invalid auth token")]
    InvalidAuthToken,
    #[error("missing or foreign organization id")]
    NoOrganizationId,
    #[error("unsupported media type {0:?}")]
    UnsupportedMediaType(String),
    #[error("no route for {0}")]
    RouteNotFound(String),
    #[error("record not found")]
    RecordNotFound,
    #[error("method {0} not allowed here")]
    MethodNotAllowed(String),
    #[error("unsupported filter {0}")]
    UnsupportedFilter(String),
    #[error("unsupported operation {op} on filter {filter}")]
    UnsupportedFilterOperation { filter: String, op: String },
    #[error("unsupported sort {0}")]
    UnsupportedSort(String),
    #[error("unsupported include {0}")]
    UnsupportedInclude(String),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("invalid attributes")]
    Invalid(Vec<FieldError>),
    #[error("rate limited, retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("simulated server error {0}")]
    Server(u16),
}

impl ApiError {
    /// The HTTP status of the answer.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::InvalidAuthToken => 401,
            ApiError::NoOrganizationId => 403,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::RouteNotFound(_) | ApiError::RecordNotFound => 404,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::UnsupportedFilter(_)
            | ApiError::UnsupportedFilterOperation { .. }
            | ApiError::UnsupportedSort(_)
            | ApiError::UnsupportedInclude(_)
            | ApiError::BadRequest(_) => 400,
            ApiError::Invalid(_) => 422,
            ApiError::RateLimited { .. } => 429,
            ApiError::Server(status) => *status,
        }
    }

    /// The entries of the `errors` array.
    pub fn to_objects(&self) -> Vec<Value> {
        let status = self.status();
        let one = |code: &str, title: &str, detail: String| {
            vec![error_object(status, code, title, &detail, None)]
        };
        match self {
            ApiError::InvalidAuthToken => one(
                "invalid_auth_token",
                "Invalid Auth Token",
                "The provided auth token is invalid".into(),
            ),
            ApiError::NoOrganizationId => one(
                "no_organization_id",
                "No Organization Id",
                "X-Organization-Id header has to be provided".into(),
            ),
            ApiError::UnsupportedMediaType(got) => one(
                "unsupported_media_type",
                "Unsupported Media Type",
                format!("Content-Type must be application/vnd.api+json, got '{got}'"),
            ),
            ApiError::RouteNotFound(path) => one(
                "route_not_found",
                "Not Found",
                format!("No route matches '{path}'"),
            ),
            ApiError::RecordNotFound => one(
                "record_not_found",
                "Record Not Found",
                "The requested record was not found".into(),
            ),
            ApiError::MethodNotAllowed(method) => one(
                "method_not_allowed",
                "Method Not Allowed",
                format!("{method} is not allowed on this endpoint"),
            ),
            ApiError::UnsupportedFilter(name) => one(
                "unsupported_filter",
                "Unsupported Filter",
                format!("Filter '{name}' is not supported on this endpoint"),
            ),
            ApiError::UnsupportedFilterOperation { filter, op } => one(
                "unsupported_filter_operation",
                "Unsupported Filter Operation",
                format!("Operation '{op}' is not supported on filter '{filter}'"),
            ),
            ApiError::UnsupportedSort(key) => one(
                "sort_param_unsupported",
                "Unsupported Sort",
                format!("Sort by '{key}' is not supported on this endpoint"),
            ),
            ApiError::UnsupportedInclude(name) => one(
                "unsupported_include",
                "Unsupported Include",
                format!("Include '{name}' is not supported on this endpoint"),
            ),
            ApiError::BadRequest(detail) => one("bad_request", "Bad Request", detail.clone()),
            ApiError::Invalid(fields) => fields
                .iter()
                .map(|f| {
                    let pointer = format!("data/attributes/{}", f.field);
                    error_object(
                        status,
                        "invalid_attribute",
                        "Invalid Attribute",
                        &f.detail,
                        Some(&pointer),
                    )
                })
                .collect(),
            ApiError::RateLimited { .. } => one(
                "rate_limited",
                "Too Many Requests",
                "Rate limit exceeded, retry later".into(),
            ),
            ApiError::Server(_) => one(
                "internal_server_error",
                "Internal Server Error",
                "Something went wrong".into(),
            ),
        }
    }

    /// The whole error document, serialized.
    pub fn to_body(&self) -> Vec<u8> {
        serde_json::to_vec(&json!({ "errors": self.to_objects() }))
            .expect("an error document always serializes")
    }
}

fn error_object(
    status: u16,
    code: &str,
    title: &str,
    detail: &str,
    pointer: Option<&str>,
) -> Value {
    let source = match pointer {
        Some(p) => json!({ "pointer": p }),
        None => json!({}),
    };
    // Real responses write the status as a string (fact sheet §15 item 7).
    json!({
        "status": status.to_string(),
        "code": code,
        "title": title,
        "detail": detail,
        "meta": {},
        "source": source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_matches_the_recorded_body() {
        let body = String::from_utf8(ApiError::RecordNotFound.to_body()).unwrap();
        assert_eq!(
            body,
            concat!(
                r#"{"errors":[{"status":"404","code":"record_not_found","#,
                r#""title":"Record Not Found","detail":"The requested record was not found","#,
                r#""meta":{},"source":{}}]}"#
            )
        );
    }

    #[test]
    fn invalid_lists_one_entry_per_field_with_pointer() {
        let err = ApiError::Invalid(vec![
            FieldError::blank("title"),
            FieldError::blank("project"),
        ]);
        let objects = err.to_objects();
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[1]["source"]["pointer"], "data/attributes/project");
        assert_eq!(objects[0]["status"], "422");
    }
}
