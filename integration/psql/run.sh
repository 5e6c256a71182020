#!/usr/bin/env bash
# psql 15: meta-commands, expanded output, COPY and \copy, tab completion
# (the catalog queries psql 15 sends for it), and error recovery.
set -uo pipefail
CLIENT=psql
# shellcheck source=integration/lib.sh
. "$(dirname "$0")/../lib.sh"

out="$(mktemp)"
trap 'rm -f "$out"' EXIT

# check NAME REGEX ARGS...: psql with ARGS must succeed and print REGEX.
check() {
    local name="$1" regex="$2"
    shift 2
    if ! psql -X -v ON_ERROR_STOP=1 "$@" >"$out" 2>&1; then
        fail "$name" "$(head -c 300 "$out" | tr '\n' ' ')"
    elif ! grep -Eq -- "$regex" "$out"; then
        fail "$name" "no line matches /$regex/: $(head -c 300 "$out" | tr '\n' ' ')"
    else
        pass "$name"
    fi
}

check '\l' '^ *productive *\| ' -c '\l'
check '\dn' '^ *public *\| ' -c '\dn'
check '\dt' '^ *public *\| tasks *\| table ' -c '\dt'
check '\dt pattern' '^ *public *\| task_lists *\| table ' -c '\dt task*'
check '\d tasks columns' '^ *project_id *\| bigint ' -c '\d tasks'
check '\d tasks primary key' '"tasks_pkey" PRIMARY KEY, btree \(id\)' -c '\d tasks'
check '\d tasks foreign keys' 'FOREIGN KEY \(project_id\) REFERENCES projects\(id\)' -c '\d tasks'
check '\d+ tasks' '^ *title *\| text .*\| extended ' -c '\d+ tasks'
check '\d+ tasks comments' 'id of the related projects record' -c '\d+ tasks'
# \df lists the API's actions as procedures and functions.
check '\df' '^ public \| ArchiveProject +\| +\| "projectId" bigint +\| proc$' -c '\df'
check '\du' 'List of roles' -c '\du'
check '\x' '^title +\| ' -c '\x' -c 'SELECT id, title FROM tasks ORDER BY id LIMIT 1'
check 'select with values' '^[1-9][0-9]*$' -At -c 'SELECT count(*) FROM tasks'
check 'COPY TO STDOUT csv' '^id,title$' \
    -c 'COPY (SELECT id, title FROM tasks ORDER BY id LIMIT 3) TO STDOUT WITH (FORMAT csv, HEADER)'
check 'COPY table TO STDOUT' '^[0-9]+	' -c 'COPY projects TO STDOUT'
copy_file="$(mktemp)"
check '\copy to file' '^COPY 2$' \
    -c "\\copy (SELECT id, name FROM projects ORDER BY id LIMIT 2) TO '$copy_file' WITH (FORMAT csv)"
if [ "$(wc -l <"$copy_file")" -eq 2 ] && grep -Eq '^[0-9]+,' "$copy_file"; then
    pass '\copy file contents'
else
    fail '\copy file contents' "$(head -c 200 "$copy_file")"
fi
rm -f "$copy_file"

# An error inside a session (outside and inside a transaction) must leave
# it usable: psql goes on with the next statements.
printf '%s\n' \
    'SELECT 1/0;' \
    'SELECT nosuch FROM tasks;' \
    'BEGIN;' 'SELECT nosuch FROM tasks;' 'ROLLBACK;' \
    "SELECT 'still alive' AS answer;" |
    psql -X -At >"$out" 2>&1
if grep -q 'division by zero' "$out" && grep -q '^still alive$' "$out"; then
    pass 'error leaves the session usable'
else
    fail 'error leaves the session usable' "$(tr '\n' ' ' <"$out" | head -c 300)"
fi

# Tab completion: psql 15 sends these catalog queries (from its
# tab-complete.c) for `SELECT * FROM tas<TAB>` and for column names after
# `... FROM tasks WHERE ti<TAB>`.
check 'tab completion: tables' '^tasks\|$' -At -c "SELECT c.relname, NULL::pg_catalog.text
  FROM pg_catalog.pg_class c
 WHERE c.relkind IN ('r', 'S', 'v', 'm', 'f', 'p')
   AND (c.relname) LIKE 'tas%'
   AND pg_catalog.pg_table_is_visible(c.oid)
   AND c.relnamespace <> (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'pg_catalog')
UNION ALL
SELECT NULL::pg_catalog.text, n.nspname
  FROM pg_catalog.pg_namespace n
 WHERE n.nspname LIKE 'tas%'
   AND n.nspname NOT LIKE E'pg\\\\_%'
LIMIT 1000"
check 'tab completion: columns' '^title$' -At -c "SELECT attname
  FROM pg_catalog.pg_attribute a, pg_catalog.pg_class c
 WHERE c.oid = a.attrelid
   AND a.attnum > 0
   AND NOT a.attisdropped
   AND a.attname LIKE 'ti%'
   AND (c.relname='tasks' OR '\"' || c.relname || '\"'='tasks')
   AND pg_catalog.pg_table_is_visible(c.oid)
LIMIT 1000"

# Interactive completion through a terminal, as a user types it.
if python3 "$(dirname "$0")/complete.py" 'SELECT * FROM tasks WHERE titl' 'title' >"$out" 2>&1; then
    pass 'tab completion in a terminal'
else
    fail 'tab completion in a terminal' "$(tr '\n' ' ' <"$out" | head -c 300)"
fi

# Writes through psql.
if psql -X -At -c "UPDATE tasks SET title = title WHERE id = -1" >"$out" 2>&1; then
    pass 'UPDATE'
else
    write_failed 'UPDATE' "$(head -c 200 "$out" | tr '\n' ' ')"
fi
