//! Catalog queries of common clients that DataFusion cannot plan as sent,
//! turned into equivalents it can, before parsing (text) and after (AST).
//!
//! Each fix names the client that sends the query. They rely on what our
//! catalog guarantees: every key and index has exactly one column, and
//! there are no partitions, so array-expanding helpers reduce to the first
//! element and partition ancestry to the table itself.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::ControlFlow;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ParamValues;
use datafusion::common::metadata::ScalarAndMetadata;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Cast, Expr as DfExpr, LogicalPlan, TryCast};
use datafusion::scalar::ScalarValue;

use super::information_schema::served_name;
use datafusion::sql::sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectName,
    ObjectNamePart, OrderBy, OrderByKind, Query, SelectItem, SetExpr, Statement, TableFactor,
    Visit, VisitMut, Visitor, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

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
    // Grafana's table picker resolves the search path with a subquery
    // that datafusion-pg-catalog's parser replaces with '' (so no schema
    // was ever on the path); spelling `user` as `current_user` keeps the
    // subquery, which the AST fixes below make plannable.
    (
        "= '\"$user\"' THEN user ELSE",
        "= '\"$user\"' THEN current_user ELSE",
    ),
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
    let _ = stmt.visit(&mut FunctionsInFrom);
    let _ = stmt.visit(&mut UserKeyword);
    let _ = stmt.visit(&mut InSubqueryOutsideFilters);
    let _ = stmt.visit(&mut ComputedRegclass);
}

/// A cast of a computed name to `regclass` (Metabase's field sync:
/// `CAST(FORMAT('%I.%I', schema, table) AS REGCLASS)`) becomes
/// `to_regclass(name)`; DataFusion would cast the text to an integer.
/// Casts of literals and of oid columns are left to the catalog.
struct ComputedRegclass;

impl VisitorMut for ComputedRegclass {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let Expr::Cast {
            expr: inner,
            data_type,
            ..
        } = expr
        else {
            return ControlFlow::Continue(());
        };
        let target = data_type.to_string().to_ascii_lowercase();
        if target.trim_start_matches("pg_catalog.") != "regclass" {
            return ControlFlow::Continue(());
        }
        let computed_text = match inner.as_ref() {
            Expr::Function(f) => f
                .name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .is_some_and(|i| i.value.eq_ignore_ascii_case("format")),
            Expr::BinaryOp { op, .. } => {
                *op == datafusion::sql::sqlparser::ast::BinaryOperator::StringConcat
            }
            _ => false,
        };
        if computed_text {
            let name = std::mem::replace(
                inner.as_mut(),
                Expr::value(datafusion::sql::sqlparser::ast::Value::Null),
            );
            *expr = call("to_regclass", vec![name]);
        }
        ControlFlow::Continue(())
    }
}

/// DataFusion plans `x IN (SELECT ...)` only in WHERE and HAVING; in a
/// select list or ORDER BY (Grafana's table picker: `CASE WHEN
/// quote_ident(table_schema) IN (SELECT ...) THEN ...`) it fails at
/// execution. There it becomes a membership test of the subquery's values:
/// `coalesce(array_has((SELECT array_agg(v) FROM (SELECT ...) AS t(v)), x),
/// false)`. Unlike PostgreSQL, a NULL on either side reads as not found
/// instead of NULL; a correlated subquery stays unsupported.
struct InSubqueryOutsideFilters;

