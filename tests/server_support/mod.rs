//! A test backend and helpers for starting the wire server on port 0.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::config::ConfigExtension;
use datafusion::common::extensions_options;
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::Result as DfResult;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream, collect};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::scalar::ScalarValue;
use productive_pg::error::SqlError;
use productive_pg::server::{
    self, AuthMode, Backend, Login, ServerConfig, TableComment, install_catalog,
};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls};

pub const USER: &str = "alice";
pub const PASSWORD: &str = "correct horse";
pub const ORG: &str = "4242";
pub const TOKEN: &str = "good-token";

extensions_options! {
    /// Options the product registers under `productive.`.
    pub struct TestOptions {
        pub page_size: usize, default = 100
        pub api_token: String, default = "not-shown".to_owned()
    }
}

impl ConfigExtension for TestOptions {
    const PREFIX: &'static str = "productive";
}

/// What the backend and its tables saw.
#[derive(Debug, Default)]
pub struct Recorder {
    pub events: Mutex<Vec<String>>,
    /// Set when a slow scan's stream is dropped.
    pub slow_dropped: AtomicBool,
}

impl Recorder {
    pub fn push(&self, event: impl Into<String>) {
        self.events.lock().expect("lock").push(event.into());
    }

    pub fn events(&self) -> Vec<String> {
        self.events.lock().expect("lock").clone()
    }
}

pub struct TestBackend {
    pub recorder: Arc<Recorder>,
}

fn people_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]))
}

fn count_batch(n: u64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "count",
        DataType::UInt64,
        false,
    )]));
    RecordBatch::try_new(schema, vec![Arc::new(UInt64Array::from(vec![n]))]).expect("batch")
}

/// A partition whose rows come from a future run at execution time only.
struct LazyPartition {
    schema: SchemaRef,
    run: Box<dyn Fn(Arc<TaskContext>) -> SendableRecordBatchStream + Send + Sync>,
}

impl std::fmt::Debug for LazyPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LazyPartition")
    }
}

impl PartitionStream for LazyPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        (self.run)(ctx)
    }
}

fn lazy_plan(
    schema: SchemaRef,
    run: impl Fn(Arc<TaskContext>) -> SendableRecordBatchStream + Send + Sync + 'static,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    let partition = Arc::new(LazyPartition {
        schema: schema.clone(),
        run: Box::new(run),
    });
    Ok(Arc::new(StreamingTableExec::try_new(
        schema,
        vec![partition],
        None,
        vec![],
        false,
        None,
    )?))
}

/// Records DML calls when their plans run, and reports fixed counts.
#[derive(Debug)]
pub struct RecordingTable {
    recorder: Arc<Recorder>,
}

#[async_trait]
impl TableProvider for RecordingTable {
    fn schema(&self) -> SchemaRef {
        people_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let table = MemTable::try_new(people_schema(), vec![vec![]])?;
        table.scan(_state, projection, &[], None).await
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        _op: InsertOp,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let recorder = self.recorder.clone();
        let schema = count_batch(0).schema();
        lazy_plan(schema.clone(), move |ctx| {
            let recorder = recorder.clone();
            let input = input.clone();
            let stream = futures::stream::once(async move {
                let rows: usize = collect(input, ctx)
                    .await?
                    .iter()
                    .map(|b| b.num_rows())
                    .sum();
                recorder.push(format!("insert {rows}"));
                Ok(count_batch(rows as u64))
            });
            Box::pin(RecordBatchStreamAdapter::new(
                count_batch(0).schema(),
                stream,
            ))
        })
    }

    async fn update(
        &self,
        _state: &dyn Session,
        assignments: Vec<(String, Expr)>,
        filters: Vec<Expr>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let recorder = self.recorder.clone();
        let event = format!("update {} where {}", assignments.len(), filters.len());
        lazy_plan(count_batch(0).schema(), move |_| {
            recorder.push(event.clone());
            let stream = futures::stream::once(async { Ok(count_batch(2)) });
            Box::pin(RecordBatchStreamAdapter::new(
                count_batch(0).schema(),
                stream,
            ))
        })
    }

