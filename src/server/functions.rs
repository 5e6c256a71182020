//! Catalog functions clients call that neither DataFusion nor
//! datafusion-pg-catalog provide, answered as PostgreSQL answers them for a
//! database with no user-defined functions, views, triggers or sequences:
//! visibility checks are true, definitions of objects we do not have are
//! NULL (`pg_get_expr` included: there are no stored expressions), and
//! the server is never a standby.
//!
//! `to_regtype` resolves the built-in type names clients probe for (psycopg
//! asks for `hstore`, which does not exist, so NULL). `current_setting`
//! answers the server's defaults: scalar functions do not see the
//! session, so a value changed with `SET` reads back as its default here
//! (`SHOW` gives the session's value).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int32Builder, RecordBatch, StringArray, StringBuilder,
    new_null_array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;

use crate::error::{SqlError, codes};

/// A function whose answer does not depend on its arguments.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Constant {
    name: &'static str,
    value: ScalarValue,
    signature: Signature,
}

impl Constant {
    fn new(name: &'static str, value: ScalarValue) -> Constant {
        Constant {
            name,
            value,
            signature: Signature::one_of(
                vec![TypeSignature::Nullary, TypeSignature::VariadicAny],
                Volatility::Stable,
            ),
        }
    }
}

impl ScalarUDFImpl for Constant {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(self.value.data_type())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let array_input = args
            .args
            .iter()
            .any(|a| matches!(a, ColumnarValue::Array(_)));
        if array_input {
            Ok(ColumnarValue::Array(
                self.value.to_array_of_size(args.number_rows)?,
            ))
        } else {
            Ok(ColumnarValue::Scalar(self.value.clone()))
        }
    }
}

/// The Arrow type's PostgreSQL type, as the wire server reports it.
pub(crate) fn pg_type_of(data_type: &DataType) -> postgres_types::Type {
    arrow_pg::datatypes::into_pg_type(data_type).unwrap_or(postgres_types::Type::TEXT)
}

/// The name `format_type` gives a type (`bigint`, `timestamp with time
/// zone`, `text[]`).
pub(crate) fn sql_type_name(t: &postgres_types::Type) -> String {
    if let postgres_types::Kind::Array(item) = t.kind() {
        return format!("{}[]", sql_type_name(item));
    }
    match t.oid() {
        16 => "boolean",
        20 => "bigint",
        21 => "smallint",
        23 => "integer",
        700 => "real",
        701 => "double precision",
        1043 => "character varying",
        1083 => "time without time zone",
        1114 => "timestamp without time zone",
        1184 => "timestamp with time zone",
        _ => t.name(),
    }
    .to_owned()
}

/// Oids of the built-in types, by the names `to_regtype` accepts.
const TYPE_OIDS: &[(&str, i32)] = &[
    ("bool", 16),
    ("boolean", 16),
    ("bytea", 17),
    ("char", 18),
    ("name", 19),
    ("int8", 20),
    ("bigint", 20),
    ("int2", 21),
    ("smallint", 21),
    ("int4", 23),
    ("integer", 23),
    ("int", 23),
    ("text", 25),
    ("oid", 26),
    ("json", 114),
    ("float4", 700),
    ("real", 700),
    ("float8", 701),
    ("double precision", 701),
    ("varchar", 1043),
    ("character varying", 1043),
    ("date", 1082),
    ("time", 1083),
    ("timestamp", 1114),
    ("timestamp without time zone", 1114),
    ("timestamptz", 1184),
    ("timestamp with time zone", 1184),
    ("interval", 1186),
    ("numeric", 1700),
    ("uuid", 2950),
    ("jsonb", 3802),
    ("text[]", 1009),
    ("_text", 1009),
];

/// The oid of a type name, with an optional `pg_catalog.` prefix.
fn type_oid(name: &str) -> Option<i32> {
    let name = name.trim().to_ascii_lowercase();
    let name = name.strip_prefix("pg_catalog.").unwrap_or(&name);
    let name = name.trim_matches('"');
    TYPE_OIDS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, oid)| *oid)
}

/// `to_regtype(text)`: the type's oid, or NULL when there is no such type.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ToRegtype {
    signature: Signature,
}