fn in_subquery_as_membership(expr: &mut Expr) {
    let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(expr, |e| {
        if let Expr::InSubquery {
            expr: needle,
            subquery,
            negated,
        } = e
        {
            let test = format!(
                "coalesce(array_has((SELECT array_agg(__in.__v) FROM ({subquery}) AS __in(__v)), \
                 {needle}), false)"
            );
            let test = if *negated {
                format!("NOT {test}")
            } else {
                test
            };
            if let Ok(parsed) = Parser::new(&PostgreSqlDialect {})
                .try_with_sql(&test)
                .and_then(|mut p| p.parse_expr())
            {
                *e = Expr::Nested(Box::new(parsed));
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

impl VisitorMut for InSubqueryOutsideFilters {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let SetExpr::Select(select) = query.body.as_mut() {
            for item in &mut select.projection {
                match item {
                    SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                        in_subquery_as_membership(e);
                    }
                    _ => {}
                }
            }
        }
        if let Some(OrderBy {
            kind: OrderByKind::Expressions(items),
            ..
        }) = &mut query.order_by
        {
            for item in items {
                in_subquery_as_membership(&mut item.expr);
            }
        }
        ControlFlow::Continue(())
    }
}

/// PostgreSQL's `user` is `current_user` (Grafana's search path query);
/// DataFusion has no function of that name, and answers `current_user` as
/// `session_user`, which is what `user` becomes.
struct UserKeyword;

impl VisitorMut for UserKeyword {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        // The parser reads `user` as a call without parentheses.
        let Expr::Function(function) = expr else {
            return ControlFlow::Continue(());
        };
        let is_user = matches!(function.args, FunctionArguments::None)
            && matches!(function.name.0.as_slice(), [part] if part
                .as_ident()
                .is_some_and(|i| i.quote_style.is_none() && i.value.eq_ignore_ascii_case("user")));
        if is_user {
            function.name =
                ObjectName(vec![ObjectNamePart::Identifier(Ident::new("session_user"))]);
        }
        ControlFlow::Continue(())
    }
}

/// Grafana's table picker reads the search path with two functions in
/// FROM, each named by a table alias that is also its column:
/// `generate_series(lo, hi) AS i` (a set of integers) and
/// `string_to_array(text, ',') s` (one array). DataFusion's
/// `generate_series` table names its column `value`, and scalar functions
/// cannot stand in FROM, so each becomes a one-column derived table:
/// `(SELECT unnest(generate_series(lo, hi)) AS i) AS i` and
/// `(SELECT string_to_array(text, ',') AS s) s`. Only these two
/// functions, with a plain alias and no column list, are rewritten.
struct FunctionsInFrom;

impl VisitorMut for FunctionsInFrom {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table {
            name,
            alias: Some(alias),
            args: Some(args),
            with_ordinality: false,
            ..
        } = factor
        else {
            return ControlFlow::Continue(());
        };
        if !alias.columns.is_empty() || args.settings.is_some() {
            return ControlFlow::Continue(());
        }
        let Some(function) = name.0.last().and_then(|p| p.as_ident()) else {
            return ControlFlow::Continue(());
        };
        let function = function.value.to_ascii_lowercase();
        let list = args
            .args
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let column = alias.name.to_string();
        let select = match function.as_str() {
            "generate_series" => format!("SELECT unnest(generate_series({list})) AS {column}"),
            "string_to_array" => format!("SELECT string_to_array({list}) AS {column}"),
            _ => return ControlFlow::Continue(()),
        };
        let Ok(subquery) = Parser::new(&PostgreSqlDialect {})
            .try_with_sql(&select)
            .and_then(|mut p| p.parse_query())
        else {
            return ControlFlow::Continue(());
        };
        *factor = TableFactor::Derived {
            lateral: false,
            subquery,
            alias: Some(alias.clone()),
            sample: None,
        };
        ControlFlow::Continue(())
    }
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

/// Parameters bound as text whose every use is a cast to unconstrained
/// `numeric` (`CAST($1 AS numeric)`, node-postgres' `$1::numeric`) are
/// bound as the text itself, so that [`keep_numeric_scale`] keeps its
/// scale as it does for a literal. `text_of(i)` is the text of parameter
/// `i` (from 0) when it was sent in text format.
///
/// # Errors
/// Fails when the plan cannot be walked.
pub fn numeric_params_as_text(
    plan: &LogicalPlan,
    values: ParamValues,
    text_of: impl Fn(usize) -> Option<String>,
) -> datafusion::error::Result<ParamValues> {
    let ParamValues::List(mut list) = values else {
        return Ok(values);
    };
    let mut uses: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    let index = |e: &DfExpr| match e {
        DfExpr::Placeholder(p) => {
            p.id.trim_start_matches('$')
                .parse::<usize>()
                .ok()
                .and_then(|n| n.checked_sub(1))
        }
        _ => None,
    };
    plan.apply_with_subqueries(|node| {
        for expr in node.expressions() {
            expr.apply(|e| {
                let cast_of = match e {
                    DfExpr::Cast(c) if c.field.data_type() == &UNCONSTRAINED_NUMERIC => {
                        Some(c.expr.as_ref())
                    }
                    DfExpr::TryCast(c) if c.field.data_type() == &UNCONSTRAINED_NUMERIC => {
                        Some(c.expr.as_ref())
                    }
                    _ => None,
                };
                if let Some(n) = cast_of.and_then(index) {
                    uses.entry(n).or_default().0 += 1;
                }
                if let Some(n) = index(e) {
                    uses.entry(n).or_default().1 += 1;
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    for (n, (casts, all)) in uses {
        if casts != all || n >= list.len() {
            continue;
        }
        if let Some(text) = text_of(n) {
            list[n] = ScalarAndMetadata::new(ScalarValue::Utf8(Some(text)), None);
        }
    }
    Ok(ParamValues::List(list))
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
             JOIN pg_catalog.information_schema_key_column_usage kc ON true \
             JOIN pg_catalog.information_schema_columns c ON true \
             JOIN information_schema.tables t ON true"
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

    #[tokio::test]
    async fn numeric_text_parameters_keep_their_scale() {
        let ctx = datafusion::prelude::SessionContext::new();
        let run = |sql: &'static str| {
            let ctx = ctx.clone();
            async move {
                let plan = ctx.state().create_logical_plan(sql).await.expect("plans");
                // As the wire layer deserializes '12.50' for numeric(38,10).
                let bound = ParamValues::List(vec![ScalarAndMetadata::new(
                    ScalarValue::Decimal128(Some(125_000_000_000), 38, 10),
                    None,
                )]);
                let values =
                    numeric_params_as_text(&plan, bound, |i| (i == 0).then(|| "12.50".to_owned()))
                        .expect("walks");
                let plan = plan.replace_params_with_values(&values).expect("binds");
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
        assert_eq!(run("SELECT CAST($1 AS numeric) AS a").await, "12.50");
        // A parameter also used elsewhere keeps the type it was bound with.
        assert_eq!(
            run("SELECT CAST($1 AS numeric) AS a WHERE $1 > 0").await,
            "12.5000000000"
        );
    }

    fn fixed(sql: &str) -> String {
        let mut stmt = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .expect("valid SQL")
            .remove(0);
        fix_statement(&mut stmt);
        stmt.to_string()
    }

    #[test]
    fn functions_in_from_become_derived_tables() {
        assert_eq!(
            fixed("SELECT s[i] FROM generate_series(1, 2) AS i, string_to_array('a,b', ',') s"),
            "SELECT s[i] FROM (SELECT unnest(generate_series(1, 2)) AS i) AS i, \
             (SELECT string_to_array('a,b', ',') AS s) s"
        );
        // A table function without an alias, or with column names, stays.
        assert_eq!(
            fixed("SELECT * FROM generate_series(1, 2)"),
            "SELECT * FROM generate_series(1, 2)"
        );
        assert_eq!(
            fixed("SELECT * FROM generate_series(1, 2) AS g(n)"),
            "SELECT * FROM generate_series(1, 2) AS g (n)"
        );
    }

    #[test]
    fn in_subquery_outside_filters_becomes_membership() {
        assert_eq!(
            fixed("SELECT x IN (SELECT y FROM t) AS a FROM u WHERE x IN (SELECT y FROM t)"),
            "SELECT (coalesce(array_has((SELECT array_agg(__in.__v) FROM (SELECT y FROM t) \
             AS __in (__v)), x), false)) AS a FROM u WHERE x IN (SELECT y FROM t)"
        );
    }

    #[test]
    fn user_and_computed_regclass() {
        assert_eq!(fixed("SELECT user"), "SELECT session_user");
        assert_eq!(
            fixed("SELECT CAST(format('%I.%I', s, t) AS REGCLASS), CAST(c.oid AS REGCLASS) FROM c"),
            "SELECT to_regclass(format('%I.%I', s, t)), CAST(c.oid AS REGCLASS) FROM c"
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
