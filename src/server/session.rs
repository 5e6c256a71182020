//! Per-connection state: the DataFusion session, PostgreSQL settings,
//! cursors, and the control that lets a cancel request or a timeout stop
//! the running statement.
//!
//! One [`Session`] is created at login (from `Backend::new_session`) and kept
//! in pgwire's per-connection `SessionExtensions`, so nothing a client changes
//! is visible to another connection.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use datafusion::common::config::ConfigOptions;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use futures::stream::BoxStream;
use pgwire::api::results::FieldInfo;
use pgwire::types::format::FormatOptions;
use tokio::sync::watch;
use tokio::time::Instant;

use super::Login;
use super::errors::{Interruption, ServerError};
use super::statements::Setting;

/// Everything one connection owns.
pub struct Session {
    /// The connection's own DataFusion context.
    pub ctx: SessionContext,
    /// Who logged in.
    pub login: Login,
    /// PostgreSQL settings (`SET`/`SHOW`), by canonical name.
    settings: Mutex<BTreeMap<&'static str, String>>,
    /// DataFusion options as they were at login, for `RESET`.
    initial_options: ConfigOptions,
    /// Open cursors by name (`DECLARE`/`FETCH`/`CLOSE`).
    pub(crate) cursors: tokio::sync::Mutex<HashMap<String, Cursor>>,
    /// Stops the running statement on cancel or timeout.
    pub control: Arc<StatementControl>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user", &self.login.user)
            .finish()
    }
}

/// An open cursor: the remaining rows of a query, already encoded.
pub(crate) struct Cursor {
    pub schema: datafusion::arrow::datatypes::SchemaRef,
    pub fields: Arc<Vec<FieldInfo>>,
    pub rows: pgwire::api::results::SendableRowStream,
}

impl Session {
    /// Wraps a freshly created context; settings start at their defaults.
    pub fn new(ctx: SessionContext, login: Login) -> Session {
        let initial_options = ctx.state().config_options().as_ref().clone();
        let settings = Setting::ALL
            .iter()
            .map(|s| (s.name, s.default.to_owned()))
            .collect();
        Session {
            ctx,
            login,
            settings: Mutex::new(settings),
            initial_options,
            cursors: tokio::sync::Mutex::new(HashMap::new()),
            control: Arc::new(StatementControl::new()),
        }
    }

    fn settings(&self) -> MutexGuard<'_, BTreeMap<&'static str, String>> {
        // A poisoned lock only means another statement panicked mid-update;
        // the map itself is always in a usable state.
        self.settings.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Current value of a PostgreSQL setting (canonical name).
    pub fn setting(&self, name: &str) -> Option<String> {
        self.settings().get(name).cloned()
    }

    /// Stores a (validated) value of a PostgreSQL setting.
    pub(crate) fn store_setting(&self, name: &'static str, value: String) {
        self.settings().insert(name, value);
    }

    /// All PostgreSQL settings with their current values.
    pub fn all_settings(&self) -> Vec<(&'static str, String)> {
        self.settings()
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    }

    /// DataFusion options as they were when the session was created.
    pub(crate) fn initial_options(&self) -> &ConfigOptions {
        &self.initial_options
    }

    /// `statement_timeout` as a duration; `None` when disabled.
    pub fn statement_timeout(&self) -> Option<Duration> {
        let ms: u64 = self.setting("statement_timeout")?.parse().ok()?;
        (ms > 0).then(|| Duration::from_millis(ms))
    }

    /// How values are rendered in text format for this session.
    pub fn format_options(&self) -> Arc<FormatOptions> {
        let mut options = FormatOptions::default();
        if let Some(v) = self.setting("DateStyle") {
            options.date_style = v;
        }
        if let Some(v) = self.setting("IntervalStyle") {
            options.interval_style = v;
        }
        if let Some(v) = self.setting("bytea_output") {
            options.bytea_output = v;
        }
        if let Some(v) = self.setting("TimeZone") {
            options.time_zone = v;
        }
        if let Some(v) = self
            .setting("extra_float_digits")
            .and_then(|v| v.parse().ok())
        {
            options.extra_float_digits = v;
        }
        Arc::new(options)
    }
}

/// Lets another task stop whatever statement is running on a connection.
///
/// Each cancel bumps a generation counter; a statement remembers the
/// generation it started under and stops when it changes. Cancels that arrive
/// while nothing runs are ignored, as in PostgreSQL.
#[derive(Debug)]
pub struct StatementControl {
    generation: watch::Sender<u64>,
    current: Mutex<Current>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Current {
    active: bool,
    generation: u64,
    deadline: Option<Instant>,
}

impl StatementControl {
    fn new() -> StatementControl {
        StatementControl {
            generation: watch::Sender::new(0),
            current: Mutex::new(Current::default()),
        }
    }

