//! The product behind the wire server: logins checked against the API and
//! a session of Productive tables per connection.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;

use super::{
    DATABASE, REFRESH_CUSTOM_FIELDS, SessionDefaults, is_refresh_custom_fields, new_session,
    refresh_custom_fields, refresh_custom_fields_schema,
};
use crate::api::{ApiClient, ApiConfig, ApiError};
use crate::catalog::Catalog;
use crate::error::{SqlError, codes};
use crate::secret::Secret;
use crate::server::{
    Backend, ForeignKey, Login, Routine, RoutineKind, TableComment, TableKeys, install_catalog,
    install_keys, install_routines,
};
use crate::table::TableDef;
use crate::write::procedures;

/// Where the API is and whose credentials the server holds, if any.
#[derive(Debug, Clone)]
pub struct GatewayBackend {
    /// Settings every API client starts from (base URL, limits, retries);
    /// the organization and token are filled in per login.
    api: ApiConfig,
    /// `Some`: server-held credentials used by every login.
    server_credentials: Option<(String, Secret)>,
    defaults: SessionDefaults,
}

impl GatewayBackend {
    /// `api` carries the base URL and tuning; with `server_credentials`
    /// every session uses that organization and token, without them each
    /// login brings its own (pass-through).
    pub fn new(
        api: ApiConfig,
        server_credentials: Option<(String, Secret)>,
        defaults: SessionDefaults,
    ) -> GatewayBackend {
        GatewayBackend {
            api,
            server_credentials,
            defaults,
        }
    }

    fn client(&self, organization_id: &str, token: &Secret) -> Result<ApiClient, SqlError> {
        let mut config = self.api.clone();
        config.organization_id = organization_id.to_string();
        config.token = token.clone();
        ApiClient::new(config).map_err(|e| match e {
            ApiError::Transport { message, .. } => SqlError::new(
                codes::INVALID_PASSWORD,
                format!("invalid credentials: {message}"),
            ),
            other => other.to_sql_error(),
        })
    }
}

/// Column and table comments of every table, for `\d+`.
fn comments() -> &'static [TableComment] {
    static COMMENTS: OnceLock<Vec<TableComment>> = OnceLock::new();
    COMMENTS.get_or_init(|| {
        let mut out = Vec::new();
        for table in Catalog::get().tables() {
            out.push(TableComment {
                table: table.name.to_string(),
                column: None,
                text: format!(
                    "Productive {} ({}); accepts {}",
                    table.resource.json_api_type,
                    table.endpoint(),
                    table.statements.describe()
                ),
            });
            for col in TableDef::new(table, &[]).columns {
                if let Some(text) = col.comment {
                    out.push(TableComment {
                        table: table.name.to_string(),
                        column: Some(col.name),
                        text,
                    });
                }
            }
        }
        out
    })
}

/// The procedures and functions of `pg_proc`: Productive's actions in
/// both forms, and the custom field refresh.
fn routines() -> &'static [Routine] {
    static ROUTINES: OnceLock<Vec<Routine>> = OnceLock::new();
    ROUTINES.get_or_init(|| {
        let mut out = procedures::routines();
        out.push(Routine {
            name: REFRESH_CUSTOM_FIELDS.to_owned(),
            kind: RoutineKind::Procedure,
            args: vec![],
            returns: None,
        });
        out
    })
}

/// Every table's primary key (`id`) and the foreign keys of its
/// relationship columns onto the tables that serve the related type.
fn keys() -> &'static [TableKeys] {
    static KEYS: OnceLock<Vec<TableKeys>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let catalog = Catalog::get();
        let table_of_type: std::collections::HashMap<&str, &str> = catalog
            .tables()
            .iter()
            .map(|t| (t.json_api_type(), t.name))
            .collect();
        catalog
            .tables()
            .iter()
            .map(|table| {
                let foreign_keys = table
                    .resource
                    .relationships
                    .iter()
                    .filter(|rel| rel.is_to_one() && rel.includable)
                    .filter_map(|rel| {
                        let target = table_of_type.get(rel.target_type.as_deref()?)?;
                        Some(ForeignKey {
                            column: format!("{}_id", rel.name),
                            references: (*target).to_owned(),
                            referenced_column: "id".to_owned(),
                        })
                    })
                    .collect();
                TableKeys {
                    table: table.name.to_owned(),
                    primary_key: Some("id".to_owned()),
                    foreign_keys,
                }
            })
            .collect()
    })
}

#[async_trait]
impl Backend for GatewayBackend {
    async fn check_login(&self, organization_id: &str, token: &str) -> Result<(), SqlError> {
        if organization_id.is_empty() || !organization_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SqlError::new(
                codes::INVALID_AUTHORIZATION,
                "the user name must be the Productive organization id (digits)",
            ));
        }
        let client = self.client(organization_id, &Secret::new(token))?;
        match client.check_credentials().await {
            Ok(()) => Ok(()),
            Err(ApiError::Status {
                status: 401 | 403, ..
            }) => Err(SqlError::new(
                codes::INVALID_PASSWORD,
                format!("password authentication failed for user \"{organization_id}\""),
            )),
            Err(e) => Err(SqlError::new(
                codes::UNABLE_TO_CONNECT,
                format!("could not check the login with the Productive API: {e}"),
            )),
        }
    }

    async fn new_session(&self, login: &Login) -> Result<SessionContext, SqlError> {
        let client = match (&login.credentials, &self.server_credentials) {
            (Some(pass), _) => self.client(&pass.organization_id, &pass.token)?,
            (None, Some((org, token))) => self.client(org, token)?,
            (None, None) => {
                return Err(SqlError::new(
                    codes::INVALID_AUTHORIZATION,
                    "no Productive credentials for this login",
                ));
            }
        };
        let ctx = new_session(client, &self.defaults);
        install_catalog(&ctx, DATABASE, comments())
            .and_then(|()| install_keys(&ctx, keys()))
            .and_then(|()| install_routines(&ctx, routines()))
            .map_err(|e| {
                SqlError::new(codes::INTERNAL_ERROR, format!("setting up pg_catalog: {e}"))
            })?;
        Ok(ctx)
    }

    async fn call(
        &self,
        session: &SessionContext,
        name: &str,
        args: Vec<ScalarValue>,
    ) -> Result<Option<RecordBatch>, SqlError> {
        if is_refresh_custom_fields(name) {
            return refresh_custom_fields(session, &args).await.map(Some);
        }
        procedures::call(session, name, &args).await.map(Some)
    }

    fn call_argument_types(
        &self,
        name: &str,
    ) -> Option<Vec<datafusion::arrow::datatypes::DataType>> {
        if is_refresh_custom_fields(name) {
            return Some(vec![]);
        }
        procedures::find(name).map(procedures::argument_types)
    }

    fn call_schema(&self, name: &str) -> Option<datafusion::arrow::datatypes::SchemaRef> {
        if is_refresh_custom_fields(name) {
            return Some(refresh_custom_fields_schema());
        }
        procedures::find(name).map(procedures::result_schema)
    }
}

/// A backend behind an `Arc`, as the server takes it.
pub fn shared(backend: GatewayBackend) -> Arc<dyn Backend> {
    Arc::new(backend)
}
