//! Catalog queries of common clients that DataFusion cannot plan as sent,
//! turned into equivalents it can, before parsing (text) and after (AST).
//!
//! Each fix names the client that sends the query. They rely on what our
//! catalog guarantees: every key and index has exactly one column, and
//! there are no partitions, so array-expanding helpers reduce to the first
//! element and partition ancestry to the table itself.

use std::borrow::Cow;
use std::ops::ControlFlow;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::logical_expr::{Cast, Expr as DfExpr, LogicalPlan, TryCast};
use datafusion::scalar::ScalarValue;

use super::information_schema::served_name;
use datafusion::sql::sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectName,
    ObjectNamePart, Statement, Visit, VisitMut, Visitor, VisitorMut,
};

/// Text replacements, applied in order wherever the text occurs.
const TEXT_FIXES: &[(&str, &str)] = &[
    // pgjdbc getPrimaryKeys, getIndexInfo and getBestRowIdentifier expand
    // `indkey` with information_schema._pg_expandarray, a set-returning
    // function of composite rows.
    ("(information_schema._pg_expandarray(i.indkey)).n", "1"),
    (
        "information_schema._pg_expandarray(i.indkey) AS KEYS",
        "i.indkey[1] AS KEYS",
    ),
    (
        "information_schema._pg_expandarray(i.indkey) AS keys",
        "i.indkey[1] AS keys",
    ),
    ("(result.KEYS).x", "result.KEYS"),
    ("(i.keys).x", "i.keys"),
    // pgjdbc getIndexInfo reads the sort order from indoption; ours are
    // all ascending.
    (
        "tmp.I_INDOPTION[tmp.ORDINAL_POSITION - 1] & 1::smallint",
        "0",
    ),
    // pgjdbc getImportedKeys/getExportedKeys size their key loop by this
    // setting, PostgreSQL's compiled-in 32.
    (
        "SELECT setting FROM pg_catalog.pg_settings WHERE name='max_index_keys'",
        "SELECT '32' AS setting",
    ),
    // pgjdbc getProcedures leaves three reserved columns unnamed, which
    // DataFusion refuses as duplicate names.
    (
        "p.proname AS PROCEDURE_NAME, NULL, NULL, NULL, d.description AS REMARKS",
        "p.proname AS PROCEDURE_NAME, NULL AS RESERVED1, NULL AS RESERVED2, \
         NULL AS RESERVED3, d.description AS REMARKS",
    ),
    // pgjdbc's type cache: a correlated scalar subquery DataFusion cannot
    // prove returns one row.
    (
        "(t.typrelid = 0 OR (SELECT c.relkind = 'c' FROM pg_catalog.pg_class c \
         WHERE c.oid = t.typrelid))",
        "(t.typrelid = 0 OR EXISTS (SELECT 1 FROM pg_catalog.pg_class c \
         WHERE c.oid = t.typrelid AND c.relkind = 'c'))",
    ),
    // Comments are joined on classoid = 'pg_class'::regclass (pgjdbc
    // getTables, Metabase, DBeaver); the catalog resolves such casts by
    // name to session oids, not to the fixed oids of the system catalogs.
    ("'pg_class'::regclass", "1259"),
    ("'pg_namespace'::regclass", "2615"),
    ("'pg_constraint'::regclass", "2606"),
    ("'pg_proc'::regclass", "1255"),
    ("'pg_type'::regclass", "1247"),
    // pgjdbc's type cache compares typinput with a regproc literal; our
    // typinput holds the function's name.
    (
        "typinput='pg_catalog.array_in'::regproc",
        "typinput='array_in'",
    ),
];

/// Applies the text fixes and psql's partition fixes to `sql`.
pub fn fix_text(sql: &str) -> Cow<'_, str> {
    let mut fixed = Cow::Borrowed(sql);
    for (from, to) in TEXT_FIXES {
        if fixed.contains(from) {
            fixed = Cow::Owned(fixed.replace(from, to));
        }
    }
    if let Some(text) = fix_partition_ancestors(&fixed) {
        fixed = Cow::Owned(text);
    }
    match fix_trigger_parent(&fixed) {
        Some(text) => Cow::Owned(text),
        None => fixed,
    }
}

