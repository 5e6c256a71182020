//! Catalog queries of common clients that DataFusion cannot plan as sent,
//! turned into equivalents it can, before parsing (text) and after (AST).
//!
//! Each fix names the client that sends the query. They rely on what our
//! catalog guarantees: every key and index has exactly one column, and
//! there are no partitions, so array-expanding helpers reduce to the first
//! element and partition ancestry to the table itself.

use std::borrow::Cow;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectName,
    ObjectNamePart, Statement, VisitMut, VisitorMut,
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

/// AST fixes: `generate_subscripts(array, 1)` (SQLAlchemy's key and index
/// reflection) becomes `unnest(generate_series(1, array_length(array, 1)))`,
/// which DataFusion zips with a sibling `unnest` the way PostgreSQL does.
pub fn fix_statement(stmt: &mut Statement) {
    let _ = stmt.visit(&mut Subscripts);
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
