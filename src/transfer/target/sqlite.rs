//! SQLite target: one file, no server.
//!
//! Types follow SQLite's affinities: integers and booleans are INTEGER,
//! doubles REAL, decimals NUMERIC, and dates, times and timestamps TEXT in
//! ISO 8601 (UTC for timestamps) so they sort and compare as text. `text[]`
//! and `jsonb` columns hold JSON text. Foreign keys are declared but, as
//! SQLite does by default, only enforced by connections that turn
//! `PRAGMA foreign_keys` on.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use rusqlite::types::{ToSqlOutput, Value as SqlValue};
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::{
    Batch, BatchOutcome, CHANGES_TABLE, CONFLICTS_TABLE, CapturedChange, ColumnSpec,
    FAILURES_TABLE, FINGERPRINT_COLUMN, IDS_TABLE, PLAN_TABLE, PlanEntry, REFUSED_TABLE, Refusal,
    STATE_TABLE, SyncWrite, TableSpec, TableState, Target, TargetError, parse_stored_time, quote,
};

/// While a replication transaction writes, this table holds a row: capture
/// triggers skip changes then. SQLite has one writer at a time and the row
/// is gone before the commit, so no other connection ever sees it.
const QUIET_TABLE: &str = "_productive_sync_quiet";
use crate::catalog::SqlType;
use crate::transfer::value::{Cell, format_timestamp};

/// A SQLite database file.
pub struct SqliteTarget {
    conn: Connection,
}

impl SqliteTarget {
    /// Opens (or creates) the file at `path`.
    ///
    /// # Errors
    /// When the file cannot be opened as a SQLite database.
    pub fn open(path: &str) -> Result<SqliteTarget, TargetError> {
        let conn = Connection::open(path)?;
        // WAL lets readers (dashboards) query while a run writes.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        Ok(SqliteTarget { conn })
    }
}

fn sqlite_type(t: SqlType) -> &'static str {
    match t {
        SqlType::BigInt | SqlType::Integer | SqlType::Boolean => "INTEGER",
        SqlType::Double => "REAL",
        SqlType::Numeric => "NUMERIC",
        SqlType::Text
        | SqlType::Jsonb
        | SqlType::TextArray
        | SqlType::Date
        | SqlType::Timestamptz
        | SqlType::Time => "TEXT",
    }
}

fn column_sql(c: &ColumnSpec) -> String {
    let mut sql = format!("{} {}", quote(&c.name), sqlite_type(c.sql_type));
    if let Some(table) = &c.references {
        sql.push_str(&format!(
            " REFERENCES {}(id) ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED",
            quote(table)
        ));
    }
    sql
}

fn changes_table_sql() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {CHANGES_TABLE} (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            table_name TEXT NOT NULL,
            row_id INTEGER NOT NULL,
            operation TEXT NOT NULL,
            captured_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        );"
    )
}

/// A stored value as a cell, before [`crate::transfer::value::stored_cell`]
/// reads it in the column's type.
fn from_sql(value: SqlValue) -> Cell {
    match value {
        SqlValue::Null => Cell::Null,
        SqlValue::Integer(n) => Cell::Int(n),
        SqlValue::Real(f) => Cell::Float(f),
        SqlValue::Text(s) => Cell::Text(s),
        SqlValue::Blob(b) => Cell::Text(String::from_utf8_lossy(&b).into_owned()),
    }
}

fn to_sql(cell: &Cell) -> ToSqlOutput<'static> {
    ToSqlOutput::Owned(match cell {
        Cell::Null => SqlValue::Null,
        Cell::Int(n) => SqlValue::Integer(*n),
        Cell::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Cell::Float(f) => SqlValue::Real(*f),
        Cell::Text(s) => SqlValue::Text(s.clone()),
        Cell::TextList(items) => {
            SqlValue::Text(serde_json::to_string(items).unwrap_or_else(|_| "[]".into()))
        }
    })
}

