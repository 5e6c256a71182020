//! Pushdown: SQL predicates to Productive API filters.
//!
//! Each predicate is classified on its own:
//! - **Exact** when the API answers exactly the predicate: equality and
//!   `IN` lists on ids and relationship ids (ids are integers, so text and
//!   numeric comparison agree).
//! - **Inexact** when the API's answer is a superset of the rows wanted:
//!   equality on other filterable attributes, ranges, `LIKE '%x%'` as
//!   `contains`. DataFusion filters these rows again, so a difference in
//!   case rules or bound inclusivity can cost rows fetched, never wrong rows.
//!   Bounds on timestamps are widened by a day because the API takes dates.
//! - **Unsupported** for everything else; DataFusion filters locally.
//!
//! `WHERE id = …` (and `id IN (…)`) becomes `GET /<endpoint>/{id}` lookups.

use chrono::{Days, NaiveDate};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{
    Expr, Operator, TableProviderFilterPushDown, expr::InList, expr::Like,
};

use super::schema::{ColumnDef, ColumnSource, Filterable, TableDef};
use crate::api::request::{FilterCond, FilterExpr, FilterOp};
use crate::catalog::SqlType;

/// How one predicate is pushed down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushdown {
    /// Rows with these ids, each looked up directly.
    Ids(Vec<String>),
    /// API filters whose answer is exactly the predicate.
    Exact(FilterExpr),
    /// API filters whose answer is a superset; re-checked locally.
    Inexact(FilterExpr),
    /// Not pushed at all.
    Unsupported,
}

impl Pushdown {
    pub fn support(&self) -> TableProviderFilterPushDown {
        match self {
            Pushdown::Ids(_) | Pushdown::Exact(_) => TableProviderFilterPushDown::Exact,
            Pushdown::Inexact(_) => TableProviderFilterPushDown::Inexact,
            Pushdown::Unsupported => TableProviderFilterPushDown::Unsupported,
        }
    }
}

/// The scan a set of pushed predicates amounts to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushedFilters {
    /// `Some`: only these ids can match (intersection of every id predicate).
    pub ids: Option<Vec<String>>,
    /// API filters to send (AND).
    pub filters: Vec<FilterExpr>,
    /// Predicates that DataFusion re-checks, in SQL, for EXPLAIN.
    pub rechecked: Vec<String>,
}

/// Classifies every predicate and gathers the pushed ones.
pub fn push_filters(def: &TableDef, predicates: &[Expr]) -> PushedFilters {
    let mut out = PushedFilters::default();
    for p in predicates {
        match classify(def, p) {
            Pushdown::Ids(ids) => {
                out.ids = Some(match out.ids.take() {
                    None => ids,
                    Some(prev) => prev.into_iter().filter(|i| ids.contains(i)).collect(),
                });
            }
            Pushdown::Exact(f) => out.filters.push(f),
            Pushdown::Inexact(f) => {
                out.filters.push(f);
                out.rechecked.push(p.human_display().to_string());
            }
            Pushdown::Unsupported => {}
        }
    }
    out
}

