//! The DataFusion `TableProvider` of a Productive table.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::Constraints;
use datafusion::datasource::TableType;
use datafusion::error::Result;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;

use super::exec::{ProductiveScanExec, ScanLimits, ScanRequest};
use super::options::ProductiveOptions;
use super::pushdown::{classify, push_filters};
use super::schema::TableDef;
use crate::api::request::{FilterCond, FilterExpr, MAX_PAGE_SIZE};
use crate::api::{ApiClient, ListRequest};

/// A Productive resource as a table, read through one API client.
#[derive(Debug)]
pub struct ProductiveTable {
    def: Arc<TableDef>,
    client: ApiClient,
    constraints: Constraints,
}

impl ProductiveTable {
    pub fn new(def: Arc<TableDef>, client: ApiClient) -> ProductiveTable {
        let constraints =
            Constraints::new_unverified(vec![datafusion::common::Constraint::PrimaryKey(vec![0])]);
        ProductiveTable {
            def,
            client,
            constraints,
        }
    }

    pub fn def(&self) -> &Arc<TableDef> {
        &self.def
    }

    pub fn client(&self) -> &ApiClient {
        &self.client
    }

    /// The scan plan for a projection, pushed filters and limit. Pure: it
    /// makes no request, so `EXPLAIN` can show it. It always asks the API,
    /// never the answer cache: the write path finds the rows to change
    /// with it.
    pub fn plan_scan(
        &self,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
        options: &ProductiveOptions,
    ) -> Arc<dyn ExecutionPlan> {
        self.plan_scan_cached(projection, filters, limit, options, None)
    }

    /// [`Self::plan_scan`] taking cached API answers up to `cache_ttl` old.
    fn plan_scan_cached(
        &self,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
        options: &ProductiveOptions,
        cache_ttl: Option<std::time::Duration>,
    ) -> Arc<dyn ExecutionPlan> {
        let projection: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.def.columns.len()).collect(),
        };
        let pushed = push_filters(&self.def, filters);

        // Relationship ids are hidden unless included: include exactly the
        // relationships the produced columns need.
        let mut include: Vec<String> = projection
            .iter()
            .flat_map(|&i| self.def.columns[i].includes())
            .collect();
        include.sort();
        include.dedup();

        // Only API filters and LIMIT narrow what is read: local rechecks
        // still page through the whole table.
        let unbounded = pushed.ids.is_none() && pushed.filters.is_empty() && limit.is_none();
        let limits = ScanLimits {
            max_requests: options.max_requests,
            max_scan_rows: if unbounded { options.max_scan_rows } else { 0 },
        };
        let concurrency = options.page_concurrency.clamp(1, 32) as usize;

        let request = match pushed.ids {
            Some(ids) if ids.is_empty() => {
                let schema = Arc::new(
                    self.def
                        .schema
                        .project(&projection)
                        .expect("projection comes from the schema"),
                );
                return Arc::new(EmptyExec::new(schema));
            }
            // Ids and other filters: look each id up, and let the other
            // filters be checked locally (they are re-applied by DataFusion
            // only when Inexact, so Exact ones must fold into a list query).
            Some(ids) if pushed.filters.is_empty() => {
                let ids = match limit {
                    Some(l) => ids.into_iter().take(l).collect(),
                    None => ids,
                };
                ScanRequest::Lookup { ids, include }
            }
            ids => {
                let mut req = ListRequest::new(self.def.table.endpoint());
                if let Some(fixed) = &self.def.table.fixed_filter {
                    req.filters
                        .push(FilterExpr::Cond(FilterCond::eq(fixed.name, fixed.value)));
                }
                if let Some(ids) = ids {
                    req.filters
                        .push(FilterExpr::Cond(FilterCond::any_of("id", ids)));
                }
                req.filters.extend(pushed.filters);
                req.include = include;
                if let Some(l) = limit {
                    req.page_size = (l.max(1) as u32).min(MAX_PAGE_SIZE);
                    req.limit = Some(l);
                }
                ScanRequest::List(req)
            }
        };
        Arc::new(
            ProductiveScanExec::new(
                self.def.clone(),
                self.client.clone(),
                request,
                projection,
                pushed.rechecked,
                limit,
                limits,
                concurrency,
            )
            .with_cache_ttl(cache_ttl),
        )
    }
}

/// The session's `productive.*` settings, or the defaults.
pub fn session_options(state: &dyn Session) -> ProductiveOptions {
    state
        .config_options()
        .extensions
        .get::<ProductiveOptions>()
        .cloned()
        .unwrap_or_default()
}

#[async_trait]
impl datafusion::catalog::TableProvider for ProductiveTable {
    fn schema(&self) -> SchemaRef {
        self.def.schema.clone()
    }

    fn constraints(&self) -> Option<&Constraints> {
        Some(&self.constraints)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // `id` lookups combined with an id filter the endpoint lacks would
        // need every id fetched: then only the id predicate is exact.
        let has_id_filter = self.def.table.resource.filter("id").is_some();
        let kinds: Vec<_> = filters.iter().map(|f| classify(&self.def, f)).collect();
        let has_ids = kinds
            .iter()
            .any(|k| matches!(k, super::pushdown::Pushdown::Ids(_)));
        let has_other = kinds.iter().any(|k| {
            matches!(
                k,
                super::pushdown::Pushdown::Exact(_) | super::pushdown::Pushdown::Inexact(_)
            )
        });
        Ok(kinds
            .iter()
            .map(|k| match k {
                super::pushdown::Pushdown::Ids(_) if has_other && !has_id_filter => {
                    TableProviderFilterPushDown::Inexact
                }
                super::pushdown::Pushdown::Exact(_) if has_ids && !has_id_filter => {
                    TableProviderFilterPushDown::Inexact
                }
                k => k.support(),
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let options = session_options(state);
        let ttl = options.cache_ttl.for_table(self.def.table.name);
        Ok(self.plan_scan_cached(projection, filters, limit, &options, ttl))
    }

    async fn insert_into(
        &self,
        state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        crate::write::plan_insert(self, state, input, insert_op)
    }

    async fn update(
        &self,
        state: &dyn Session,
        assignments: Vec<(String, Expr)>,
        filters: Vec<Expr>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        crate::write::plan_update(self, state, assignments, filters)
    }

    async fn delete_from(
        &self,
        state: &dyn Session,
        filters: Vec<Expr>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        crate::write::plan_delete(self, state, filters)
    }
}
