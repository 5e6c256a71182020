//! Startup and login: SCRAM-SHA-256 against the server-held password, or
//! pass-through of a Productive organization id and API token.
//!
//! After a successful login the handler asks the [`Backend`] for the
//! connection's `SessionContext`, applies the startup parameters, registers
//! the cancel key and sends the usual ParameterStatus messages. Failed logins
//! are logged with peer and user, never with the password or token. See
//! <https://www.postgresql.org/docs/current/sasl-authentication.html>.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::{Sink, SinkExt};
use pgwire::api::auth::sasl::SCRAM_SHA_256_METHOD;
use pgwire::api::auth::sasl::scram::{
    ScramServerAuth, ScramServerAuthWaitingForClientFinal, gen_salted_password,
};
use pgwire::api::auth::{
    Password, ServerParameterProvider, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use pgwire::api::{
    ClientInfo, METADATA_DATABASE, METADATA_USER, PgWireConnectionState, PidSecretKeyGenerator,
    RandomPidSecretKeyGenerator,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::startup::Authentication;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use tracing::{info, warn};

use super::errors::{ServerError, to_error_fields};
use super::session::Session;
use super::statements::{self, Setting};
use super::{AuthMode, Backend, CancelRegistry, Login, PassThrough, ServerConfig};
use crate::error::{SqlError, codes};

pub use crate::secret::Secret;

/// SCRAM iteration count; the minimum RFC 7677 allows.
const SCRAM_ITERATIONS: usize = 4096;

enum Mode {
    Password {
        user: String,
        salt: Vec<u8>,
        salted_password: Vec<u8>,
        scram: ScramServerAuth,
    },
    PassThrough,
}

/// Handles the startup phase of every connection.
pub struct LoginHandler {
    mode: Mode,
    listener: SocketAddr,
    database: String,
    backend: Arc<dyn Backend>,
    cancels: Arc<CancelRegistry>,
    keys: RandomPidSecretKeyGenerator,
}

/// SCRAM exchange state of one connection, kept in its session extensions.
#[derive(Default)]
struct ScramProgress(Mutex<Option<ScramServerAuthWaitingForClientFinal>>);

impl LoginHandler {
    pub(crate) fn new(
        config: &ServerConfig,
        listener: SocketAddr,
        backend: Arc<dyn Backend>,
        cancels: Arc<CancelRegistry>,
    ) -> LoginHandler {
        let mode = match &config.auth {
            AuthMode::Password { user, password } => {
                let salt: [u8; 16] = rand::random();
                let mut scram = ScramServerAuth::new();
                scram.set_iterations(SCRAM_ITERATIONS);
                Mode::Password {
                    user: user.clone(),
                    salted_password: gen_salted_password(
                        password.expose(),
                        &salt,
                        SCRAM_ITERATIONS,
                    ),
                    salt: salt.to_vec(),
                    scram,
                }
            }
            AuthMode::PassThrough => Mode::PassThrough,
        };
        LoginHandler {
            mode,
            listener,
            database: config.database.clone(),
            backend,
            cancels,
            keys: RandomPidSecretKeyGenerator::default(),
        }
    }
}

/// Decides whether a pass-through login (token sent as a cleartext
/// password) may proceed on this transport.
///
/// # Errors
/// `28000` when the connection is plain TCP and the listener is reachable
/// beyond loopback.
pub fn check_pass_through_transport(is_tls: bool, listener: SocketAddr) -> Result<(), SqlError> {
    if is_tls || listener.ip().is_loopback() {
        Ok(())
    } else {
        Err(SqlError::new(
            codes::INVALID_AUTHORIZATION,
            "pass-through login sends the API token as a password and requires TLS; \
             connect with sslmode=require",
        ))
    }
}

fn fatal(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".to_owned(),
        code.to_owned(),
        message.into(),
    )))
}

fn fatal_from(err: ServerError) -> PgWireError {
    let mut fields = to_error_fields(&err);
    fields.severity = "FATAL";
    PgWireError::UserError(Box::new(fields.into_error_info()))
}

fn auth_failed(user: &str) -> PgWireError {
    fatal(
        codes::INVALID_PASSWORD,
        format!("password authentication failed for user \"{user}\""),
    )
}

