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
    self, AuthMode, Backend, ForeignKey, Login, Routine, RoutineKind, TableComment, TableKeys,
    install_catalog, install_keys, install_routines,
};
use server_support::{PASSWORD, USER, config, connect, password_mode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
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
        let project_id = vec![("projectId".to_owned(), DataType::Int64)];
        install_routines(
            &ctx,
            &[
                Routine {
                    name: "ArchiveProject".into(),
                    kind: RoutineKind::Procedure,
                    args: project_id.clone(),
                    returns: None,
                },
                Routine {
                    name: "archive_project".into(),
                    kind: RoutineKind::Function,
                    args: project_id,
                    returns: Some(DataType::Utf8),
                },
            ],
        )
        .map_err(fail)?;
        Ok(ctx)
    }
}

struct Running {
    addr: std::net::SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn start() -> Running {
    start_with(password_mode()).await
}

async fn start_with(auth: AuthMode) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(server::run(
        listener,
        config(auth),
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

/// psql 15's `\df`, and pgjdbc's `getProcedures` and `getFunctions`.
#[tokio::test]
async fn routines_are_listed_like_postgres_lists_them() {
    let server = start().await;
    let client = connect(server.addr).await;

    let df = rows(
        &client,
        "SELECT n.nspname as \"Schema\",\n  p.proname as \"Name\",\n  \
         pg_catalog.pg_get_function_result(p.oid) as \"Result data type\",\n  \
         pg_catalog.pg_get_function_arguments(p.oid) as \"Argument data types\",\n \
         CASE p.prokind\n  WHEN 'a' THEN 'agg'\n  WHEN 'w' THEN 'window'\n  WHEN 'p' THEN \
         'proc'\n  ELSE 'func'\n END as \"Type\"\nFROM pg_catalog.pg_proc p\n     LEFT JOIN \
         pg_catalog.pg_namespace n ON n.oid = p.pronamespace\nWHERE \
         pg_catalog.pg_function_is_visible(p.oid)\n      AND n.nspname <> 'pg_catalog'\n      \
         AND n.nspname <> 'information_schema'\nORDER BY 1, 2, 4;",
    )
    .await;
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(
        df,
        vec![
            vec![
                some("public"),
                some("ArchiveProject"),
                None,
                some("\"projectId\" bigint"),
                some("proc"),
            ],
            vec![
                some("public"),
                some("archive_project"),
                some("text"),
                some("\"projectId\" bigint"),
                some("func"),
            ],
        ]
    );

    let procedures = rows(
        &client,
        "SELECT NULL AS PROCEDURE_CAT, n.nspname AS PROCEDURE_SCHEM, p.proname AS \
         PROCEDURE_NAME, NULL, NULL, NULL, d.description AS REMARKS, 2 AS PROCEDURE_TYPE,  \
         p.proname || '_' || p.oid AS SPECIFIC_NAME  FROM pg_catalog.pg_namespace n, \
         pg_catalog.pg_proc p  LEFT JOIN pg_catalog.pg_description d ON (p.oid=d.objoid)  \
         LEFT JOIN pg_catalog.pg_class c ON (d.classoid=c.oid AND c.relname='pg_proc')  LEFT \
         JOIN pg_catalog.pg_namespace pn ON (c.relnamespace=pn.oid AND pn.nspname='pg_catalog') \
         WHERE p.pronamespace=n.oid  AND n.nspname LIKE 'public' AND p.prokind = 'p' AND \
         p.proname LIKE '%' ORDER BY PROCEDURE_SCHEM, PROCEDURE_NAME, p.oid::text ",
    )
    .await;
    assert_eq!(procedures.len(), 1, "{procedures:?}");
    assert_eq!(procedures[0][2].as_deref(), Some("ArchiveProject"));

    let functions = rows(
        &client,
        "SELECT current_database() AS FUNCTION_CAT, n.nspname AS FUNCTION_SCHEM, p.proname AS \
         FUNCTION_NAME, d.description AS REMARKS, CASE WHEN (format_type(p.prorettype, null) = \
         'unknown') THEN 0 WHEN (substring(pg_get_function_result(p.oid) from 0 for 6) = \
         'TABLE') OR (substring(pg_get_function_result(p.oid) from 0 for 6) = 'SETOF') THEN 2 \
         ELSE 1 END AS FUNCTION_TYPE, p.proname || '_' || p.oid AS SPECIFIC_NAME FROM \
         pg_catalog.pg_proc p INNER JOIN pg_catalog.pg_namespace n ON p.pronamespace=n.oid LEFT \
         JOIN pg_catalog.pg_description d ON p.oid=d.objoid WHERE \
         pg_function_is_visible(p.oid)  AND n.nspname LIKE 'public' AND p.proname LIKE '%' \
         AND p.prokind='f' ORDER BY FUNCTION_SCHEM, FUNCTION_NAME, p.oid::text ",
    )
    .await;
    assert_eq!(functions.len(), 1, "{functions:?}");
    assert_eq!(functions[0][2].as_deref(), Some("archive_project"));
    assert_eq!(functions[0][4].as_deref(), Some("1"));

    // Argument names and types, as getProcedureColumns reads them.
    let args = rows(
        &client,
        "SELECT p.pronargs, p.proargnames, p.proargtypes::text, p.prorettype \
         FROM pg_catalog.pg_proc p WHERE p.proname = 'ArchiveProject'",
    )
    .await;
    assert_eq!(args.len(), 1);
    assert_eq!(args[0][0].as_deref(), Some("1"));
    assert!(
        args[0][1]
            .as_deref()
            .is_some_and(|n| n.contains("projectId")),
        "{args:?}"
    );
    assert_eq!(args[0][2].as_deref(), Some("20"));
    assert_eq!(args[0][3].as_deref(), Some("2278"));
}

/// Metabase's field sync finds primary keys through
/// `information_schema.table_constraints` and `key_column_usage`, and reads
/// PostgreSQL's type names from `information_schema.columns`.
#[tokio::test]
async fn metabase_field_sync_sees_primary_keys() {
    let server = start().await;
    let client = connect(server.addr).await;
    let fields = rows(&client, METABASE_FIELDS).await;
    let by_name = |name: &str| {
        fields
            .iter()
            .find(|r| r[0].as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no field {name}: {fields:?}"))
            .clone()
    };
    let id = by_name("id");
    assert_eq!(id[1].as_deref(), Some("int8"), "{id:?}");
    assert_eq!(id[2].as_deref(), Some("0"));
    assert_eq!(id[5].as_deref(), Some("t"), "id is the primary key: {id:?}");
    let title = by_name("title");
    assert_eq!(title[1].as_deref(), Some("text"));
    assert_eq!(title[5].as_deref(), Some("f"));
    assert_eq!(fields.len(), 3, "{fields:?}");

    let keys = rows(
        &client,
        "SELECT tc.table_name, tc.constraint_type, kc.column_name, kc.ordinal_position \
         FROM information_schema.table_constraints tc JOIN information_schema.key_column_usage \
         kc ON tc.constraint_name = kc.constraint_name ORDER BY 1, 2",
    )
    .await;
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(
        keys,
        vec![
            vec![some("projects"), some("PRIMARY KEY"), some("id"), some("1")],
            vec![
                some("tasks"),
                some("FOREIGN KEY"),
                some("project_id"),
                some("1")
            ],
            vec![some("tasks"), some("PRIMARY KEY"), some("id"), some("1")],
        ]
    );
    let types = rows(
        &client,
        "SELECT data_type, udt_name, is_identity FROM information_schema.columns \
         WHERE table_name = 'tasks' AND column_name = 'project_id'",
    )
    .await;
    assert_eq!(types, vec![vec![some("bigint"), some("int8"), some("NO")]]);
}

/// What pgAdmin sends when it connects.
#[tokio::test]
async fn pgadmin_session_setup_answers() {
    let server = start().await;
    let client = connect(server.addr).await;
    let bytea = rows(
        &client,
        "SELECT set_config('bytea_output','hex',false) FROM pg_show_all_settings() \
         WHERE name = 'bytea_output'",
    )
    .await;
    assert_eq!(bytea, vec![vec![Some("hex".to_owned())]]);
    let err = client
        .simple_query("SELECT set_config('bytea_output','escape',false)")
        .await
        .expect_err("a function cannot change the session");
    assert_eq!(server_support::code(&err), "0A000");

    let recovery = rows(
        &client,
        "SELECT CASE WHEN usesuper\n       THEN pg_catalog.pg_is_in_recovery()\n       \
         ELSE FALSE\n       END as inrecovery,\n       CASE WHEN usesuper AND \
         pg_catalog.pg_is_in_recovery()\n       THEN pg_catalog.pg_is_wal_replay_paused()\n \
         ELSE FALSE\n       END as isreplaypaused\nFROM pg_catalog.pg_user WHERE \
         usename=current_user",
    )
    .await;
    assert_eq!(
        recovery,
        vec![vec![Some("f".to_owned()), Some("f".to_owned())]]
    );
}

const METABASE_FIELDS: &str = r#"SELECT "c"."column_name" AS "name",
  CASE WHEN "c"."udt_schema" IN ('public', 'pg_catalog') THEN FORMAT('%s', "c"."udt_name")
    ELSE FORMAT('"%s"."%s"', "c"."udt_schema", "c"."udt_name") END AS "database-type",
  "c"."ordinal_position" - 1 AS "database-position", "c"."table_schema" AS "table-schema",
  "c"."table_name" AS "table-name", "pk"."column_name" IS NOT NULL AS "pk?",
  COL_DESCRIPTION(CAST(CAST(FORMAT('%I.%I', CAST("c"."table_schema" AS TEXT),
    CAST("c"."table_name" AS TEXT)) AS REGCLASS) AS OID), "c"."ordinal_position") AS
    "field-comment",
  (("column_default" IS NULL) OR (LOWER("column_default") = 'null')) AND ("is_nullable" = 'NO')
    AND NOT ((("column_default" IS NOT NULL) AND ("column_default" LIKE '%nextval(%')) OR
    ("is_identity" <> 'NO')) AS "database-required",
  (("column_default" IS NOT NULL) AND ("column_default" LIKE '%nextval(%')) OR ("is_identity"
    <> 'NO') AS "database-is-auto-increment"
FROM "information_schema"."columns" AS "c"
LEFT JOIN (SELECT "tc"."table_schema", "tc"."table_name", "kc"."column_name"
  FROM "information_schema"."table_constraints" AS "tc"
  INNER JOIN "information_schema"."key_column_usage" AS "kc"
    ON ("tc"."constraint_name" = "kc"."constraint_name") AND ("tc"."table_schema" =
    "kc"."table_schema")
    AND ("tc"."table_name" = "kc"."table_name")
  WHERE "tc"."constraint_type" = 'PRIMARY KEY') AS "pk"
  ON ("c"."table_schema" = "pk"."table_schema") AND ("c"."table_name" = "pk"."table_name")
  AND ("c"."column_name" = "pk"."column_name")
WHERE c.table_schema !~ '^information_schema|catalog_history|pg_' AND ("c"."table_schema" IN
    ('public'))
  AND ("c"."table_name" IN ('tasks'))
UNION ALL
SELECT "pa"."attname" AS "name",
  CASE WHEN "ptn"."nspname" IN ('public', 'pg_catalog') THEN FORMAT('%s', "pt"."typname")
    ELSE FORMAT('"%s"."%s"', "ptn"."nspname", "pt"."typname") END AS "database-type",
  "pa"."attnum" - 1 AS "database-position", "pn"."nspname" AS "table-schema",
  "pc"."relname" AS "table-name", FALSE AS "pk?", NULL AS "field-comment",
  FALSE AS "database-required", FALSE AS "database-is-auto-increment"
FROM "pg_catalog"."pg_class" AS "pc"
INNER JOIN "pg_catalog"."pg_namespace" AS "pn" ON "pn"."oid" = "pc"."relnamespace"
INNER JOIN "pg_catalog"."pg_attribute" AS "pa" ON "pa"."attrelid" = "pc"."oid"
INNER JOIN "pg_catalog"."pg_type" AS "pt" ON "pt"."oid" = "pa"."atttypid"
INNER JOIN "pg_catalog"."pg_namespace" AS "ptn" ON "ptn"."oid" = "pt"."typnamespace"
WHERE ("pc"."relkind" = 'm') AND ("pa"."attnum" >= 1) AND ("pn"."nspname" IN ('public'))
  AND ("pc"."relname" IN ('tasks'))
ORDER BY "table-schema" ASC, "table-name" ASC, "database-position" ASC"#;

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

/// Grafana's table picker names tables on the search path without their
/// schema; it finds the path with functions in FROM and an IN subquery in
/// the select list.
#[tokio::test]
async fn grafana_table_picker_reads_the_search_path() {
    let server = start().await;
    let client = connect(server.addr).await;
    let search_path = concat!(
        "SELECT\n            CASE WHEN trim(s[i]) = '\"$user\"' THEN user ELSE trim(s[i]) END\n",
        "          FROM\n            generate_series(\n",
        "              array_lower(string_to_array(current_setting('search_path'),','),1),\n",
        "              array_upper(string_to_array(current_setting('search_path'),','),1)\n",
        "            ) as i,\n",
        "            string_to_array(current_setting('search_path'),',') s"
    );
    let tables = rows(
        &client,
        &format!(
            "SELECT CASE WHEN quote_ident(table_schema) IN ({search_path}) \
             THEN quote_ident(table_name) \
             ELSE quote_ident(table_schema) || '.' || quote_ident(table_name) END AS \"table\" \
             FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"
        ),
    )
    .await;
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(tables, vec![vec![some("projects")], vec![some("tasks")]]);
}

/// `format` and `to_regclass`, as Metabase's field sync combines them.
#[tokio::test]
async fn format_and_to_regclass_answer_like_postgres() {
    let server = start().await;
    let client = connect(server.addr).await;
    let tasks = oid_of(&client, "tasks").await;
    let got = rows(
        &client,
        "SELECT format('%I.%I', 'public', 'My Table'), format('%s|%L|%L', NULL, 'it''s', NULL), \
         CAST(CAST(format('%I.%I', 'public', 'tasks') AS REGCLASS) AS OID), \
         to_regclass('tasks'), to_regclass('public.nosuch')",
    )
    .await;
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(
        got,
        vec![vec![
            some("public.\"My Table\""),
            some("|'it''s'|NULL"),
            Some(tasks.clone()),
            Some(tasks),
            None,
        ]]
    );
    let err = client
        .simple_query("SELECT format('%s %s', 'a')")
        .await
        .expect_err("too few arguments");
    assert_eq!(server_support::code(&err), "22023");
    let err = client
        .simple_query("SELECT format('%I', NULL)")
        .await
        .expect_err("NULL identifier");
    assert_eq!(server_support::code(&err), "22004");
    assert_eq!(
        rows(&client, "SELECT 1").await.len(),
        1,
        "session still usable"
    );
}

// ----- psycopg 3's server-side cursor, as raw protocol messages -----

fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn cstr(text: &str) -> Vec<u8> {
    let mut out = text.as_bytes().to_vec();
    out.push(0);
    out
}

/// Describe or Close (`tag`) of the portal `name`, then Sync.
fn portal_message(tag: u8, name: &str) -> Vec<u8> {
    let mut body = vec![b'P'];
    body.extend(cstr(name));
    let mut out = frame(tag, &body);
    out.extend(frame(b'S', &[]));
    out
}

/// Parse, Bind and Execute of the unnamed statement and portal, then Sync.
fn extended_query(sql: &str) -> Vec<u8> {
    let mut parse = cstr("");
    parse.extend(cstr(sql));
    parse.extend(0i16.to_be_bytes());
    let mut bind = cstr("");
    bind.extend(cstr(""));
    bind.extend([0u8; 6]); // no parameter formats, parameters, result formats
    let mut execute = cstr("");
    execute.extend(0i32.to_be_bytes());
    let mut out = frame(b'P', &parse);
    out.extend(frame(b'B', &bind));
    out.extend(frame(b'E', &execute));
    out.extend(frame(b'S', &[]));
    out
}

/// Execute of the portal `name` for up to `max_rows` rows, then Sync.
fn execute_portal(name: &str, max_rows: i32) -> Vec<u8> {
    let mut body = cstr(name);
    body.extend(max_rows.to_be_bytes());
    let mut out = frame(b'E', &body);
    out.extend(frame(b'S', &[]));
    out
}

/// The backend messages up to and including ReadyForQuery.
async fn until_ready(socket: &mut TcpStream) -> Vec<(u8, Vec<u8>)> {
    let mut got = vec![];
    loop {
        let read = async {
            let tag = socket.read_u8().await?;
            let len = socket.read_i32().await?;
            let mut body = vec![0; (len as usize).saturating_sub(4)];
            socket.read_exact(&mut body).await?;
            std::io::Result::Ok((tag, body))
        };
        let (tag, body) = tokio::time::timeout(std::time::Duration::from_secs(10), read)
            .await
            .expect("an answer in time")
            .expect("read");
        got.push((tag, body));
        if tag == b'Z' {
            return got;
        }
    }
}

fn tags(messages: &[(u8, Vec<u8>)]) -> String {
    messages.iter().map(|(t, _)| *t as char).collect()
}

/// The SQLSTATE of the first ErrorResponse.
fn error_code(messages: &[(u8, Vec<u8>)]) -> Option<String> {
    let (_, body) = messages.iter().find(|(t, _)| *t == b'E')?;
    String::from_utf8_lossy(body)
        .split('\0')
        .find_map(|f| f.strip_prefix('C').map(str::to_owned))
}

/// Column names and type oids of a RowDescription.
fn columns(body: &[u8]) -> Vec<(String, u32)> {
    let count = i16::from_be_bytes([body[0], body[1]]) as usize;
    let mut at = 2;
    let mut out = vec![];
    for _ in 0..count {
        let end = at + body[at..].iter().position(|b| *b == 0).expect("name");
        let name = String::from_utf8_lossy(&body[at..end]).into_owned();
        at = end + 1 + 4 + 2; // table oid, column number
        let oid = u32::from_be_bytes(body[at..at + 4].try_into().expect("oid"));
        at += 4 + 2 + 4 + 2; // oid, type size, type modifier, format
        out.push((name, oid));
    }
    out
}

/// The first column of each DataRow, as text.
fn first_values(messages: &[(u8, Vec<u8>)]) -> Vec<String> {
    messages
        .iter()
        .filter(|(t, _)| *t == b'D')
        .map(|(_, body)| {
            let len = i32::from_be_bytes(body[2..6].try_into().expect("len")) as usize;
            String::from_utf8_lossy(&body[6..6 + len]).into_owned()
        })
        .collect()
}

/// psycopg 3's named cursor: DECLARE in a transaction, Describe of the
/// portal named after the cursor, FETCH FORWARD, CLOSE. Execute of that
/// portal reads the cursor, and Close of the portal closes it.
#[tokio::test]
async fn declared_cursor_is_described_and_closed_as_a_portal() {
    let server = start_with(AuthMode::PassThrough).await;
    let mut socket = TcpStream::connect(server.addr).await.expect("connect");
    let mut startup = 196_608i32.to_be_bytes().to_vec();
    for text in ["user", "4242", "database", "productive", ""] {
        startup.extend(cstr(text));
    }
    let mut hello = ((startup.len() + 4) as i32).to_be_bytes().to_vec();
    hello.extend(startup);
    socket.write_all(&hello).await.expect("startup");
    let auth = until_ready_or_auth(&mut socket).await;
    assert_eq!(auth, 3i32.to_be_bytes(), "cleartext password requested");
    socket
        .write_all(&frame(b'p', &cstr("token")))
        .await
        .expect("password");
    assert!(tags(&until_ready(&mut socket).await).ends_with('Z'));

    let mut send = async |bytes: Vec<u8>| {
        socket.write_all(&bytes).await.expect("send");
        until_ready(&mut socket).await
    };
    assert_eq!(tags(&send(frame(b'Q', &cstr("BEGIN"))).await), "CZ");
    let declared = send(extended_query(
        "DECLARE \"walk\" CURSOR FOR SELECT id, title FROM tasks ORDER BY id",
    ))
    .await;
    assert_eq!(tags(&declared), "12CZ", "{declared:?}");

    let described = send(portal_message(b'D', "walk")).await;
    assert_eq!(tags(&described), "TZ", "{described:?}");
    assert_eq!(
        columns(&described[0].1),
        vec![("id".to_owned(), 20), ("title".to_owned(), 25)]
    );

    let fetched = send(frame(b'Q', &cstr("FETCH FORWARD 2 FROM \"walk\""))).await;
    assert_eq!(tags(&fetched), "TDDCZ");
    assert_eq!(first_values(&fetched), vec!["10", "11"]);
    let fetched = send(frame(b'Q', &cstr("FETCH FORWARD 1 FROM \"walk\""))).await;
    assert_eq!(first_values(&fetched), vec!["12"]);
    let declared = send(extended_query(
        "DECLARE page CURSOR FOR SELECT id, title FROM tasks ORDER BY id",
    ))
    .await;
    assert_eq!(tags(&declared), "12CZ", "{declared:?}");

    // Execute of the cursor's portal reads it too: a full page suspends.
    let executed = send(execute_portal("page", 2)).await;
    assert_eq!(tags(&executed), "DDsZ", "{executed:?}");
    assert_eq!(first_values(&executed), vec!["10", "11"]);
    let executed = send(execute_portal("page", 2)).await;
    assert_eq!(tags(&executed), "DCZ", "{executed:?}");
    assert_eq!(first_values(&executed), vec!["12"]);
    let executed = send(execute_portal("page", 0)).await;
    assert_eq!(tags(&executed), "CZ", "{executed:?}");

    assert_eq!(tags(&send(portal_message(b'C', "walk")).await), "3Z");
    // Closed: neither Describe nor FETCH finds it any more.
    let gone = send(portal_message(b'D', "walk")).await;
    assert_eq!(error_code(&gone).as_deref(), Some("34000"), "{gone:?}");
    assert_eq!(tags(&send(frame(b'Q', &cstr("ROLLBACK"))).await), "CZ");
    let gone = send(frame(b'Q', &cstr("FETCH 1 FROM \"walk\""))).await;
    assert_eq!(error_code(&gone).as_deref(), Some("34000"), "{gone:?}");
    let gone = send(execute_portal("walk", 0)).await;
    assert_eq!(error_code(&gone).as_deref(), Some("34000"), "{gone:?}");

    // Closing a name that is neither portal nor cursor is not an error; an
    // unknown Close target is a protocol violation that leaves the session up.
    assert_eq!(tags(&send(portal_message(b'C', "nosuch")).await), "3Z");
    let mut bad = frame(b'C', &[b'X', b'x', 0]);
    bad.extend(frame(b'S', &[]));
    let refused = send(bad).await;
    assert_eq!(
        error_code(&refused).as_deref(),
        Some("08P01"),
        "{refused:?}"
    );
    let one = send(frame(b'Q', &cstr("SELECT 1"))).await;
    assert_eq!(first_values(&one), vec!["1"]);
}

/// Reads up to the authentication request and returns its body.
async fn until_ready_or_auth(socket: &mut TcpStream) -> Vec<u8> {
    loop {
        let tag = socket.read_u8().await.expect("tag");
        let len = socket.read_i32().await.expect("len");
        let mut body = vec![0; (len as usize).saturating_sub(4)];
        socket.read_exact(&mut body).await.expect("body");
        assert_ne!(tag, b'E', "{}", String::from_utf8_lossy(&body));
        if tag == b'R' {
            return body;
        }
    }
}
