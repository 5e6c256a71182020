//! Catalog queries of common clients (psql 15, pgjdbc, SQLAlchemy, Grafana,
//! Metabase) against the wire server with keyed tables, sent as those
//! clients send them, and `COPY ... TO STDOUT`.

mod server_support;

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use futures::{StreamExt, pin_mut};
use productive_pg::error::SqlError;
use productive_pg::server::{
    self, Backend, ForeignKey, Login, TableComment, TableKeys, install_catalog, install_keys,
};
use server_support::{PASSWORD, USER, config, connect, password_mode};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_postgres::SimpleQueryMessage;

/// `projects` and `tasks`, with `tasks.project_id → projects.id`.
struct KeyedBackend;

fn table(names: &[&str], ids: Vec<i64>, texts: Vec<&str>) -> Arc<MemTable> {
    let schema = Arc::new(Schema::new(vec![
        Field::new(names[0], DataType::Int64, false),
        Field::new(names[1], DataType::Utf8, true),
        Field::new(names[2], DataType::Int64, true),
    ]));
    let refs: Vec<i64> = ids.iter().map(|id| id % 2 + 1).collect();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(StringArray::from(texts)),
            Arc::new(Int64Array::from(refs)),
        ],
    )
    .expect("batch");
    Arc::new(MemTable::try_new(schema, vec![vec![batch]]).expect("table"))
}

#[async_trait]
impl Backend for KeyedBackend {
    async fn check_login(&self, _org: &str, _token: &str) -> Result<(), SqlError> {
        Ok(())
    }

    async fn new_session(&self, _login: &Login) -> Result<SessionContext, SqlError> {
        let fail = |e: datafusion::error::DataFusionError| SqlError::new("XX000", e.to_string());
        let ctx = SessionContext::new_with_config(
            datafusion::prelude::SessionConfig::new()
                .with_default_catalog_and_schema("productive", "public"),
        );
        ctx.register_table(
            "projects",
            table(
                &["id", "name", "company_id"],
                vec![1, 2],
                vec!["Alpha", "Beta"],
            ),
        )
        .map_err(fail)?;
        ctx.register_table(
            "tasks",
            table(
                &["id", "title", "project_id"],
                vec![10, 11, 12],
                vec!["Draft, then review", "Say \"hi\"", "Ship"],
            ),
        )
        .map_err(fail)?;
        install_catalog(
            &ctx,
            "productive",
            &[TableComment {
                table: "tasks".into(),
                column: None,
                text: "Work items".into(),
            }],
        )
        .map_err(fail)?;
        let keys = vec![
            TableKeys {
                table: "projects".into(),
                primary_key: Some("id".into()),
                foreign_keys: vec![],
            },
            TableKeys {
                table: "tasks".into(),
                primary_key: Some("id".into()),
                foreign_keys: vec![ForeignKey {
                    column: "project_id".into(),
                    references: "projects".into(),
                    referenced_column: "id".into(),
                }],
            },
        ];
        install_keys(&ctx, &keys).map_err(fail)?;
        Ok(ctx)
    }
}

struct Running {
    addr: std::net::SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn start() -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(server::run(
        listener,
        config(password_mode()),
        Arc::new(KeyedBackend),
        async move {
            let _ = rx.await;
        },
    ));
    let _ = (USER, PASSWORD);
    Running { addr, _stop: tx }
}

