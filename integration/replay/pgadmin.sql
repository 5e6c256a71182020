-- The statements pgAdmin 4 sends when it connects to a server and opens a
-- database. Source: pgAdmin 4's open-source psycopg driver
-- (web/pgadmin/utils/driver/psycopg3/connection.py: session setup, the
-- recovery check, the database and role queries) and its server-connect
-- SQL templates.

-- @check session setup: date style
SET DateStyle=ISO

-- @check session setup: messages
SET client_min_messages=notice

-- @check session setup: client encoding
SET client_encoding='UTF8'

-- @check session setup: bytea output
SELECT set_config('bytea_output','hex',false) FROM pg_show_all_settings() WHERE name = 'bytea_output'

-- @check server version
-- @rows >0
SELECT version()

-- @check recovery state
SELECT CASE WHEN usesuper
       THEN pg_catalog.pg_is_in_recovery()
       ELSE FALSE
       END as inrecovery,
       CASE WHEN usesuper AND pg_catalog.pg_is_in_recovery()
       THEN pg_catalog.pg_is_wal_replay_paused()
       ELSE FALSE
       END as isreplaypaused
FROM pg_catalog.pg_user WHERE usename=current_user

-- @check database
-- @contains datname=productive
SELECT
    db.oid as did, db.datname, db.datallowconn,
    pg_catalog.pg_encoding_to_char(db.encoding) AS serverencoding,
    pg_catalog.has_database_privilege(db.oid, 'CREATE') as cancreate,
    datistemplate
FROM
    pg_catalog.pg_database db
WHERE db.datname = current_database()

-- @check role
SELECT
    roles.oid as id, roles.rolname as name,
    roles.rolsuper as is_superuser,
    CASE WHEN roles.rolsuper THEN true ELSE roles.rolcreaterole END as can_create_role,
    CASE WHEN roles.rolsuper THEN true ELSE roles.rolcreatedb END as can_create_db
FROM
    pg_catalog.pg_roles as roles
WHERE
    rolname = current_user
