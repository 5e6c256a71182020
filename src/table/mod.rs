//! Productive resources as DataFusion tables: columns from the catalog,
//! predicate pushdown into API requests, and the streaming scan.

pub mod convert;
pub mod exec;
pub mod options;
pub mod provider;
pub mod pushdown;
pub mod schema;

pub use options::ProductiveOptions;
pub use provider::ProductiveTable;
pub use schema::TableDef;

use datafusion::prelude::SessionContext;

use crate::api::StatementRequests;

/// Starts a new statement on `ctx`: `productive.max_requests` counts the
/// API requests from here on. The server calls it for every statement;
/// callers running SQL on a session directly call it before each one.
pub fn begin_statement(ctx: &SessionContext) {
    let requests = ctx
        .state_ref()
        .read()
        .config()
        .get_extension::<StatementRequests>();
    if let Some(requests) = requests {
        requests.begin();
    }
}
