#!/usr/bin/env bash
# Python clients: psycopg 3, psycopg2, SQLAlchemy 2, pandas, asyncpg, in a
# virtual environment at integration/python/.venv built from requirements.txt.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
stamp="$venv/.requirements"
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$here/requirements.txt" "$stamp"; then
    echo "installing the Python clients" >&2
    python3 -m venv "$venv" >&2 || exit 1
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt" >&2 || exit 1
    cp "$here/requirements.txt" "$stamp"
fi
exec "$venv/bin/python" "$here/checks.py"
