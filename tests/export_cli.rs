//! `productive-pg export` against the simulator: a table with columns and a
//! condition, a query, the CSV options, and values that round-trip.

mod gateway_support;

use gateway_support::*;
use productive_pg::app::{ApiSettings, export};
use productive_pg::secret::Secret;
use productive_pg::sim::fixture::ids;
use productive_pg::transfer::csv_out::CsvOptions;
use productive_pg::transfer::export::ExportSource;

fn settings(env: &Env) -> ApiSettings {
    ApiSettings {
        api_url: env.sim.base_url().to_string(),
        credentials: Some((env.sim.organization_id().to_string(), Secret::new(TOKEN))),
        demo: None,
    }
}

#[tokio::test]
async fn a_table_exports_with_columns_and_a_condition() {
    let env = standard().await;
    let dir = std::env::temp_dir().join(format!("export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tasks.csv");
    env.take_requests();
    let source = ExportSource::Table {
        table: "tasks".into(),
        columns: Some(vec![
            "id".into(),
            "title".into(),
            "closed".into(),
            "project_id".into(),
        ]),
        filter: Some(format!("project_id = {}", ids::WEBSITE)),
    };
    export(
        &settings(&env),
        source,
        CsvOptions::default(),
        Some(path.clone()),
        false,
    )
    .await
    .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("id,title,closed,project_id"));
    let rows: Vec<&str> = lines.collect();
    assert!(!rows.is_empty());
    assert!(
        rows.iter()
            .all(|r| r.ends_with(&format!(",{}", ids::WEBSITE))),
        "{text}"
    );
    // The condition went to the API.
    let reqs = env.take_requests();
    assert_eq!(reqs.len(), 1);
    assert!(decoded_query(&reqs[0]).contains(&format!("filter[project_id]={}", ids::WEBSITE)));
}

#[tokio::test]
async fn options_shape_the_file() {
    let env = standard().await;
    let path = std::env::temp_dir().join(format!("export-q-{}.csv", std::process::id()));
    let options = CsvOptions {
        delimiter: b';',
        header: false,
        null: "\\N".into(),
        force_quote: true,
        ..CsvOptions::default()
    };
    let source = ExportSource::Query("SELECT 'a;b' AS x, '' AS y, NULL AS z, 1.5 AS n".into());
    export(&settings(&env), source, options, Some(path.clone()), false)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "\"a;b\";\"\";\\N;\"1.5\"\n"
    );
}
