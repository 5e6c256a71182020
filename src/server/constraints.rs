//! Primary keys, foreign keys and their indexes in `pg_catalog`, so that
//! tools which draw relationships (psql's `\d`, JDBC `getImportedKeys`,
//! SQLAlchemy, Metabase, DBeaver) see `tasks.project_id → projects.id`.
//!
//! The exported `pg_constraint` and `pg_index` of datafusion-pg-catalog
//! describe PostgreSQL's own system tables, which no client of ours asks
//! about, and store key columns as text. They are replaced here by tables
//! holding only our keys, with key columns as `smallint[]` like PostgreSQL.
//! `pg_class` keeps its rows, marks keyed tables with `relhasindex` and
//! `relhastriggers` (psql prints the index and foreign-key footers only
//! then), and gains one `relkind = 'i'` row per primary-key index.
//!
//! Keys are registered by table and column name ([`install_keys`]); the
//! oids and attribute numbers are those the catalog assigned in the
//! session, resolved by [`resolve_keys`] before a statement that reads the
//! catalog, the same way comments are.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::catalog::{Session as CatalogSession, TableProvider};
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;

/// A foreign key of one column onto another table's column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    /// The referencing column, in the table the key belongs to.
    pub column: String,
    /// The referenced table.
    pub references: String,
    /// The referenced column, usually the table's primary key.
    pub referenced_column: String,
}

/// The keys of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableKeys {
    pub table: String,
    /// The single primary-key column, if the table has one.
    pub primary_key: Option<String>,
    pub foreign_keys: Vec<ForeignKey>,
}

/// Where synthetic oids start: far above what the catalog hands out for
/// tables, so index and constraint oids never collide with relations.
const INDEX_OID_BASE: i64 = 1_000_000_000;
const CONSTRAINT_OID_BASE: i64 = 1_500_000_000;
/// `pg_am` oid of btree, the access method of every primary-key index.
const BTREE_AM_OID: i64 = 403;

/// One primary or foreign key resolved to this session's oids.
#[derive(Debug, Clone)]
struct ResolvedKey {
    oid: i64,
    name: String,
    /// 'p' or 'f'.
    kind: &'static str,
    namespace: i64,
    table: i64,
    attnum: i64,
    /// The index backing a primary key; for a foreign key, the referenced
    /// table's primary-key index.
    index: i64,
    referenced_table: i64,
    referenced_attnum: i64,
    definition: String,
}

/// A primary-key index resolved to this session's oids.
#[derive(Debug, Clone)]
struct ResolvedIndex {
    oid: i64,
    name: String,
    namespace: i64,
    table: i64,
    attnum: i64,
    definition: String,
}

#[derive(Debug, Default)]
struct Resolved {
    keys: Vec<ResolvedKey>,
    indexes: Vec<ResolvedIndex>,
}

/// The keys of one session, by name and resolved.
#[derive(Debug, Default)]
pub(crate) struct KeyStore {
    keys: RwLock<Vec<TableKeys>>,
    resolved: RwLock<Resolved>,
}

impl KeyStore {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Resolved> {
        self.resolved.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }
}

/// Registers the tables' keys for `pg_constraint`, `pg_index`, `pg_class`,
/// `pg_get_constraintdef` and `pg_get_indexdef`. Call after
/// [`super::catalog::install_catalog`], which sets up the store.
///
/// # Errors
/// Fails when the catalog was not installed in `ctx`.
pub fn install_keys(ctx: &SessionContext, keys: &[TableKeys]) -> Result<()> {
    let store = ctx
        .state()
        .config()
        .get_extension::<KeyStore>()
        .ok_or_else(|| DataFusionError::Configuration("pg_catalog is not installed".into()))?;
    *store.keys.write().unwrap_or_else(|p| p.into_inner()) = keys.to_vec();
    Ok(())
}

