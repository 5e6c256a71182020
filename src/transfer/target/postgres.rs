//! PostgreSQL target: a server reached with a `postgres://` URL.
//!
//! Tables get the gateway's own SQL types, in the schema the connection's
//! `search_path` puts first (normally `public`). Decimals, dates, times,
//! timestamps and JSON travel as text and are cast by the server, so no
//! value goes through a float or a client-side time zone.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls};
use tracing::warn;

use super::{
    Batch, BatchOutcome, CHANGES_TABLE, CONFLICTS_TABLE, CapturedChange, ColumnSpec,
    FAILURES_TABLE, FINGERPRINT_COLUMN, IDS_TABLE, PLAN_TABLE, PlanEntry, REFUSED_TABLE, Refusal,
    STATE_TABLE, SyncWrite, TableSpec, TableState, Target, TargetError, parse_stored_time, quote,
};

/// The setting a replication transaction turns on (`SET LOCAL`) so that
/// capture triggers skip its writes; other sessions never see it.
const QUIET_SETTING: &str = "productive.replicating";
use crate::catalog::SqlType;
use crate::transfer::value::{Cell, format_timestamp};

/// A connection to a PostgreSQL server.
pub struct PostgresTarget {
    client: Client,
}

impl PostgresTarget {
    /// Connects to `url` (without TLS: use a loopback or private network).
    ///
    /// # Errors
    /// When the server cannot be reached or refuses the login.
    pub async fn connect(url: &str) -> Result<PostgresTarget, TargetError> {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                warn!(error = %e, "PostgreSQL connection ended");
            }
        });
        Ok(PostgresTarget { client })
    }
}

fn changes_table_sql() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {CHANGES_TABLE} (
            seq bigserial PRIMARY KEY,
            table_name text NOT NULL,
            row_id bigint NOT NULL,
            operation text NOT NULL,
            captured_at timestamptz NOT NULL DEFAULT clock_timestamp()
        );"
    )
}

