//! `pg_catalog` and `information_schema` for a session, so that psql's
//! `\dt`, `\d`, `\d+`, `\l`, `\dn`, `\du` and `\df` and JDBC metadata calls
//! work, plus comments on tables and columns.
//!
//! The catalog itself comes from datafusion-pg-catalog. It has no notion of
//! comments (its `pg_description` is a fixed export, and it lacks
//! `col_description`/`obj_description`), so comments are added here: the
//! backend registers them by table and column name, and before a statement
//! that reads descriptions runs, the names are resolved to the oids the
//! catalog assigned in this session ([`refresh_comments`]).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int32Array, RecordBatch, StringArray, StringBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type, SchemaRef};
use datafusion::catalog::view::ViewTable;
use datafusion::catalog::{SchemaProvider, Session as CatalogSession, TableProvider};
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::logical_expr::{LogicalPlanBuilder, lit};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::union::UnionExec;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_pg_catalog::pg_catalog::setup_pg_catalog;

use super::constraints::{self, KeyStore, KeyTable, KeyTableKind, KeyView, KeyViewTable};
use super::information_schema::{self, ColumnsView};
use super::routines::{self, PgProc, RoutineStore};
use super::statements::SERVER_VERSION;

/// A comment on a table (`column: None`) or on one of its columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableComment {
    pub table: String,
    pub column: Option<String>,
    pub text: String,
}

/// pg_class's own oid, the `classoid` of comments on relations.
const PG_CLASS_OID: i64 = 1259;

/// Comments of one session, by name and by resolved oid.
#[derive(Debug, Default)]
struct CommentStore {
    comments: Vec<TableComment>,
    /// (relation oid, attnum or 0) → text, valid for this session's oids.
    resolved: RwLock<HashMap<(i64, i64), String>>,
    /// (schema, relation) → oid, for `to_regclass`.
    relations: RwLock<HashMap<(String, String), i64>>,
}

impl CommentStore {
    fn lookup(&self, oid: i64, subid: i64) -> Option<String> {
        self.resolved
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(oid, subid))
            .cloned()
    }

    fn resolved_rows(&self) -> Vec<((i64, i64), String)> {
        self.resolved
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    }
}

/// Sets up `pg_catalog` and `information_schema` in `ctx`, whose default
/// catalog must be named `database`, and registers `comments` for `\d+`,
/// `col_description`, `obj_description` and `pg_description`.
///
/// # Errors
/// Fails when the catalog `database` does not exist in `ctx`.
pub fn install_catalog(
    ctx: &SessionContext,
    database: &str,
    comments: &[TableComment],
) -> Result<()> {
    {
        let state_ref = ctx.state_ref();
        let mut state = state_ref.write();
        state.config_mut().options_mut().catalog.information_schema = true;
    }
    setup_pg_catalog(ctx, database, EmptyContextProvider).map_err(|e| *e)?;

    let store = Arc::new(CommentStore {
        comments: comments.to_vec(),
        resolved: RwLock::default(),
        relations: RwLock::default(),
    });
    {
        let state_ref = ctx.state_ref();
        state_ref.write().config_mut().set_extension(store.clone());
    }

    let keys = constraints::install_store(ctx);
    // Our routine descriptions replace the constant ones.
    super::functions::install_functions(ctx);
    let routines = routines::install_store(ctx);

    let catalog = ctx
        .catalog(database)
        .ok_or_else(|| DataFusionError::Configuration(format!("catalog {database} not found")))?;
    if let Some(inner) = catalog.schema("pg_catalog") {
        let wrapped = Arc::new(PgCatalogWithComments {
            inner,
            pg_user: pg_user(ctx)?,
            database: database.to_owned(),
            store: store.clone(),
            keys,
            routines,
        });
        catalog.register_schema("pg_catalog", wrapped)?;
    }

    ctx.register_udf(ScalarUDF::new_from_impl(Describe::column(store.clone())));
    ctx.register_udf(ScalarUDF::new_from_impl(Describe::object(store.clone())));
    ctx.register_udf(ScalarUDF::new_from_impl(ToRegclass {
        signature: Signature::any(1, Volatility::Stable),
        store,
    }));
    ctx.register_udf(ScalarUDF::new_from_impl(Version::new()));
    ctx.register_udf(ScalarUDF::new_from_impl(SizePretty::new()));
    ctx.register_udf(ScalarUDF::new_from_impl(TableSize::new()));
    Ok(())
}

