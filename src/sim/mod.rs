//! A local simulator of the Productive API with a demo organization.
//!
//! - [`store`]: the in-memory records, as the API sends them.
//! - [`server`]: the HTTP server, its options and test hooks.
//! - [`read`] / [`mod@write`] / [`actions`]: what each kind of request does.
//! - [`query`]: filters, sort, include and paging of list requests.
//! - [`document`]: JSON:API documents, written straight into bytes.
//! - [`rules`]: the resource-specific rules the catalog cannot express.
//! - [`limits`] / [`faults`]: rate limits and injected failures.
//! - [`error`]: the JSON:API errors the simulator answers with.
//! - [`fixture`]: a small, fixed organization for tests.
//! - [`demo`]: the deterministic demo organization, scalable for benchmarks.

pub mod actions;
pub mod demo;
pub mod document;
pub mod error;
pub mod faults;
pub mod fixture;
pub mod limits;
pub mod query;
pub mod read;
pub mod rules;
pub mod server;
pub mod store;
pub mod write;

pub use faults::{FaultKind, Faults, Latency};
pub use limits::{Limit, RateLimits};
pub use server::{LoggedRequest, SimOptions, SimServer, start};
pub use write::WriteRules;
