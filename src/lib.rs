//! productive-pg: a PostgreSQL wire-protocol gateway to the Productive.io API.
//!
//! - [`catalog`]: every Productive resource declared once, as data.
//! - [`error`]: errors that carry a PostgreSQL SQLSTATE.
//! - [`sim`]: a local simulator of the Productive API with a demo organization.
//! - [`server`]: the PostgreSQL wire-protocol server (logins, sessions, queries).

pub mod catalog;
pub mod error;
pub mod server;
pub mod sim;