#[async_trait]
impl pgwire::api::auth::StartupHandler for LoginHandler {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                self.on_hello(client).await
            }
            PgWireFrontendMessage::PasswordMessageFamily(message) => {
                let user = client
                    .metadata()
                    .get(METADATA_USER)
                    .cloned()
                    .unwrap_or_default();
                match &self.mode {
                    Mode::Password {
                        user: expected_user,
                        salt,
                        salted_password,
                        scram,
                    } => {
                        let progress = client
                            .session_extensions()
                            .get_or_insert_with(ScramProgress::default);
                        let waiting = progress.0.lock().unwrap_or_else(|p| p.into_inner()).take();
                        match waiting {
                            None => {
                                let first = message.into_sasl_initial_response()?;
                                if first.auth_method != SCRAM_SHA_256_METHOD {
                                    return Err(fatal(
                                        "28000",
                                        format!("unsupported SASL mechanism {}", first.auth_method),
                                    ));
                                }
                                let data = first.data.as_ref().ok_or_else(|| {
                                    fatal("08P01", "malformed SCRAM message (empty client-first)")
                                })?;
                                // An unknown user runs the same exchange against
                                // a random key, so the reply does not reveal
                                // whether the user or the password was wrong.
                                let key = if &user == expected_user {
                                    salted_password.clone()
                                } else {
                                    rand::random::<[u8; 32]>().to_vec()
                                };
                                let (server_first, waiting) = scram.on_client_first_message(
                                    data,
                                    Password::new(Some(salt.clone()), key),
                                )?;
                                *progress.0.lock().unwrap_or_else(|p| p.into_inner()) =
                                    Some(waiting);
                                client
                                    .send(PgWireBackendMessage::Authentication(
                                        Authentication::SASLContinue(server_first.into()),
                                    ))
                                    .await?;
                                Ok(())
                            }
                            Some(waiting) => {
                                let response = message.into_sasl_response()?;
                                match waiting.on_client_final_message(&response.data) {
                                    Ok(server_final) => {
                                        client
                                            .send(PgWireBackendMessage::Authentication(
                                                Authentication::SASLFinal(server_final.into()),
                                            ))
                                            .await?;
                                        let login = Login {
                                            user,
                                            credentials: None,
                                        };
                                        self.complete_login(client, login).await
                                    }
                                    Err(e) => {
                                        warn!(
                                            peer = %client.socket_addr(),
                                            user = %user,
                                            reason = %scram_failure(&e),
                                            "login failed"
                                        );
                                        Err(auth_failed(&user))
                                    }
                                }
                            }
                        }
                    }
                    Mode::PassThrough => {
                        let password = message.into_password()?;
                        let token = Secret::new(password.password);
                        if token.expose().is_empty() {
                            let peer = client.socket_addr();
                            warn!(%peer, %user, "login failed: empty token");
                            return Err(auth_failed(&user));
                        }
                        match self.backend.check_login(&user, token.expose()).await {
                            Ok(()) => {
                                let login = Login {
                                    user: user.clone(),
                                    credentials: Some(PassThrough {
                                        organization_id: user,
                                        token,
                                    }),
                                };
                                self.complete_login(client, login).await
                            }
                            Err(e) if e.code == codes::INVALID_PASSWORD => {
                                let peer = client.socket_addr();
                                warn!(%peer, %user, "login failed: token refused");
                                Err(auth_failed(&user))
                            }
                            Err(e) => {
                                warn!(
                                    peer = %client.socket_addr(),
                                    user = %user,
                                    code = e.code,
                                    "login failed: credentials could not be checked"
                                );
                                Err(fatal_from(ServerError::Sql(e)))
                            }
                        }
                    }
                }
            }
            _ => Ok(()),
        }
    }
}

/// Names what went wrong in a SCRAM exchange, for the log only.
fn scram_failure(e: &PgWireError) -> &'static str {
    match e {
        PgWireError::InvalidPassword(_) => "wrong password or user",
        _ => "malformed SCRAM exchange",
    }
}

