//! Pushdown must never change a result: for every filterable column of
//! every table, the rows found through API filters equal the rows found by
//! filtering a local copy of the whole table. Also: EXPLAIN shows the
//! request, and each shape makes the requests it should.

mod gateway_support;

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::datasource::MemTable;
use gateway_support::*;
use productive_pg::catalog::Catalog;
use productive_pg::sim::fixture::ids;
use productive_pg::table::TableDef;
use productive_pg::table::schema::Filterable;

fn sql_type(dt: &DataType) -> Option<&'static str> {
    Some(match dt {
        DataType::Int64 => "BIGINT",
        DataType::Int32 => "INT",
        DataType::Utf8 => "VARCHAR",
        DataType::Date32 => "DATE",
        DataType::Timestamp(_, _) => "TIMESTAMP",
        DataType::Boolean => "BOOLEAN",
        DataType::Decimal128(_, _) => "DECIMAL(38,6)",
        DataType::Float64 => "DOUBLE",
        _ => return None,
    })
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Predicates worth comparing for one column, built from values it holds.
fn predicates(column: &str, ty: &str, values: &[String], is_id: bool) -> Vec<String> {
    let lit = |v: &str| format!("CAST({} AS {ty})", quote(v));
    let mut out = Vec::new();
    for v in values {
        out.push(format!("{column} = {}", lit(v)));
        if is_id {
            out.push(format!("{column} <> {}", lit(v)));
        }
        if matches!(ty, "BIGINT" | "INT" | "DATE" | "TIMESTAMP") {
            for op in [">", ">=", "<", "<="] {
                out.push(format!("{column} {op} {}", lit(v)));
            }
        }
        if ty == "VARCHAR" {
            let chars: Vec<char> = v.chars().collect();
            if chars.len() >= 3 {
                let mid: String = chars[1..chars.len().min(5) - 1].iter().collect();
                out.push(format!("{column} LIKE {}", quote(&format!("%{mid}%"))));
                out.push(format!(
                    "{column} ILIKE {}",
                    quote(&format!("%{}%", mid.to_uppercase()))
                ));
            }
            out.push(format!("{column} = {}", quote(&v.to_uppercase())));
        }
    }
    if values.len() >= 2 {
        let list: Vec<String> = values.iter().map(|v| lit(v)).collect();
        out.push(format!("{column} IN ({})", list.join(", ")));
        out.push(format!(
            "({column} = {} OR {column} = {})",
            lit(&values[0]),
            lit(&values[1])
        ));
    }
    out
}

async fn compare_all(env: &Env) -> usize {
    let mut compared = 0;
    for table in Catalog::get().tables() {
        let def = TableDef::new(table, &[]);
        let batches = env.query(&format!("SELECT * FROM {}", table.name)).await;
        let schema = def.schema.clone();
        let local = MemTable::try_new(schema.clone(), vec![batches]).expect("memtable");
        let local_name = format!("local_{}", table.name);
        env.ctx
            .register_table(local_name.as_str(), Arc::new(local))
            .expect("register");

        for col in &def.columns {
            if matches!(col.filterable, Filterable::No) && col.name != "id" {
                continue;
            }
            let field = schema.field_with_name(&col.name).expect("field");
            let Some(ty) = sql_type(field.data_type()) else {
                continue;
            };
            let values = env
                .column(&format!(
                    "SELECT DISTINCT CAST({c} AS VARCHAR) FROM {local_name} WHERE {c} IS NOT NULL \
                     ORDER BY 1 LIMIT 2",
                    c = col.name
                ))
                .await;
            let is_id = matches!(col.filterable, Filterable::Id { .. });
            for pred in predicates(&col.name, ty, &values, is_id) {
                let remote = env
                    .column(&format!(
                        "SELECT id FROM {} WHERE {pred} ORDER BY id",
                        table.name
                    ))
                    .await;
                let wanted = env
                    .column(&format!(
                        "SELECT id FROM {local_name} WHERE {pred} ORDER BY id"
                    ))
                    .await;
                assert_eq!(remote, wanted, "{}: WHERE {pred}", table.name);
                compared += 1;
            }
        }
    }
    compared
}

#[tokio::test]
async fn pushed_and_local_filtering_agree_on_the_fixture() {
    let env = standard().await;
    let compared = compare_all(&env).await;
    println!("{compared} predicates compared");
    assert!(compared > 200, "only {compared} predicates compared");
}