/// Classifies one predicate.
pub fn classify(def: &TableDef, expr: &Expr) -> Pushdown {
    match expr {
        Expr::BinaryExpr(b) => {
            if b.op == Operator::Or {
                return classify_or(def, expr);
            }
            let (col, op, value) = match (column_of(&b.left), literal_of(&b.right)) {
                (Some(c), Some(v)) => (c, b.op, v),
                _ => match (column_of(&b.right), literal_of(&b.left)) {
                    (Some(c), Some(v)) => match b.op.swap() {
                        Some(op) => (c, op, v),
                        None => return Pushdown::Unsupported,
                    },
                    _ => return Pushdown::Unsupported,
                },
            };
            let Some(col) = def.column(col) else {
                return Pushdown::Unsupported;
            };
            compare(col, op, &value)
        }
        Expr::InList(InList {
            expr,
            list,
            negated: false,
        }) => {
            let Some(col) = column_of(expr).and_then(|c| def.column(c)) else {
                return Pushdown::Unsupported;
            };
            let values: Option<Vec<ScalarValue>> = list.iter().map(literal_of).collect();
            match values {
                Some(values) if !values.is_empty() => any_of(col, &values),
                _ => Pushdown::Unsupported,
            }
        }
        Expr::Like(Like {
            negated: false,
            expr,
            pattern,
            escape_char: None,
            ..
        }) => {
            let Some(col) = column_of(expr).and_then(|c| def.column(c)) else {
                return Pushdown::Unsupported;
            };
            let (Filterable::Value { filter }, SqlType::Text) = (&col.filterable, col.sql_type)
            else {
                return Pushdown::Unsupported;
            };
            let Some(ScalarValue::Utf8(Some(p)) | ScalarValue::Utf8View(Some(p))) =
                literal_of(pattern)
            else {
                return Pushdown::Unsupported;
            };
            // Only `%needle%` with a plain needle: `contains` is a substring
            // test (case-insensitive, so a superset of LIKE and ILIKE).
            let Some(needle) = p.strip_prefix('%').and_then(|s| s.strip_suffix('%')) else {
                return Pushdown::Unsupported;
            };
            if needle.is_empty() || needle.contains(['%', '_', '\\', ',']) {
                return Pushdown::Unsupported;
            }
            Pushdown::Inexact(FilterExpr::Cond(FilterCond::op(
                filter,
                FilterOp::Contains,
                needle,
            )))
        }
        _ => Pushdown::Unsupported,
    }
}

/// `a = 1 OR a = 2 OR a IN (3)` on one column is an `IN` list.
fn classify_or(def: &TableDef, expr: &Expr) -> Pushdown {
    let mut column: Option<&str> = None;
    let mut values = Vec::new();
    let mut stack = vec![expr];
    while let Some(e) = stack.pop() {
        match e {
            Expr::BinaryExpr(b) if b.op == Operator::Or => {
                stack.push(&b.left);
                stack.push(&b.right);
            }
            Expr::BinaryExpr(b) if b.op == Operator::Eq => {
                let (c, v) = match (column_of(&b.left), literal_of(&b.right)) {
                    (Some(c), Some(v)) => (c, v),
                    _ => match (column_of(&b.right), literal_of(&b.left)) {
                        (Some(c), Some(v)) => (c, v),
                        _ => return Pushdown::Unsupported,
                    },
                };
                if column.is_some_and(|x| x != c) {
                    return Pushdown::Unsupported;
                }
                column = Some(c);
                values.push(v);
            }
            Expr::InList(InList {
                expr,
                list,
                negated: false,
            }) => {
                let Some(c) = column_of(expr) else {
                    return Pushdown::Unsupported;
                };
                if column.is_some_and(|x| x != c) {
                    return Pushdown::Unsupported;
                }
                column = Some(c);
                for item in list {
                    let Some(v) = literal_of(item) else {
                        return Pushdown::Unsupported;
                    };
                    values.push(v);
                }
            }
            _ => return Pushdown::Unsupported,
        }
    }
    match column.and_then(|c| def.column(c)) {
        Some(col) if !values.is_empty() => any_of(col, &values),
        _ => Pushdown::Unsupported,
    }
}

fn any_of(col: &ColumnDef, values: &[ScalarValue]) -> Pushdown {
    let ids: Option<Vec<String>> = values.iter().map(id_text).collect();
    match (&col.source, &col.filterable, ids) {
        (ColumnSource::Id, _, Some(mut ids)) => {
            ids.sort();
            ids.dedup();
            Pushdown::Ids(ids)
        }
        (_, Filterable::Id { filter }, Some(mut ids)) => {
            ids.sort();
            ids.dedup();
            Pushdown::Exact(FilterExpr::Cond(FilterCond::any_of(filter, ids)))
        }
        (_, Filterable::Value { filter }, _) => {
            let texts: Option<Vec<String>> = values.iter().map(|v| filter_text(col, v)).collect();
            // Lists are documented for id filters only: other filters get
            // one condition per value in an OR group.
            match texts {
                Some(texts) if texts.iter().all(|t| !t.contains(',')) => {
                    let conds = texts
                        .into_iter()
                        .map(|t| FilterExpr::Cond(FilterCond::eq(filter, t)));
                    Pushdown::Inexact(FilterExpr::Or(conds.collect()))
                }
                _ => Pushdown::Unsupported,
            }
        }
        _ => Pushdown::Unsupported,
    }
}