/// psql 15's `\d` names each trigger's parent through
/// `pg_partition_ancestors(...) WITH ORDINALITY`, a table function; only
/// triggers cloned onto partitions have one, so the parent is NULL.
fn fix_trigger_parent(sql: &str) -> Option<String> {
    const START: &str = "CASE WHEN t.tgparentid != 0 THEN";
    const END: &str = "END AS parent";
    let start = sql.find(START)?;
    let end = sql[start..].find(END)? + start + END.len();
    Some(format!("{}NULL AS parent{}", &sql[..start], &sql[end..]))
}

/// psql 15's `\d` lists referencing keys of the table and its partition
/// ancestors: `IN (SELECT pg_catalog.pg_partition_ancestors('OID') UNION
/// ALL VALUES ('OID'::pg_catalog.regclass))`. With no partitions that is
/// the table alone: `IN (SELECT OID)`.
fn fix_partition_ancestors(sql: &str) -> Option<String> {
    const START: &str = "(SELECT pg_catalog.pg_partition_ancestors('";
    let start = sql.find(START)?;
    let oid_start = start + START.len();
    let oid_len = sql[oid_start..].find('\'')?;
    let oid = &sql[oid_start..oid_start + oid_len];
    if oid.is_empty() || !oid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let tail = format!("'{oid}'::pg_catalog.regclass))");
    let end = sql[oid_start..].find(&tail)? + oid_start + tail.len();
    Some(format!("{}(SELECT {oid}){}", &sql[..start], &sql[end..]))
}

/// How deeply expressions may nest in a statement. The parser limits its
/// own recursion, but operator chains (`1 + 1 + ... + 1`) and cast chains
/// (`x::int::int...`) are parsed in a loop and still make trees as deep as
/// they are long, which the recursive walks after parsing could not handle.
pub const MAX_EXPRESSION_DEPTH: usize = 128;

/// Whether any expression in `stmt` nests deeper than
/// [`MAX_EXPRESSION_DEPTH`]; the walk stops at that depth.
pub fn too_deep(stmt: &Statement) -> bool {
    stmt.visit(&mut Depth(0)).is_break()
}

struct Depth(usize);

impl Visitor for Depth {
    type Break = ();