/// Resolves registered comments against the oids the catalog currently
/// assigns in `ctx`. Cheap when no comments are registered.
///
/// # Errors
/// Fails when the catalog tables cannot be queried.
pub async fn refresh_comments(ctx: &SessionContext) -> Result<()> {
    let Some(store) = ctx.state().config().get_extension::<CommentStore>() else {
        return Ok(());
    };
    let has_keys = ctx
        .state()
        .config()
        .get_extension::<KeyStore>()
        .is_some_and(|keys| !keys.is_empty());
    if store.comments.is_empty() && !has_keys {
        return Ok(());
    }
    // Tables only (relkind 'r'): index rows of pg_class must not shadow them.
    let batches = ctx
        .sql(
            "SELECT CAST(c.oid AS BIGINT) AS oid, c.relname, \
             CAST(a.attnum AS BIGINT) AS attnum, a.attname, \
             CAST(c.relnamespace AS BIGINT) AS relnamespace, n.nspname \
             FROM pg_catalog.pg_class c \
             LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid \
             LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind <> 'i'",
        )
        .await?
        .collect()
        .await?;
    let mut tables: HashMap<String, (i64, i64)> = HashMap::new();
    let mut columns: HashMap<(i64, String), i64> = HashMap::new();
    let mut relations: HashMap<(String, String), i64> = HashMap::new();
    for batch in &batches {
        let schemas = cast(batch.column(5), &DataType::Utf8)?;
        let schemas = schemas.as_string::<i32>();
        let oids = batch.column(0).as_primitive::<Int64Type>();
        let names = cast(batch.column(1), &DataType::Utf8)?;
        let names = names.as_string::<i32>();
        let attnums = batch.column(2).as_primitive::<Int64Type>();
        let attnames = cast(batch.column(3), &DataType::Utf8)?;
        let attnames = attnames.as_string::<i32>();
        let namespaces = batch.column(4).as_primitive::<Int64Type>();
        for row in 0..batch.num_rows() {
            if oids.is_null(row) || names.is_null(row) {
                continue;
            }
            let oid = oids.value(row);
            let namespace = if namespaces.is_null(row) {
                0
            } else {
                namespaces.value(row)
            };
            tables
                .entry(names.value(row).to_owned())
                .or_insert((oid, namespace));
            if !schemas.is_null(row) {
                relations
                    .entry((schemas.value(row).to_owned(), names.value(row).to_owned()))
                    .or_insert(oid);
            }
            if !attnums.is_null(row) && !attnames.is_null(row) {
                columns.insert((oid, attnames.value(row).to_owned()), attnums.value(row));
            }
        }
    }
    constraints::resolve_keys(ctx, &tables, &columns);
    let mut resolved = HashMap::new();
    for comment in &store.comments {
        let Some(&(oid, _)) = tables.get(&comment.table) else {
            continue;
        };
        let subid = match &comment.column {
            None => 0,
            Some(column) => match columns.get(&(oid, column.clone())) {
                Some(&attnum) => attnum,
                None => continue,
            },
        };
        resolved.insert((oid, subid), comment.text.clone());
    }
    *store.resolved.write().unwrap_or_else(|p| p.into_inner()) = resolved;
    *store.relations.write().unwrap_or_else(|p| p.into_inner()) = relations;
    Ok(())
}

/// `col_description(oid, attnum)` and `obj_description(oid[, catalog])`.
#[derive(Debug)]
struct Describe {
    name: &'static str,
    columns: bool,
    signature: Signature,
    store: Arc<CommentStore>,
}

impl PartialEq for Describe {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.store, &other.store)
    }
}

impl Eq for Describe {}

impl std::hash::Hash for Describe {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl Describe {
    fn column(store: Arc<CommentStore>) -> Describe {
        Describe {
            name: "col_description",
            columns: true,
            signature: Signature::any(2, Volatility::Stable),
            store,
        }
    }