/// A timestamptz as RFC 3339 text in UTC, whatever the session's zone.
fn utc_text(expr: &str) -> String {
    format!("to_char({expr} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
}

/// The select expression reading a column of type `t` back as a cell.
fn read_expr(name: &str, t: SqlType) -> String {
    let q = quote(name);
    match t {
        SqlType::BigInt | SqlType::Integer => format!("{q}::bigint"),
        SqlType::Boolean | SqlType::Double | SqlType::TextArray => q,
        SqlType::Timestamptz => utc_text(&q),
        _ => format!("{q}::text"),
    }
}

fn read_cell(row: &tokio_postgres::Row, i: usize, t: SqlType) -> Result<Cell, TargetError> {
    Ok(match t {
        SqlType::BigInt | SqlType::Integer => row.try_get::<_, Option<i64>>(i)?.map(Cell::Int),
        SqlType::Boolean => row.try_get::<_, Option<bool>>(i)?.map(Cell::Bool),
        SqlType::Double => row.try_get::<_, Option<f64>>(i)?.map(Cell::Float),
        SqlType::TextArray => row
            .try_get::<_, Option<Vec<Option<String>>>>(i)?
            .map(Cell::TextList),
        _ => row.try_get::<_, Option<String>>(i)?.map(Cell::Text),
    }
    .unwrap_or(Cell::Null))
}

fn column_sql(c: &ColumnSpec) -> String {
    let mut sql = format!("{} {}", quote(&c.name), c.sql_type.pg_name());
    if let Some(table) = &c.references {
        sql.push_str(&format!(
            " REFERENCES {}(id) ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED",
            quote(table)
        ));
    }
    sql
}

/// The placeholder of parameter `n` for a column of type `t`: values that
/// travel as text are cast on the server.
fn placeholder(n: usize, t: SqlType) -> String {
    match t {
        SqlType::BigInt | SqlType::Integer | SqlType::Boolean | SqlType::Double => {
            format!("${n}::{}", t.pg_name())
        }
        SqlType::TextArray => format!("${n}::text[]"),
        _ => format!("${n}::text::{}", t.pg_name()),
    }
}

fn param(cell: &Cell, t: SqlType) -> Box<dyn ToSql + Sync + Send> {
    match (cell, t) {
        (Cell::Null, SqlType::BigInt) => Box::new(None::<i64>),
        (Cell::Null, SqlType::Integer) => Box::new(None::<i32>),
        (Cell::Null, SqlType::Boolean) => Box::new(None::<bool>),
        (Cell::Null, SqlType::Double) => Box::new(None::<f64>),
        (Cell::Null, SqlType::TextArray) => Box::new(None::<Vec<Option<String>>>),
        (Cell::Null, _) => Box::new(None::<String>),
        (Cell::Int(n), SqlType::Integer) => Box::new(i32::try_from(*n).ok()),
        (Cell::Int(n), SqlType::Double) => Box::new(*n as f64),
        (Cell::Int(n), SqlType::BigInt) => Box::new(*n),
        (Cell::Int(n), _) => Box::new(n.to_string()),
        (Cell::Bool(b), SqlType::Boolean) => Box::new(*b),
        (Cell::Bool(b), _) => Box::new(b.to_string()),
        (Cell::Float(f), SqlType::Double) => Box::new(*f),
        (Cell::Float(f), _) => Box::new(f.to_string()),
        (Cell::Text(s), _) => Box::new(s.clone()),
        (Cell::TextList(items), _) => Box::new(items.clone()),
    }
}

#[async_trait]
impl Target for PostgresTarget {
    async fn prepare(&mut self) -> Result<(), TargetError> {
        self.client
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {STATE_TABLE} (
                    table_name text PRIMARY KEY,
                    watermark timestamptz,
                    completed_at timestamptz,
                    updated_at timestamptz NOT NULL
                );
                CREATE TABLE IF NOT EXISTS {FAILURES_TABLE} (
                    table_name text NOT NULL,
                    record_id bigint NOT NULL,
                    reason text NOT NULL,
                    failed_at timestamptz NOT NULL,
                    PRIMARY KEY (table_name, record_id)
                );"
            ))
            .await?;
        Ok(())
    }

    async fn install_capture(&mut self, table: &str) -> Result<(), TargetError> {
        let trigger = quote(&format!("_productive_capture_{table}"));
        self.client
            .batch_execute(&format!(
                "{changes}
                CREATE OR REPLACE FUNCTION _productive_capture() RETURNS trigger
                LANGUAGE plpgsql AS $$
                BEGIN
                    IF coalesce(current_setting('{QUIET_SETTING}', true), '') = 'on' THEN
                        RETURN NULL;
                    END IF;
                    INSERT INTO {CHANGES_TABLE} (table_name, row_id, operation)
                    VALUES (TG_TABLE_NAME,
                            CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END,
                            lower(TG_OP));
                    RETURN NULL;
                END $$;
                DROP TRIGGER IF EXISTS {trigger} ON {table_q};
                CREATE TRIGGER {trigger} AFTER INSERT OR UPDATE OR DELETE ON {table_q}
                FOR EACH ROW EXECUTE FUNCTION _productive_capture();",
                table_q = quote(table),
                changes = changes_table_sql()
            ))
            .await?;
        Ok(())
    }

    async fn captured_changes(&mut self, after: i64) -> Result<Vec<CapturedChange>, TargetError> {
        if self.columns(CHANGES_TABLE).await?.is_none() {
            return Ok(Vec::new());
        }
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT seq, table_name, row_id, operation, {} FROM {CHANGES_TABLE}
                     WHERE seq > $1 ORDER BY seq",
                    utc_text("captured_at")
                ),
                &[&after],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| CapturedChange {
                seq: r.get(0),
                table: r.get(1),
                row_id: r.get(2),
                operation: r.get(3),
                captured_at: parse_stored_time(r.get(4)),
            })
            .collect())
    }

    async fn prepare_sync(&mut self) -> Result<(), TargetError> {
        self.client
            .batch_execute(&format!(
                "{}
                CREATE TABLE IF NOT EXISTS {CONFLICTS_TABLE} (
                    id bigserial PRIMARY KEY,
                    table_name text NOT NULL,
                    row_id bigint NOT NULL,
                    local_values jsonb,
                    remote_values jsonb,
                    policy text NOT NULL,
                    winner text NOT NULL,
                    resolved_at timestamptz NOT NULL
                );
                CREATE TABLE IF NOT EXISTS {PLAN_TABLE} (
                    table_name text NOT NULL,
                    side text NOT NULL,
                    action text NOT NULL,
                    row_id bigint,
                    detail text NOT NULL,
                    planned_at timestamptz NOT NULL
                );
                CREATE TABLE IF NOT EXISTS {REFUSED_TABLE} (
                    table_name text NOT NULL,
                    row_id bigint NOT NULL,
                    operation text NOT NULL,
                    reason text NOT NULL,
                    outcome_unknown boolean NOT NULL,
                    refused_at timestamptz NOT NULL,
                    PRIMARY KEY (table_name, row_id)
                );
                CREATE TABLE IF NOT EXISTS {IDS_TABLE} (
                    table_name text NOT NULL,
                    local_id bigint NOT NULL,
                    productive_id bigint NOT NULL,
                    created_at timestamptz NOT NULL,
                    PRIMARY KEY (table_name, local_id)
                );",
                changes_table_sql()
            ))
            .await?;
        Ok(())
    }

    async fn rows(
        &mut self,
        spec: &TableSpec,
        ids: &[i64],
    ) -> Result<HashMap<i64, Vec<Cell>>, TargetError> {
        let exprs: Vec<String> = spec
            .columns
            .iter()
            .map(|c| read_expr(&c.name, c.sql_type))
            .collect();
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT id, {} FROM {} WHERE id = ANY($1)",
                    exprs.join(", "),
                    quote(&spec.name)
                ),
                &[&ids],
            )
            .await?;
        let mut out = HashMap::new();
        for row in &rows {
            let cells = spec
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| read_cell(row, i + 1, c.sql_type))
                .collect::<Result<Vec<_>, _>>()?;
            out.insert(row.get::<_, i64>(0), cells);
        }
        Ok(out)
    }

    async fn refusals(&mut self, table: &str) -> Result<HashMap<i64, Refusal>, TargetError> {
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT row_id, operation, reason, outcome_unknown FROM {REFUSED_TABLE}
                     WHERE table_name = $1"
                ),
                &[&table],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let refusal = Refusal {
                    row_id: r.get(0),
                    operation: r.get(1),
                    reason: r.get(2),
                    outcome_unknown: r.get(3),
                };
                (refusal.row_id, refusal)
            })
            .collect())
    }

    async fn apply_sync(&mut self, write: &SyncWrite) -> Result<(), TargetError> {
        let now = format_timestamp(chrono::Utc::now());
        let table = &write.table;
        let tx = self.client.transaction().await?;
        tx.batch_execute(&format!("SET LOCAL {QUIET_SETTING} = 'on'"))
            .await?;
        if let Some((row_id, up_to)) = write.consumed {
            tx.execute(
                &format!(
                    "DELETE FROM {CHANGES_TABLE} WHERE table_name = $1 AND row_id = $2 \
                     AND seq <= $3"
                ),
                &[table, &row_id, &up_to],
            )
            .await?;
        }
        if let Some(row_id) = write.clear_refusal {
            tx.execute(
                &format!("DELETE FROM {REFUSED_TABLE} WHERE table_name = $1 AND row_id = $2"),
                &[table, &row_id],
            )
            .await?;
        }
        if let Some((from, to, fingerprint)) = &write.reid {
            tx.execute(
                &format!(
                    "UPDATE {} SET id = $1, {} = $2 WHERE id = $3",
                    quote(table),
                    quote(FINGERPRINT_COLUMN)
                ),
                &[to, fingerprint, from],
            )
            .await?;
            tx.execute(
                &format!(
                    "UPDATE {CHANGES_TABLE} SET row_id = $1 WHERE table_name = $2 AND row_id = $3"
                ),
                &[to, table, from],
            )
            .await?;
            tx.execute(
                &format!(
                    "INSERT INTO {IDS_TABLE} (table_name, local_id, productive_id, created_at)
                     VALUES ($1, $2, $3, $4::text::timestamptz)
                     ON CONFLICT (table_name, local_id) DO UPDATE SET
                       productive_id = excluded.productive_id, created_at = excluded.created_at"
                ),
                &[table, from, to, &now],
            )
            .await?;
        }
        if let Some(r) = &write.refusal {
            tx.execute(
                &format!(
                    "INSERT INTO {REFUSED_TABLE}
                       (table_name, row_id, operation, reason, outcome_unknown, refused_at)
                     VALUES ($1, $2, $3, $4, $5, $6::text::timestamptz)
                     ON CONFLICT (table_name, row_id) DO UPDATE SET operation = excluded.operation,
                       reason = excluded.reason, outcome_unknown = excluded.outcome_unknown,
                       refused_at = excluded.refused_at"
                ),
                &[
                    table,
                    &r.row_id,
                    &r.operation,
                    &r.reason,
                    &r.outcome_unknown,
                    &now,
                ],
            )
            .await?;
        }
        if let Some(c) = &write.conflict {
            tx.execute(
                &format!(
                    "INSERT INTO {CONFLICTS_TABLE} (table_name, row_id, local_values,
                       remote_values, policy, winner, resolved_at)
                     VALUES ($1, $2, $3::text::jsonb, $4::text::jsonb, $5, $6,
                             $7::text::timestamptz)"
                ),
                &[
                    table,
                    &c.row_id,
                    &c.local_values,
                    &c.remote_values,
                    &c.policy,
                    &c.winner,
                    &now,
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn store_plan(&mut self, entries: &[PlanEntry]) -> Result<(), TargetError> {
        let now = format_timestamp(chrono::Utc::now());
        let tx = self.client.transaction().await?;
        tx.execute(&format!("DELETE FROM {PLAN_TABLE}"), &[])
            .await?;
        let stmt = tx
            .prepare(&format!(
                "INSERT INTO {PLAN_TABLE} (table_name, side, action, row_id, detail, planned_at)
                 VALUES ($1, $2, $3, $4, $5, $6::text::timestamptz)"
            ))
            .await?;
        for e in entries {
            tx.execute(
                &stmt,
                &[&e.table, &e.side, &e.action, &e.row_id, &e.detail, &now],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn columns(&mut self, table: &str) -> Result<Option<Vec<String>>, TargetError> {
        let rows = self
            .client
            .query(
                "SELECT a.attname::text FROM pg_attribute a
                 WHERE a.attrelid = to_regclass(quote_ident($1))
                   AND a.attnum > 0 AND NOT a.attisdropped
                 ORDER BY a.attnum",
                &[&table],
            )
            .await?;
        let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        Ok((!names.is_empty()).then_some(names))
    }

    async fn create_table(&mut self, spec: &TableSpec) -> Result<(), TargetError> {
        let mut cols: Vec<String> = spec
            .columns
            .iter()
            .map(|c| {
                if c.name == "id" {
                    "id bigint PRIMARY KEY".to_string()
                } else {
                    column_sql(c)
                }
            })
            .collect();
        cols.push(format!("{} text", quote(FINGERPRINT_COLUMN)));
        self.client
            .batch_execute(&format!(
                "CREATE TABLE {} ({})",
                quote(&spec.name),
                cols.join(", ")
            ))
            .await?;
        Ok(())
    }

    async fn add_column(&mut self, table: &str, column: &ColumnSpec) -> Result<(), TargetError> {
        self.client
            .batch_execute(&format!(
                "ALTER TABLE {} ADD COLUMN {}",
                quote(table),
                column_sql(column)
            ))
            .await?;
        Ok(())
    }

    async fn state(&mut self, table: &str) -> Result<Option<TableState>, TargetError> {
        let row = self
            .client
            .query_opt(
                &format!(
                    "SELECT to_char(watermark AT TIME ZONE 'UTC',
                                    'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
                            to_char(completed_at AT TIME ZONE 'UTC',
                                    'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')
                     FROM {STATE_TABLE} WHERE table_name = $1"
                ),
                &[&table],
            )
            .await?;
        Ok(row.map(|r| TableState {
            watermark: parse_stored_time(r.get(0)),
            completed_at: parse_stored_time(r.get(1)),
        }))
    }

    async fn fingerprints(
        &mut self,
        table: &str,
        ids: &[i64],
    ) -> Result<HashMap<i64, String>, TargetError> {
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT id, {} FROM {} WHERE id = ANY($1)",
                    quote(FINGERPRINT_COLUMN),
                    quote(table)
                ),
                &[&ids],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get::<_, i64>(0),
                    r.get::<_, Option<String>>(1).unwrap_or_default(),
                )
            })
            .collect())
    }

    async fn ids(&mut self, table: &str) -> Result<HashSet<i64>, TargetError> {
        let rows = self
            .client
            .query(&format!("SELECT id FROM {}", quote(table)), &[])
            .await?;
        Ok(rows.iter().map(|r| r.get::<_, i64>(0)).collect())
    }

    async fn queued_failures(&mut self, table: &str) -> Result<Vec<i64>, TargetError> {
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT record_id FROM {FAILURES_TABLE} WHERE table_name = $1
                     ORDER BY record_id"
                ),
                &[&table],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get::<_, i64>(0)).collect())
    }

    async fn commit(
        &mut self,
        spec: &TableSpec,
        batch: &Batch,
    ) -> Result<BatchOutcome, TargetError> {
        let now = format_timestamp(chrono::Utc::now());
        let tx = self.client.transaction().await?;
        tx.batch_execute(&format!("SET LOCAL {QUIET_SETTING} = 'on'"))
            .await?;
        let mut outcome = BatchOutcome::default();
        let table = quote(&spec.name);
        if !batch.upserts.is_empty() {
            let names: Vec<String> = spec.columns.iter().map(|c| quote(&c.name)).collect();
            let mut marks: Vec<String> = spec
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| placeholder(i + 1, c.sql_type))
                .collect();
            marks.push(format!("${}::text", names.len() + 1));
            let fp = quote(FINGERPRINT_COLUMN);
            let updates: Vec<String> = names
                .iter()
                .chain(std::iter::once(&fp))
                .filter(|n| *n != "\"id\"")
                .map(|n| format!("{n} = excluded.{n}"))
                .collect();
            let guard = match batch.skip_pending {
                true => format!(
                    "NOT EXISTS (SELECT 1 FROM {CHANGES_TABLE} WHERE table_name = ${}::text \
                     AND row_id = $1)",
                    names.len() + 2
                ),
                false => "true".to_string(),
            };
            // xmax is 0 exactly on rows this statement inserted.
            let sql = format!(
                "INSERT INTO {table} ({}, {fp}) SELECT {} WHERE {guard} \
                 ON CONFLICT (id) DO UPDATE SET {} RETURNING (xmax = 0)",
                names.join(", "),
                marks.join(", "),
                updates.join(", ")
            );
            let stmt = tx.prepare(&sql).await?;
            for row in &batch.upserts {
                let mut values: Vec<Box<dyn ToSql + Sync + Send>> = row
                    .cells
                    .iter()
                    .zip(&spec.columns)
                    .map(|(cell, c)| param(cell, c.sql_type))
                    .collect();
                values.push(Box::new(row.fingerprint.clone()));
                if batch.skip_pending {
                    values.push(Box::new(spec.name.clone()));
                }
                let refs: Vec<&(dyn ToSql + Sync)> = values
                    .iter()
                    .map(|v| v.as_ref() as &(dyn ToSql + Sync))
                    .collect();
                let Some(written) = tx.query_opt(&stmt, &refs).await? else {
                    continue;
                };
                if written.get::<_, bool>(0) {
                    outcome.inserted += 1;
                } else {
                    outcome.updated += 1;
                }
            }
        }
        if !batch.deletes.is_empty() {
            let guard = match batch.skip_pending {
                true => format!(
                    "NOT EXISTS (SELECT 1 FROM {CHANGES_TABLE} c \
                     WHERE c.table_name = $2 AND c.row_id = {table}.id)"
                ),
                false => "$2::text IS NOT NULL".to_string(),
            };
            outcome.deleted = tx
                .execute(
                    &format!("DELETE FROM {table} WHERE id = ANY($1) AND {guard}"),
                    &[&batch.deletes, &spec.name],
                )
                .await?;
        }
        let resolved: Vec<i64> = batch
            .resolved
            .iter()
            .copied()
            .chain(batch.upserts.iter().map(|r| r.id))
            .collect();
        if !resolved.is_empty() {
            tx.execute(
                &format!(
                    "DELETE FROM {FAILURES_TABLE} WHERE table_name = $1 AND record_id = ANY($2)"
                ),
                &[&spec.name, &resolved],
            )
            .await?;
        }
        for (id, reason) in &batch.failures {
            tx.execute(
                &format!(
                    "INSERT INTO {FAILURES_TABLE} (table_name, record_id, reason, failed_at)
                     VALUES ($1, $2, $3, $4::text::timestamptz)
                     ON CONFLICT (table_name, record_id)
                     DO UPDATE SET reason = excluded.reason, failed_at = excluded.failed_at"
                ),
                &[&spec.name, id, reason, &now],
            )
            .await?;
        }
        if batch.reset_state {
            tx.execute(
                &format!("DELETE FROM {STATE_TABLE} WHERE table_name = $1"),
                &[&spec.name],
            )
            .await?;
        }
        if let Some(state) = &batch.state {
            let watermark = state.watermark.map(format_timestamp);
            let completed = state.completed_at.map(format_timestamp);
            tx.execute(
                &format!(
                    "INSERT INTO {STATE_TABLE} (table_name, watermark, completed_at, updated_at)
                     VALUES ($1, $2::text::timestamptz, $3::text::timestamptz,
                             $4::text::timestamptz)
                     ON CONFLICT (table_name) DO UPDATE SET watermark = excluded.watermark,
                       completed_at = excluded.completed_at, updated_at = excluded.updated_at"
                ),
                &[&spec.name, &watermark, &completed, &now],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }
}
