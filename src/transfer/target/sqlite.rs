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
    Batch, BatchOutcome, CHANGES_TABLE, CapturedChange, ColumnSpec, FAILURES_TABLE,
    FINGERPRINT_COLUMN, STATE_TABLE, TableSpec, TableState, Target, TargetError, parse_stored_time,
    quote,
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
        let mut sql = format!(
            "CREATE TABLE IF NOT EXISTS {CHANGES_TABLE} (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                table_name TEXT NOT NULL,
                row_id INTEGER NOT NULL,
                operation TEXT NOT NULL,
                captured_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
            );"
        );
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
            "SELECT seq, table_name, row_id, operation FROM {CHANGES_TABLE}
             WHERE seq > ?1 ORDER BY seq"
        ))?;
        let changes = stmt
            .query_map([after], |r| {
                Ok(CapturedChange {
                    seq: r.get(0)?,
                    table: r.get(1)?,
                    row_id: r.get(2)?,
                    operation: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(changes)
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
            let sql = format!(
                "INSERT INTO {table} ({}, {fp}) VALUES ({}) ON CONFLICT(id) DO UPDATE SET {}",
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
                stmt.execute(params_from_iter(values.iter()))?;
                if existed {
                    outcome.updated += 1;
                } else {
                    outcome.inserted += 1;
                }
            }
        }
        if !batch.deletes.is_empty() {
            let mut stmt = tx.prepare(&format!("DELETE FROM {table} WHERE id = ?1"))?;
            for id in &batch.deletes {
                outcome.deleted += stmt.execute([id])? as u64;
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
