-- Catalog statements DBeaver's PostgreSQL navigator sends when it opens a
-- connection and expands a schema, a table's columns, keys and indexes.
-- Source: DBeaver's open-source PostgreSQL plugin (org.jkiss.dbeaver.ext.
-- postgresql, model classes PostgreDatabase, PostgreSchema and their
-- object caches). DBeaver binds the schema or table oid as a parameter;
-- here the parameter is written as a subquery that yields that oid.

-- @check server version
-- @rows >0
SELECT version()

-- @check current schema and user
-- @rows >0
SELECT current_schema(),session_user

-- @check database
-- @contains datname=productive
SELECT db.oid,db.* FROM pg_catalog.pg_database db WHERE datname='productive'

-- @check schemas
-- @contains nspname=public
SELECT n.oid,n.*,d.description FROM pg_catalog.pg_namespace n
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=n.oid AND d.objsubid=0 AND d.classoid='pg_namespace'::regclass
ORDER BY nspname

-- @check tables of a schema
-- @contains relname=tasks
SELECT c.oid,c.*,d.description,pg_catalog.pg_get_expr(c.relpartbound, c.oid) as partition_expr,  pg_catalog.pg_get_partkeydef(c.oid) as partition_key 
FROM pg_catalog.pg_class c
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND d.classoid='pg_class'::regclass
WHERE c.relnamespace=(SELECT oid FROM pg_catalog.pg_namespace WHERE nspname='public') AND c.relkind not in ('i','I','c')

-- @check columns of a table
-- @contains attname=project_id
SELECT c.relname,a.*,pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) as def_value,dsc.description
FROM pg_catalog.pg_attribute a
INNER JOIN pg_catalog.pg_class c ON (a.attrelid=c.oid)
LEFT OUTER JOIN pg_catalog.pg_attrdef ad ON (a.attrelid=ad.adrelid AND a.attnum = ad.adnum)
LEFT OUTER JOIN pg_catalog.pg_description dsc ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid)
WHERE NOT a.attisdropped AND c.relkind not in ('i','I','c') AND c.oid=(SELECT oid FROM pg_catalog.pg_class WHERE relname='tasks')
ORDER BY a.attnum

-- @check constraints of a schema
-- @contains conname=tasks_project_id_fkey
SELECT c.oid,c.*,t.relname as tabrelname,rt.relnamespace as refnamespace,d.description
FROM pg_catalog.pg_constraint c
INNER JOIN pg_catalog.pg_class t ON t.oid=c.conrelid
LEFT OUTER JOIN pg_catalog.pg_class rt ON rt.oid=c.confrelid
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND d.classoid='pg_constraint'::regclass
WHERE t.relnamespace=(SELECT oid FROM pg_catalog.pg_namespace WHERE nspname='public') AND c.contype<>'x'
ORDER BY c.oid

-- @check indexes of a schema
-- @contains relname=tasks_pkey
SELECT i.*,i.indkey as keys,c.relname,c.relnamespace,c.relam,c.reltablespace,tc.relname as tabrelname,dsc.description,
pg_catalog.pg_get_expr(i.indpred, i.indrelid) as pred_expr,pg_catalog.pg_get_expr(i.indexprs, i.indrelid, true) as expr,
pg_catalog.pg_relation_size(i.indexrelid) as index_rel_size,pg_catalog.pg_stat_get_numscans(i.indexrelid) as index_num_scans
FROM pg_catalog.pg_index i
INNER JOIN pg_catalog.pg_class c ON c.oid=i.indexrelid
INNER JOIN pg_catalog.pg_class tc ON tc.oid=i.indrelid
LEFT OUTER JOIN pg_catalog.pg_description dsc ON i.indexrelid=dsc.objoid
WHERE c.relnamespace=(SELECT oid FROM pg_catalog.pg_namespace WHERE nspname='public')
ORDER BY tabrelname, c.relname

-- @check data tab
-- @rows >0
SELECT * FROM public.tasks
LIMIT 200