impl LoginHandler {
    /// Answers the startup packet with the authentication request.
    async fn on_hello<C>(&self, client: &mut C) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let peer = client.socket_addr();
        let Some(user) = client.metadata().get(METADATA_USER).cloned() else {
            return Err(fatal(
                codes::INVALID_AUTHORIZATION,
                "no PostgreSQL user name specified in startup packet",
            ));
        };
        if let Some(database) = client.metadata().get(METADATA_DATABASE)
            && database != &self.database
        {
            warn!(%peer, %user, %database, "login refused: unknown database");
            return Err(fatal(
                "3D000",
                format!("database \"{database}\" does not exist"),
            ));
        }
        client.set_state(PgWireConnectionState::AuthenticationInProgress);
        let request = match self.mode {
            Mode::Password { .. } => Authentication::SASL(vec![SCRAM_SHA_256_METHOD.to_owned()]),
            Mode::PassThrough => {
                if let Err(e) = check_pass_through_transport(client.is_secure(), self.listener) {
                    warn!(%peer, %user, "login refused: pass-through without TLS");
                    return Err(fatal_from(ServerError::Sql(e)));
                }
                Authentication::CleartextPassword
            }
        };
        client
            .send(PgWireBackendMessage::Authentication(request))
            .await?;
        Ok(())
    }

    /// Creates the session and tells the client it is in.
    async fn complete_login<C>(&self, client: &mut C, login: Login) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let ctx = self
            .backend
            .new_session(&login)
            .await
            .map_err(|e| fatal_from(ServerError::Sql(e)))?;
        let user = login.user.clone();
        let session = Session::new(ctx, login);
        apply_startup_parameters(&session, client.metadata()).map_err(fatal_from)?;

        let (pid, key) = self.keys.generate(client);
        self.cancels.register(pid, key.to_bytes(), &session.control);
        client.set_pid_and_secret_key(pid, key);

        let parameters = Parameters::of(&session);
        client.session_extensions().insert(session);
        tracing::Span::current().record("user", user.as_str());
        info!(peer = %client.socket_addr(), %user, "logged in");
        finish_authentication(client, &parameters).await
    }
}

/// Applies settings sent in the startup packet (including `-c name=value`
/// pairs in `options`).
fn apply_startup_parameters(
    session: &Session,
    metadata: &HashMap<String, String>,
) -> Result<(), ServerError> {
    for (key, value) in metadata {
        if key == "options" {
            for (name, value) in parse_options(value) {
                statements::apply_set(session, &name, Some(&value))?;
            }
        } else if Setting::find(key).is_some() {
            statements::apply_set(session, key, Some(value))?;
        }
    }
    Ok(())
}

/// Parses the `options` startup parameter: `-c name=value --name=value`.
fn parse_options(options: &str) -> Vec<(String, String)> {
    let mut pairs = vec![];
    let mut words = options.split_whitespace();
    while let Some(word) = words.next() {
        let assignment = if word == "-c" {
            words.next()
        } else {
            word.strip_prefix("-c").or_else(|| word.strip_prefix("--"))
        };
        if let Some((name, value)) = assignment.and_then(|a| a.split_once('=')) {
            pairs.push((name.replace('-', "_"), value.to_owned()));
        }
    }
    pairs
}

/// ParameterStatus values sent after login.
struct Parameters(HashMap<String, String>);

impl Parameters {
    fn of(session: &Session) -> Parameters {
        let map = Setting::ALL
            .iter()
            .filter(|s| s.reported)
            .map(|s| {
                (
                    s.name.to_owned(),
                    session.setting(s.name).unwrap_or_default(),
                )
            })
            .chain([(
                "session_authorization".to_owned(),
                session.login.user.clone(),
            )])
            .collect();
        Parameters(map)
    }
}

impl ServerParameterProvider for Parameters {
    fn server_parameters<C>(&self, _client: &C) -> Option<HashMap<String, String>>
    where
        C: ClientInfo,
    {
        Some(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn pass_through_needs_tls_off_loopback() {
        let public: SocketAddr = "0.0.0.0:5432".parse().expect("address");
        let loopback: SocketAddr = "127.0.0.1:5432".parse().expect("address");
        let err = check_pass_through_transport(false, public).unwrap_err();
        assert_eq!(err.code, "28000");
        assert!(err.message.contains("TLS"));
        assert!(check_pass_through_transport(true, public).is_ok());
        assert!(check_pass_through_transport(false, loopback).is_ok());
    }

    #[test]
    fn startup_options_are_parsed() {
        assert_eq!(
            parse_options("-c statement_timeout=5s --search-path=public"),
            vec![
                ("statement_timeout".to_owned(), "5s".to_owned()),
                ("search_path".to_owned(), "public".to_owned())
            ]
        );
    }
}
