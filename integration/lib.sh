# Helpers shared by the client scripts of the harness (sourced, not run).

# ensure_apt COMMAND-OR-PATH PACKAGE...: installs the Debian packages when
# the command (or, for an absolute path, the file) is missing. Needs root.
ensure_apt() {
    local what="$1"
    shift
    if [[ "$what" == /* ]]; then
        [ -e "$what" ] && return 0
    else
        command -v "$what" >/dev/null 2>&1 && return 0
    fi
    echo "installing: $*" >&2
    export DEBIAN_FRONTEND=noninteractive
    # A fresh machine has no package lists yet; try without an update first.
    apt-get install -y -qq "$@" >/dev/null 2>&1 && return 0
    apt-get update -qq >&2 && apt-get install -y -qq "$@" >/dev/null
}

# pass CHECK / fail CHECK WHY / xfail CHECK WHY: one result line each.
pass() { echo "ok $CLIENT $1"; }
fail() { echo "not ok $CLIENT $1 -- $2"; }
xfail() { echo "xfail $CLIENT $1 -- $2"; }

# Whether the server has a write path (probed once by the driver): a write
# step that fails is reported as expected to fail while it has none.
writes_supported() { [ "${PRODUCTIVE_PG_WRITES:-0}" = 1 ]; }

# write_step CHECK WHY-OK: reports a failed write step as xfail or failure.
write_failed() {
    if writes_supported; then
        fail "$1" "$2"
    else
        xfail "$1" "$2 (this server has no write path)"
    fi
}
