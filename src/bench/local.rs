//! The parts of the benchmark that compare with PostgreSQL: local work
//! over rows already fetched, and streaming rows over the wire.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use datafusion::arrow::array::{ArrayRef, Date32Array, Int32Array, Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use futures::SinkExt;
use serde_json::Value;
use tokio_postgres::{Client, NoTls};

use super::report::{Figure, Report};
use crate::sim::store::Store;

/// A narrow copy of one resource: the columns the compared queries use.
struct Narrow {
    name: &'static str,
    columns: Vec<(&'static str, DataType)>,
    rows: Vec<Vec<Option<String>>>,
}

fn attr_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn narrow_tables(store: &Store) -> Vec<Narrow> {
    let link = |r: &crate::sim::store::Record, rel: &str| r.link_id(rel).map(|i| i.to_string());
    let mut out = Vec::new();
    out.push(Narrow {
        name: "b_tasks",
        columns: vec![
            ("id", DataType::Int64),
            ("project_id", DataType::Int64),
            ("title", DataType::Utf8),
        ],
        rows: store
            .all("tasks")
            .map(|r| {
                vec![
                    Some(r.id.to_string()),
                    link(r, "project"),
                    attr_text(r.attributes.get("title")),
                ]
            })
            .collect(),
    });
    out.push(Narrow {
        name: "b_projects",
        columns: vec![
            ("id", DataType::Int64),
            ("company_id", DataType::Int64),
            ("name", DataType::Utf8),
        ],
        rows: store
            .all("projects")
            .map(|r| {
                vec![
                    Some(r.id.to_string()),
                    link(r, "company"),
                    attr_text(r.attributes.get("name")),
                ]
            })
            .collect(),
    });
    out.push(Narrow {
        name: "b_companies",
        columns: vec![("id", DataType::Int64), ("name", DataType::Utf8)],
        rows: store
            .all("companies")
            .map(|r| vec![Some(r.id.to_string()), attr_text(r.attributes.get("name"))])
            .collect(),
    });
    out.push(Narrow {
        name: "b_time_entries",
        columns: vec![
            ("id", DataType::Int64),
            ("person_id", DataType::Int64),
            ("date", DataType::Date32),
            ("time", DataType::Int32),
        ],
        rows: store
            .all("time_entries")
            .map(|r| {
                vec![
                    Some(r.id.to_string()),
                    link(r, "person"),
                    attr_text(r.attributes.get("date")),
                    attr_text(r.attributes.get("time")),
                ]
            })
            .collect(),
    });
    out
}

fn to_batch(t: &Narrow) -> Result<RecordBatch> {
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (i, (_, ty)) in t.columns.iter().enumerate() {
        let cells = t.rows.iter().map(|r| r[i].as_deref());
        let array: ArrayRef = match ty {
            DataType::Int64 => Arc::new(
                cells
                    .map(|c| c.and_then(|s| s.parse().ok()))
                    .collect::<Int64Array>(),
            ),
            DataType::Int32 => Arc::new(
                cells
                    .map(|c| c.and_then(|s| s.parse().ok()))
                    .collect::<Int32Array>(),
            ),
            DataType::Date32 => Arc::new(
                cells
                    .map(|c| {
                        let d = chrono::NaiveDate::parse_from_str(c?, "%Y-%m-%d").ok()?;
                        Some((d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?).num_days() as i32)
                    })
                    .collect::<Date32Array>(),
            ),
            _ => Arc::new(cells.collect::<StringArray>()),
        };
        arrays.push(array);
    }
    let schema = Schema::new(
        t.columns
            .iter()
            .map(|(n, ty)| Field::new(*n, ty.clone(), true))
            .collect::<Vec<_>>(),
    );
    Ok(RecordBatch::try_new(Arc::new(schema), arrays)?)
}

fn pg_type(ty: &DataType) -> &'static str {
    match ty {
        DataType::Int64 => "bigint",
        DataType::Int32 => "integer",
        DataType::Date32 => "date",
        _ => "text",
    }
}