    fn object(store: Arc<CommentStore>) -> Describe {
        Describe {
            name: "obj_description",
            columns: false,
            signature: Signature::variadic_any(Volatility::Stable),
            store,
        }
    }
}

fn to_int64(value: &ColumnarValue, rows: usize) -> Result<Arc<dyn Array>> {
    let array = value.to_array(rows)?;
    Ok(cast(&array, &DataType::Int64)?)
}

impl ScalarUDFImpl for Describe {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let Some(first) = args.args.first() else {
            return Err(DataFusionError::Plan(format!("{} needs an oid", self.name)));
        };
        let oids = to_int64(first, rows)?;
        let oids = oids.as_primitive::<Int64Type>();
        let subids = match (self.columns, args.args.get(1)) {
            (true, Some(sub)) => Some(to_int64(sub, rows)?),
            _ => None,
        };
        let mut out = StringBuilder::new();
        for row in 0..rows {
            let subid = match &subids {
                Some(s) => {
                    let s = s.as_primitive::<Int64Type>();
                    if s.is_null(row) {
                        out.append_null();
                        continue;
                    }
                    s.value(row)
                }
                None => 0,
            };
            if oids.is_null(row) {
                out.append_null();
                continue;
            }
            match self.store.lookup(oids.value(row), subid) {
                Some(text) => out.append_value(text),
                None => out.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// `to_regclass(name)`: the oid of the relation a possibly qualified,
/// possibly quoted name (`public.tasks`, `"Tasks"`) denotes, or NULL.
/// Unqualified names are looked up in `pg_catalog`, then `public`. It is
/// also what a cast of a computed name to `regclass` becomes (Metabase's
/// `CAST(FORMAT('%I.%I', schema, table) AS REGCLASS)`), except that an
/// unknown name reads NULL instead of failing. Names resolve against the
/// oids of the last catalog refresh, which runs before a statement that
/// mentions `regclass`; with neither comments nor keys registered there is
/// none, and every name reads NULL.
#[derive(Debug)]
struct ToRegclass {
    signature: Signature,
    store: Arc<CommentStore>,
}

impl PartialEq for ToRegclass {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.store, &other.store)
    }
}

impl Eq for ToRegclass {}

impl std::hash::Hash for ToRegclass {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "to_regclass".hash(state);
    }
}

/// The parts of a dotted SQL name: quoted parts as written, others lower
/// case. `None` when the name is malformed.
pub(crate) fn name_parts(name: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut chars = name.trim().chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    '"' => break,
                    c => part.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                part.extend(c.to_lowercase());
                chars.next();
            }
            part = part.trim().to_owned();
        }
        if part.is_empty() {
            return None;
        }
        parts.push(part);
        match chars.next() {
            None => return Some(parts),
            Some('.') => {}
            Some(_) => return None,
        }
    }
}

impl ToRegclass {
    fn resolve(&self, name: &str) -> Option<i32> {
        let parts = name_parts(name)?;
        let relations = self
            .store
            .relations
            .read()
            .unwrap_or_else(|p| p.into_inner());
        let find = |schema: &str, table: &str| {
            relations
                .get(&(schema.to_owned(), table.to_owned()))
                .and_then(|oid| i32::try_from(*oid).ok())
        };
        match parts.as_slice() {
            [table] => find("pg_catalog", table).or_else(|| find("public", table)),
            [schema, table] | [_, schema, table] => find(schema, table),
            _ => None,
        }
    }
}

impl ScalarUDFImpl for ToRegclass {
    fn name(&self) -> &str {
        "to_regclass"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let Some(arg) = args.args.first() else {
            return Err(DataFusionError::Plan("to_regclass needs a name".into()));
        };
        let names = cast(&arg.to_array(rows)?, &DataType::Utf8)?;
        let names = names.as_string::<i32>();
        let oids: Int32Array = (0..rows)
            .map(|row| {
                if names.is_null(row) {
                    None
                } else {
                    self.resolve(names.value(row))
                }
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(oids)))
    }
}

/// `version()` as PostgreSQL clients expect to parse it.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Version {
    signature: Signature,
}

impl Version {
    fn new() -> Version {
        Version {
            signature: Signature::nullary(Volatility::Immutable),
        }
    }

    fn text() -> String {
        format!(
            "PostgreSQL {SERVER_VERSION} (productive-pg {}) on {}-{}, \
             a gateway to the Productive API",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::ARCH,
            std::env::consts::OS,
        )
    }
}

impl ScalarUDFImpl for Version {
    fn name(&self) -> &str {
        "version"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
            Version::text(),
        ))))
    }
}

/// `pg_size_pretty(bigint)`, which psql's `\dt+` calls for the size column.
#[derive(Debug, PartialEq, Eq, Hash)]
struct SizePretty {
    signature: Signature,
}