    fn pre_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<()> {
        self.0 += 1;
        if self.0 > MAX_EXPRESSION_DEPTH {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn post_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<()> {
        self.0 -= 1;
        ControlFlow::Continue(())
    }
}

/// AST fixes: `generate_subscripts(array, 1)` (SQLAlchemy's key and index
/// reflection) becomes `unnest(generate_series(1, array_length(array, 1)))`,
/// which DataFusion zips with a sibling `unnest` the way PostgreSQL does;
/// `information_schema.columns`, `table_constraints` and `key_column_usage`
/// (Metabase's field sync), which DataFusion's fixed `information_schema`
/// lacks or has with fewer columns, name the views `pg_catalog` serves.
pub fn fix_statement(stmt: &mut Statement) {
    let _ = stmt.visit(&mut Subscripts);
    let _ = stmt.visit(&mut InformationSchemaViews);
}

/// The type DataFusion gives `numeric` without precision and scale.
const UNCONSTRAINED_NUMERIC: DataType = DataType::Decimal128(38, 10);

/// `CAST('12.50' AS numeric)`, with the text a literal or a bound
/// parameter, keeps the text's scale (`12.50`) the way PostgreSQL's
/// unconstrained numeric does, instead of DataFusion's fixed
/// `numeric(38,10)` (`12.5000000000`). An explicit `numeric(38,10)` is
/// indistinguishable and changes alike; any other precision or scale is
/// left as written.
///
/// # Errors
/// Fails when a changed plan's schema cannot be recomputed.
pub fn keep_numeric_scale(plan: LogicalPlan) -> datafusion::error::Result<LogicalPlan> {
    let changed = plan.transform_up(|node| {
        node.map_expressions(|expr| {
            expr.transform_up(|e| {
                let scale = match &e {
                    DfExpr::Cast(cast) if cast.field.data_type() == &UNCONSTRAINED_NUMERIC => {
                        text_scale(&cast.expr)
                    }
                    DfExpr::TryCast(cast) if cast.field.data_type() == &UNCONSTRAINED_NUMERIC => {
                        text_scale(&cast.expr)
                    }
                    _ => None,
                };
                let Some(scale) = scale else {
                    return Ok(Transformed::no(e));
                };
                let data_type = DataType::Decimal128(38, scale);
                Ok(Transformed::yes(match e {
                    DfExpr::Cast(cast) => DfExpr::Cast(Cast::new(cast.expr, data_type)),
                    DfExpr::TryCast(cast) => DfExpr::TryCast(TryCast::new(cast.expr, data_type)),
                    other => other,
                }))
            })
        })
    })?;
    if !changed.transformed {
        return Ok(changed.data);
    }
    // Columns above a changed cast change type with it.
    changed
        .data
        .transform_up(|node| node.recompute_schema().map(Transformed::yes))
        .map(|t| t.data)
}

/// The scale of a text literal holding a plain decimal number (`12.50` →
/// 2), when it differs from the default scale.
fn text_scale(expr: &DfExpr) -> Option<i8> {
    let DfExpr::Literal(value, _) = expr else {
        return None;
    };
    let text = match value {
        ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => s.trim(),
        ScalarValue::LargeUtf8(Some(s)) => s.trim(),
        _ => return None,
    };
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.len() + fraction.len() == 0 || !digits(whole) || !digits(fraction) {
        return None;
    }
    let scale = i8::try_from(fraction.len()).ok()?;
    let fits = whole.trim_start_matches('0').len() + fraction.len() <= 38;
    (fits && scale != 10).then_some(scale)
}

struct InformationSchemaViews;

impl VisitorMut for InformationSchemaViews {
    type Break = ();

    fn pre_visit_relation(&mut self, relation: &mut ObjectName) -> ControlFlow<()> {
        let parts: Vec<&str> = relation
            .0
            .iter()
            .filter_map(|part| part.as_ident().map(|i| i.value.as_str()))
            .collect();
        let [.., schema, table] = parts.as_slice() else {
            return ControlFlow::Continue(());
        };
        if !schema.eq_ignore_ascii_case("information_schema") {
            return ControlFlow::Continue(());
        }
        if let Some(served) = served_name(table) {
            *relation = ObjectName(vec![
                ObjectNamePart::Identifier(Ident::new("pg_catalog")),
                ObjectNamePart::Identifier(Ident::new(served)),
            ]);
        }
        ControlFlow::Continue(())
    }
}

struct Subscripts;

fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new(name))]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(datafusion::sql::sqlparser::ast::FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e)))
                .collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

impl VisitorMut for Subscripts {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let Expr::Function(function) = expr else {
            return ControlFlow::Continue(());
        };
        let is_subscripts = function
            .name
            .0
            .last()
            .and_then(|part| part.as_ident())
            .is_some_and(|ident| ident.value.eq_ignore_ascii_case("generate_subscripts"));
        if !is_subscripts {
            return ControlFlow::Continue(());
        }
        let FunctionArguments::List(list) = &function.args else {
            return ControlFlow::Continue(());
        };
        let args: Vec<Expr> = list
            .args
            .iter()
            .filter_map(|arg| match arg {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
                _ => None,
            })
            .collect();
        let [array, dimension] = args.as_slice() else {
            return ControlFlow::Continue(());
        };
        let length = call("array_length", vec![array.clone(), dimension.clone()]);
        let one = Expr::value(datafusion::sql::sqlparser::ast::Value::Number(
            "1".into(),
            false,
        ));
        *expr = call("unnest", vec![call("generate_series", vec![one, length])]);
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    #[test]
    fn pgjdbc_key_queries_lose_expandarray() {
        let sql = "SELECT (information_schema._pg_expandarray(i.indkey)).n AS KEY_SEQ, \
                   information_schema._pg_expandarray(i.indkey) AS KEYS FROM x \
                   ) result where  result.A_ATTNUM = (result.KEYS).x";
        let fixed = fix_text(sql);
        assert_eq!(
            fixed,
            "SELECT 1 AS KEY_SEQ, i.indkey[1] AS KEYS FROM x \
             ) result where  result.A_ATTNUM = result.KEYS"
        );
        assert!(matches!(fix_text("SELECT 1"), Cow::Borrowed(_)));
    }

