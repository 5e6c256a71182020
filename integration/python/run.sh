#!/usr/bin/env bash
# Python clients: psycopg 3, psycopg2, SQLAlchemy 2, pandas, asyncpg, in a
# virtual environment at integration/python/.venv built from requirements.txt.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
stamp="$venv/.requirements"
CLIENT=python
# shellcheck source=integration/lib.sh
. "$here/../lib.sh"
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$here/requirements.txt" "$stamp"; then
    echo "installing the Python clients" >&2
    # Debian's python3 makes virtual environments only with python3-venv.
    if ! python3 -m venv "$venv" >&2; then
        ensure_apt /usr/lib/python3/dist-packages/ensurepip python3-venv
        rm -rf "$venv"
        python3 -m venv "$venv" >&2 || exit 1
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt" >&2 || exit 1
    cp "$here/requirements.txt" "$stamp"
fi
exec "$venv/bin/python" "$here/checks.py"