    async fn delete_from(
        &self,
        _state: &dyn Session,
        filters: Vec<Expr>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let recorder = self.recorder.clone();
        let event = format!("delete where {}", filters.len());
        lazy_plan(count_batch(0).schema(), move |_| {
            recorder.push(event.clone());
            let stream = futures::stream::once(async { Ok(count_batch(3)) });
            Box::pin(RecordBatchStreamAdapter::new(
                count_batch(0).schema(),
                stream,
            ))
        })
    }
}

/// A scan that never produces a row; notes when its stream is dropped.
#[derive(Debug)]
pub struct SlowTable {
    recorder: Arc<Recorder>,
}

struct DropFlag(Arc<Recorder>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.slow_dropped.store(true, Ordering::SeqCst);
    }
}

#[async_trait]
impl TableProvider for SlowTable {
    fn schema(&self) -> SchemaRef {
        people_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let recorder = self.recorder.clone();
        lazy_plan(people_schema(), move |_| {
            let flag = DropFlag(recorder.clone());
            let stream = futures::stream::once(async move {
                let _flag = flag;
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(RecordBatch::new_empty(people_schema()))
            });
            Box::pin(RecordBatchStreamAdapter::new(people_schema(), stream))
        })
    }
}

impl TestBackend {
    pub fn new() -> TestBackend {
        TestBackend {
            recorder: Arc::new(Recorder::default()),
        }
    }
}

#[async_trait]
impl Backend for TestBackend {
    async fn check_login(&self, organization_id: &str, token: &str) -> Result<(), SqlError> {
        self.recorder.push(format!("check {organization_id}"));
        match (organization_id, token) {
            ("unreachable", _) => Err(SqlError::new("08001", "Productive API unreachable")),
            (ORG, TOKEN) => Ok(()),
            _ => Err(SqlError::new("28P01", "token refused")),
        }
    }

    async fn new_session(&self, login: &Login) -> Result<SessionContext, SqlError> {
        let org = login
            .credentials
            .as_ref()
            .map(|c| c.organization_id.clone())
            .unwrap_or_default();
        self.recorder.push(format!("session {} {org}", login.user));
        let config = SessionConfig::new()
            .with_default_catalog_and_schema("productive", "public")
            .with_option_extension(TestOptions::default());
        let ctx = SessionContext::new_with_config(config);
        let people = RecordBatch::try_new(
            people_schema(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(StringArray::from(vec![Some("ann"), Some("bob"), None])),
            ],
        )
        .map_err(|e| SqlError::new("XX000", e.to_string()))?;
        let setup = || -> DfResult<()> {
            ctx.register_table(
                "people",
                Arc::new(MemTable::try_new(people_schema(), vec![vec![people]])?),
            )?;
            ctx.register_table(
                "log",
                Arc::new(RecordingTable {
                    recorder: self.recorder.clone(),
                }),
            )?;
            ctx.register_table(
                "slow",
                Arc::new(SlowTable {
                    recorder: self.recorder.clone(),
                }),
            )?;
            install_catalog(
                &ctx,
                "productive",
                &[
                    TableComment {
                        table: "people".into(),
                        column: None,
                        text: "Everyone we know".into(),
                    },
                    TableComment {
                        table: "people".into(),
                        column: Some("name".into()),
                        text: "Full name of the person".into(),
                    },
                ],
            )
        };
        setup().map_err(|e| SqlError::new("XX000", e.to_string()))?;
        Ok(ctx)
    }

    async fn call(
        &self,
        _session: &SessionContext,
        name: &str,
        args: Vec<ScalarValue>,
    ) -> Result<Option<RecordBatch>, SqlError> {
        if name != "refresh" {
            return Err(SqlError::new(
                "42883",
                format!("procedure {name} does not exist"),
            ));
        }
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        self.recorder
            .push(format!("call {name}({})", args.join(",")));
        Ok(None)
    }
}

