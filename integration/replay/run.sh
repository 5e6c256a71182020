#!/usr/bin/env bash
# Replays the catalog and query statements that Metabase, DBeaver, Grafana
# and pgAdmin send (the *.sql lists beside this script, each naming its
# source) through pgjdbc's extended protocol, as those JDBC-based tools do.
set -uo pipefail
CLIENT=replay
# shellcheck source=integration/lib.sh
. "$(dirname "$0")/../lib.sh"
ensure_apt /usr/share/java/postgresql.jar libpostgresql-jdbc-java
ensure_apt javac default-jdk-headless
here="$(dirname "$0")"
exec java -cp /usr/share/java/postgresql.jar "$here/Replay.java" "$here"/*.sql