fn compare(col: &ColumnDef, op: Operator, value: &ScalarValue) -> Pushdown {
    if value.is_null() {
        return Pushdown::Unsupported;
    }
    match (&col.source, &col.filterable, op) {
        (ColumnSource::Id, _, Operator::Eq) => match id_text(value) {
            Some(id) => Pushdown::Ids(vec![id]),
            None => Pushdown::Unsupported,
        },
        (_, Filterable::Id { filter }, Operator::Eq) => match id_text(value) {
            Some(id) => Pushdown::Exact(FilterExpr::Cond(FilterCond::eq(filter, id))),
            None => Pushdown::Unsupported,
        },
        (_, Filterable::Id { filter }, Operator::NotEq) => match id_text(value) {
            Some(id) => Pushdown::Inexact(FilterExpr::Cond(FilterCond::op(
                filter,
                FilterOp::NotEq,
                id,
            ))),
            None => Pushdown::Unsupported,
        },
        (_, Filterable::Value { filter }, Operator::Eq) => match filter_text(col, value) {
            Some(v) if !v.contains(',') => {
                Pushdown::Inexact(FilterExpr::Cond(FilterCond::eq(filter, v)))
            }
            _ => Pushdown::Unsupported,
        },
        (
            _,
            Filterable::Value { filter },
            Operator::Gt | Operator::GtEq | Operator::Lt | Operator::LtEq,
        ) => range(col, filter, op, value),
        _ => Pushdown::Unsupported,
    }
}

/// A range predicate as an API bound that returns a superset.
fn range(col: &ColumnDef, filter: &str, op: Operator, value: &ScalarValue) -> Pushdown {
    let lower = matches!(op, Operator::Gt | Operator::GtEq);
    let api_op = if lower { FilterOp::Gt } else { FilterOp::Lt };
    let bound = match col.sql_type {
        SqlType::Date | SqlType::Timestamptz => {
            let Some(day) = date_of(value) else {
                return Pushdown::Unsupported;
            };
            // `>= d` is `> d-1`; timestamps compare in an unknown zone on
            // the API side, so they get a day of slack either way.
            let widen = !matches!(
                (col.sql_type, op),
                (SqlType::Date, Operator::Gt | Operator::Lt)
            );
            let day = match (widen, lower) {
                (false, _) => Some(day),
                (true, true) => day.checked_sub_days(Days::new(1)),
                (true, false) => day.checked_add_days(Days::new(1)),
            };
            match day {
                Some(d) => d.format("%Y-%m-%d").to_string(),
                None => return Pushdown::Unsupported,
            }
        }
        SqlType::BigInt | SqlType::Integer => {
            let Some(n) = int_of(value) else {
                return Pushdown::Unsupported;
            };
            let n = match op {
                Operator::GtEq => n.checked_sub(1),
                Operator::LtEq => n.checked_add(1),
                _ => Some(n),
            };
            match n {
                Some(n) => n.to_string(),
                None => return Pushdown::Unsupported,
            }
        }
        _ => return Pushdown::Unsupported,
    };
    Pushdown::Inexact(FilterExpr::Cond(FilterCond::op(filter, api_op, bound)))
}

/// The column a (possibly cast) column reference names.
fn column_of(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Column(c) => Some(c.name.as_str()),
        Expr::Cast(c) => column_of(&c.expr),
        Expr::TryCast(c) => column_of(&c.expr),
        _ => None,
    }
}

/// A literal value, looking through casts of literals.
fn literal_of(expr: &Expr) -> Option<ScalarValue> {
    match expr {
        Expr::Literal(v, _) => Some(v.clone()),
        Expr::Cast(c) => literal_of(&c.expr)?.cast_to(&c.field.data_type()).ok(),
        _ => None,
    }
}

