//! The PostgreSQL wire-protocol server.
//!
//! [`run`] accepts TCP connections, negotiates TLS, logs clients in
//! ([`auth`]), gives each connection its own [`session::Session`] built by
//! the product's [`Backend`], and answers simple and extended queries
//! ([`handler`]) until a shutdown future resolves. Errors reach clients
//! through the single SQLSTATE mapping in [`errors`]. The protocol itself
//! comes from pgwire; see
//! <https://www.postgresql.org/docs/current/protocol-flow.html>.

pub mod auth;
pub mod catalog;
pub mod constraints;
pub mod copy;
pub mod copy_in;
pub mod errors;
pub mod format;
mod frames;
pub mod functions;
pub mod handler;
pub mod information_schema;
pub mod jsonb;
pub mod returning;
pub mod rewrite;
pub mod routines;
pub mod session;
pub mod statements;
pub mod tls;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use futures::SinkExt;
use pgwire::api::cancel::CancelHandler;
use pgwire::api::{ClientInfo, PgWireConnectionState};
use pgwire::error::{ErrorInfo, PgWireError};
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::tokio::server::{
    MaybeTls, PgWireMessageServerCodec, negotiate_tls, process_error, process_message,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{Instrument, debug, info, warn};

use crate::error::{SqlError, codes};
pub use auth::Secret;
pub use catalog::{TableComment, install_catalog};
pub use constraints::{ForeignKey, TableKeys, install_keys};
use handler::PreparedStatement;
pub use routines::{Routine, RoutineKind, install_routines};
use session::StatementControl;

/// How long running statements may go on after a shutdown is asked for,
/// unless configured otherwise.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// How long a client may take to log in before it is dropped.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// What the product provides to the wire layer.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Pass-through logins: validate an organization id and API token with
    /// one cheap API call.
    ///
    /// # Errors
    /// A [`SqlError`] with code `28P01` for a bad token; any other code is
    /// passed to the client as is (e.g. the API being unreachable).
    async fn check_login(&self, organization_id: &str, token: &str) -> Result<(), SqlError>;

    /// A fresh `SessionContext` for one connection (tables registered,
    /// options set). Called once per connection, right after login.
    async fn new_session(&self, login: &Login) -> Result<SessionContext, SqlError>;

    /// `CALL <name>(args)`: runs a procedure and returns its result row(s),
    /// if any. The default knows no procedures.
    async fn call(
        &self,
        session: &SessionContext,
        name: &str,
        args: Vec<ScalarValue>,
    ) -> Result<Option<RecordBatch>, SqlError> {
        let _ = (session, args);
        Err(SqlError::new(
            codes::UNDEFINED_FUNCTION,
            format!("procedure {name} does not exist"),
        ))
    }

    /// The columns `CALL <name>(...)` answers with, for the extended
    /// protocol's Describe; `None` when unknown or when it returns no rows.
    fn call_schema(&self, name: &str) -> Option<datafusion::arrow::datatypes::SchemaRef> {
        let _ = name;
        None
    }

    /// The argument types of procedure `name`, by position, so that `$n`
    /// arguments of a prepared CALL get a type.
    fn call_argument_types(
        &self,
        name: &str,
    ) -> Option<Vec<datafusion::arrow::datatypes::DataType>> {
        let _ = name;
        None
    }
}

/// Who logged in on a connection.
#[derive(Debug, Clone)]
pub struct Login {
    /// The PostgreSQL user name the client sent.
    pub user: String,
    /// Some for pass-through logins.
    pub credentials: Option<PassThrough>,
}

/// Productive credentials a client supplied at login.
#[derive(Debug, Clone)]
pub struct PassThrough {
    pub organization_id: String,
    pub token: Secret,
}

/// How clients log in.
#[derive(Debug, Clone)]
pub enum AuthMode {
    /// Server-held Productive credentials; clients log in with this
    /// user/password, checked with SCRAM-SHA-256.
    Password { user: String, password: Secret },
    /// User name = organization id, password = API token, sent as a
    /// cleartext password; refused unless the connection is TLS or the
    /// listener is on loopback.
    PassThrough,
}

/// Certificate and key (PEM files) for TLS.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

