//! The backend's procedures and functions as rows of `pg_proc`, so that
//! psql's `\df`, JDBC `getProcedures`/`getFunctions` and other tools that
//! browse routines list them in the `public` schema.
//!
//! datafusion-pg-catalog ships `pg_proc` as a fixed export of PostgreSQL's
//! built-in functions. It is extended here by the routines registered with
//! [`install_routines`]: procedures (`prokind = 'p'`) and functions
//! (`prokind = 'f'`) with their argument names and types and their return
//! type. `pg_get_function_arguments`, `pg_get_function_identity_arguments`
//! and `pg_get_function_result` describe them as PostgreSQL does.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray, RecordBatch, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type, SchemaRef};
use datafusion::catalog::{Session as CatalogSession, TableProvider};
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;

use super::constraints::rows_batch;
use super::functions::{pg_type_of, sql_type_name};

/// Whether a routine is called with `CALL` or inside a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutineKind {
    /// `CALL name(...)`; `prokind = 'p'`.
    Procedure,
    /// `SELECT name(...)`; `prokind = 'f'`.
    Function,
}

/// A routine as the catalog lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Routine {
    pub name: String,
    pub kind: RoutineKind,
    /// Argument names and types, in order.
    pub args: Vec<(String, DataType)>,
    /// What a function returns; procedures return nothing (`void`).
    pub returns: Option<DataType>,
}

/// Where routine oids start: above the index and constraint oids of
/// [`super::constraints`] and the user range the catalog hands out.
const ROUTINE_OID_BASE: i64 = 1_800_000_000;
/// `pg_type` oid of `void`, the return type of procedures.
const VOID_OID: i64 = 2278;
/// `pg_language` oid of `internal`: the routines are built into the server.
const INTERNAL_LANGUAGE_OID: i64 = 12;
/// `pg_authid` oid of the bootstrap superuser, the owner of everything.
const OWNER_OID: i64 = 10;

/// The routines of one session.
#[derive(Debug, Default)]
pub(crate) struct RoutineStore {
    routines: RwLock<Vec<Routine>>,
}

impl RoutineStore {
    fn list(&self) -> Vec<Routine> {
        self.routines
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The routine with `oid`, if it is one of ours.
    fn by_oid(&self, oid: i64) -> Option<Routine> {
        let index = usize::try_from(oid.checked_sub(ROUTINE_OID_BASE)?).ok()?;
        self.routines
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(index)
            .cloned()
    }
}

/// Registers `routines` in `pg_proc` of `ctx`, replacing those registered
/// before. Call after [`super::catalog::install_catalog`], which sets up
/// the store.
///
/// # Errors
/// Fails when the catalog was not installed in `ctx`.
pub fn install_routines(ctx: &SessionContext, routines: &[Routine]) -> Result<()> {
    let store = ctx
        .state()
        .config()
        .get_extension::<RoutineStore>()
        .ok_or_else(|| {
            DataFusionError::Configuration(
                "install_catalog must run before install_routines".into(),
            )
        })?;
    *store.routines.write().unwrap_or_else(|p| p.into_inner()) = routines.to_vec();
    Ok(())
}

/// Sets up the routine store and the functions describing routines.
pub(crate) fn install_store(ctx: &SessionContext) -> Arc<RoutineStore> {
    let store = Arc::new(RoutineStore::default());
    {
        let state_ref = ctx.state_ref();
        state_ref.write().config_mut().set_extension(store.clone());
    }
    for what in [
        Describe::Arguments,
        Describe::IdentityArguments,
        Describe::Result,
    ] {
        ctx.register_udf(ScalarUDF::new_from_impl(RoutineFunction {
            what,
            store: store.clone(),
            signature: Signature::variadic_any(Volatility::Stable),
        }));
    }
    store
}

/// A type's oid and the name `format_type` gives it.
fn pg_type(data_type: &DataType) -> (i64, String) {
    let t = pg_type_of(data_type);
    (i64::from(t.oid()), sql_type_name(&t))
}

/// An identifier as PostgreSQL prints it: quoted unless plain lower case.
fn quote_ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// `pg_get_function_arguments` of a routine: `"projectId" bigint, ...`.
fn arguments_text(routine: &Routine) -> String {
    routine
        .args
        .iter()
        .map(|(name, t)| format!("{} {}", quote_ident(name), pg_type(t).1))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What one of the describing functions answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Describe {
    Arguments,
    IdentityArguments,
    Result,
}

/// `pg_get_function_arguments(oid)`, `pg_get_function_identity_arguments(oid)`
/// and `pg_get_function_result(oid)`: our routines described, built-in ones
/// answered as before (empty arguments, unknown result).
#[derive(Debug)]
struct RoutineFunction {
    what: Describe,
    store: Arc<RoutineStore>,
    signature: Signature,
}

impl PartialEq for RoutineFunction {
    fn eq(&self, other: &Self) -> bool {
        self.what == other.what && Arc::ptr_eq(&self.store, &other.store)
    }
}

impl Eq for RoutineFunction {}

impl std::hash::Hash for RoutineFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.what.hash(state);
    }
}