impl ScalarUDFImpl for ToRegtype {
    fn name(&self) -> &str {
        "to_regtype"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(arg) = args.args.first() else {
            return Ok(ColumnarValue::Scalar(ScalarValue::Int32(None)));
        };
        let names = cast(&arg.to_array(args.number_rows)?, &DataType::Utf8)?;
        let names = names.as_string::<i32>();
        let mut out = Int32Builder::new();
        for row in 0..names.len() {
            if names.is_null(row) {
                out.append_null();
            } else {
                out.append_option(type_oid(names.value(row)));
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// `current_setting(name[, missing_ok])`: a setting's default value.
#[derive(Debug, PartialEq, Eq, Hash)]
struct CurrentSetting {
    signature: Signature,
}

fn setting_default(name: &str) -> Option<&'static str> {
    super::statements::Setting::ALL
        .iter()
        .find(|s| s.name.eq_ignore_ascii_case(name))
        .map(|s| s.default)
}

impl ScalarUDFImpl for CurrentSetting {
    fn name(&self) -> &str {
        "current_setting"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(arg) = args.args.first() else {
            return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)));
        };
        let names = cast(&arg.to_array(args.number_rows)?, &DataType::Utf8)?;
        let names = names.as_string::<i32>();
        let values: datafusion::arrow::array::StringArray = (0..names.len())
            .map(|row| {
                if names.is_null(row) {
                    None
                } else {
                    setting_default(names.value(row))
                }
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(values)))
    }
}

/// Registers the functions of this module in `ctx`.
pub fn install_functions(ctx: &SessionContext) {
    let text_null = ScalarValue::Utf8(None);
    let constants = [
        Constant::new("pg_function_is_visible", ScalarValue::Boolean(Some(true))),
        Constant::new("pg_type_is_visible", ScalarValue::Boolean(Some(true))),
        Constant::new("pg_collation_is_visible", ScalarValue::Boolean(Some(true))),
        Constant::new("pg_opclass_is_visible", ScalarValue::Boolean(Some(true))),
        Constant::new("pg_operator_is_visible", ScalarValue::Boolean(Some(true))),
        Constant::new("pg_conversion_is_visible", ScalarValue::Boolean(Some(true))),
        Constant::new("pg_is_in_recovery", ScalarValue::Boolean(Some(false))),
        Constant::new("pg_is_wal_replay_paused", ScalarValue::Boolean(Some(false))),
        Constant::new("pg_get_function_result", text_null.clone()),
        Constant::new("pg_get_function_arguments", ScalarValue::from("")),
        Constant::new("pg_get_function_identity_arguments", ScalarValue::from("")),
        Constant::new("pg_get_triggerdef", text_null.clone()),
        // No column defaults, index predicates or expressions exist here,
        // and clients test the result with IS NULL (Metabase's index sync).
        Constant::new("pg_get_expr", text_null.clone()),
        Constant::new("pg_get_viewdef", text_null.clone()),
        Constant::new("pg_get_serial_sequence", text_null.clone()),
        Constant::new("shobj_description", text_null.clone()),
        Constant::new("pg_tablespace_location", ScalarValue::from("")),
        Constant::new("inet_server_addr", text_null),
        Constant::new(
            "pg_postmaster_start_time",
            ScalarValue::TimestampMicrosecond(
                Some(chrono::Utc::now().timestamp_micros()),
                Some("UTC".into()),
            ),
        ),
    ];
    for constant in constants {
        ctx.register_udf(ScalarUDF::new_from_impl(constant));
    }
    ctx.register_udf(ScalarUDF::new_from_impl(CurrentSetting {
        signature: Signature::variadic_any(Volatility::Stable),
    }));
    ctx.register_udf(ScalarUDF::new_from_impl(ToRegtype {
        signature: Signature::any(1, Volatility::Stable),
    }));
    ctx.register_udf(ScalarUDF::new_from_impl(SetConfig {
        signature: Signature::any(3, Volatility::Volatile),
    }));
    ctx.register_udtf("pg_show_all_settings", Arc::new(ShowAllSettings));
    super::format::install(ctx);
}

/// `set_config(name, value, is_local)` as pgAdmin calls it at connect
/// (`bytea_output` to `hex`): a function cannot change the session, so
/// it answers the value when that is already the setting's default and
/// refuses any other change, pointing to `SET`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct SetConfig {
    signature: Signature,
}

