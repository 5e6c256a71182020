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

use datafusion::arrow::array::{Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::scalar::ScalarValue;

use crate::api::{ApiClient, StatementRequests};
use crate::error::{SqlError, codes};
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
    /// Default of `productive.cache_ttl` (`None`: no answer cache).
    pub cache_ttl: Option<std::time::Duration>,
}

/// A new session over the organization `client` reaches.
pub fn new_session(client: ApiClient, defaults: &SessionDefaults) -> SessionContext {
    let mut options = ProductiveOptions::default();
    options.use_custom_fields = crate::table::options::PgBool(defaults.use_custom_fields);
    options.cache_ttl.default = defaults.cache_ttl.filter(|d| !d.is_zero());
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

/// The procedure that fetches custom field definitions anew:
/// `CALL productive_refresh_custom_fields()`. Definitions are otherwise
/// fetched once and kept for the life of the server.
pub const REFRESH_CUSTOM_FIELDS: &str = "productive_refresh_custom_fields";

/// Whether `name` (maybe schema-qualified or quoted) is
/// [`REFRESH_CUSTOM_FIELDS`].
pub fn is_refresh_custom_fields(name: &str) -> bool {
    let name = name.rsplit('.').next().unwrap_or(name).trim_matches('"');
    name.eq_ignore_ascii_case(REFRESH_CUSTOM_FIELDS)
}

/// The row [`REFRESH_CUSTOM_FIELDS`] answers with: how many custom-field
/// columns the tables have after the refresh.
pub fn refresh_custom_fields_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "custom_field_columns",
        DataType::Int64,
        false,
    )]))
}

/// Runs [`REFRESH_CUSTOM_FIELDS`] in a session.
///
/// # Errors
/// 42883 when arguments are given, the API's error when the definitions
/// cannot be fetched.
pub async fn refresh_custom_fields(
    ctx: &SessionContext,
    args: &[ScalarValue],
) -> Result<RecordBatch, SqlError> {
    if !args.is_empty() {
        return Err(SqlError::new(
            codes::UNDEFINED_FUNCTION,
            format!(
                "procedure {REFRESH_CUSTOM_FIELDS}() takes no arguments, {} given",
                args.len()
            ),
        ));
    }
    let schema = ctx
        .catalog(DATABASE)
        .and_then(|c| c.schema("public"))
        .ok_or_else(|| SqlError::new(codes::INTERNAL_ERROR, "the session has no tables"))?;
    let schema = schema
        .downcast_ref::<ProductiveSchema>()
        .ok_or_else(|| SqlError::new(codes::INTERNAL_ERROR, "the session has no tables"))?;
    let count = schema
        .refresh_custom_fields()
        .await
        .map_err(|e| e.to_sql_error())?;
    RecordBatch::try_new(
        refresh_custom_fields_schema(),
        vec![Arc::new(Int64Array::from(vec![count as i64]))],
    )
    .map_err(|e| SqlError::new(codes::INTERNAL_ERROR, e.to_string()))
}
