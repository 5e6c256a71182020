//! The Productive API client: JSON:API documents in and out, pagination
//! plans, the shared rate budget per token, the answer cache per credential,
//! retries and error decoding.
//! It knows nothing about SQL.

pub mod budget;
pub mod cache;
pub mod client;
pub mod document;
pub mod error;
pub mod request;
pub mod work;

pub use client::{ApiClient, ApiConfig, RequestStats, RetryPolicy, StatementRequests};
pub use error::ApiError;
pub use request::{FilterCond, FilterExpr, FilterOp, ListRequest};