/// Sets up an empty key store and the definition functions in `ctx`.
pub(crate) fn install_store(ctx: &SessionContext) -> Arc<KeyStore> {
    let store = Arc::new(KeyStore::default());
    ctx.state_ref()
        .write()
        .config_mut()
        .set_extension(store.clone());
    ctx.register_udf(ScalarUDF::new_from_impl(Definition::constraint(
        store.clone(),
    )));
    ctx.register_udf(ScalarUDF::new_from_impl(Definition::index(store.clone())));
    store
}

/// Resolves the registered keys against the session's current oids.
/// `tables` maps relation names to (oid, namespace oid); `columns` maps
/// (relation oid, column name) to attribute numbers.
pub(crate) fn resolve_keys(
    ctx: &SessionContext,
    tables: &HashMap<String, (i64, i64)>,
    columns: &HashMap<(i64, String), i64>,
) {
    let Some(store) = ctx.state().config().get_extension::<KeyStore>() else {
        return;
    };
    let keys = store.keys.read().unwrap_or_else(|p| p.into_inner()).clone();
    let mut resolved = Resolved::default();
    let mut pk_index: HashMap<i64, i64> = HashMap::new();

    // Primary keys first: foreign keys name the referenced table's index.
    for table in &keys {
        let (Some(&(oid, namespace)), Some(pk)) = (tables.get(&table.table), &table.primary_key)
        else {
            continue;
        };
        let Some(&attnum) = columns.get(&(oid, pk.clone())) else {
            continue;
        };
        let index = INDEX_OID_BASE + oid;
        let name = format!("{}_pkey", table.table);
        pk_index.insert(oid, index);
        resolved.indexes.push(ResolvedIndex {
            oid: index,
            name: name.clone(),
            namespace,
            table: oid,
            attnum,
            definition: format!(
                "CREATE UNIQUE INDEX {name} ON public.{} USING btree ({pk})",
                table.table
            ),
        });
        resolved.keys.push(ResolvedKey {
            oid: CONSTRAINT_OID_BASE + resolved.keys.len() as i64,
            name,
            kind: "p",
            namespace,
            table: oid,
            attnum,
            index,
            referenced_table: 0,
            referenced_attnum: 0,
            definition: format!("PRIMARY KEY ({pk})"),
        });
    }
    for table in &keys {
        let Some(&(oid, namespace)) = tables.get(&table.table) else {
            continue;
        };
        for fk in &table.foreign_keys {
            let (Some(&attnum), Some(&(target, _))) = (
                columns.get(&(oid, fk.column.clone())),
                tables.get(&fk.references),
            ) else {
                continue;
            };
            let Some(&referenced_attnum) = columns.get(&(target, fk.referenced_column.clone()))
            else {
                continue;
            };
            resolved.keys.push(ResolvedKey {
                oid: CONSTRAINT_OID_BASE + resolved.keys.len() as i64,
                name: format!("{}_{}_fkey", table.table, fk.column),
                kind: "f",
                namespace,
                table: oid,
                attnum,
                index: pk_index.get(&target).copied().unwrap_or(0),
                referenced_table: target,
                referenced_attnum,
                definition: format!(
                    "FOREIGN KEY ({}) REFERENCES {}({})",
                    fk.column, fk.references, fk.referenced_column
                ),
            });
        }
    }
    *store.resolved.write().unwrap_or_else(|p| p.into_inner()) = resolved;
}

/// A `smallint[]` value of one attribute number.
fn attnums(values: &[i64]) -> ScalarValue {
    let items: Vec<ScalarValue> = values
        .iter()
        .map(|v| ScalarValue::Int16(Some(*v as i16)))
        .collect();
    ScalarValue::List(ScalarValue::new_list_nullable(&items, &DataType::Int16))
}

fn int2_array_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Int16, true)))
}

fn int(v: i64) -> ScalarValue {
    ScalarValue::Int64(Some(v))
}

fn text(v: &str) -> ScalarValue {
    ScalarValue::Utf8(Some(v.to_owned()))
}

fn flag(v: bool) -> ScalarValue {
    ScalarValue::Boolean(Some(v))
}

