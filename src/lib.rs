//! productive-pg: a PostgreSQL wire-protocol gateway to the Productive.io API.
//!
//! - [`app`]: the `serve` and `sim` commands, callable from tests.
//! - [`bench`]: the benchmark, measured against its targets and PostgreSQL.
//! - [`api`]: the HTTP client for the Productive API (pages, rate budget, retries).
//! - [`catalog`]: every Productive resource declared once, as data.
//! - [`error`]: errors that carry a PostgreSQL SQLSTATE.
//! - [`secret`]: a string type for tokens and passwords that never prints itself.
//! - [`gateway`]: the DataFusion session of one connection, with its tables and settings.
//! - [`sim`]: a local simulator of the Productive API with a demo organization.
//! - [`table`]: Productive resources as DataFusion tables, with pushdown and streaming scans.
//! - [`write`]: INSERT, UPDATE and DELETE through the API, and actions as procedures.
//! - [`server`]: the PostgreSQL wire-protocol server (logins, sessions, queries).
//! - [`transfer`]: CSV export and replication into SQLite or PostgreSQL.

pub mod api;
pub mod app;
pub mod bench;
pub mod catalog;
pub mod error;
pub mod gateway;
pub mod secret;
pub mod server;
pub mod sim;
pub mod table;
pub mod transfer;
pub mod write;