#[async_trait]
impl Target for SqliteTarget {
    async fn prepare(&mut self) -> Result<(), TargetError> {
        self.conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {STATE_TABLE} (
                table_name TEXT PRIMARY KEY,
                watermark TEXT,
                completed_at TEXT,
                updated_at TEXT NOT NULL
            );
            CREATE TABLE IF NOT EXISTS {FAILURES_TABLE} (
                table_name TEXT NOT NULL,
                record_id INTEGER NOT NULL,
                reason TEXT NOT NULL,
                failed_at TEXT NOT NULL,
                PRIMARY KEY (table_name, record_id)
            );
            CREATE TABLE IF NOT EXISTS {QUIET_TABLE} (writing INTEGER);"
        ))?;
        Ok(())
    }

    async fn install_capture(&mut self, table: &str) -> Result<(), TargetError> {
        let mut sql = changes_table_sql();
        let literal = table.replace('\'', "''");
        for (event, row) in [("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")] {
            let trigger = quote(&format!(
                "_productive_capture_{table}_{}",
                event.to_lowercase()
            ));
            sql.push_str(&format!(
                "CREATE TRIGGER IF NOT EXISTS {trigger} AFTER {event} ON {}
                 WHEN NOT EXISTS (SELECT 1 FROM {QUIET_TABLE})
                 BEGIN
                   INSERT INTO {CHANGES_TABLE} (table_name, row_id, operation)
                   VALUES ('{literal}', {row}.id, '{}');
                 END;",
                quote(table),
                event.to_lowercase()
            ));
        }
        self.conn.execute_batch(&sql)?;
        Ok(())
    }

    async fn captured_changes(&mut self, after: i64) -> Result<Vec<CapturedChange>, TargetError> {
        if self.columns(CHANGES_TABLE).await?.is_none() {
            return Ok(Vec::new());
        }
        let mut stmt = self.conn.prepare(&format!(
            "SELECT seq, table_name, row_id, operation, captured_at FROM {CHANGES_TABLE}
             WHERE seq > ?1 ORDER BY seq"
        ))?;
        let changes = stmt
            .query_map([after], |r| {
                Ok(CapturedChange {
                    seq: r.get(0)?,
                    table: r.get(1)?,
                    row_id: r.get(2)?,
                    operation: r.get(3)?,
                    captured_at: parse_stored_time(r.get(4)?),
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(changes)
    }

    async fn prepare_sync(&mut self) -> Result<(), TargetError> {
        self.conn.execute_batch(&format!(
            "{}
            CREATE TABLE IF NOT EXISTS {CONFLICTS_TABLE} (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                table_name TEXT NOT NULL,
                row_id INTEGER NOT NULL,
                local_values TEXT,
                remote_values TEXT,
                policy TEXT NOT NULL,
                winner TEXT NOT NULL,
                resolved_at TEXT NOT NULL
            );
            CREATE TABLE IF NOT EXISTS {PLAN_TABLE} (
                table_name TEXT NOT NULL,
                side TEXT NOT NULL,
                action TEXT NOT NULL,
                row_id INTEGER,
                detail TEXT NOT NULL,
                planned_at TEXT NOT NULL
            );
            CREATE TABLE IF NOT EXISTS {REFUSED_TABLE} (
                table_name TEXT NOT NULL,
                row_id INTEGER NOT NULL,
                operation TEXT NOT NULL,
                reason TEXT NOT NULL,
                outcome_unknown INTEGER NOT NULL,
                refused_at TEXT NOT NULL,
                PRIMARY KEY (table_name, row_id)
            );
            CREATE TABLE IF NOT EXISTS {IDS_TABLE} (
                table_name TEXT NOT NULL,
                local_id INTEGER NOT NULL,
                productive_id INTEGER NOT NULL,
                created_at TEXT NOT NULL,
                PRIMARY KEY (table_name, local_id)
            );",
            changes_table_sql()
        ))?;
        Ok(())
    }

    async fn rows(
        &mut self,
        spec: &TableSpec,
        ids: &[i64],
    ) -> Result<HashMap<i64, Vec<Cell>>, TargetError> {
        let names: Vec<String> = spec.columns.iter().map(|c| quote(&c.name)).collect();
        let mut out = HashMap::new();
        for chunk in ids.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(",");
            let mut stmt = self.conn.prepare(&format!(
                "SELECT id, {} FROM {} WHERE id IN ({marks})",
                names.join(", "),
                quote(&spec.name)
            ))?;
            let rows = stmt.query_map(params_from_iter(chunk.iter()), |r| {
                let cells = (1..=names.len())
                    .map(|i| r.get::<_, SqlValue>(i).map(from_sql))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((r.get::<_, i64>(0)?, cells))
            })?;
            for row in rows {
                let (id, cells) = row?;
                out.insert(id, cells);
            }
        }
        Ok(out)
    }

    async fn refusals(&mut self, table: &str) -> Result<HashMap<i64, Refusal>, TargetError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT row_id, operation, reason, outcome_unknown FROM {REFUSED_TABLE}
             WHERE table_name = ?1"
        ))?;
        let rows = stmt.query_map([table], |r| {
            Ok(Refusal {
                row_id: r.get(0)?,
                operation: r.get(1)?,
                reason: r.get(2)?,
                outcome_unknown: r.get::<_, i64>(3)? != 0,
            })
        })?;
        let mut out = HashMap::new();
        for row in rows {
            let refusal = row?;
            out.insert(refusal.row_id, refusal);
        }
        Ok(out)
    }

    async fn apply_sync(&mut self, write: &SyncWrite) -> Result<(), TargetError> {
        let now = format_timestamp(chrono::Utc::now());
        let table = &write.table;
        let tx = self.conn.transaction()?;
        tx.execute(
            &format!("INSERT INTO {QUIET_TABLE} (writing) VALUES (1)"),
            [],
        )?;
        if let Some((row_id, up_to)) = write.consumed {
            tx.execute(
                &format!(
                    "DELETE FROM {CHANGES_TABLE} WHERE table_name = ?1 AND row_id = ?2 \
                     AND seq <= ?3"
                ),
                params![table, row_id, up_to],
            )?;
        }
        if let Some(row_id) = write.clear_refusal {
            tx.execute(
                &format!("DELETE FROM {REFUSED_TABLE} WHERE table_name = ?1 AND row_id = ?2"),
                params![table, row_id],
            )?;
        }
        if let Some((from, to, fingerprint)) = &write.reid {
            tx.execute(
                &format!(
                    "UPDATE {} SET id = ?1, {} = ?2 WHERE id = ?3",
                    quote(table),
                    quote(FINGERPRINT_COLUMN)
                ),
                params![to, fingerprint, from],
            )?;
            tx.execute(
                &format!(
                    "UPDATE {CHANGES_TABLE} SET row_id = ?1 WHERE table_name = ?2 AND row_id = ?3"
                ),
                params![to, table, from],
            )?;
            tx.execute(
                &format!(
                    "INSERT INTO {IDS_TABLE} (table_name, local_id, productive_id, created_at)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(table_name, local_id) DO UPDATE SET
                       productive_id = excluded.productive_id, created_at = excluded.created_at"
                ),
                params![table, from, to, now],
            )?;
        }
        if let Some(r) = &write.refusal {
            tx.execute(
                &format!(
                    "INSERT INTO {REFUSED_TABLE}
                       (table_name, row_id, operation, reason, outcome_unknown, refused_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT(table_name, row_id) DO UPDATE SET operation = excluded.operation,
                       reason = excluded.reason, outcome_unknown = excluded.outcome_unknown,
                       refused_at = excluded.refused_at"
                ),
                params![
                    table,
                    r.row_id,
                    r.operation,
                    r.reason,
                    i64::from(r.outcome_unknown),
                    now
                ],
            )?;
        }
        if let Some(c) = &write.conflict {
            tx.execute(
                &format!(
                    "INSERT INTO {CONFLICTS_TABLE} (table_name, row_id, local_values,
                       remote_values, policy, winner, resolved_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                ),
                params![
                    table,
                    c.row_id,
                    c.local_values,
                    c.remote_values,
                    c.policy,
                    c.winner,
                    now
                ],
            )?;
        }
        tx.execute(&format!("DELETE FROM {QUIET_TABLE}"), [])?;
        tx.commit()?;
        Ok(())
    }

    async fn store_plan(&mut self, entries: &[PlanEntry]) -> Result<(), TargetError> {
        let now = format_timestamp(chrono::Utc::now());
        let tx = self.conn.transaction()?;
        tx.execute(&format!("DELETE FROM {PLAN_TABLE}"), [])?;
        {
            let mut stmt = tx.prepare(&format!(
                "INSERT INTO {PLAN_TABLE} (table_name, side, action, row_id, detail, planned_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
            ))?;
            for e in entries {
                stmt.execute(params![e.table, e.side, e.action, e.row_id, e.detail, now])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    async fn columns(&mut self, table: &str) -> Result<Option<Vec<String>>, TargetError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?;
        let names: Vec<String> = stmt
            .query_map([table], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok((!names.is_empty()).then_some(names))
    }

    async fn create_table(&mut self, spec: &TableSpec) -> Result<(), TargetError> {
        let mut cols: Vec<String> = spec
            .columns
            .iter()
            .map(|c| {
                if c.name == "id" {
                    format!("{} INTEGER PRIMARY KEY", quote("id"))
                } else {
                    column_sql(c)
                }
            })
            .collect();
        cols.push(format!("{} TEXT", quote(FINGERPRINT_COLUMN)));
        self.conn.execute(
            &format!("CREATE TABLE {} ({})", quote(&spec.name), cols.join(", ")),
            [],
        )?;
        Ok(())
    }

    async fn add_column(&mut self, table: &str, column: &ColumnSpec) -> Result<(), TargetError> {
        // With foreign keys on, SQLite takes a REFERENCES clause in ADD
        // COLUMN only when the default is NULL, which it is here.
        self.conn.execute(
            &format!(
                "ALTER TABLE {} ADD COLUMN {}",
                quote(table),
                column_sql(column)
            ),
            [],
        )?;
        Ok(())
    }

    async fn state(&mut self, table: &str) -> Result<Option<TableState>, TargetError> {
        let row = self
            .conn
            .query_row(
                &format!("SELECT watermark, completed_at FROM {STATE_TABLE} WHERE table_name = ?1"),
                [table],
                |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?,
                        r.get::<_, Option<String>>(1)?,
                    ))
                },
            )
            .optional()?;
        Ok(row.map(|(w, c)| TableState {
            watermark: parse_stored_time(w),
            completed_at: parse_stored_time(c),
        }))
    }

    async fn fingerprints(
        &mut self,
        table: &str,
        ids: &[i64],
    ) -> Result<HashMap<i64, String>, TargetError> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(",");
            let mut stmt = self.conn.prepare(&format!(
                "SELECT id, {} FROM {} WHERE id IN ({marks})",
                quote(FINGERPRINT_COLUMN),
                quote(table)
            ))?;
            let rows = stmt.query_map(params_from_iter(chunk.iter()), |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?))
            })?;
            for row in rows {
                let (id, fp) = row?;
                out.insert(id, fp.unwrap_or_default());
            }
        }
        Ok(out)
    }

    async fn ids(&mut self, table: &str) -> Result<HashSet<i64>, TargetError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT id FROM {}", quote(table)))?;
        let ids = stmt
            .query_map([], |r| r.get::<_, i64>(0))?
            .collect::<Result<_, _>>()?;
        Ok(ids)
    }

    async fn queued_failures(&mut self, table: &str) -> Result<Vec<i64>, TargetError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT record_id FROM {FAILURES_TABLE} WHERE table_name = ?1 ORDER BY record_id"
        ))?;
        let ids = stmt
            .query_map([table], |r| r.get::<_, i64>(0))?
            .collect::<Result<_, _>>()?;
        Ok(ids)
    }

    async fn commit(
        &mut self,
        spec: &TableSpec,
        batch: &Batch,
    ) -> Result<BatchOutcome, TargetError> {
        let now = format_timestamp(chrono::Utc::now());
        let tx = self.conn.transaction()?;
        tx.execute(
            &format!("INSERT INTO {QUIET_TABLE} (writing) VALUES (1)"),
            [],
        )?;
        let mut outcome = BatchOutcome::default();
        let table = quote(&spec.name);
        if !batch.upserts.is_empty() {
            let names: Vec<String> = spec.columns.iter().map(|c| quote(&c.name)).collect();
            let marks: Vec<String> = (1..=names.len() + 1).map(|i| format!("?{i}")).collect();
            let fp = quote(FINGERPRINT_COLUMN);
            let updates: Vec<String> = names
                .iter()
                .chain(std::iter::once(&fp))
                .filter(|n| *n != "\"id\"")
                .map(|n| format!("{n} = excluded.{n}"))
                .collect();
            // `WHERE true` keeps SQLite from reading ON CONFLICT as a join.
            let guard = match batch.skip_pending {
                true => format!(
                    "NOT EXISTS (SELECT 1 FROM {CHANGES_TABLE} WHERE table_name = ?{} \
                     AND row_id = ?1)",
                    names.len() + 2
                ),
                false => "true".to_string(),
            };
            let sql = format!(
                "INSERT INTO {table} ({}, {fp}) SELECT {} WHERE {guard} \
                 ON CONFLICT(id) DO UPDATE SET {}",
                names.join(", "),
                marks.join(", "),
                updates.join(", ")
            );
            let mut exists = tx.prepare(&format!("SELECT 1 FROM {table} WHERE id = ?1"))?;
            let mut stmt = tx.prepare(&sql)?;
            for row in &batch.upserts {
                let existed = exists.exists([row.id])?;
                let mut values: Vec<ToSqlOutput<'static>> = row.cells.iter().map(to_sql).collect();
                values.push(ToSqlOutput::Owned(SqlValue::Text(row.fingerprint.clone())));
                if batch.skip_pending {
                    values.push(ToSqlOutput::Owned(SqlValue::Text(spec.name.clone())));
                }
                if stmt.execute(params_from_iter(values.iter()))? == 0 {
                    continue;
                }
                if existed {
                    outcome.updated += 1;
                } else {
                    outcome.inserted += 1;
                }
            }
        }
        if !batch.deletes.is_empty() {
            let guard = match batch.skip_pending {
                true => format!(
                    "NOT EXISTS (SELECT 1 FROM {CHANGES_TABLE} WHERE table_name = ?2 \
                     AND row_id = ?1)"
                ),
                false => "?2 IS NOT NULL".to_string(),
            };
            let mut stmt = tx.prepare(&format!("DELETE FROM {table} WHERE id = ?1 AND {guard}"))?;
            for id in &batch.deletes {
                outcome.deleted += stmt.execute(params![id, spec.name])? as u64;
            }
        }
        {
            let mut resolve = tx.prepare(&format!(
                "DELETE FROM {FAILURES_TABLE} WHERE table_name = ?1 AND record_id = ?2"
            ))?;
            for id in batch
                .resolved
                .iter()
                .chain(batch.upserts.iter().map(|r| &r.id))
            {
                resolve.execute(params![spec.name, id])?;
            }
            let mut fail = tx.prepare(&format!(
                "INSERT INTO {FAILURES_TABLE} (table_name, record_id, reason, failed_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(table_name, record_id)
                 DO UPDATE SET reason = excluded.reason, failed_at = excluded.failed_at"
            ))?;
            for (id, reason) in &batch.failures {
                fail.execute(params![spec.name, id, reason, now])?;
            }
        }
        if batch.reset_state {
            tx.execute(
                &format!("DELETE FROM {STATE_TABLE} WHERE table_name = ?1"),
                [&spec.name],
            )?;
        }
        if let Some(state) = &batch.state {
            tx.execute(
                &format!(
                    "INSERT INTO {STATE_TABLE} (table_name, watermark, completed_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(table_name) DO UPDATE SET watermark = excluded.watermark,
                       completed_at = excluded.completed_at, updated_at = excluded.updated_at"
                ),
                params![
                    spec.name,
                    state.watermark.map(format_timestamp),
                    state.completed_at.map(format_timestamp),
                    now
                ],
            )?;
        }
        tx.execute(&format!("DELETE FROM {QUIET_TABLE}"), [])?;
        tx.commit()?;
        Ok(outcome)
    }
}
