//! The execution plan of a Productive table scan.
//!
//! A list scan fetches page 1, learns `total_pages`, then fetches the rest
//! with bounded concurrency and yields them in order, one Arrow batch per
//! page, as they arrive: a table is never buffered whole, and dropping the
//! stream (LIMIT reached, client gone) cancels the requests in flight.
//! A lookup scan fetches records by id.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{
    Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SortOrderPushdownResult,
};
use futures::stream::{self, FuturesOrdered, Stream, StreamExt};
use serde_json::Value;

use super::convert::records_to_batch;
use super::schema::{ColumnDef, TableDef};
use crate::api::document::ResourceObject;
use crate::api::{ApiClient, ApiError, ListRequest, RequestStats, StatementRequests};
use crate::catalog::SqlType;
use crate::error::{SqlError, codes};

/// What a scan asks the API for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanRequest {
    /// Pages of a list endpoint.
    List(ListRequest),
    /// Records by id (`GET /<endpoint>/{id}` each), with these includes.
    Lookup {
        ids: Vec<String>,
        include: Vec<String>,
    },
}

/// The limits of a scan, from the session's `productive.*` settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanLimits {
    /// `productive.max_requests`: the statement's cap on API requests
    /// (0: no cap).
    pub max_requests: u64,
    /// Refuse the scan after page 1 when the table has more rows than this
    /// (0: no limit). Only set for scans without API filters or LIMIT.
    pub max_scan_rows: u64,
}

/// A scan of one Productive table.
#[derive(Debug, Clone)]
pub struct ProductiveScanExec {
    def: Arc<TableDef>,
    client: ApiClient,
    request: ScanRequest,
    /// Indices into `def.columns` of the columns produced.
    projection: Vec<usize>,
    schema: SchemaRef,
    /// Predicates DataFusion checks again, shown by EXPLAIN.
    rechecked: Vec<String>,
    /// Rows to stop after (an exact LIMIT).
    limit: Option<usize>,
    limits: ScanLimits,
    concurrency: usize,
    /// Take cached API answers up to this old (`None`: always ask).
    cache_ttl: Option<Duration>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl ProductiveScanExec {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        def: Arc<TableDef>,
        client: ApiClient,
        request: ScanRequest,
        projection: Vec<usize>,
        rechecked: Vec<String>,
        limit: Option<usize>,
        limits: ScanLimits,
        concurrency: usize,
    ) -> ProductiveScanExec {
        let schema = Arc::new(
            def.schema
                .project(&projection)
                .expect("projection indices come from the schema"),
        );
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        ProductiveScanExec {
            def,
            client,
            request,
            projection,
            schema,
            rechecked,
            limit,
            limits,
            concurrency: concurrency.max(1),
            cache_ttl: None,
            properties,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    /// The same scan reading through the answer cache with `ttl`.
    pub fn with_cache_ttl(mut self, ttl: Option<Duration>) -> ProductiveScanExec {
        self.cache_ttl = ttl;
        self
    }

    pub fn request(&self) -> &ScanRequest {
        &self.request
    }

    /// The same scan asking the API to sort by `keys`, declaring `ordering`
    /// as its output order.
    fn sorted(&self, keys: Vec<String>, ordering: Vec<PhysicalSortExpr>) -> ProductiveScanExec {
        let mut new = self.clone();
        if let ScanRequest::List(req) = &mut new.request {
            req.sort = keys;
        }
        let mut eq = EquivalenceProperties::new(self.schema.clone());
        eq.add_ordering(ordering);
        new.properties = Arc::new(PlanProperties::new(
            eq,
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        new.metrics = ExecutionPlanMetricsSet::new();
        new
    }
}

/// Column types whose order the API and SQL agree on. Text is left out:
/// the API's collation (case rules, accents) is not SQL's.
fn sort_pushable(sql: SqlType) -> bool {
    matches!(
        sql,
        SqlType::BigInt
            | SqlType::Integer
            | SqlType::Date
            | SqlType::Timestamptz
            | SqlType::Double
            | SqlType::Numeric
    )
}

impl DisplayAs for ProductiveScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "ProductiveScan: table={}, ", self.def.table.name)?;
        match &self.request {
            ScanRequest::List(req) => write!(f, "request=[{req}]")?,
            ScanRequest::Lookup { ids, include } => {
                write!(
                    f,
                    "request=[GET {}/{{id}} for id in ({})",
                    self.def.table.endpoint(),
                    ids.join(", ")
                )?;
                if !include.is_empty() {
                    write!(f, " include={}", include.join(","))?;
                }
                write!(f, "]")?;
            }
        }
        if !self.rechecked.is_empty() {
            write!(f, ", rechecked_locally=[{}]", self.rechecked.join(", "))?;
        }
        if let Some(ttl) = self.cache_ttl {
            write!(f, ", cache_ttl={}", humantime::format_duration(ttl))?;
        }
        let names: Vec<&str> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        write!(f, ", columns=[{}]", names.join(", "))
    }
}

/// Everything a running scan needs, shared by its page futures.
struct ScanContext {
    def: Arc<TableDef>,
    client: ApiClient,
    columns: Vec<ColumnDef>,
    schema: SchemaRef,
    stats: RequestStats,
    requests: Count,
    cache_hits: Count,
    pages: Count,
    rows: Count,
    /// Requests and cache hits already added to the metrics.
    counted: std::sync::Mutex<(u64, u64)>,
}

impl ScanContext {
    fn to_batch(&self, records: &[ResourceObject]) -> Result<RecordBatch> {
        let cols: Vec<&ColumnDef> = self.columns.iter().collect();
        records_to_batch(self.def.table.name, &cols, &self.schema, records)
            .map_err(SqlError::into_datafusion)
    }