impl RoutineFunction {
    fn describe(&self, routine: Option<Routine>) -> Option<String> {
        match (self.what, routine) {
            (Describe::Arguments | Describe::IdentityArguments, Some(r)) => {
                Some(arguments_text(&r))
            }
            (Describe::Arguments | Describe::IdentityArguments, None) => Some(String::new()),
            (Describe::Result, Some(r)) => r.returns.map(|t| pg_type(&t).1),
            (Describe::Result, None) => None,
        }
    }
}

impl ScalarUDFImpl for RoutineFunction {
    fn name(&self) -> &str {
        match self.what {
            Describe::Arguments => "pg_get_function_arguments",
            Describe::IdentityArguments => "pg_get_function_identity_arguments",
            Describe::Result => "pg_get_function_result",
        }
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
            return Err(DataFusionError::Plan(format!(
                "{} needs an oid",
                self.name()
            )));
        };
        let oids = cast(&first.to_array(rows)?, &DataType::Int64)?;
        let oids = oids.as_primitive::<Int64Type>();
        let mut out = StringBuilder::new();
        for row in 0..rows {
            if oids.is_null(row) {
                out.append_null();
                continue;
            }
            out.append_option(self.describe(self.store.by_oid(oids.value(row))));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// A list column's value: a `List` when the exported column is an array,
/// PostgreSQL's text form (`{a,b}`, or `20 25` for an `oidvector`) when it
/// is text.
fn list_value(
    schema: &SchemaRef,
    column: &str,
    items: Vec<ScalarValue>,
    text: String,
) -> ScalarValue {
    match schema.field_with_name(column).map(|f| f.data_type()) {
        Ok(DataType::List(item)) => {
            let items: Vec<ScalarValue> = items
                .into_iter()
                .map(|v| v.cast_to(item.data_type()).unwrap_or(v))
                .collect();
            ScalarValue::List(ScalarValue::new_list_nullable(&items, item.data_type()))
        }
        _ => ScalarValue::Utf8(Some(text)),
    }
}

/// `pg_proc` with the session's routines after the built-in ones.
#[derive(Debug)]
pub(crate) struct PgProc {
    inner: Arc<dyn TableProvider>,
    namespaces: Arc<dyn TableProvider>,
    store: Arc<RoutineStore>,
}

impl PgProc {
    pub(crate) fn new(
        inner: Arc<dyn TableProvider>,
        namespaces: Arc<dyn TableProvider>,
        store: Arc<RoutineStore>,
    ) -> PgProc {
        PgProc {
            inner,
            namespaces,
            store,
        }
    }

    /// The oid of the `public` namespace in this session.
    async fn public_namespace(&self, state: &dyn CatalogSession) -> Result<Option<i64>> {
        let plan = self.namespaces.scan(state, None, &[], None).await?;
        for batch in collect(plan, state.task_ctx()).await? {
            let (Some(oids), Some(names)) =
                (batch.column_by_name("oid"), batch.column_by_name("nspname"))
            else {
                continue;
            };
            let oids = cast(oids, &DataType::Int64)?;
            let oids = oids.as_primitive::<Int64Type>();
            let names = cast(names, &DataType::Utf8)?;
            let names = names.as_string::<i32>();
            for row in 0..batch.num_rows() {
                if !names.is_null(row) && names.value(row) == "public" && !oids.is_null(row) {
                    return Ok(Some(oids.value(row)));
                }
            }
        }
        Ok(None)
    }

    fn routine_batch(&self, namespace: i64) -> Result<RecordBatch> {
        let schema = self.inner.schema();
        let int = |v: i64| ScalarValue::Int64(Some(v));
        let text = |v: &str| ScalarValue::Utf8(Some(v.to_owned()));
        let flag = |v: bool| ScalarValue::Boolean(Some(v));
        let rows: Vec<HashMap<&str, ScalarValue>> = self
            .store
            .list()
            .iter()
            .enumerate()
            .map(|(index, r)| {
                let type_oids: Vec<i64> = r.args.iter().map(|(_, t)| pg_type(t).0).collect();
                let arg_types = list_value(
                    &schema,
                    "proargtypes",
                    type_oids.iter().map(|o| int(*o)).collect(),
                    type_oids
                        .iter()
                        .map(i64::to_string)
                        .collect::<Vec<_>>()
                        .join(" "),
                );
                let mut row = HashMap::from([
                    ("oid", int(ROUTINE_OID_BASE + index as i64)),
                    ("proname", text(&r.name)),
                    ("pronamespace", int(namespace)),
                    ("proowner", int(OWNER_OID)),
                    ("prolang", int(INTERNAL_LANGUAGE_OID)),
                    ("procost", ScalarValue::Float64(Some(1.0))),
                    ("prorows", ScalarValue::Float64(Some(0.0))),
                    ("provariadic", int(0)),
                    ("prosupport", int(0)),
                    (
                        "prokind",
                        text(match r.kind {
                            RoutineKind::Procedure => "p",
                            RoutineKind::Function => "f",
                        }),
                    ),
                    ("prosecdef", flag(false)),
                    ("proleakproof", flag(false)),
                    ("proisstrict", flag(false)),
                    ("proretset", flag(false)),
                    ("provolatile", text("v")),
                    ("proparallel", text("u")),
                    ("pronargs", int(r.args.len() as i64)),
                    ("pronargdefaults", int(0)),
                    (
                        "prorettype",
                        int(r.returns.as_ref().map_or(VOID_OID, |t| pg_type(t).0)),
                    ),
                    ("proargtypes", arg_types),
                    ("prosrc", text(&r.name)),
                ]);
                if !r.args.is_empty() {
                    let names: Vec<&str> = r.args.iter().map(|(n, _)| n.as_str()).collect();
                    row.insert(
                        "proargnames",
                        list_value(
                            &schema,
                            "proargnames",
                            names.iter().map(|n| text(n)).collect(),
                            format!(
                                "{{{}}}",
                                names
                                    .iter()
                                    .map(|n| quote_ident(n))
                                    .collect::<Vec<_>>()
                                    .join(",")
                            ),
                        ),
                    );
                }
                row
            })
            .collect();
        rows_batch(&schema, &rows)
    }
}

#[async_trait]
impl TableProvider for PgProc {
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
        if self.store.list().is_empty() {
            return Ok(exported);
        }
        let Some(namespace) = self.public_namespace(state).await? else {
            return Ok(exported);
        };
        let ours = MemorySourceConfig::try_new_exec(
            &[vec![self.routine_batch(namespace)?]],
            self.schema(),
            projection.cloned(),
        )?;
        UnionExec::try_new(vec![exported, ours])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_print_like_postgres() {
        let routine = Routine {
            name: "DeleteWorkflowStatus".into(),
            kind: RoutineKind::Procedure,
            args: vec![
                ("id".into(), DataType::Int64),
                ("type".into(), DataType::Utf8),
                ("targetId".into(), DataType::Int64),
            ],
            returns: None,
        };
        assert_eq!(
            arguments_text(&routine),
            "id bigint, type text, \"targetId\" bigint"
        );
    }
}