/// The text of an integer id, if the value is one.
fn id_text(v: &ScalarValue) -> Option<String> {
    int_of(v).filter(|n| *n >= 0).map(|n| n.to_string())
}

fn int_of(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::Int8(Some(n)) => Some(*n as i64),
        ScalarValue::Int16(Some(n)) => Some(*n as i64),
        ScalarValue::Int32(Some(n)) => Some(*n as i64),
        ScalarValue::Int64(Some(n)) => Some(*n),
        ScalarValue::UInt8(Some(n)) => Some(*n as i64),
        ScalarValue::UInt16(Some(n)) => Some(*n as i64),
        ScalarValue::UInt32(Some(n)) => Some(*n as i64),
        ScalarValue::UInt64(Some(n)) => i64::try_from(*n).ok(),
        ScalarValue::Utf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
        | ScalarValue::LargeUtf8(Some(s)) => s.parse().ok(),
        _ => None,
    }
}

fn date_of(v: &ScalarValue) -> Option<NaiveDate> {
    const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    match v {
        ScalarValue::Date32(Some(d)) => {
            if *d >= 0 {
                EPOCH.checked_add_days(Days::new(*d as u64))
            } else {
                EPOCH.checked_sub_days(Days::new(d.unsigned_abs() as u64))
            }
        }
        ScalarValue::TimestampMicrosecond(Some(us), _) => {
            chrono::DateTime::from_timestamp_micros(*us).map(|t| t.date_naive())
        }
        ScalarValue::TimestampNanosecond(Some(ns), _) => {
            Some(chrono::DateTime::from_timestamp_nanos(*ns).date_naive())
        }
        ScalarValue::TimestampMillisecond(Some(ms), _) => {
            chrono::DateTime::from_timestamp_millis(*ms).map(|t| t.date_naive())
        }
        ScalarValue::TimestampSecond(Some(s), _) => {
            chrono::DateTime::from_timestamp(*s, 0).map(|t| t.date_naive())
        }
        ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => {
            NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()
        }
        _ => None,
    }
}