/// Builds a batch of `schema` from rows given by column name; columns a
/// row leaves out are NULL, or the type's default where NULL is not allowed.
pub(crate) fn rows_batch(
    schema: &SchemaRef,
    rows: &[HashMap<&str, ScalarValue>],
) -> Result<RecordBatch> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let fallback = if field.is_nullable() {
            ScalarValue::try_from(field.data_type())?
        } else {
            ScalarValue::new_default(field.data_type())?
        };
        let values: Vec<ScalarValue> = rows
            .iter()
            .map(|row| {
                row.get(field.name().as_str())
                    .cloned()
                    .unwrap_or(fallback.clone())
            })
            .collect();
        let array = if values.is_empty() {
            datafusion::arrow::array::new_empty_array(field.data_type())
        } else {
            ScalarValue::iter_to_array(values)?
        };
        columns.push(cast(&array, field.data_type())?);
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// The exported schema with some columns' types replaced.
fn retyped(schema: &SchemaRef, types: &[(&str, DataType)]) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match types.iter().find(|(name, _)| name == f.name()) {
            Some((_, t)) => Field::new(f.name(), t.clone(), true),
            None => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// pg_class with a `reloptions` column (`text[]`, always NULL here: no
/// storage options), which SQLAlchemy's index reflection reads and the
/// exported pg_class lacks.
fn with_reloptions(schema: &SchemaRef) -> SchemaRef {
    if schema.field_with_name("reloptions").is_ok() {
        return schema.clone();
    }
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(
        "reloptions",
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        true,
    ));
    Arc::new(Schema::new(fields))
}

/// Which catalog table a [`KeyTable`] stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyTableKind {
    Constraint,
    Index,
    Class,
}

impl KeyTableKind {
    /// The kind of the `pg_catalog` table `name`, if it is one we extend.
    pub(crate) fn of(name: &str) -> Option<KeyTableKind> {
        match name {
            "pg_constraint" => Some(KeyTableKind::Constraint),
            "pg_index" => Some(KeyTableKind::Index),
            "pg_class" => Some(KeyTableKind::Class),
            _ => None,
        }
    }
}

/// `pg_constraint`, `pg_index` or `pg_class` with the session's keys.
#[derive(Debug)]
pub(crate) struct KeyTable {
    kind: KeyTableKind,
    inner: Arc<dyn TableProvider>,
    schema: SchemaRef,
    store: Arc<KeyStore>,
}

impl KeyTable {
    pub(crate) fn new(
        kind: KeyTableKind,
        inner: Arc<dyn TableProvider>,
        store: Arc<KeyStore>,
    ) -> KeyTable {
        let list = int2_array_type();
        let schema = match kind {
            KeyTableKind::Constraint => retyped(
                &inner.schema(),
                &[("conkey", list.clone()), ("confkey", list)],
            ),
            KeyTableKind::Index => retyped(&inner.schema(), &[("indkey", list)]),
            KeyTableKind::Class => with_reloptions(&inner.schema()),
        };
        KeyTable {
            kind,
            inner,
            schema,
            store,
        }
    }