impl SizePretty {
    fn new() -> SizePretty {
        SizePretty {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }

    /// Bytes in the largest unit that keeps at least 10 of it, as PostgreSQL
    /// prints them.
    fn render(bytes: i64) -> String {
        const UNITS: [&str; 6] = ["bytes", "kB", "MB", "GB", "TB", "PB"];
        let mut size = bytes;
        let mut unit = 0;
        while size.abs() >= 10 * 1024 && unit + 1 < UNITS.len() {
            size = (size + size.signum() * 512) / 1024;
            unit += 1;
        }
        format!("{size} {}", UNITS[unit])
    }
}

impl ScalarUDFImpl for SizePretty {
    fn name(&self) -> &str {
        "pg_size_pretty"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let Some(first) = args.args.first() else {
            return Err(DataFusionError::Plan("pg_size_pretty needs a size".into()));
        };
        let sizes = to_int64(first, rows)?;
        let sizes = sizes.as_primitive::<Int64Type>();
        let out: StringArray = (0..rows)
            .map(|i| (!sizes.is_null(i)).then(|| SizePretty::render(sizes.value(i))))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// `pg_table_size(oid)`: tables live behind an API and occupy no local
/// storage, so their size is 0.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TableSize {
    signature: Signature,
}

impl TableSize {
    fn new() -> TableSize {
        TableSize {
            signature: Signature::any(1, Volatility::Stable),
        }
    }
}

impl ScalarUDFImpl for TableSize {
    fn name(&self) -> &str {
        "pg_table_size"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::Int64(Some(0))))
    }
}

/// The view of login roles pgAdmin reads at connect.
const PG_USER: &str = "pg_user";

/// `pg_catalog.pg_user`: the one user every session runs as, named as
/// `current_user` names it, with no special rights.
fn pg_user(ctx: &SessionContext) -> Result<Arc<dyn TableProvider>> {
    let user = ctx.udf("session_user")?.call(vec![]);
    let no = || lit(false);
    let config = ScalarValue::try_from(DataType::List(Arc::new(
        datafusion::arrow::datatypes::Field::new("item", DataType::Utf8, true),
    )))?;
    let plan = LogicalPlanBuilder::empty(true)
        .project(vec![
            user.alias("usename"),
            lit(ScalarValue::Int32(Some(10))).alias("usesysid"),
            no().alias("usecreatedb"),
            no().alias("usesuper"),
            no().alias("userepl"),
            no().alias("usebypassrls"),
            lit("********").alias("passwd"),
            lit(ScalarValue::TimestampMicrosecond(None, Some("UTC".into()))).alias("valuntil"),
            lit(config).alias("useconfig"),
        ])?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// The catalog's `pg_catalog` schema with `pg_description` extended by the
/// session's comments.
#[derive(Debug)]
struct PgCatalogWithComments {
    inner: Arc<dyn SchemaProvider>,
    store: Arc<CommentStore>,
    keys: Arc<KeyStore>,
    routines: Arc<RoutineStore>,
    pg_user: Arc<dyn TableProvider>,
    database: String,
}

#[async_trait]
impl SchemaProvider for PgCatalogWithComments {
    fn table_names(&self) -> Vec<String> {
        let mut names = self.inner.table_names();
        if !names.iter().any(|n| n == PG_USER) {
            names.push(PG_USER.to_owned());
        }
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if name == PG_USER {
            return Ok(Some(self.pg_user.clone()));
        }
        if information_schema::is_columns(name) {
            return Ok(Some(Arc::new(ColumnsView::new())));
        }
        if let Some(view) = KeyView::of(name) {
            return Ok(Some(Arc::new(KeyViewTable::new(
                view,
                &self.database,
                self.keys.clone(),
            ))));
        }
        let table = self.inner.table(name).await?;
        match table {
            Some(inner) if name == "pg_description" => Ok(Some(Arc::new(PgDescription {
                inner,
                store: self.store.clone(),
            }))),
            Some(inner) if name == "pg_attribute" => Ok(Some(Arc::new(PgAttribute {
                inner,
                store: self.store.clone(),
            }))),
            Some(inner) if name == "pg_proc" => match self.inner.table("pg_namespace").await? {
                Some(namespaces) => Ok(Some(Arc::new(PgProc::new(
                    inner,
                    namespaces,
                    self.routines.clone(),
                )))),
                None => Ok(Some(inner)),
            },
            Some(inner) => match KeyTableKind::of(name) {
                Some(kind) => Ok(Some(Arc::new(KeyTable::new(
                    kind,
                    inner,
                    self.keys.clone(),
                )))),
                None => Ok(Some(inner)),
            },
            None => Ok(None),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        name == PG_USER
            || KeyView::of(name).is_some()
            || information_schema::is_columns(name)
            || self.inner.table_exist(name)
    }
}

#[derive(Debug)]
struct PgDescription {
    inner: Arc<dyn TableProvider>,
    store: Arc<CommentStore>,
}

impl PgDescription {
    /// Our comments in the shape of the exported table.
    fn comment_batch(&self) -> Result<RecordBatch> {
        let schema = self.inner.schema();
        let rows = self.store.resolved_rows();
        let mut columns: Vec<ArrayRef> = vec![];
        for field in schema.fields() {
            let array: ArrayRef = match field.name().as_str() {
                "objoid" => Arc::new(Int32Array::from_iter_values(
                    rows.iter().map(|((oid, _), _)| *oid as i32),
                )),
                "classoid" => Arc::new(Int32Array::from_iter_values(
                    rows.iter().map(|_| PG_CLASS_OID as i32),
                )),
                "objsubid" => Arc::new(Int32Array::from_iter_values(
                    rows.iter().map(|((_, sub), _)| *sub as i32),
                )),
                "description" => Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|(_, text)| text.as_str()),
                )),
                _ => datafusion::arrow::array::new_null_array(field.data_type(), rows.len()),
            };
            columns.push(cast(&array, field.data_type())?);
        }
        Ok(RecordBatch::try_new(schema, columns)?)
    }
}