    #[test]
    fn psql_partition_ancestors_become_the_table() {
        let sql = "WHERE confrelid IN (SELECT pg_catalog.pg_partition_ancestors('16413')\n\
                   UNION ALL VALUES ('16413'::pg_catalog.regclass))\n AND contype = 'f'";
        assert_eq!(
            fix_text(sql),
            "WHERE confrelid IN (SELECT 16413)\n AND contype = 'f'"
        );
    }

    #[test]
    fn psql_trigger_parents_are_null() {
        let sql = "SELECT t.tgname,\n  CASE WHEN t.tgparentid != 0 THEN\n    (SELECT u.tgrelid \
                   FROM pg_catalog.pg_partition_ancestors(t.tgrelid) \
                   WITH ORDINALITY AS a(relid, depth) LIMIT 1)\n  END AS parent\n\
                   FROM pg_catalog.pg_trigger t";
        assert_eq!(
            fix_text(sql),
            "SELECT t.tgname,\n  NULL AS parent\nFROM pg_catalog.pg_trigger t"
        );
    }

    #[test]
    fn information_schema_key_views_come_from_pg_catalog() {
        let mut stmt = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT kc.column_name FROM \"information_schema\".\"table_constraints\" AS tc \
             JOIN productive.information_schema.key_column_usage kc ON true \
             JOIN information_schema.columns c ON true \
             JOIN information_schema.tables t ON true",
        )
        .expect("valid SQL")
        .remove(0);
        fix_statement(&mut stmt);
        assert_eq!(
            stmt.to_string(),
            "SELECT kc.column_name FROM pg_catalog.information_schema_table_constraints AS tc \
             JOIN pg_catalog.information_schema_key_column_usage AS kc ON true \
             JOIN pg_catalog.information_schema_columns AS c ON true \
             JOIN information_schema.tables AS t ON true"
        );
    }

    #[tokio::test]
    async fn numeric_casts_of_text_keep_its_scale() {
        let ctx = datafusion::prelude::SessionContext::new();
        let text = |sql: &'static str| {
            let ctx = ctx.clone();
            async move {
                let plan = ctx.state().create_logical_plan(sql).await.expect("plans");
                let plan = keep_numeric_scale(plan).expect("rewrites");
                let batches = ctx
                    .execute_logical_plan(plan)
                    .await
                    .expect("runs")
                    .collect()
                    .await
                    .expect("collects");
                datafusion::arrow::util::display::array_value_to_string(batches[0].column(0), 0)
                    .expect("prints")
            }
        };
        assert_eq!(text("SELECT CAST('12.50' AS numeric) AS a").await, "12.50");
        assert_eq!(text("SELECT CAST('-3' AS numeric) + 1 AS a").await, "-2");
        assert_eq!(
            text("SELECT CAST('12.5' AS numeric(10,2)) AS a").await,
            "12.50"
        );
        assert_eq!(
            text("SELECT TRY_CAST('0.125' AS numeric) AS a").await,
            "0.125"
        );
    }

    #[test]
    fn generate_subscripts_becomes_a_series() {
        let mut stmt = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT unnest(c.conkey) AS attnum, generate_subscripts(c.conkey, 1) AS ord FROM c",
        )
        .expect("valid SQL")
        .remove(0);
        fix_statement(&mut stmt);
        assert_eq!(
            stmt.to_string(),
            "SELECT unnest(c.conkey) AS attnum, \
             unnest(generate_series(1, array_length(c.conkey, 1))) AS ord FROM c"
        );
    }
}
