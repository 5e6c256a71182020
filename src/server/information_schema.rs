//! `information_schema` views that DataFusion's fixed `information_schema`
//! lacks or gives fewer columns than PostgreSQL: `columns` with the
//! `udt_*`, `is_identity` and `is_generated` columns Metabase's field sync
//! reads and PostgreSQL's type names, and (in [`super::constraints`])
//! `table_constraints` and `key_column_usage`.
//!
//! DataFusion answers every `information_schema.*` name itself, so these
//! are served from `pg_catalog` under [`served_name`] and queries reach
//! them through a rewrite of the name ([`super::rewrite::fix_statement`]).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, Int32Builder, RecordBatch, StringBuilder, new_empty_array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session as CatalogSession, TableProvider};
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::execution::SessionState;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use super::constraints::KeyView;
use super::functions::{pg_type_of, sql_type_name};

/// The name under which `pg_catalog` serves `information_schema.<view>`,
/// for the views served here.
pub(crate) fn served_name(view: &str) -> Option<String> {
    let view = view.to_ascii_lowercase();
    if view == COLUMNS {
        return Some(format!("information_schema_{COLUMNS}"));
    }
    KeyView::ALL
        .into_iter()
        .find(|v| v.view_name() == view)
        .map(KeyView::name)
}

const COLUMNS: &str = "columns";

/// Whether `name` is the `pg_catalog` name of the columns view.
pub(crate) fn is_columns(name: &str) -> bool {
    served_name(COLUMNS).is_some_and(|n| n == name)
}

/// `information_schema.columns` of every table the session sees, typed
/// as the wire server types the columns.
#[derive(Debug)]
pub(crate) struct ColumnsView {
    schema: SchemaRef,
}

impl ColumnsView {
    pub(crate) fn new() -> ColumnsView {
        let text = |name: &str| Field::new(name, DataType::Utf8, true);
        let int = |name: &str| Field::new(name, DataType::Int32, true);
        ColumnsView {
            schema: Arc::new(Schema::new(vec![
                text("table_catalog"),
                text("table_schema"),
                text("table_name"),
                text("column_name"),
                int("ordinal_position"),
                text("column_default"),
                text("is_nullable"),
                text("data_type"),
                int("character_maximum_length"),
                int("numeric_precision"),
                int("numeric_scale"),
                int("datetime_precision"),
                text("udt_catalog"),
                text("udt_schema"),
                text("udt_name"),
                text("is_identity"),
                text("is_generated"),
                text("is_updatable"),
            ])),
        }
    }
}

/// One column's row, field by field.
#[derive(Default)]
struct Builders {
    text: Vec<StringBuilder>,
    int: Vec<Int32Builder>,
}

/// The `information_schema` spelling of a type: arrays are `ARRAY`.
fn data_type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) => {
            "ARRAY".to_owned()
        }
        other => sql_type_name(&pg_type_of(other)),
    }
}

#[async_trait]
impl TableProvider for ColumnsView {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn CatalogSession,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let state = state
            .as_any()
            .downcast_ref::<SessionState>()
            .ok_or_else(|| DataFusionError::Internal("no session state".into()))?;
        let list = state.catalog_list();
        // 13 text columns and 5 integer ones, in schema order.
        let mut b = Builders::default();
        b.text.resize_with(13, StringBuilder::new);
        b.int.resize_with(5, Int32Builder::new);
        for catalog_name in list.catalog_names() {
            let Some(catalog) = list.catalog(&catalog_name) else {
                continue;
            };
            for schema_name in catalog.schema_names() {
                let Some(schema) = catalog.schema(&schema_name) else {
                    continue;
                };
                let mut tables = schema.table_names();
                tables.sort();
                for table_name in tables {
                    let Some(table) = schema.table(&table_name).await? else {
                        continue;
                    };
                    for (i, field) in table.schema().fields().iter().enumerate() {
                        let t = field.data_type();
                        // JSON attributes are strings marked as jsonb.
                        let json = super::jsonb::is_jsonb(field);
                        let pg = if json {
                            postgres_types::Type::JSONB
                        } else {
                            pg_type_of(t)
                        };
                        let (precision, scale) = match t {
                            DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => {
                                (Some(i32::from(*p)), Some(i32::from(*s)))
                            }
                            DataType::Int16 => (Some(16), Some(0)),
                            DataType::Int32 => (Some(32), Some(0)),
                            DataType::Int64 => (Some(64), Some(0)),
                            DataType::Float32 => (Some(24), None),
                            DataType::Float64 => (Some(53), None),
                            _ => (None, None),
                        };
                        let datetime = match t {
                            DataType::Date32 => Some(0),
                            DataType::Timestamp(..) | DataType::Time64(_) => Some(6),
                            _ => None,
                        };
                        let type_name = if json {
                            "jsonb".to_owned()
                        } else {
                            data_type_name(t)
                        };
                        let texts = [
                            Some(catalog_name.as_str()),
                            Some(schema_name.as_str()),
                            Some(table_name.as_str()),
                            Some(field.name().as_str()),
                            None,
                            Some(if field.is_nullable() { "YES" } else { "NO" }),
                            Some(type_name.as_str()),
                            Some(catalog_name.as_str()),
                            Some("pg_catalog"),
                            Some(pg.name()),
                            Some("NO"),
                            Some("NEVER"),
                            Some("YES"),
                        ];
                        for (builder, value) in b.text.iter_mut().zip(texts) {
                            builder.append_option(value);
                        }
                        let ints = [i32::try_from(i + 1).ok(), None, precision, scale, datetime];
                        for (builder, value) in b.int.iter_mut().zip(ints) {
                            builder.append_option(value);
                        }
                    }
                }
            }
        }
        let mut texts = b
            .text
            .into_iter()
            .map(|mut x| Arc::new(x.finish()) as ArrayRef);
        let mut ints = b
            .int
            .into_iter()
            .map(|mut x| Arc::new(x.finish()) as ArrayRef);
        let columns: Vec<ArrayRef> = self
            .schema
            .fields()
            .iter()
            .map(|f| {
                let next = match f.data_type() {
                    DataType::Int32 => ints.next(),
                    _ => texts.next(),
                };
                next.unwrap_or_else(|| new_empty_array(f.data_type()))
            })
            .collect();
        let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
        MemorySourceConfig::try_new_exec(&[vec![batch]], self.schema.clone(), projection.cloned())
            .map(|exec| exec as Arc<dyn ExecutionPlan>)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_are_served_under_pg_catalog_names() {
        assert_eq!(
            served_name("COLUMNS").as_deref(),
            Some("information_schema_columns")
        );
        assert!(is_columns("information_schema_columns"));
        assert_eq!(
            served_name("key_column_usage").as_deref(),
            Some("information_schema_key_column_usage")
        );
        assert_eq!(served_name("tables"), None);
        assert_eq!(data_type_name(&DataType::Int64), "bigint");
        assert_eq!(
            data_type_name(&DataType::List(Arc::new(Field::new(
                "item",
                DataType::Utf8,
                true
            )))),
            "ARRAY"
        );
    }
}
