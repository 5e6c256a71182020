//! The `public` schema: one table per Productive resource.
//!
//! Tables are built per lookup so the session's `productive.use_custom_fields`
//! setting decides, at planning time, whether custom-field columns appear.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Weak};

use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SessionState;
use parking_lot::RwLock;

use super::custom_fields::DefinitionCache;
use crate::api::ApiClient;
use crate::catalog::Catalog;
use crate::table::{ProductiveOptions, ProductiveTable, TableDef};

/// The schema of one session.
#[derive(Debug)]
pub struct ProductiveSchema {
    client: ApiClient,
    /// The session whose settings apply; weak, since the session owns us.
    state: Weak<RwLock<SessionState>>,
    plain: BTreeMap<&'static str, Arc<ProductiveTable>>,
    definitions: Arc<DefinitionCache>,
    /// Tables the session created itself (`CREATE TABLE … AS`), kept in
    /// memory for the life of the session.
    scratch: RwLock<BTreeMap<String, Arc<dyn TableProvider>>>,
}

impl ProductiveSchema {
    pub fn new(client: ApiClient, state: Weak<RwLock<SessionState>>) -> ProductiveSchema {
        let plain = Catalog::get()
            .tables()
            .iter()
            .map(|t| {
                (
                    t.name,
                    Arc::new(ProductiveTable::new(
                        Arc::new(TableDef::new(t, &[])),
                        client.clone(),
                    )),
                )
            })
            .collect();
        let definitions = DefinitionCache::for_client(&client);
        ProductiveSchema {
            client,
            state,
            plain,
            definitions,
            scratch: Default::default(),
        }
    }

    fn use_custom_fields(&self) -> bool {
        self.state.upgrade().is_some_and(|s| {
            s.read()
                .config_options()
                .extensions
                .get::<ProductiveOptions>()
                .is_some_and(|o| o.use_custom_fields.0)
        })
    }

    /// The column names of table `name` without custom fields, which a
    /// custom field's column never shadows.
    fn taken(&self, name: &str) -> HashSet<String> {
        self.plain
            .get(name)
            .map(|t| t.def().columns.iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default()
    }

    /// Fetches the custom field definitions anew, for this session and
    /// every other one using the same credentials, and returns how many
    /// custom-field columns the tables now have.
    ///
    /// # Errors
    /// The API's error when the definitions cannot be fetched.
    pub async fn refresh_custom_fields(&self) -> Result<usize, crate::api::ApiError> {
        self.definitions.refresh().await;
        let columns = self
            .definitions
            .columns(&self.client, &|table: &str| self.taken(table))
            .await?;
        Ok(columns.values().map(Vec::len).sum())
    }
}

#[async_trait]
impl SchemaProvider for ProductiveSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.plain.keys().map(|s| s.to_string()).collect();
        names.extend(self.scratch.read().keys().cloned());
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some(plain) = self.plain.get(name) else {
            return Ok(self.scratch.read().get(name).cloned());
        };
        if !self.use_custom_fields() || !super::CUSTOMIZABLE_TABLES.contains(&name) {
            return Ok(Some(plain.clone()));
        }
        let columns = self
            .definitions
            .columns(&self.client, &|table: &str| self.taken(table))
            .await
            .map_err(DataFusionError::from)?;
        let fields = columns.get(name).cloned().unwrap_or_default();
        let def = TableDef::new(plain.def().table, &fields);
        Ok(Some(Arc::new(ProductiveTable::new(
            Arc::new(def),
            self.client.clone(),
        ))))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.plain.contains_key(name) || self.scratch.read().contains_key(name)
    }

    fn register_table(
        &self,
        name: String,
        table: Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        if self.plain.contains_key(name.as_str()) {
            return Err(crate::error::SqlError::new(
                crate::error::codes::DUPLICATE_TABLE,
                format!("relation \"{name}\" already exists: it is a Productive table"),
            )
            .into_datafusion());
        }
        Ok(self.scratch.write().insert(name, table))
    }

    fn deregister_table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if self.plain.contains_key(name) {
            return Err(crate::error::SqlError::new(
                crate::error::codes::INSUFFICIENT_PRIVILEGE,
                format!("cannot drop \"{name}\": it is a Productive table"),
            )
            .into_datafusion());
        }
        Ok(self.scratch.write().remove(name))
    }
}
