//! The gateway: a DataFusion session over a Productive organization.
//!
//! [`new_session`] builds the session one client connection uses: the
//! `productive` catalog with its `public` schema of Productive tables, the
//! `productive.*` settings, and the API client carrying that connection's
//! credentials.

pub mod backend;
pub mod custom_fields;
pub mod schema;

use std::sync::Arc;

use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider};
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::api::{ApiClient, StatementRequests};
use crate::table::ProductiveOptions;
use crate::write::{WriteContext, procedures};
use schema::ProductiveSchema;

/// The database name clients connect to.
pub const DATABASE: &str = "productive";

/// The tables that can have custom fields.
pub const CUSTOMIZABLE_TABLES: [&str; 9] = [
    "bookings",
    "budgets",
    "companies",
    "deals",
    "expenses",
    "invoices",
    "people",
    "projects",
    "tasks",
];

/// Defaults a new session starts with.
#[derive(Debug, Clone, Default)]
pub struct SessionDefaults {
    pub use_custom_fields: bool,
    /// Refuse every write and procedure call.
    pub read_only: bool,
}

/// A new session over the organization `client` reaches.
pub fn new_session(client: ApiClient, defaults: &SessionDefaults) -> SessionContext {
    let mut options = ProductiveOptions::default();
    options.use_custom_fields = crate::table::options::PgBool(defaults.use_custom_fields);
    let config = SessionConfig::new()
        .with_information_schema(true)
        .with_default_catalog_and_schema(DATABASE, "public")
        .with_option_extension(options)
        .with_extension(Arc::new(
            WriteContext::new(defaults.read_only).with_client(client.clone()),
        ))
        .with_extension(Arc::new(StatementRequests::default()));
    let ctx = SessionContext::new_with_config(config);
    procedures::register_functions(&ctx, &client, defaults.read_only);
    let schema = Arc::new(ProductiveSchema::new(client, ctx.state_weak_ref()));
    let catalog = MemoryCatalogProvider::new();
    catalog
        .register_schema("public", schema)
        .expect("a new memory catalog accepts a schema");
    ctx.register_catalog(DATABASE, Arc::new(catalog));
    ctx
}