    /// Drops records of the other table sharing the endpoint (a budget
    /// looked up by id through `deals`).
    fn belongs(&self, record: &ResourceObject) -> bool {
        match &self.def.table.fixed_filter {
            Some(fixed) => {
                record.attributes.get(fixed.attribute) == Some(&Value::Bool(fixed.attribute_value))
            }
            None => true,
        }
    }

    /// Brings the request and cache-hit metrics up to the scan's counters.
    /// Pages run at once, so each adds what nobody has added yet rather
    /// than what happened while it ran.
    fn count_requests(&self) {
        let mut counted = self.counted.lock().unwrap_or_else(|e| e.into_inner());
        let (requests, hits) = (self.stats.requests(), self.stats.cache_hits());
        self.requests
            .add(requests.saturating_sub(counted.0) as usize);
        self.cache_hits.add(hits.saturating_sub(counted.1) as usize);
        *counted = (counted.0.max(requests), counted.1.max(hits));
    }
}

impl ExecutionPlan for ProductiveScanExec {
    fn name(&self) -> &str {
        "ProductiveScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal(
                "a Productive scan has no children".into(),
            ))
        }
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    /// `ORDER BY` on sortable numeric and date columns is the API's `sort`:
    /// the API orders nulls as PostgreSQL does (last ascending, first
    /// descending), so only that null placement is accepted.
    fn try_pushdown_sort(
        &self,
        order: &[PhysicalSortExpr],
    ) -> Result<SortOrderPushdownResult<Arc<dyn ExecutionPlan>>> {
        let ScanRequest::List(req) = &self.request else {
            return Ok(SortOrderPushdownResult::Unsupported);
        };
        if !req.sort.is_empty() || order.is_empty() {
            return Ok(SortOrderPushdownResult::Unsupported);
        }
        let mut keys = Vec::new();
        for s in order {
            let Some(col) = s.expr.downcast_ref::<Column>() else {
                return Ok(SortOrderPushdownResult::Unsupported);
            };
            let Some(def) = self
                .projection
                .get(col.index())
                .map(|&i| &self.def.columns[i])
            else {
                return Ok(SortOrderPushdownResult::Unsupported);
            };
            let Some(key) = def
                .sort_key
                .as_ref()
                .filter(|_| sort_pushable(def.sql_type))
            else {
                return Ok(SortOrderPushdownResult::Unsupported);
            };
            if s.options.nulls_first != s.options.descending {
                return Ok(SortOrderPushdownResult::Unsupported);
            }
            keys.push(if s.options.descending {
                format!("-{key}")
            } else {
                key.clone()
            });
        }
        Ok(SortOrderPushdownResult::Exact {
            inner: Arc::new(self.sorted(keys, order.to_vec())),
        })
    }

    /// A LIMIT above the scan: fetch only the pages it needs.
    fn with_fetch(&self, limit: Option<usize>) -> Option<Arc<dyn ExecutionPlan>> {
        let ScanRequest::List(_) = &self.request else {
            return None;
        };
        let mut new = self.clone();
        new.limit = limit;
        if limit.is_some() {
            // A LIMIT bounds what the scan reads.
            new.limits.max_scan_rows = 0;
        }
        if let ScanRequest::List(req) = &mut new.request {
            req.limit = limit;
            if let Some(l) = limit {
                req.page_size = (l.max(1) as u32).min(crate::api::request::MAX_PAGE_SIZE);
            }
        }
        new.metrics = ExecutionPlanMetricsSet::new();
        Some(Arc::new(new))
    }

    fn fetch(&self) -> Option<usize> {
        self.limit
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        // Requests count against the statement the session is running; a
        // context without one (a bare DataFusion session) counts alone.
        let statement = context
            .session_config()
            .get_extension::<StatementRequests>()
            .unwrap_or_default();
        let ctx = Arc::new(ScanContext {
            def: self.def.clone(),
            client: self.client.clone(),
            columns: self
                .projection
                .iter()
                .map(|&i| self.def.columns[i].clone())
                .collect(),
            schema: self.schema.clone(),
            stats: RequestStats::for_statement(statement, self.limits.max_requests)
                .with_cache_ttl(self.cache_ttl)
                .with_max_on_the_wire(self.concurrency),
            requests: MetricBuilder::new(&self.metrics).counter("api_requests", partition),
            cache_hits: MetricBuilder::new(&self.metrics).counter("api_cache_hits", partition),
            pages: MetricBuilder::new(&self.metrics).counter("api_pages", partition),
            rows: MetricBuilder::new(&self.metrics).output_rows(partition),
            counted: Default::default(),
        });
        let stream: Pin<Box<dyn Stream<Item = Result<RecordBatch>> + Send>> = match &self.request {
            ScanRequest::List(req) => Box::pin(list_stream(
                ctx,
                req.clone(),
                self.concurrency,
                self.limit,
                self.limits.max_scan_rows,
            )),
            ScanRequest::Lookup { ids, include } => Box::pin(lookup_stream(
                ctx,
                ids.clone(),
                include.clone(),
                self.concurrency,
            )),
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            stream,
        )))
    }
}

