-- Statements Grafana's PostgreSQL data source sends from its query editor
-- (version check, schema, table and column pickers). Source: Grafana's
-- open-source frontend, public/app/plugins/datasource/
-- grafana-postgresql-datasource/postgresMetaQuery.ts, with 'tasks' as the
-- chosen table.

-- @check version
-- @rows >0
SELECT current_setting('server_version_num')::int/100 as version

-- @check timescaledb probe
SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'

-- @check schemas
-- @contains name=public
SELECT schema_name AS "name"
    FROM information_schema.schemata
    WHERE schema_name NOT IN ('information_schema',
                              'pg_catalog',
                              'pg_toast',
                              '_timescaledb_cache',
                              '_timescaledb_catalog',
                              '_timescaledb_internal',
                              '_timescaledb_config',
                              'timescaledb_information',
                              'timescaledb_experimental')
    ORDER BY schema_name

-- @check tables of a schema
-- @contains table=tasks
SELECT quote_ident(table_name) AS "table"
      FROM information_schema.tables
      WHERE quote_ident(table_schema) = 'public'
      ORDER BY 1

-- @check tables on the search path
-- @contains table=tasks
SELECT
    CASE WHEN
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          )
      THEN quote_ident(table_name)
      ELSE quote_ident(table_schema) || '.' || quote_ident(table_name)
    END AS "table"
    FROM information_schema.tables
    WHERE quote_ident(table_schema) NOT IN ('information_schema',
                             'pg_catalog',
                             '_timescaledb_cache',
                             '_timescaledb_catalog',
                             '_timescaledb_internal',
                             '_timescaledb_config',
                             'timescaledb_information',
                             'timescaledb_experimental')
    ORDER BY CASE WHEN
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          ) THEN 0 ELSE 1 END, 1

-- @check columns of a table
-- @contains column=project_id
SELECT quote_ident(column_name) AS "column", data_type AS "type"
    FROM information_schema.columns
    WHERE
      CASE WHEN array_length(parse_ident('tasks'),1) = 2
        THEN quote_ident(table_schema) = (parse_ident('tasks'))[1]
          AND quote_ident(table_name) = (parse_ident('tasks'))[2]
        ELSE quote_ident(table_name) = 'tasks'
          AND
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          )
      END

-- @check time series panel (macros expanded as Grafana's backend does)
-- @columns time,count
-- @rows >0
SELECT
  floor(extract(epoch from created_at)/3600)*3600 AS "time",
  count(id) AS "count"
FROM tasks
WHERE
  created_at BETWEEN '2000-01-01T00:00:00Z' AND '2100-01-01T00:00:00Z'
GROUP BY 1
ORDER BY 1
