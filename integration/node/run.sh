#!/usr/bin/env bash
# node-postgres with parameterised queries.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
CLIENT=node
# shellcheck source=integration/lib.sh
. "$here/../lib.sh"
ensure_apt npm nodejs npm
if [ ! -d "$here/node_modules/pg" ]; then
    echo "installing node-postgres" >&2
    (cd "$here" && npm ci --no-audit --no-fund --silent >&2) || exit 1
fi
exec node "$here/checks.js"
