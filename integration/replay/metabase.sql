-- Statements Metabase sends to PostgreSQL when it connects, syncs a database
-- and runs questions. Source: Metabase's open-source PostgreSQL driver,
-- src/metabase/driver/postgres.clj (db-default-timezone, get-tables-sql,
-- describe-fields-sql, describe-fks-sql, describe-indexes-sql) and the
-- shape of the SQL its query processor generates for questions (quoted
-- "schema"."table"."column" names, DATE_TRUNC buckets, INTERVAL literals,
-- GROUP BY ... ORDER BY ... LIMIT 2000, a leading "-- Metabase" comment).
-- The driver builds these with HoneySQL in the ANSI dialect; they are
-- written out here as sent, with the bind parameters inlined.

-- @check connect: default time zone
-- @rows >0
show timezone;

-- @check sync: tables with descriptions and row estimates
-- @columns schema,name,type,description,estimated_row_count
-- @contains name=tasks
SELECT "n"."nspname" AS "schema", "c"."relname" AS "name",
  CASE "c"."relkind" WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'PARTITIONED TABLE' WHEN 'v' THEN 'VIEW'
    WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE NULL END AS "type",
  "d"."description" AS "description", "stat"."n_live_tup" AS "estimated_row_count"
FROM "pg_catalog"."pg_class" AS "c"
INNER JOIN "pg_catalog"."pg_namespace" AS "n" ON "c"."relnamespace" = "n"."oid"
LEFT JOIN "pg_catalog"."pg_description" AS "d"
  ON ("c"."oid" = "d"."objoid") AND ("d"."objsubid" = 0) AND ("d"."classoid" = 'pg_class'::regclass)
LEFT JOIN "pg_stat_user_tables" AS "stat"
  ON ("n"."nspname" = "stat"."schemaname") AND ("c"."relname" = "stat"."relname")
WHERE ("c"."relnamespace" = "n"."oid") AND ("n"."nspname" !~ '^pg_') AND ("n"."nspname" <> 'information_schema')
  AND c.relkind in ('r', 'p', 'v', 'f', 'm') AND ("n"."nspname" IN ('public'))
ORDER BY "type" ASC, "schema" ASC, "name" ASC

-- @check sync: table privileges
-- @rows >0
SELECT has_table_privilege('"public"."tasks"', 'SELECT') AS "select",
  has_table_privilege('"public"."tasks"', 'UPDATE') AS "update"

-- @check sync: fields
-- @columns name,database-type,database-position,table-schema,table-name,pk?,field-comment,database-required,database-is-auto-increment
-- @contains name=project_id
SELECT "c"."column_name" AS "name",
  CASE WHEN "c"."udt_schema" IN ('public', 'pg_catalog') THEN FORMAT('%s', "c"."udt_name")
    ELSE FORMAT('"%s"."%s"', "c"."udt_schema", "c"."udt_name") END AS "database-type",
  "c"."ordinal_position" - 1 AS "database-position", "c"."table_schema" AS "table-schema",
  "c"."table_name" AS "table-name", "pk"."column_name" IS NOT NULL AS "pk?",
  COL_DESCRIPTION(CAST(CAST(FORMAT('%I.%I', CAST("c"."table_schema" AS TEXT), CAST("c"."table_name" AS TEXT)) AS REGCLASS) AS OID), "c"."ordinal_position") AS "field-comment",
  (("column_default" IS NULL) OR (LOWER("column_default") = 'null')) AND ("is_nullable" = 'NO')
    AND NOT ((("column_default" IS NOT NULL) AND ("column_default" LIKE '%nextval(%')) OR ("is_identity" <> 'NO')) AS "database-required",
  (("column_default" IS NOT NULL) AND ("column_default" LIKE '%nextval(%')) OR ("is_identity" <> 'NO') AS "database-is-auto-increment"
FROM "information_schema"."columns" AS "c"
LEFT JOIN (SELECT "tc"."table_schema", "tc"."table_name", "kc"."column_name"
  FROM "information_schema"."table_constraints" AS "tc"
  INNER JOIN "information_schema"."key_column_usage" AS "kc"
    ON ("tc"."constraint_name" = "kc"."constraint_name") AND ("tc"."table_schema" = "kc"."table_schema")
    AND ("tc"."table_name" = "kc"."table_name")
  WHERE "tc"."constraint_type" = 'PRIMARY KEY') AS "pk"
  ON ("c"."table_schema" = "pk"."table_schema") AND ("c"."table_name" = "pk"."table_name")
  AND ("c"."column_name" = "pk"."column_name")
WHERE c.table_schema !~ '^information_schema|catalog_history|pg_' AND ("c"."table_schema" IN ('public'))
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
ORDER BY "table-schema" ASC, "table-name" ASC, "database-position" ASC

-- @check sync: foreign keys
-- @contains fk-column-name=project_id
SELECT "fk_ns"."nspname" AS "fk-table-schema", "fk_table"."relname" AS "fk-table-name",
  "fk_column"."attname" AS "fk-column-name", "pk_ns"."nspname" AS "pk-table-schema",
  "pk_table"."relname" AS "pk-table-name", "pk_column"."attname" AS "pk-column-name"