    fn constraint_rows(&self) -> Vec<HashMap<&'static str, ScalarValue>> {
        let resolved = self.store.read();
        resolved
            .keys
            .iter()
            .map(|k| {
                let foreign = k.kind == "f";
                let mut row = HashMap::from([
                    ("oid", int(k.oid)),
                    ("conname", text(&k.name)),
                    ("connamespace", int(k.namespace)),
                    ("contype", text(k.kind)),
                    ("condeferrable", flag(false)),
                    ("condeferred", flag(false)),
                    ("convalidated", flag(true)),
                    ("conrelid", int(k.table)),
                    ("contypid", int(0)),
                    ("conindid", int(k.index)),
                    ("conparentid", int(0)),
                    ("confrelid", int(k.referenced_table)),
                    ("conislocal", flag(true)),
                    ("coninhcount", int(0)),
                    ("connoinherit", flag(true)),
                    ("conkey", attnums(&[k.attnum])),
                ]);
                if foreign {
                    row.insert("confupdtype", text("a"));
                    row.insert("confdeltype", text("a"));
                    row.insert("confmatchtype", text("s"));
                    row.insert("confkey", attnums(&[k.referenced_attnum]));
                } else {
                    row.insert("confupdtype", text(" "));
                    row.insert("confdeltype", text(" "));
                    row.insert("confmatchtype", text(" "));
                }
                row
            })
            .collect()
    }

    fn index_rows(&self) -> Vec<HashMap<&'static str, ScalarValue>> {
        let resolved = self.store.read();
        resolved
            .indexes
            .iter()
            .map(|i| {
                HashMap::from([
                    ("indexrelid", int(i.oid)),
                    ("indrelid", int(i.table)),
                    ("indnatts", int(1)),
                    ("indnkeyatts", int(1)),
                    ("indisunique", flag(true)),
                    ("indnullsnotdistinct", flag(false)),
                    ("indisprimary", flag(true)),
                    ("indisexclusion", flag(false)),
                    ("indimmediate", flag(true)),
                    ("indisclustered", flag(false)),
                    ("indisvalid", flag(true)),
                    ("indcheckxmin", flag(false)),
                    ("indisready", flag(true)),
                    ("indislive", flag(true)),
                    ("indisreplident", flag(false)),
                    ("indkey", attnums(&[i.attnum])),
                    ("indcollation", text("0")),
                    ("indclass", text("0")),
                    ("indoption", text("0")),
                ])
            })
            .collect()
    }

    fn class_rows(&self) -> Vec<HashMap<&'static str, ScalarValue>> {
        let resolved = self.store.read();
        resolved
            .indexes
            .iter()
            .map(|i| {
                HashMap::from([
                    ("oid", int(i.oid)),
                    ("relname", text(&i.name)),
                    ("relnamespace", int(i.namespace)),
                    ("relkind", text("i")),
                    ("relam", int(BTREE_AM_OID)),
                    ("relpersistence", text("p")),
                    ("relnatts", int(1)),
                    ("relispartition", flag(false)),
                    ("relhasindex", flag(false)),
                    ("relhastriggers", flag(false)),
                ])
            })
            .collect()
    }

    /// Marks the keyed tables among `batch`'s rows with `relhasindex` and
    /// `relhastriggers`.
    fn mark_keyed(&self, batch: RecordBatch) -> Result<RecordBatch> {
        let resolved = self.store.read();
        let keyed: std::collections::HashSet<i64> = resolved.keys.iter().map(|k| k.table).collect();
        if keyed.is_empty() {
            return Ok(batch);
        }
        let schema = batch.schema();
        let Ok(oid_index) = schema.index_of("oid") else {
            return Ok(batch);
        };
        let oids = cast(batch.column(oid_index), &DataType::Int64)?;
        let oids = oids.as_primitive::<Int64Type>();
        let mut columns = batch.columns().to_vec();
        for name in ["relhasindex", "relhastriggers"] {
            let Ok(index) = schema.index_of(name) else {
                continue;
            };
            let old = columns[index].as_boolean().clone();
            let new: datafusion::arrow::array::BooleanArray = (0..batch.num_rows())
                .map(|row| {
                    if !oids.is_null(row) && keyed.contains(&oids.value(row)) {
                        Some(true)
                    } else if old.is_null(row) {
                        None
                    } else {
                        Some(old.value(row))
                    }
                })
                .collect();
            columns[index] = Arc::new(new);
        }
        Ok(RecordBatch::try_new(schema, columns)?)
    }
}