/// Server settings, checked once by [`ServerConfig::validate`].
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub auth: AuthMode,
    /// When set, TLS is offered; a certificate that cannot be loaded stops
    /// the server from starting rather than falling back to plain text.
    pub tls: Option<TlsConfig>,
    /// Connections beyond this are refused with 53300.
    pub max_connections: usize,
    /// The database name clients must ask for (`productive`).
    pub database: String,
    /// On shutdown, how long running statements may take to finish before
    /// their connections are closed with 57P01.
    pub shutdown_grace: Duration,
}

impl ServerConfig {
    /// Checks the configuration and loads the TLS material.
    ///
    /// # Errors
    /// Fails for an empty password or user, a zero connection cap, or TLS
    /// files that cannot be read or parsed.
    pub fn validate(&self) -> anyhow::Result<Option<tokio_rustls::TlsAcceptor>> {
        if let AuthMode::Password { user, password } = &self.auth {
            anyhow::ensure!(!user.is_empty(), "the login user name must not be empty");
            anyhow::ensure!(
                !password.expose().is_empty(),
                "the login password must not be empty"
            );
        }
        anyhow::ensure!(
            self.max_connections > 0,
            "max_connections must be at least 1"
        );
        anyhow::ensure!(
            !self.database.is_empty(),
            "the database name must not be empty"
        );
        match &self.tls {
            Some(tls) => Ok(Some(tls::load_acceptor(tls)?)),
            None => Ok(None),
        }
    }
}

/// Maps cancel keys to the statement control of live connections.
#[derive(Debug, Default)]
pub(crate) struct CancelRegistry {
    entries: Mutex<HashMap<(i32, Bytes), Weak<StatementControl>>>,
}

impl CancelRegistry {
    pub(crate) fn register(&self, pid: i32, key: Bytes, control: &Arc<StatementControl>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        // Drop entries of connections that are gone while we hold the lock.
        entries.retain(|_, c| c.strong_count() > 0);
        entries.insert((pid, key), Arc::downgrade(control));
    }

    fn cancel(&self, pid: i32, key: Bytes) -> bool {
        let control = {
            let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            entries.get(&(pid, key)).and_then(Weak::upgrade)
        };
        control.is_some_and(|c| c.cancel())
    }
}

#[async_trait]
impl CancelHandler for CancelRegistry {
    async fn on_cancel_request(&self, request: CancelRequest) {
        let hit = self.cancel(request.pid, request.secret_key.to_bytes());
        info!(pid = request.pid, cancelled = hit, "cancel request");
    }
}

/// Everything a connection task needs, shared by all connections.
struct Shared {
    startup: Arc<auth::LoginHandler>,
    queries: Arc<handler::QueryHandler>,
    cancels: Arc<CancelRegistry>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Where the server is in its life; connections watch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Serving,
    /// Shutting down: idle connections close, running statements finish.
    Draining,
    /// The grace period is over: running statements are stopped too.
    Closing,
}

