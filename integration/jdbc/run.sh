#!/usr/bin/env bash
# JDBC with the PostgreSQL driver (pgjdbc from Debian), run as a Java source
# file so nothing needs compiling ahead.
set -uo pipefail
CLIENT=jdbc
# shellcheck source=integration/lib.sh
. "$(dirname "$0")/../lib.sh"
ensure_apt /usr/share/java/postgresql.jar libpostgresql-jdbc-java
ensure_apt javac default-jdk-headless
exec java -cp /usr/share/java/postgresql.jar "$(dirname "$0")/Checks.java"