#[async_trait]
impl TableProvider for KeyTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
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
        let batches = match self.kind {
            KeyTableKind::Constraint => vec![rows_batch(&self.schema, &self.constraint_rows())?],
            KeyTableKind::Index => vec![rows_batch(&self.schema, &self.index_rows())?],
            KeyTableKind::Class => {
                // pg_class is small and built in memory: read it whole, then
                // mark and extend it.
                let plan = self.inner.scan(state, None, &[], None).await?;
                let mut out = Vec::new();
                for batch in collect(plan, state.task_ctx()).await? {
                    let batch = self.mark_keyed(batch)?;
                    let mut columns = batch.columns().to_vec();
                    for field in self.schema.fields().iter().skip(columns.len()) {
                        columns.push(datafusion::arrow::array::new_null_array(
                            field.data_type(),
                            batch.num_rows(),
                        ));
                    }
                    out.push(RecordBatch::try_new(self.schema.clone(), columns)?);
                }
                out.push(rows_batch(&self.schema, &self.class_rows())?);
                out
            }
        };
        MemorySourceConfig::try_new_exec(&[batches], self.schema.clone(), projection.cloned())
            .map(|exec| exec as Arc<dyn ExecutionPlan>)
    }
}

/// `information_schema.table_constraints` and `key_column_usage`, which
/// DataFusion's `information_schema` lacks; Metabase finds primary keys
/// through them. Served from `pg_catalog` under [`KeyView::name`] and
/// reached by rewriting the `information_schema` name
/// ([`super::rewrite::fix_statement`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyView {
    TableConstraints,
    KeyColumnUsage,
}

impl KeyView {
    /// Both views.
    pub(crate) const ALL: [KeyView; 2] = [KeyView::TableConstraints, KeyView::KeyColumnUsage];

    /// The view's name in `information_schema`.
    pub(crate) fn view_name(self) -> &'static str {
        match self {
            KeyView::TableConstraints => "table_constraints",
            KeyView::KeyColumnUsage => "key_column_usage",
        }
    }

    /// The name the view is served under in `pg_catalog`.
    pub(crate) fn name(self) -> String {
        format!("information_schema_{}", self.view_name())
    }

    /// The view serving `pg_catalog` table `name`, if any.
    pub(crate) fn of(name: &str) -> Option<KeyView> {
        KeyView::ALL.into_iter().find(|v| v.name() == name)
    }

    fn schema(self) -> SchemaRef {
        let text = |name: &str| Field::new(name, DataType::Utf8, true);
        let mut fields: Vec<Field> = [
            "constraint_catalog",
            "constraint_schema",
            "constraint_name",
            "table_catalog",
            "table_schema",
            "table_name",
        ]
        .into_iter()
        .map(text)
        .collect();
        match self {
            KeyView::TableConstraints => {
                for name in [
                    "constraint_type",
                    "is_deferrable",
                    "initially_deferred",
                    "enforced",
                    "nulls_distinct",
                ] {
                    fields.push(text(name));
                }
            }
            KeyView::KeyColumnUsage => {
                fields.push(text("column_name"));
                fields.push(Field::new("ordinal_position", DataType::Int32, true));
                fields.push(Field::new(
                    "position_in_unique_constraint",
                    DataType::Int32,
                    true,
                ));
            }
        }
        Arc::new(Schema::new(fields))
    }
}

/// One [`KeyView`] over the registered keys of a session.
#[derive(Debug)]
pub(crate) struct KeyViewTable {
    view: KeyView,
    database: String,
    store: Arc<KeyStore>,
    schema: SchemaRef,
}

impl KeyViewTable {
    pub(crate) fn new(view: KeyView, database: &str, store: Arc<KeyStore>) -> KeyViewTable {
        KeyViewTable {
            view,
            database: database.to_owned(),
            store,
            schema: view.schema(),
        }
    }