/// A page of a list as its own task read it: the task fetches, decodes and
/// converts the page while the consumer works on earlier ones.
struct FetchedPage {
    page: u32,
    total_count: Option<u64>,
    total_pages: Option<u32>,
    /// Records in the answer, before rows of another table are dropped.
    len: usize,
    batch: Result<RecordBatch>,
}

/// The task reading one page; dropping it abandons the request.
struct PageTask(tokio::task::JoinHandle<std::result::Result<FetchedPage, ApiError>>);

impl PageTask {
    fn spawn(ctx: &Arc<ScanContext>, req: &Arc<ListRequest>, page: u32) -> PageTask {
        let ctx = ctx.clone();
        let req = req.clone();
        PageTask(tokio::spawn(async move {
            let doc = ctx.client.list_page(&req, page, &ctx.stats).await;
            ctx.count_requests();
            let doc = doc?;
            let len = doc.data.len();
            let (total_count, total_pages) = (doc.meta.total_count, doc.meta.total_pages);
            // Building rows from 200 records is milliseconds of work.
            let batch = crate::api::work::off_the_runtime(move || {
                let records: Vec<ResourceObject> =
                    doc.data.into_iter().filter(|r| ctx.belongs(r)).collect();
                ctx.to_batch(&records)
            })
            .await
            .unwrap_or_else(|| {
                Err(DataFusionError::Execution(
                    "page cancelled: shutting down".into(),
                ))
            });
            Ok(FetchedPage {
                page,
                total_count,
                total_pages,
                len,
                batch,
            })
        }))
    }
}

impl Future for PageTask {
    type Output = Result<FetchedPage>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match Pin::new(&mut self.0).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(page)) => Poll::Ready(page.map_err(Into::into)),
            Poll::Ready(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Poll::Ready(Err(e)) => Poll::Ready(Err(DataFusionError::External(Box::new(e)))),
        }
    }
}

impl Drop for PageTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

enum ListState {
    Start,
    Running(Box<Running>),
    Done,
}

/// A list scan past page 1.
struct Running {
    next: u32,
    last: u32,
    inflight: FuturesOrdered<PageTask>,
    remaining: Option<usize>,
    /// `total_count` of page 1: a later page with another total means rows
    /// were added or removed while the list was read.
    total: Option<u64>,
}

impl Running {
    /// Starts page tasks at once rather than when the consumer next asks.
    /// Twice `concurrency` run: `concurrency` requests are on the wire
    /// (the scan's counters allow no more), and as soon as one answer
    /// arrives the next request goes out while that answer is decoded.
    fn top_up(&mut self, ctx: &Arc<ScanContext>, req: &Arc<ListRequest>, concurrency: usize) {
        while self.inflight.len() < 2 * concurrency && self.next <= self.last {
            self.inflight
                .push_back(PageTask::spawn(ctx, req, self.next));
            self.next += 1;
        }
    }
}