    fn current(&self) -> MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks the start of a statement (one Query or Execute message).
    pub fn begin(&self, timeout: Option<Duration>) {
        let generation = *self.generation.borrow();
        *self.current() = Current {
            active: true,
            generation,
            deadline: timeout.map(|t| Instant::now() + t),
        };
    }

    /// Marks the end of the statement; later cancels are ignored.
    pub fn end(&self) {
        self.current().active = false;
    }

    /// Cancels the running statement, if any. Returns whether one was running.
    pub fn cancel(&self) -> bool {
        if !self.current().active {
            return false;
        }
        self.generation.send_modify(|g| *g += 1);
        true
    }

    /// Resolves when the running statement must stop, saying why.
    pub async fn interrupted(&self) -> Interruption {
        let current = *self.current();
        let mut rx = self.generation.subscribe();
        let cancelled = async move {
            // The sender lives as long as `self`, so this only fails when
            // the connection is already gone; treat that as a cancel.
            let _ = rx.wait_for(|g| *g != current.generation).await;
            Interruption::UserRequest
        };
        match current.deadline {
            Some(deadline) => tokio::select! {
                why = cancelled => why,
                _ = tokio::time::sleep_until(deadline) => Interruption::Timeout,
            },
            None => cancelled.await,
        }
    }

    /// Runs `fut` unless the statement is cancelled or times out first; the
    /// future is dropped in that case, which drops its work.
    pub async fn run<T, F>(&self, fut: F) -> Result<T, ServerError>
    where
        F: Future<Output = Result<T, ServerError>>,
    {
        tokio::select! {
            biased;
            why = self.interrupted() => Err(ServerError::Interrupted(why)),
            out = fut => out,
        }
    }
}

/// Wraps a record batch stream so it ends with a 57014 error as soon as the
/// statement is cancelled or times out. The inner stream is dropped at that
/// point, which stops its work.
pub fn guard_stream(
    control: Arc<StatementControl>,
    inner: SendableRecordBatchStream,
) -> BoxStream<'static, Result<datafusion::arrow::record_batch::RecordBatch, ServerError>> {
    futures::stream::unfold(Some(inner), move |state| {
        let control = control.clone();
        async move {
            let mut inner = state?;
            tokio::select! {
                biased;
                why = control.interrupted() => {
                    drop(inner);
                    Some((Err(ServerError::Interrupted(why)), None))
                }
                item = inner.next() => match item {
                    Some(Ok(batch)) => Some((Ok(batch), Some(inner))),
                    Some(Err(e)) => Some((Err(ServerError::DataFusion(e)), None)),
                    None => None,
                },
            }
        }
    })
    .fuse()
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cancel_only_hits_a_running_statement() {
        let control = StatementControl::new();
        assert!(!control.cancel(), "idle cancel must be ignored");

        control.begin(None);
        let waiter = control.interrupted();
        assert!(control.cancel());
        assert_eq!(waiter.await, Interruption::UserRequest);
        control.end();

        // A new statement starts clean even after an earlier cancel.
        control.begin(Some(Duration::from_millis(20)));
        assert_eq!(control.interrupted().await, Interruption::Timeout);
    }

    #[tokio::test]
    async fn run_drops_the_future_on_cancel() {
        let control = Arc::new(StatementControl::new());
        control.begin(None);
        let c2 = control.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            c2.cancel();
        });
        let out: Result<(), ServerError> = control
            .run(async {
                futures::future::pending::<()>().await;
                Ok(())
            })
            .await;
        assert!(matches!(
            out,
            Err(ServerError::Interrupted(Interruption::UserRequest))
        ));
    }
}