/// A value as the API filter expects it for this column.
fn filter_text(col: &ColumnDef, v: &ScalarValue) -> Option<String> {
    match col.sql_type {
        SqlType::Text => match v {
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)) => (!s.is_empty()).then(|| s.clone()),
            _ => None,
        },
        SqlType::BigInt | SqlType::Integer => int_of(v).map(|n| n.to_string()),
        SqlType::Boolean => match v {
            ScalarValue::Boolean(Some(b)) => Some(b.to_string()),
            _ => None,
        },
        SqlType::Date => date_of(v).map(|d| d.format("%Y-%m-%d").to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::{col, lit};

    use super::*;
    use crate::catalog::Catalog;

    fn tasks() -> TableDef {
        TableDef::new(Catalog::get().table("tasks").unwrap(), &[])
    }

    fn cond(name: &str, op: Option<FilterOp>, values: &[&str]) -> FilterExpr {
        FilterExpr::Cond(FilterCond {
            name: name.into(),
            op,
            values: values.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn id_equality_is_a_lookup() {
        assert_eq!(
            classify(&tasks(), &col("id").eq(lit(42i64))),
            Pushdown::Ids(vec!["42".into()])
        );
        assert_eq!(
            classify(&tasks(), &lit(42i64).eq(col("id"))),
            Pushdown::Ids(vec!["42".into()])
        );
    }

    #[test]
    fn id_lists_and_or_chains_are_lookups() {
        let e = col("id").in_list(vec![lit(3i64), lit(1i64), lit(3i64)], false);
        assert_eq!(
            classify(&tasks(), &e),
            Pushdown::Ids(vec!["1".into(), "3".into()])
        );
        let e = col("id").eq(lit(2i64)).or(col("id").eq(lit(1i64)));
        assert_eq!(
            classify(&tasks(), &e),
            Pushdown::Ids(vec!["1".into(), "2".into()])
        );
    }

    #[test]
    fn relationship_ids_are_exact_filters() {
        let e = col("project_id").eq(lit(7i64));
        assert_eq!(
            classify(&tasks(), &e),
            Pushdown::Exact(cond("project_id", None, &["7"]))
        );
        let e = col("project_id").in_list(vec![lit(9i64), lit(7i64)], false);
        assert_eq!(
            classify(&tasks(), &e),
            Pushdown::Exact(cond("project_id", None, &["7", "9"]))
        );
        let e = col("project_id")
            .eq(lit(7i64))
            .or(col("project_id").eq(lit(8i64)));
        assert_eq!(
            classify(&tasks(), &e),
            Pushdown::Exact(cond("project_id", None, &["7", "8"]))
        );
        assert_eq!(
            classify(&tasks(), &e).support(),
            TableProviderFilterPushDown::Exact
        );
    }

    #[test]
    fn or_across_columns_stays_local() {
        let e = col("project_id")
            .eq(lit(7i64))
            .or(col("assignee_id").eq(lit(8i64)));
        assert_eq!(classify(&tasks(), &e), Pushdown::Unsupported);
    }

    #[test]
    fn text_equality_and_like_are_inexact() {
        let e = col("title").eq(lit("Launch"));
        assert_eq!(
            classify(&tasks(), &e),
            Pushdown::Inexact(cond("title", None, &["Launch"]))
        );
        let e = col("title").like(lit("%launch%"));
        assert_eq!(
            classify(&tasks(), &e),
            Pushdown::Inexact(cond("title", Some(FilterOp::Contains), &["launch"]))
        );
        assert_eq!(
            classify(&tasks(), &col("title").like(lit("launch%"))),
            Pushdown::Unsupported
        );
        assert_eq!(
            classify(&tasks(), &col("title").like(lit("%a_b%"))),
            Pushdown::Unsupported
        );
        assert_eq!(
            classify(&tasks(), &col("title").not_like(lit("%a%"))),
            Pushdown::Unsupported
        );
        // A comma would turn one value into a list.
        assert_eq!(
            classify(&tasks(), &col("title").eq(lit("a,b"))),
            Pushdown::Unsupported
        );
    }

    #[test]
    fn value_lists_become_or_groups() {
        let e = col("title").in_list(vec![lit("a"), lit("b")], false);
        assert_eq!(
            classify(&tasks(), &e),
            Pushdown::Inexact(FilterExpr::Or(vec![
                cond("title", None, &["a"]),
                cond("title", None, &["b"])
            ]))
        );
    }

    #[test]
    fn date_ranges_become_superset_bounds() {
        let d = ScalarValue::Date32(Some(20484)); // 2026-01-31
        let e = col("due_date").gt_eq(Expr::Literal(d.clone(), None));
        assert_eq!(
            classify(&tasks(), &e),
            Pushdown::Inexact(cond("due_date", Some(FilterOp::Gt), &["2026-01-30"]))
        );
        let e = col("due_date").lt(Expr::Literal(d, None));
        assert_eq!(
            classify(&tasks(), &e),
            Pushdown::Inexact(cond("due_date", Some(FilterOp::Lt), &["2026-01-31"]))
        );
    }

    #[test]
    fn unknown_columns_and_functions_stay_local() {
        assert_eq!(
            classify(&tasks(), &col("nope").eq(lit(1i64))),
            Pushdown::Unsupported
        );
        let e = datafusion::functions::expr_fn::lower(col("title")).eq(lit("x"));
        assert_eq!(classify(&tasks(), &e), Pushdown::Unsupported);
        assert_eq!(
            classify(&tasks(), &col("project_id").is_null()),
            Pushdown::Unsupported
        );
    }

    #[test]
    fn pushed_ids_intersect() {
        let preds = vec![
            col("id").in_list(vec![lit(1i64), lit(2i64)], false),
            col("id").eq(lit(2i64)),
            col("project_id").eq(lit(5i64)),
            col("title").like(lit("%x%")),
        ];
        let pushed = push_filters(&tasks(), &preds);
        assert_eq!(pushed.ids, Some(vec!["2".to_string()]));
        assert_eq!(pushed.filters.len(), 2);
        assert_eq!(pushed.rechecked.len(), 1);
    }
}