#[tokio::test]
async fn explain_shows_the_api_request_and_local_rechecks() {
    let env = standard().await;
    env.take_requests();
    let plan = env
        .table(&format!(
            "EXPLAIN SELECT title FROM tasks WHERE project_id = {} AND title LIKE '%home%'",
            ids::WEBSITE
        ))
        .await;
    assert!(plan.contains("ProductiveScan: table=tasks"), "{plan}");
    assert!(
        plan.contains(&format!("project_id eq {}", ids::WEBSITE)),
        "{plan}"
    );
    assert!(plan.contains("title contains home"), "{plan}");
    assert!(
        plan.contains("rechecked_locally=[title LIKE %home%]"),
        "{plan}"
    );
    assert!(
        env.take_requests().is_empty(),
        "EXPLAIN must not call the API"
    );
}

#[tokio::test]
async fn explain_analyze_counts_requests_and_pages() {
    let env = standard().await;
    let plan = env
        .table("EXPLAIN ANALYZE SELECT count(*) FROM tasks")
        .await;
    assert!(plan.contains("api_requests=1"), "{plan}");
    assert!(plan.contains("api_pages=1"), "{plan}");
}

#[tokio::test]
async fn lookups_by_several_ids_make_one_request_each() {
    let env = standard().await;
    env.take_requests();
    let rows = env
        .column(&format!(
            "SELECT id FROM tasks WHERE id IN ({}, {}, 999999) ORDER BY id",
            ids::HOMEPAGE_TASK,
            ids::COPY_TASK
        ))
        .await;
    assert_eq!(
        rows,
        [ids::HOMEPAGE_TASK.to_string(), ids::COPY_TASK.to_string()]
    );
    let reqs = env.take_requests();
    assert_eq!(reqs.len(), 3, "{reqs:?}");
    assert!(
        reqs.iter().all(|r| r.path.starts_with("/api/v2/tasks/")),
        "{reqs:?}"
    );
}

#[tokio::test]
async fn a_budget_is_not_a_deal_even_by_id() {
    let env = standard().await;
    let budget_id = env.column("SELECT id FROM budgets LIMIT 1").await;
    let rows = env
        .column(&format!("SELECT id FROM deals WHERE id = {}", budget_id[0]))
        .await;
    assert!(rows.is_empty(), "{rows:?}");
}

#[tokio::test]
async fn pushed_filters_ask_only_for_matching_pages() {
    let env = standard().await;
    env.take_requests();
    env.query(&format!(
        "SELECT * FROM tasks WHERE project_id IN ({}, {})",
        ids::WEBSITE,
        ids::MOBILE_APP
    ))
    .await;
    let reqs = env.take_requests();
    assert_eq!(reqs.len(), 1);
    let q = decoded_query(&reqs[0]);
    let mut want = [ids::WEBSITE, ids::MOBILE_APP];
    want.sort();
    assert!(
        q.contains(&format!("filter[project_id]={},{}", want[0], want[1])),
        "{q}"
    );
}

#[tokio::test]
async fn order_by_limit_on_a_date_is_the_apis_sort() {
    let env = standard().await;
    let all = env
        .column("SELECT id FROM (SELECT id, created_at FROM tasks) ORDER BY created_at DESC, id")
        .await;
    env.take_requests();
    let top = env
        .column("SELECT id FROM tasks ORDER BY created_at DESC LIMIT 2")
        .await;
    assert_eq!(top, all[..2].to_vec());
    let reqs = env.take_requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let q = decoded_query(&reqs[0]);
    assert!(
        q.contains("sort=-created_at") && q.contains("page[size]=2"),
        "{q}"
    );
    let plan = env
        .table("EXPLAIN SELECT id FROM tasks ORDER BY created_at DESC LIMIT 2")
        .await;
    assert!(plan.contains("sort=-created_at"), "{plan}");
    assert!(!plan.contains("SortExec"), "the sort is the API's: {plan}");
}

#[tokio::test]
async fn order_by_text_is_sorted_locally() {
    let env = standard().await;
    let plan = env
        .table("EXPLAIN SELECT title FROM tasks ORDER BY title LIMIT 2")
        .await;
    assert!(plan.contains("SortExec"), "{plan}");
    assert!(!plan.contains("sort=title"), "{plan}");
    let top = env
        .column("SELECT title FROM tasks ORDER BY title LIMIT 2")
        .await;
    let mut all = env
        .column("SELECT title FROM tasks WHERE title IS NOT NULL")
        .await;
    all.sort();
    assert_eq!(top, all[..2].to_vec());
}

#[tokio::test]
async fn nulls_first_ascending_is_sorted_locally() {
    let env = standard().await;
    let plan = env
        .table("EXPLAIN SELECT id FROM tasks ORDER BY due_date NULLS FIRST LIMIT 2")
        .await;
    assert!(plan.contains("SortExec"), "{plan}");
}
