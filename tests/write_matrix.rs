//! The write contract: every table accepts exactly the statements the
//! catalog gives it, and refuses the others before any API request with
//! 0A000 naming what it does accept.

mod gateway_support;

use datafusion::arrow::array::{Array, UInt64Array};
use gateway_support::*;
use productive_pg::catalog::Catalog;
use productive_pg::server::errors::{ServerError, to_error_fields};
use productive_pg::table::TableDef;

/// The written-row count of a DML result.
fn count(batches: &[datafusion::arrow::record_batch::RecordBatch]) -> u64 {
    batches
        .iter()
        .filter_map(|b| b.column_by_name("count"))
        .map(|c| {
            let a = c.as_any().downcast_ref::<UInt64Array>().expect("u64");
            (0..a.len()).map(|i| a.value(i)).sum::<u64>()
        })
        .sum()
}

#[tokio::test]
async fn every_cell_of_the_matrix() {
    let env = standard().await;
    let mut checked = 0;
    for table in Catalog::get().tables() {
        let def = TableDef::new(table, &[]);
        let writable = def
            .columns
            .iter()
            .find(|c| c.writable && !c.name.ends_with("_type") && !c.name.ends_with("_id"))
            .map(|c| c.name.clone())
            .unwrap_or_else(|| "id".to_string());
        let name = table.name;
        let cells = [
            (
                "INSERT",
                table.statements.insert,
                format!(
                    "INSERT INTO {name} ({writable}) SELECT {writable} FROM {name} WHERE id = 0"
                ),
            ),
            (
                "UPDATE",
                table.statements.update,
                format!("UPDATE {name} SET {writable} = {writable} WHERE id = 0"),
            ),
            (
                "DELETE",
                table.statements.delete,
                format!("DELETE FROM {name} WHERE id = 0"),
            ),
        ];
        for (statement, allowed, sql) in cells {
            env.take_requests();
            if allowed {
                let plan = env.table(&format!("EXPLAIN {sql}")).await;
                assert!(plan.contains("ProductiveWrite"), "{sql}: {plan}");
                assert!(
                    env.take_requests().is_empty(),
                    "EXPLAIN {sql} sent requests"
                );
                let batches = env.query(&sql).await;
                assert_eq!(count(&batches), 0, "{sql}");
                let requests = env.take_requests();
                assert!(
                    requests.iter().all(|r| r.method == "GET"),
                    "{sql}: {requests:?}"
                );
            } else {
                let err = env.try_query(&sql).await.expect_err(&sql);
                let fields = to_error_fields(&ServerError::DataFusion(err));
                assert_eq!(fields.code, "0A000", "{sql}: {}", fields.message);
                assert!(
                    fields.message.contains(&table.statements.describe()),
                    "{sql}: {}",
                    fields.message
                );
                assert!(fields.message.contains(statement), "{}", fields.message);
                assert!(env.take_requests().is_empty(), "{sql} sent requests");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, Catalog::get().tables().len() * 3);
}

#[tokio::test]
async fn the_contract_matches_the_published_list() {
    let catalog = Catalog::get();
    let expect = |names: &[&str], insert: bool, update: bool, delete: bool| {
        for name in names {
            let s = catalog.table(name).expect(name).statements;
            assert_eq!(
                (s.insert, s.update, s.delete),
                (insert, update, delete),
                "{name}"
            );
        }
    };
    expect(
        &[
            "bookings",
            "budgets",
            "comments",
            "deals",
            "deal_statuses",
            "expenses",
            "invoices",
            "line_items",
            "projects",
            "services",
            "service_types",
            "tasks",
            "workflows",
            "payments",
        ],
        true,
        true,
        true,
    );
    expect(
        &[
            "boards",
            "companies",
            "custom_field_options",
            "custom_fields",
            "events",
            "lost_reasons",
            "people",
            "subsidiaries",
            "task_lists",
            "workflow_statuses",
        ],
        true,
        true,
        false,
    );
    expect(&["organizations"], false, true, true);
    expect(&["users"], false, true, false);
    expect(&["activities"], false, false, false);
}