/// A server running in the background.
pub struct TestServer {
    pub addr: SocketAddr,
    pub recorder: Arc<Recorder>,
    shutdown: Option<oneshot::Sender<()>>,
    pub handle: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// Stops the server and waits for `run` to return.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.handle.take() {
            Some(handle) => tokio::time::timeout(Duration::from_secs(10), handle).await??,
            None => Ok(()),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn config(auth: AuthMode) -> ServerConfig {
    ServerConfig {
        auth,
        tls: None,
        max_connections: 16,
        shutdown_grace: productive_pg::server::DEFAULT_SHUTDOWN_GRACE,
        database: "productive".to_owned(),
    }
}

pub fn password_mode() -> AuthMode {
    AuthMode::Password {
        user: USER.to_owned(),
        password: PASSWORD.into(),
    }
}

pub async fn start_with(config: ServerConfig, bind: &str) -> TestServer {
    let listener = TcpListener::bind(bind).await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let backend = Arc::new(TestBackend::new());
    let recorder = backend.recorder.clone();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(server::run(listener, config, backend, async move {
        let _ = rx.await;
    }));
    TestServer {
        addr,
        recorder,
        shutdown: Some(tx),
        handle: Some(handle),
    }
}

pub async fn start() -> TestServer {
    start_with(config(password_mode()), "127.0.0.1:0").await
}

pub fn pg_config(addr: SocketAddr, user: &str, password: Option<&str>) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(addr.port())
        .user(user)
        .dbname("productive")
        .connect_timeout(Duration::from_secs(10));
    if let Some(password) = password {
        config.password(password);
    }
    config
}

pub async fn connect_as(
    addr: SocketAddr,
    user: &str,
    password: Option<&str>,
) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = pg_config(addr, user, password).connect(NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

pub async fn connect(addr: SocketAddr) -> Client {
    connect_as(addr, USER, Some(PASSWORD)).await.expect("login")
}

/// The SQLSTATE of a server error.
pub fn code(err: &tokio_postgres::Error) -> String {
    err.as_db_error()
        .map(|e| e.code().code().to_owned())
        .unwrap_or_else(|| format!("not a server error: {err}"))
}

pub fn message(err: &tokio_postgres::Error) -> String {
    err.as_db_error()
        .map(|e| e.message().to_owned())
        .unwrap_or_else(|| err.to_string())
}

/// A tokio-postgres TLS connector over rustls that trusts one certificate.
pub mod tls {
    use std::future::Future;
    use std::io;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
    use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    use tokio_rustls::rustls::{ClientConfig, RootCertStore};

    #[derive(Clone)]
    pub struct TrustOne(Arc<ClientConfig>);

    impl TrustOne {
        pub fn new(cert_der: Vec<u8>) -> TrustOne {
            let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
            let mut roots = RootCertStore::empty();
            roots
                .add(CertificateDer::from(cert_der))
                .expect("trusted cert");
            let config = ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth();
            TrustOne(Arc::new(config))
        }
    }

    pub struct Connector(Arc<ClientConfig>);

    pub struct Stream<S>(tokio_rustls::client::TlsStream<S>);

    impl<S> MakeTlsConnect<S> for TrustOne
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        type Stream = Stream<S>;
        type TlsConnect = Connector;
        type Error = io::Error;

        fn make_tls_connect(&mut self, _domain: &str) -> io::Result<Connector> {
            Ok(Connector(self.0.clone()))
        }
    }

    impl<S> TlsConnect<S> for Connector
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        type Stream = Stream<S>;
        type Error = io::Error;
        type Future = Pin<Box<dyn Future<Output = io::Result<Stream<S>>> + Send>>;

        fn connect(self, stream: S) -> Self::Future {
            let connector = tokio_rustls::TlsConnector::from(self.0);
            Box::pin(async move {
                let name = ServerName::try_from("localhost").expect("name");
                Ok(Stream(connector.connect(name, stream).await?))
            })
        }
    }

    impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_read(cx, buf)
        }
    }

    impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.0).poll_write(cx, buf)
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_shutdown(cx)
        }
    }

    impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for Stream<S> {
        fn channel_binding(&self) -> ChannelBinding {
            ChannelBinding::none()
        }
    }
}