async fn rows(client: &tokio_postgres::Client, sql: &str) -> Vec<Vec<Option<String>>> {
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

async fn oid_of(client: &tokio_postgres::Client, table: &str) -> String {
    rows(
        client,
        &format!("SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relname = '{table}'"),
    )
    .await[0][0]
        .clone()
        .expect("oid")
}

#[tokio::test]
async fn psql_describe_shows_keys_and_references() {
    let server = start().await;
    let client = connect(server.addr).await;
    let tasks = oid_of(&client, "tasks").await;
    let projects = oid_of(&client, "projects").await;

    // psql reads these flags before it asks for indexes and foreign keys.
    let flags = rows(
        &client,
        &format!(
            "SELECT relhasindex, relhastriggers FROM pg_catalog.pg_class WHERE oid = '{tasks}'"
        ),
    )
    .await;
    assert_eq!(flags, vec![vec![Some("t".into()), Some("t".into())]]);

    let indexes = rows(
        &client,
        &format!(
            "SELECT c2.relname, i.indisprimary, i.indisunique, i.indisclustered, i.indisvalid, \
             pg_catalog.pg_get_indexdef(i.indexrelid, 0, true),\n  \
             pg_catalog.pg_get_constraintdef(con.oid, true), contype, condeferrable, \
             condeferred, i.indisreplident, c2.reltablespace\nFROM pg_catalog.pg_class c, \
             pg_catalog.pg_class c2, \
             pg_catalog.pg_index i\n  LEFT JOIN pg_catalog.pg_constraint con ON (conrelid = \
             i.indrelid AND conindid = i.indexrelid AND contype IN ('p','u','x'))\nWHERE c.oid = \
             '{tasks}' AND c.oid = i.indrelid AND i.indexrelid = c2.oid\nORDER BY i.indisprimary \
             DESC, c2.relname;"
        ),
    )
    .await;
    assert_eq!(indexes.len(), 1);
    assert_eq!(indexes[0][0].as_deref(), Some("tasks_pkey"));
    assert_eq!(
        indexes[0][5].as_deref(),
        Some("CREATE UNIQUE INDEX tasks_pkey ON public.tasks USING btree (id)")
    );
    assert_eq!(indexes[0][6].as_deref(), Some("PRIMARY KEY (id)"));

    let foreign = rows(
        &client,
        &format!(
            "SELECT true as sametable, conname,\n  pg_catalog.pg_get_constraintdef(r.oid, true) as \
             condef,\n  conrelid::pg_catalog.regclass AS ontable\nFROM pg_catalog.pg_constraint r\n\
             WHERE r.conrelid = '{tasks}' AND r.contype = 'f'\n     AND conparentid = 0\nORDER BY \
             conname"
        ),
    )
    .await;
    assert_eq!(foreign.len(), 1);
    assert_eq!(foreign[0][1].as_deref(), Some("tasks_project_id_fkey"));
    assert_eq!(
        foreign[0][2].as_deref(),
        Some("FOREIGN KEY (project_id) REFERENCES projects(id)")
    );

    let referenced = rows(
        &client,
        &format!(
            "SELECT conname, conrelid::pg_catalog.regclass AS ontable,\n       \
             pg_catalog.pg_get_constraintdef(oid, true) AS condef\n  FROM \
             pg_catalog.pg_constraint c\n WHERE confrelid IN (SELECT \
             pg_catalog.pg_partition_ancestors('{projects}')\n                     UNION ALL \
             VALUES ('{projects}'::pg_catalog.regclass))\n       AND contype = 'f' AND \
             conparentid = 0\nORDER BY conname;"
        ),
    )
    .await;
    assert_eq!(referenced.len(), 1);
    assert_eq!(referenced[0][0].as_deref(), Some("tasks_project_id_fkey"));

    let triggers = rows(
        &client,
        &format!(
            "SELECT t.tgname, pg_catalog.pg_get_triggerdef(t.oid, true), t.tgenabled, \
             t.tgisinternal,\n  CASE WHEN t.tgparentid != 0 THEN\n    (SELECT \
             u.tgrelid::pg_catalog.regclass\n     FROM pg_catalog.pg_trigger AS u,\n          \
             pg_catalog.pg_partition_ancestors(t.tgrelid) WITH ORDINALITY AS a(relid, depth)\n     \
             WHERE u.tgname = t.tgname AND u.tgrelid = a.relid\n           AND u.tgparentid = \
             0\n     ORDER BY a.depth LIMIT 1)\n  END AS parent\nFROM pg_catalog.pg_trigger t\n\
             WHERE t.tgrelid = '{tasks}' AND (NOT t.tgisinternal OR (t.tgisinternal AND \
             t.tgenabled = 'D'))\nORDER BY 1;"
        ),
    )
    .await;
    assert!(triggers.is_empty());

    // pgjdbc getTables and Metabase join table comments on the catalog oid.
    let remarks = rows(
        &client,
        "SELECT c.relname, d.description FROM pg_catalog.pg_class c LEFT JOIN \
         pg_catalog.pg_description d ON (c.oid = d.objoid AND d.objsubid = 0 AND d.classoid = \
         'pg_class'::regclass) WHERE c.relname = 'tasks'",
    )
    .await;
    assert_eq!(
        remarks,
        vec![vec![Some("tasks".into()), Some("Work items".into())]]
    );

    // SQLAlchemy's index reflection reads reloptions and filters on
    // pg_get_expr(indpred) being NULL, as Metabase's index sync does.
    let indexes = rows(
        &client,
        "SELECT cls.relname, cls.reloptions IS NULL FROM pg_catalog.pg_index i JOIN \
         pg_catalog.pg_class cls ON i.indexrelid = cls.oid WHERE \
         pg_catalog.pg_get_expr(i.indpred, i.indrelid) IS NULL ORDER BY 1",
    )
    .await;
    assert_eq!(
        indexes,
        vec![
            vec![Some("projects_pkey".into()), Some("t".into())],
            vec![Some("tasks_pkey".into()), Some("t".into())],
        ]
    );
}

#[tokio::test]
async fn pgjdbc_key_metadata_queries_answer() {
    let server = start().await;
    let client = connect(server.addr).await;

    let primary = rows(
        &client,
        "SELECT result.TABLE_CAT, result.TABLE_SCHEM, result.TABLE_NAME, result.COLUMN_NAME, \
         result.KEY_SEQ, result.PK_NAME FROM (SELECT NULL AS TABLE_CAT, \
         n.nspname AS TABLE_SCHEM,   ct.relname AS TABLE_NAME, a.attname AS COLUMN_NAME,   \
         (information_schema._pg_expandarray(i.indkey)).n AS KEY_SEQ, ci.relname AS PK_NAME,   \
         information_schema._pg_expandarray(i.indkey) AS KEYS, a.attnum AS A_ATTNUM FROM \
         pg_catalog.pg_class ct   JOIN pg_catalog.pg_attribute a ON (ct.oid = a.attrelid)   JOIN \
         pg_catalog.pg_namespace n ON (ct.relnamespace = n.oid)   JOIN pg_catalog.pg_index i ON ( \
         a.attrelid = i.indrelid)   JOIN pg_catalog.pg_class ci ON (ci.oid = i.indexrelid) WHERE \
         true  AND n.nspname = E'public' AND ct.relname = E'tasks' AND i.indisprimary  ) result \
         where  result.A_ATTNUM = (result.KEYS).x  ORDER BY result.table_name, result.pk_name, \
         result.key_seq",
    )
    .await;
    assert_eq!(primary.len(), 1);
    assert_eq!(primary[0][3].as_deref(), Some("id"));
    assert_eq!(primary[0][5].as_deref(), Some("tasks_pkey"));

    let setting = rows(
        &client,
        "SELECT setting FROM pg_catalog.pg_settings WHERE name='max_index_keys'",
    )
    .await;
    assert_eq!(setting, vec![vec![Some("32".into())]]);

    let procedures = client
        .simple_query(
            "SELECT NULL AS PROCEDURE_CAT, n.nspname AS PROCEDURE_SCHEM, p.proname AS \
             PROCEDURE_NAME, NULL, NULL, NULL, d.description AS REMARKS, 2 AS PROCEDURE_TYPE,  \
             p.proname || '_' || p.oid AS SPECIFIC_NAME  FROM pg_catalog.pg_namespace n, \
             pg_catalog.pg_proc p  LEFT JOIN pg_catalog.pg_description d ON (p.oid=d.objoid)  \
             WHERE p.pronamespace=n.oid AND n.nspname = 'public'",
        )
        .await;
    assert!(procedures.is_ok(), "{procedures:?}");
}

#[tokio::test]
async fn sqlalchemy_key_reflection_with_subscripts() {
    let server = start().await;
    let client = connect(server.addr).await;
    let keys = rows(
        &client,
        "SELECT con.conname, unnest(con.conkey) AS attnum, generate_subscripts(con.conkey, 1) AS \
         ord FROM pg_catalog.pg_constraint con WHERE con.contype = 'f'",
    )
    .await;
    assert_eq!(
        keys,
        vec![vec![
            Some("tasks_project_id_fkey".into()),
            Some("3".into()),
            Some("1".into())
        ]]
    );
}

#[tokio::test]
async fn catalog_functions_of_clients_answer() {
    let server = start().await;
    let client = connect(server.addr).await;
    let answers = rows(
        &client,
        "SELECT current_setting('server_version_num')::int/100 AS version, \
         to_regtype('hstore') IS NULL AS no_hstore, pg_function_is_visible(1) AS visible",
    )
    .await;
    assert_eq!(
        answers,
        vec![vec![
            Some("1500".into()),
            Some("t".into()),
            Some("t".into())
        ]]
    );
}

#[tokio::test]
async fn copy_to_stdout_in_text_and_csv() {
    let server = start().await;
    let client = connect(server.addr).await;

    let read = |sql: &'static str| {
        let client = &client;
        async move {
            let stream = client.copy_out(sql).await.expect("copy starts");
            pin_mut!(stream);
            let mut out = Vec::new();
            while let Some(chunk) = stream.next().await {
                out.extend_from_slice(&chunk.expect("copy data"));
            }
            String::from_utf8(out).expect("utf-8")
        }
    };

    let text = read("COPY tasks (id, title) TO STDOUT").await;
    assert_eq!(text, "10\tDraft, then review\n11\tSay \"hi\"\n12\tShip\n");

    let csv = read(
        "COPY (SELECT id, title FROM tasks ORDER BY id LIMIT 2) \
         TO STDOUT WITH (FORMAT csv, HEADER)",
    )
    .await;
    assert_eq!(
        csv,
        "id,title\n10,\"Draft, then review\"\n11,\"Say \"\"hi\"\"\"\n"
    );

    // The session is still usable, and refused forms say why.
    let err = client
        .simple_query("COPY tasks FROM STDIN")
        .await
        .expect_err("COPY FROM is refused");
    assert_eq!(server_support::code(&err), "0A000");
    assert_eq!(rows(&client, "SELECT 1").await.len(), 1);
}