#[async_trait]
impl TableProvider for PgDescription {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    async fn scan(
        &self,
        state: &dyn CatalogSession,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let exported = self.inner.scan(state, projection, &[], None).await?;
        let ours = MemorySourceConfig::try_new_exec(
            &[vec![self.comment_batch()?]],
            self.schema(),
            projection.cloned(),
        )?;
        UnionExec::try_new(vec![exported, ours])
    }
}

/// `pg_attribute` with the type of JSON columns set to `jsonb`: the
/// exported table types columns from their Arrow type alone, which is a
/// string for them (see [`super::jsonb`]).
#[derive(Debug)]
struct PgAttribute {
    inner: Arc<dyn TableProvider>,
    store: Arc<CommentStore>,
}

impl PgAttribute {
    /// `(table oid, column name)` of every JSON column of a resolved table.
    async fn json_columns(&self, state: &dyn CatalogSession) -> Result<Vec<(i64, String)>> {
        let relations = self
            .store
            .relations
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(state) = state
            .as_any()
            .downcast_ref::<datafusion::execution::SessionState>()
        else {
            return Ok(vec![]);
        };
        let list = state.catalog_list();
        let mut out = Vec::new();
        for ((schema_name, table_name), oid) in relations {
            if schema_name == "pg_catalog" || schema_name == "information_schema" {
                continue;
            }
            let Some(schema) = list
                .catalog_names()
                .iter()
                .find_map(|c| list.catalog(c)?.schema(&schema_name))
            else {
                continue;
            };
            let Some(table) = schema.table(&table_name).await? else {
                continue;
            };
            for field in table.schema().fields() {
                if super::jsonb::is_jsonb(field) {
                    out.push((oid, field.name().clone()));
                }
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl TableProvider for PgAttribute {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    async fn scan(
        &self,
        state: &dyn CatalogSession,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let json = self.json_columns(state).await?;
        let schema = self.inner.schema();
        let (Some(relid), Some(name), Some(typid)) = (
            schema.index_of("attrelid").ok(),
            schema.index_of("attname").ok(),
            schema.index_of("atttypid").ok(),
        ) else {
            return self.inner.scan(state, projection, filters, limit).await;
        };
        if json.is_empty() {
            return self.inner.scan(state, projection, filters, limit).await;
        }
        let plan = self.inner.scan(state, None, &[], None).await?;
        let batches = datafusion::physical_plan::collect(plan, state.task_ctx()).await?;
        let mut patched = Vec::with_capacity(batches.len());
        for batch in batches {
            let relids = cast(batch.column(relid), &DataType::Int64)?;
            let relids = relids.as_primitive::<Int64Type>();
            let names = cast(batch.column(name), &DataType::Utf8)?;
            let names = names.as_string::<i32>();
            let types = cast(batch.column(typid), &DataType::Int64)?;
            let types = types.as_primitive::<Int64Type>();
            let new_types: datafusion::arrow::array::Int64Array = (0..batch.num_rows())
                .map(|row| {
                    let is_json = !relids.is_null(row)
                        && !names.is_null(row)
                        && json
                            .iter()
                            .any(|(oid, col)| *oid == relids.value(row) && col == names.value(row));
                    if is_json {
                        Some(i64::from(postgres_types::Type::JSONB.oid()))
                    } else {
                        (!types.is_null(row)).then(|| types.value(row))
                    }
                })
                .collect();
            let mut columns = batch.columns().to_vec();
            columns[typid] = cast(&new_types, schema.field(typid).data_type())?;
            patched.push(RecordBatch::try_new(schema.clone(), columns)?);
        }
        Ok(MemorySourceConfig::try_new_exec(
            &[patched],
            schema,
            projection.cloned(),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::SessionConfig;

    use super::*;

    #[test]
    fn names_split_like_postgres() {
        let parts = |n: &str| name_parts(n);
        assert_eq!(
            parts("public.Tasks"),
            Some(vec!["public".to_owned(), "tasks".to_owned()])
        );
        assert_eq!(
            parts("\"My \"\"x\"\"\".\"T.a\""),
            Some(vec!["My \"x\"".to_owned(), "T.a".to_owned()])
        );
        assert_eq!(parts("a..b"), None);
        assert_eq!(parts("\"open"), None);
        assert_eq!(parts(""), None);
    }

    #[tokio::test]
    async fn comments_reach_col_description_and_pg_description() {
        let config = SessionConfig::new().with_default_catalog_and_schema("productive", "public");
        let ctx = SessionContext::new_with_config(config);
        ctx.sql("CREATE TABLE tasks (id INT, title TEXT)")
            .await
            .expect("create")
            .collect()
            .await
            .expect("create runs");
        let comments = vec![
            TableComment {
                table: "tasks".into(),
                column: None,
                text: "Work items".into(),
            },
            TableComment {
                table: "tasks".into(),
                column: Some("title".into()),
                text: "What to do".into(),
            },
        ];
        install_catalog(&ctx, "productive", &comments).expect("catalog installs");
        refresh_comments(&ctx).await.expect("refresh");

        let batches = ctx
            .sql(
                "SELECT obj_description(c.oid, 'pg_class') AS t, \
                 col_description(c.oid, 2) AS c \
                 FROM pg_catalog.pg_class c WHERE c.relname = 'tasks'",
            )
            .await
            .expect("plans")
            .collect()
            .await
            .expect("runs");
        let t = cast(batches[0].column(0), &DataType::Utf8).expect("utf8");
        let c = cast(batches[0].column(1), &DataType::Utf8).expect("utf8");
        assert_eq!(t.as_string::<i32>().value(0), "Work items");
        assert_eq!(c.as_string::<i32>().value(0), "What to do");

        let batches = ctx
            .sql(
                "SELECT description FROM pg_catalog.pg_description \
                 WHERE description = 'What to do'",
            )
            .await
            .expect("plans")
            .collect()
            .await
            .expect("runs");
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    }

    #[test]
    fn sizes_print_like_postgres() {
        assert_eq!(SizePretty::render(0), "0 bytes");
        assert_eq!(SizePretty::render(10_239), "10239 bytes");
        assert_eq!(SizePretty::render(10_240), "10 kB");
        assert_eq!(SizePretty::render(5 * 1024 * 1024 * 1024), "5120 MB");
    }

    #[tokio::test]
    async fn version_looks_like_postgres() {
        let config = SessionConfig::new().with_default_catalog_and_schema("productive", "public");
        let ctx = SessionContext::new_with_config(config);
        install_catalog(&ctx, "productive", &[]).expect("catalog installs");
        let batches = ctx
            .sql("SELECT version()")
            .await
            .expect("plans")
            .collect()
            .await
            .expect("runs");
        let v = cast(batches[0].column(0), &DataType::Utf8).expect("utf8");
        assert!(
            v.as_string::<i32>()
                .value(0)
                .starts_with("PostgreSQL 15.0 (productive-pg ")
        );
    }
}