    fn rows(&self) -> Vec<HashMap<&'static str, ScalarValue>> {
        let keys = self.store.keys.read().unwrap_or_else(|p| p.into_inner());
        // (constraint, table, column, is primary)
        let mut constraints: Vec<(String, &str, &str, bool)> = vec![];
        for table in keys.iter() {
            if let Some(pk) = &table.primary_key {
                constraints.push((format!("{}_pkey", table.table), &table.table, pk, true));
            }
            for fk in &table.foreign_keys {
                constraints.push((
                    format!("{}_{}_fkey", table.table, fk.column),
                    &table.table,
                    &fk.column,
                    false,
                ));
            }
        }
        constraints
            .into_iter()
            .map(|(name, table, column, primary)| {
                let mut row = HashMap::from([
                    ("constraint_catalog", text(&self.database)),
                    ("constraint_schema", text("public")),
                    ("constraint_name", text(&name)),
                    ("table_catalog", text(&self.database)),
                    ("table_schema", text("public")),
                    ("table_name", text(table)),
                ]);
                match self.view {
                    KeyView::TableConstraints => {
                        let kind = if primary {
                            "PRIMARY KEY"
                        } else {
                            "FOREIGN KEY"
                        };
                        row.insert("constraint_type", text(kind));
                        row.insert("is_deferrable", text("NO"));
                        row.insert("initially_deferred", text("NO"));
                        row.insert("enforced", text("YES"));
                        if primary {
                            row.insert("nulls_distinct", text("YES"));
                        }
                    }
                    KeyView::KeyColumnUsage => {
                        row.insert("column_name", text(column));
                        // Single-column keys: the column is the first.
                        row.insert("ordinal_position", ScalarValue::Int32(Some(1)));
                        if !primary {
                            row.insert(
                                "position_in_unique_constraint",
                                ScalarValue::Int32(Some(1)),
                            );
                        }
                    }
                }
                row
            })
            .collect()
    }
}

#[async_trait]
impl TableProvider for KeyViewTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn CatalogSession,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = rows_batch(&self.schema, &self.rows())?;
        MemorySourceConfig::try_new_exec(&[vec![batch]], self.schema.clone(), projection.cloned())
            .map(|exec| exec as Arc<dyn ExecutionPlan>)
    }
}

/// `pg_get_constraintdef(oid[, pretty])` and `pg_get_indexdef(oid[, column,
/// pretty])` for our keys; NULL for any other oid, like PostgreSQL for an
/// unknown object.
#[derive(Debug)]
struct Definition {
    name: &'static str,
    signature: Signature,
    store: Arc<KeyStore>,
}

impl PartialEq for Definition {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.store, &other.store)
    }
}

impl Eq for Definition {}

impl std::hash::Hash for Definition {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl Definition {
    fn constraint(store: Arc<KeyStore>) -> Definition {
        Definition {
            name: "pg_get_constraintdef",
            signature: Signature::variadic_any(Volatility::Stable),
            store,
        }
    }

    fn index(store: Arc<KeyStore>) -> Definition {
        Definition {
            name: "pg_get_indexdef",
            signature: Signature::variadic_any(Volatility::Stable),
            store,
        }
    }

    fn lookup(&self, oid: i64, column: i64) -> Option<String> {
        let resolved = self.store.read();
        if self.name == "pg_get_constraintdef" {
            return resolved
                .keys
                .iter()
                .find(|k| k.oid == oid)
                .map(|k| k.definition.clone());
        }
        let index = resolved.indexes.iter().find(|i| i.oid == oid)?;
        // With a column number, PostgreSQL answers that key column's name.
        match column {
            0 => Some(index.definition.clone()),
            1 => index
                .definition
                .rsplit_once('(')
                .map(|(_, col)| col.trim_end_matches(')').to_owned()),
            _ => Some(String::new()),
        }
    }
}

impl ScalarUDFImpl for Definition {
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
        let oids = cast(&first.to_array(rows)?, &DataType::Int64)?;
        let oids = oids.as_primitive::<Int64Type>();
        let columns = match (self.name, args.args.get(1)) {
            ("pg_get_indexdef", Some(col)) => Some(cast(&col.to_array(rows)?, &DataType::Int64)?),
            _ => None,
        };
        let mut out = StringBuilder::new();
        for row in 0..rows {
            if oids.is_null(row) || self.store.is_empty() {
                out.append_null();
                continue;
            }
            let column = columns
                .as_ref()
                .map(|c| c.as_primitive::<Int64Type>())
                .filter(|c| !c.is_null(row))
                .map_or(0, |c| c.value(row));
            match self.lookup(oids.value(row), column) {
                Some(text) => out.append_value(text),
                None => out.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}