/// How long connections get to go once told to close; only a client that
/// does not read its socket takes longer.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves until `shutdown` resolves; then stops accepting (new connections
/// are refused), closes idle connections with 57P01 admin_shutdown, lets
/// running statements finish for up to `shutdown_grace` and then closes
/// their connections with 57P01 as well.
///
/// # Errors
/// Fails before serving if the configuration is invalid (see
/// [`ServerConfig::validate`]).
pub async fn run(
    listener: TcpListener,
    config: ServerConfig,
    backend: Arc<dyn Backend>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let tls = config.validate()?;
    let local_addr = listener.local_addr()?;
    let cancels = Arc::new(CancelRegistry::default());
    let shared = Arc::new(Shared {
        startup: Arc::new(auth::LoginHandler::new(
            &config,
            local_addr,
            backend.clone(),
            cancels.clone(),
        )),
        queries: Arc::new(handler::QueryHandler::new(backend)),
        cancels,
        tls,
    });
    let limit = Arc::new(Semaphore::new(config.max_connections));
    let (stop_tx, stop_rx) = watch::channel(Phase::Serving);
    let mut connections = JoinSet::new();
    info!(%local_addr, tls = shared.tls.is_some(), "accepting connections");

    tokio::pin!(shutdown);
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let (socket, peer) = match accepted {
            Ok(pair) => {
                backoff = Duration::from_millis(10);
                pair
            }
            Err(e) => {
                // Running out of file descriptors and similar conditions pass;
                // the listener itself stays usable.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let permit = limit.clone().try_acquire_owned().ok();
        let shared = shared.clone();
        let stop = stop_rx.clone();
        let span = tracing::info_span!("connection", %peer, user = tracing::field::Empty);
        connections.spawn(
            async move {
                let outcome = match permit {
                    Some(_permit) => serve_connection(socket, shared, stop).await,
                    None => refuse_connection(socket, shared).await,
                };
                if let Err(e) = outcome {
                    debug!(error = %e, "connection ended with an error");
                }
            }
            .instrument(span),
        );
    }

    // Closing the listener makes new connections fail at once rather than
    // wait in the backlog.
    drop(listener);
    info!(
        open = connections.len(),
        grace_s = config.shutdown_grace.as_secs_f64(),
        "shutting down"
    );
    let _ = stop_tx.send(Phase::Draining);
    let drained = tokio::time::timeout(config.shutdown_grace, join_all(&mut connections)).await;
    if drained.is_err() {
        warn!(
            open = connections.len(),
            "grace period over: stopping running statements"
        );
        let _ = stop_tx.send(Phase::Closing);
        if tokio::time::timeout(CLOSE_TIMEOUT, join_all(&mut connections))
            .await
            .is_err()
        {
            connections.abort_all();
            join_all(&mut connections).await;
        }
    }
    info!("server stopped");
    Ok(())
}

async fn join_all(connections: &mut JoinSet<()>) {
    while connections.join_next().await.is_some() {}
}

/// The framed connection every handler works on.
type Framed = tokio_util::codec::Framed<MaybeTls, PgWireMessageServerCodec<PreparedStatement>>;

/// Reads and answers messages on one connection until it closes.
async fn serve_connection(
    socket: TcpStream,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<Phase>,
) -> std::io::Result<()> {
    let hangup = HangupWatch::new(&socket);
    let negotiated =
        tokio::time::timeout(STARTUP_TIMEOUT, negotiate_tls(socket, shared.tls.clone()))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS negotiation"))??;
    let Some(mut socket): Option<Framed> = negotiated else {
        // Direct TLS without TLS configured: nothing sensible to answer.
        return Ok(());
    };
    let startup_deadline = tokio::time::Instant::now() + STARTUP_TIMEOUT;

    loop {
        let logging_in = matches!(
            socket.state(),
            PgWireConnectionState::AwaitingStartup
                | PgWireConnectionState::AuthenticationInProgress
        );
        let next = tokio::select! {
            // A shutdown wins over a message that is already waiting.
            biased;
            _ = reached(&mut stop, Phase::Draining) => {
                if !logging_in {
                    send_fatal(&mut socket, codes::ADMIN_SHUTDOWN, SHUTDOWN_MESSAGE).await;
                }
                return Ok(());
            }
            next = frames::next_message(&mut socket) => next,
            _ = tokio::time::sleep_until(startup_deadline), if logging_in => {
                warn!("login timed out");
                return Ok(());
            }
        };
        let message = match next {
            None => return Ok(()),
            Some(frames::Read::Message(PgWireFrontendMessage::Terminate(_))) => return Ok(()),
            Some(frames::Read::Message(message)) => message,
            Some(frames::Read::Refused(e)) if e.recoverable && !logging_in => {
                warn!(code = e.code, "refused a frontend message: {}", e.message);
                let info = ErrorInfo::new("ERROR".to_owned(), e.code.to_owned(), e.message);
                process_error(
                    &mut socket,
                    PgWireError::UserError(Box::new(info)),
                    e.extended,
                )
                .await?;
                continue;
            }
            Some(frames::Read::Refused(e)) => {
                warn!(
                    code = e.code,
                    "refused a frontend message, closing connection"
                );
                send_fatal(&mut socket, e.code, &e.message).await;
                return Ok(());
            }
            Some(frames::Read::Failed(e)) => {
                // Undecodable bytes: the stream can no longer be trusted.
                warn!(error = %e, "protocol violation, closing connection");
                send_fatal(
                    &mut socket,
                    "08P01",
                    &format!("invalid frontend message: {e}"),
                )
                .await;
                return Ok(());
            }
        };
        // A COPY started by Execute ends, failed or not, with the client's
        // Sync: an error must wait for it like any extended-protocol error.
        let extended = message.is_extended_query()
            || matches!(socket.state(), PgWireConnectionState::CopyInProgress(true));
        let work = process_message(
            message,
            &mut socket,
            shared.startup.clone(),
            shared.queries.clone(),
            shared.queries.clone(),
            Arc::new(copy_in::CopyInHandler),
            shared.cancels.clone(),
        );
        // Dropping `work` drops the statement and its API requests in flight.
        let outcome = tokio::select! {
            outcome = work => Ok(outcome),
            _ = reached(&mut stop, Phase::Closing) => Err(Ended::Shutdown),
            _ = hangup.hung_up() => Err(Ended::ClientGone),
        };
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(Ended::Shutdown) => {
                send_fatal(&mut socket, codes::ADMIN_SHUTDOWN, SHUTDOWN_MESSAGE).await;
                return Ok(());
            }
            Err(Ended::ClientGone) => {
                info!("client went away during a statement; statement stopped");
                return Ok(());
            }
        };
        if let Err(e) = outcome {
            let info: ErrorInfo = match e {
                PgWireError::IoError(e) => return Err(e),
                // Ours already: keep every field, CONTEXT included.
                PgWireError::UserError(info) => *info,
                other => {
                    errors::to_error_fields(&errors::ServerError::Protocol(other)).into_error_info()
                }
            };
            if info.is_fatal() {
                let _ = socket
                    .send(PgWireBackendMessage::ErrorResponse(info.into()))
                    .await;
                return Ok(());
            }
            process_error(
                &mut socket,
                PgWireError::UserError(Box::new(info)),
                extended,
            )
            .await?;
        }
    }
}