/// Pages of a list request, in order, as batches.
fn list_stream(
    ctx: Arc<ScanContext>,
    req: ListRequest,
    concurrency: usize,
    limit: Option<usize>,
    max_scan_rows: u64,
) -> impl Stream<Item = Result<RecordBatch>> + Send {
    let req = Arc::new(req);
    stream::unfold(ListState::Start, move |state| {
        let ctx = ctx.clone();
        let req = req.clone();
        async move {
            let (fetched, mut running) = match state {
                ListState::Done => return None,
                ListState::Start => match PageTask::spawn(&ctx, &req, 1).await {
                    Err(e) => return Some((Err(e), ListState::Done)),
                    Ok(fetched) => {
                        let pages = fetched.total_pages.unwrap_or(1).max(1);
                        if let Some(err) =
                            refuse_unbounded(&ctx, fetched.total_count, pages, max_scan_rows)
                        {
                            return Some((Err(err.into_datafusion()), ListState::Done));
                        }
                        let last = match req.pages_for_limit() {
                            Some(p) => pages.min(p),
                            None => pages,
                        };
                        let running = Box::new(Running {
                            next: 2,
                            last,
                            inflight: FuturesOrdered::new(),
                            remaining: limit,
                            total: fetched.total_count,
                        });
                        (fetched, running)
                    }
                },
                ListState::Running(mut running) => {
                    running.top_up(&ctx, &req, concurrency);
                    match running.inflight.next().await {
                        None => return None,
                        Some(Err(e)) => return Some((Err(e), ListState::Done)),
                        Some(Ok(fetched)) => (fetched, running),
                    }
                }
            };
            ctx.pages.add(1);

            // Rows added or removed between page requests shift the pages:
            // fail rather than return rows twice or not at all.
            let expected = req.page_size as usize;
            let moved = running.total.is_some()
                && fetched.total_count.is_some()
                && fetched.total_count != running.total;
            let short = fetched.page < running.last
                && fetched.len < expected
                && running.remaining.is_none();
            if moved || short {
                let err = SqlError::new(
                    codes::FDW_ERROR,
                    format!(
                        "the {} list changed while it was read (page {}: {} rows of {:?} \
                         in all, page 1 said {:?})",
                        ctx.def.table.name,
                        fetched.page,
                        fetched.len,
                        fetched.total_count,
                        running.total
                    ),
                )
                .with_hint("run the statement again");
                return Some((Err(err.into_datafusion()), ListState::Done));
            }

            let mut batch = fetched.batch;
            if let (Some(rem), Ok(b)) = (running.remaining.as_mut(), batch.as_mut()) {
                if b.num_rows() > *rem {
                    *b = b.slice(0, *rem);
                }
                *rem -= b.num_rows();
            }
            let finished = running.remaining.is_some_and(|r| r == 0)
                || (running.inflight.is_empty() && running.next > running.last)
                || fetched.total_pages.is_none();
            if let Ok(b) = &batch {
                ctx.rows.add(b.num_rows());
            }
            let state = if finished || batch.is_err() {
                ListState::Done
            } else {
                running.top_up(&ctx, &req, concurrency);
                ListState::Running(running)
            };
            Some((batch, state))
        }
    })
}

/// The error for an unbounded scan of a table larger than
/// `productive.max_scan_rows`, decided on page 1 before more pages are asked
/// for; `None` when the scan may go on.
fn refuse_unbounded(
    ctx: &ScanContext,
    total_count: Option<u64>,
    pages: u32,
    max_scan_rows: u64,
) -> Option<SqlError> {
    let total = total_count?;
    if max_scan_rows == 0 || total <= max_scan_rows || pages <= 1 {
        return None;
    }
    let table = ctx.def.table.name;
    Some(
        SqlError::new(
            codes::PROGRAM_LIMIT_EXCEEDED,
            format!(
                "a scan of {table} without filters would read {total} rows, more than \
                 productive.max_scan_rows ({max_scan_rows})"
            ),
        )
        .with_hint(
            "add a WHERE condition or LIMIT the API can apply, or read the whole table \
             with SET productive.max_scan_rows = 0",
        ),
    )
}

/// Records by id, in the order given; ids that do not exist are skipped.
fn lookup_stream(
    ctx: Arc<ScanContext>,
    ids: Vec<String>,
    include: Vec<String>,
    concurrency: usize,
) -> impl Stream<Item = Result<RecordBatch>> + Send {
    let endpoint = ctx.def.table.endpoint().to_string();
    let include = Arc::new(include);
    stream::iter(ids)
        .map(move |id| {
            let ctx = ctx.clone();
            let include = include.clone();
            let endpoint = endpoint.clone();
            async move {
                let doc = ctx
                    .client
                    .get_one(&endpoint, &id, &include, &ctx.stats)
                    .await;
                ctx.count_requests();
                ctx.pages.add(1);
                let records: Vec<ResourceObject> = match doc? {
                    Some(doc) if ctx.belongs(&doc.data) => vec![doc.data],
                    _ => vec![],
                };
                ctx.rows.add(records.len());
                ctx.to_batch(&records)
            }
        })
        .buffered(concurrency)
}