FROM "pg_constraint" AS "c"
INNER JOIN "pg_class" AS "fk_table" ON "c"."conrelid" = "fk_table"."oid"
INNER JOIN "pg_namespace" AS "fk_ns" ON "c"."connamespace" = "fk_ns"."oid"
INNER JOIN "pg_attribute" AS "fk_column" ON "c"."conrelid" = "fk_column"."attrelid"
INNER JOIN "pg_class" AS "pk_table" ON "c"."confrelid" = "pk_table"."oid"
INNER JOIN "pg_namespace" AS "pk_ns" ON "pk_table"."relnamespace" = "pk_ns"."oid"
INNER JOIN "pg_attribute" AS "pk_column" ON "c"."confrelid" = "pk_column"."attrelid"
WHERE (fk_ns.nspname !~ '^information_schema|catalog_history|pg_') AND ("c"."contype" = 'f'::char)
  AND ("fk_column"."attnum" = ANY(c.conkey)) AND ("pk_column"."attnum" = ANY(c.confkey))
  AND ("fk_table"."relname" IN ('tasks')) AND ("fk_ns"."nspname" IN ('public'))
ORDER BY "fk-table-schema" ASC, "fk-table-name" ASC

-- @check sync: indexes
-- @contains field-name=id
SELECT "tmp"."table-schema", "tmp"."table-name",
  TRIM(BOTH '"' FROM PG_CATALOG.PG_GET_INDEXDEF("tmp"."ci_oid", "tmp"."pos", FALSE)) AS "field-name"
FROM (SELECT "n"."nspname" AS "table-schema", "ct"."relname" AS "table-name", "ci"."oid" AS "ci_oid",
    (information_schema._pg_expandarray(i.indkey)).n AS "pos"
  FROM "pg_catalog"."pg_class" AS "ct"
  INNER JOIN "pg_catalog"."pg_namespace" AS "n" ON "ct"."relnamespace" = "n"."oid"
  INNER JOIN "pg_catalog"."pg_index" AS "i" ON "ct"."oid" = "i"."indrelid"
  INNER JOIN "pg_catalog"."pg_class" AS "ci" ON "ci"."oid" = "i"."indexrelid"
  WHERE (PG_CATALOG.PG_GET_EXPR("i"."indpred", "i"."indrelid") IS NULL)
    AND n.nspname !~ '^information_schema|catalog_history|pg_' AND ("n"."nspname" IN ('public'))
    AND ("ct"."relname" IN ('tasks'))) AS "tmp"
WHERE "tmp"."pos" = 1

-- @check sync: enum types
SELECT nspname, typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid IN (SELECT DISTINCT enumtypid FROM pg_enum e)

-- @check question: raw rows
-- @columns id,title,created_at
-- @rows >0
-- Metabase:: userID: 1 queryType: MBQL queryHash: 0
SELECT "public"."tasks"."id" AS "id", "public"."tasks"."title" AS "title",
  "public"."tasks"."created_at" AS "created_at"
FROM "public"."tasks"
LIMIT 2000

-- @check question: count by month
-- @columns created_at,count
-- @rows >0
-- Metabase:: userID: 1 queryType: MBQL queryHash: 0
SELECT DATE_TRUNC('month', "public"."tasks"."created_at") AS "created_at", COUNT(*) AS "count"
FROM "public"."tasks"
GROUP BY DATE_TRUNC('month', "public"."tasks"."created_at")
ORDER BY DATE_TRUNC('month', "public"."tasks"."created_at") ASC
LIMIT 2000

-- @check question: relative date filter with interval arithmetic
-- @columns count
-- Metabase:: userID: 1 queryType: MBQL queryHash: 0
SELECT COUNT(*) AS "count"
FROM "public"."tasks"
WHERE ("public"."tasks"."created_at" >= DATE_TRUNC('day', (NOW() + INTERVAL '-3650 day')))
  AND ("public"."tasks"."created_at" < DATE_TRUNC('day', (NOW() + INTERVAL '1 day')))

-- @check question: date column bucketed by week
-- @columns due_date,count
-- Metabase:: userID: 1 queryType: MBQL queryHash: 0
SELECT CAST(DATE_TRUNC('week', CAST(("public"."tasks"."due_date" + INTERVAL '1 day') AS timestamp)) + INTERVAL '-1 day' AS date) AS "due_date",
  COUNT(*) AS "count"
FROM "public"."tasks"
GROUP BY CAST(DATE_TRUNC('week', CAST(("public"."tasks"."due_date" + INTERVAL '1 day') AS timestamp)) + INTERVAL '-1 day' AS date)
ORDER BY CAST(DATE_TRUNC('week', CAST(("public"."tasks"."due_date" + INTERVAL '1 day') AS timestamp)) + INTERVAL '-1 day' AS date) ASC
LIMIT 2000

-- @check question: implicit join through a foreign key
-- @columns Projects__name,count
-- @rows >0
-- Metabase:: userID: 1 queryType: MBQL queryHash: 0
SELECT "Projects"."name" AS "Projects__name", COUNT(*) AS "count"
FROM "public"."tasks"
LEFT JOIN "public"."projects" AS "Projects" ON "public"."tasks"."project_id" = "Projects"."id"
GROUP BY "Projects"."name"
ORDER BY "count" DESC, "Projects"."name" ASC
LIMIT 2000