impl ScalarUDFImpl for SetConfig {
    fn name(&self) -> &str {
        "set_config"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let [name, value, _] = args.args.as_slice() else {
            return Err(DataFusionError::Plan(
                "set_config takes a name, a value and is_local".into(),
            ));
        };
        let names = cast(&name.to_array(rows)?, &DataType::Utf8)?;
        let names = names.as_string::<i32>();
        let values = cast(&value.to_array(rows)?, &DataType::Utf8)?;
        let values = values.as_string::<i32>();
        let mut out = StringBuilder::new();
        for row in 0..rows {
            if names.is_null(row) {
                return Err(SqlError::new(
                    codes::NULL_VALUE_NOT_ALLOWED,
                    "set_config: the setting name must not be NULL",
                )
                .into_datafusion());
            }
            let name = names.value(row);
            let Some(default) = setting_default(name) else {
                return Err(SqlError::new(
                    codes::UNDEFINED_OBJECT,
                    format!("unrecognized configuration parameter \"{name}\""),
                )
                .into_datafusion());
            };
            let value = (!values.is_null(row)).then(|| values.value(row));
            if value.is_some_and(|v| !v.eq_ignore_ascii_case(default)) {
                return Err(SqlError::new(
                    codes::FEATURE_NOT_SUPPORTED,
                    format!("set_config cannot change \"{name}\" here"),
                )
                .with_hint(format!("use SET {name} = ..."))
                .into_datafusion());
            }
            out.append_value(default);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// `pg_show_all_settings()`, the table behind PostgreSQL's `pg_settings`
/// (pgAdmin reads it at connect): every setting the server knows, with
/// its default, as [`CurrentSetting`] answers it.
#[derive(Debug)]
struct ShowAllSettings;

impl TableFunctionImpl for ShowAllSettings {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        if !args.exprs().is_empty() {
            return Err(DataFusionError::Plan(
                "pg_show_all_settings takes no arguments".into(),
            ));
        }
        let text = |name: &str| Field::new(name, DataType::Utf8, true);
        let schema = Arc::new(Schema::new(vec![
            text("name"),
            text("setting"),
            text("unit"),
            text("category"),
            text("short_desc"),
            text("extra_desc"),
            text("context"),
            text("vartype"),
            text("source"),
            text("min_val"),
            text("max_val"),
            Field::new(
                "enumvals",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                true,
            ),
            text("boot_val"),
            text("reset_val"),
            text("sourcefile"),
            Field::new("sourceline", DataType::Int32, true),
            Field::new("pending_restart", DataType::Boolean, true),
        ]));
        let all = super::statements::Setting::ALL;
        let column = |f: &dyn Fn(&super::statements::Setting) -> Option<&str>| -> ArrayRef {
            Arc::new(all.iter().map(f).collect::<StringArray>())
        };
        let defaults = column(&|s| Some(s.default));
        let columns: Vec<ArrayRef> = vec![
            column(&|s| Some(s.name)),
            defaults.clone(),
            column(&|_| None),
            column(&|_| Some("Productive gateway")),
            column(&|s| Some(s.description)),
            column(&|_| None),
            column(&|s| Some(if s.fixed { "internal" } else { "user" })),
            column(&|_| Some("string")),
            column(&|_| Some("default")),
            column(&|_| None),
            column(&|_| None),
            new_null_array(schema.field(11).data_type(), all.len()),
            defaults.clone(),
            defaults,
            column(&|_| None),
            new_null_array(&DataType::Int32, all.len()),
            Arc::new(BooleanArray::from(vec![false; all.len()])),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}

/// The Arrow type of `pg_postmaster_start_time`, for tests.
#[cfg(test)]
fn start_time_type() -> DataType {
    DataType::Timestamp(
        datafusion::arrow::datatypes::TimeUnit::Microsecond,
        Some("UTC".into()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{BooleanArray, Int32Array};

    #[tokio::test]
    async fn catalog_functions_answer_like_postgres() {
        let ctx = SessionContext::new();
        install_functions(&ctx);
        let batches = ctx
            .sql(
                "SELECT pg_function_is_visible(1) AS visible, pg_is_in_recovery() AS standby, \
                 to_regtype('int4') AS int4, to_regtype('pg_catalog.timestamptz') AS tstz, \
                 to_regtype('hstore') AS hstore, pg_get_triggerdef(1, true) AS trigger, \
                 pg_postmaster_start_time() AS started, \
                 current_setting('server_version_num') AS version",
            )
            .await
            .expect("plans")
            .collect()
            .await
            .expect("runs");
        let batch = &batches[0];
        let flag = |i: usize| {
            batch
                .column(i)
                .as_any()
                .downcast_ref::<BooleanArray>()
                .expect("boolean")
                .value(0)
        };
        assert!(flag(0));
        assert!(!flag(1));
        let oid = |i: usize| {
            let col = batch
                .column(i)
                .as_any()
                .downcast_ref::<Int32Array>()
                .expect("int4");
            (!col.is_null(0)).then(|| col.value(0))
        };
        assert_eq!(oid(2), Some(23));
        assert_eq!(oid(3), Some(1184));
        assert_eq!(oid(4), None);
        assert!(batch.column(5).is_null(0));
        assert_eq!(batch.column(6).data_type(), &start_time_type());
        let version = batch.column(7).as_string::<i32>();
        assert_eq!(version.value(0), "150000");
    }
}