/// COPY text format: tab-separated, `\N` for NULL, escapes for the rest.
fn copy_line(row: &[Option<String>]) -> String {
    let cells: Vec<String> = row
        .iter()
        .map(|c| match c {
            None => "\\N".to_string(),
            Some(s) => s
                .replace('\\', "\\\\")
                .replace('\t', "\\t")
                .replace('\n', "\\n")
                .replace('\r', "\\r"),
        })
        .collect();
    cells.join("\t") + "\n"
}

pub(crate) async fn connect_postgres(url: &str) -> Result<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .context("connecting to PostgreSQL")?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

async fn median<F, Fut>(runs: usize, mut f: F) -> Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    f().await?; // warm-up
    let mut times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        f().await?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}

/// The same join and aggregate on rows already fetched: DataFusion (what
/// the gateway runs after its scans) against PostgreSQL.
pub(crate) async fn local_work(store: &Store, url: &str, report: &mut Report) -> Result<()> {
    let tables = narrow_tables(store);
    let ctx = SessionContext::new();
    let pg = connect_postgres(url).await?;
    for t in &tables {
        let batch = to_batch(t)?;
        ctx.register_table(
            t.name,
            Arc::new(MemTable::try_new(batch.schema(), vec![vec![batch]])?),
        )?;
        let cols: Vec<String> = t
            .columns
            .iter()
            .map(|(n, ty)| format!("{n} {}", pg_type(ty)))
            .collect();
        pg.batch_execute(&format!(
            "DROP TABLE IF EXISTS {0}; CREATE TABLE {0} ({1})",
            t.name,
            cols.join(", ")
        ))
        .await?;
        let sink = pg.copy_in(&format!("COPY {} FROM STDIN", t.name)).await?;
        futures::pin_mut!(sink);
        let mut buf = String::new();
        for row in &t.rows {
            buf.push_str(&copy_line(row));
            if buf.len() > 1 << 20 {
                sink.send(Bytes::from(std::mem::take(&mut buf))).await?;
            }
        }
        sink.send(Bytes::from(buf)).await?;
        sink.as_mut().finish().await?;
        pg.batch_execute(&format!("ANALYZE {}", t.name)).await?;
    }
    let queries = [
        (
            "local join tasks, projects, companies",
            "SELECT c.name, count(*) FROM b_tasks t JOIN b_projects p ON p.id = t.project_id \
             JOIN b_companies c ON c.id = p.company_id GROUP BY c.name",
        ),
        (
            "local aggregate of time entries by person and month",
            "SELECT person_id, date_trunc('month', date) AS month, sum(time) FROM b_time_entries \
             GROUP BY 1, 2",
        ),
    ];
    for (name, sql) in queries {
        let ours = median(5, || async {
            ctx.sql(sql).await?.collect().await?;
            Ok(())
        })
        .await?;
        let theirs = median(5, || async {
            pg.simple_query(sql).await?;
            Ok(())
        })
        .await?;
        report.push(Figure::versus_postgres(name, ours, theirs, 2.0));
    }
    Ok(())
}

/// Rows streamed to a client: our server against PostgreSQL, the same
/// generated rows on both.
pub(crate) async fn streaming(
    ours: std::net::SocketAddr,
    url: &str,
    rows: u64,
    report: &mut Report,
) -> Result<()> {
    let client = super::connect(ours).await?;
    let pg = connect_postgres(url).await?;
    let our_sql = format!(
        "SELECT value AS id, concat('row ', value) AS title, value * 2 AS n \
         FROM generate_series(1, {rows})"
    );
    let pg_sql = format!(
        "SELECT g AS id, 'row ' || g AS title, g * 2 AS n FROM generate_series(1, {rows}) g"
    );
    let ours = median(3, || async {
        client.simple_query(&our_sql).await?;
        Ok(())
    })
    .await?;
    let theirs = median(3, || async {
        pg.simple_query(&pg_sql).await?;
        Ok(())
    })
    .await?;
    report.push(Figure::versus_postgres(
        &format!("stream {rows} rows to a client"),
        ours,
        theirs,
        1.5,
    ));
    Ok(())
}