/// The message of the FATAL error a connection closed by shutdown gets.
const SHUTDOWN_MESSAGE: &str = "terminating connection due to administrator command";

/// Why a statement did not run to its end.
enum Ended {
    Shutdown,
    ClientGone,
}

/// Resolves once the server has reached `phase`.
async fn reached(stop: &mut watch::Receiver<Phase>, phase: Phase) {
    // An error means the server task is gone, which is a shutdown too.
    let _ = stop.wait_for(|p| *p >= phase).await;
}

/// Notices a client that hangs up while its statement runs. The statement
/// may write nothing for a long time (an aggregate over many pages), so a
/// failed write would come late; this watches a duplicate of the socket for
/// end-of-file instead.
struct HangupWatch(Option<TcpStream>);

impl HangupWatch {
    fn new(socket: &TcpStream) -> HangupWatch {
        HangupWatch(duplicate(socket))
    }

    /// Resolves when the peer has closed or reset the connection. Pending
    /// bytes (a pipelined message, a TLS alert) hide a later end-of-file;
    /// then only a failing write reveals the hang-up.
    async fn hung_up(&self) {
        let Some(socket) = &self.0 else {
            return std::future::pending().await;
        };
        let mut byte = [0u8; 1];
        match socket.peek(&mut byte).await {
            Ok(0) | Err(_) => {}
            Ok(_) => std::future::pending().await,
        }
    }
}

/// A second handle on the same socket, for [`HangupWatch`]; `None` where
/// that is not possible, which only costs the early notice.
#[cfg(unix)]
fn duplicate(socket: &TcpStream) -> Option<TcpStream> {
    use std::os::fd::AsFd;
    // The duplicate shares the original's non-blocking mode.
    let fd = socket.as_fd().try_clone_to_owned().ok()?;
    TcpStream::from_std(std::net::TcpStream::from(fd)).ok()
}

#[cfg(not(unix))]
fn duplicate(_socket: &TcpStream) -> Option<TcpStream> {
    None
}

async fn send_fatal(socket: &mut Framed, code: &str, message: &str) {
    let info = ErrorInfo::new("FATAL".to_owned(), code.to_owned(), message.to_owned());
    // The connection is being closed anyway; a failed write changes nothing.
    let _ = socket
        .send(PgWireBackendMessage::ErrorResponse(info.into()))
        .await;
}

/// Answers a connection over the cap with 53300 once the client has said
/// hello, as PostgreSQL does.
async fn refuse_connection(socket: TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    warn!("refusing connection: too many connections");
    let work = async {
        let Some(mut socket): Option<Framed> = negotiate_tls(socket, shared.tls.clone()).await?
        else {
            return Ok(());
        };
        if let Some(frames::Read::Message(PgWireFrontendMessage::CancelRequest(request))) =
            frames::next_message(&mut socket).await
        {
            shared.cancels.on_cancel_request(request).await;
            return Ok(());
        }
        send_fatal(
            &mut socket,
            codes::TOO_MANY_CONNECTIONS,
            "sorry, too many clients already",
        )
        .await;
        Ok(())
    };
    tokio::time::timeout(STARTUP_TIMEOUT, work)
        .await
        .unwrap_or(Ok(()))
}
