#!/usr/bin/env bash
# Start a long-lived PostgreSQL server for developers who prefer one to the throwaway cluster that
# the test session starts by itself (export SYNTHPIPE_TEST_PG_URL to use it; .ci/run does not).
#
# Run as root on a fresh Debian machine (CI) or on a developer's box; running it again is harmless:
# every step checks before it acts. It installs Debian's postgresql when missing, starts the
# cluster of whatever major version is installed, listening on loopback only, waits until it
# accepts connections, and creates role `synthpipe` (password `synthpipe`) and database
# `synthpipe_test` owned by it. Tests connect through SYNTHPIPE_TEST_PG_URL, which defaults to
#   postgresql://synthpipe:synthpipe@127.0.0.1:5432/synthpipe_test
set -euo pipefail

ROLE=synthpipe
PASSWORD=synthpipe
DATABASE=synthpipe_test
CLUSTER=main
export DEBIAN_FRONTEND=noninteractive

log() { echo "start-postgres: $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
    log "must run as root (it installs packages and starts the server as user postgres)"
    exit 1
fi

if ! command -v pg_lsclusters >/dev/null 2>&1 || [ -z "$(pg_lsclusters -h 2>/dev/null)" ]; then
    log "installing postgresql"
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
fi

# The newest installed major version, e.g. 15 on Debian 12, 17 on Debian 13.
VERSION=$(pg_lsclusters -h | awk '{print $1}' | sort -n | tail -n 1)
if [ -z "$VERSION" ]; then
    VERSION=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
    log "no cluster found; creating ${VERSION}/${CLUSTER}"
    pg_createcluster "$VERSION" "$CLUSTER"
fi
if ! pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c {found=1} END {exit !found}'; then
    log "creating cluster ${VERSION}/${CLUSTER}"
    pg_createcluster "$VERSION" "$CLUSTER"
fi
PORT=$(pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c {print $3}')

# Loopback only: the test server has a well-known password.
CONF_DIR=/etc/postgresql/$VERSION/$CLUSTER/conf.d
mkdir -p "$CONF_DIR"
echo "listen_addresses = 'localhost'" >"$CONF_DIR/synthpipe-loopback.conf"

# Containers often start without the socket directory that the package's tmpfiles rule makes at boot.
install -d -o postgres -g postgres -m 2775 /var/run/postgresql

if pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c && $4 == "online" {found=1} END {exit !found}'; then
    log "cluster ${VERSION}/${CLUSTER} already running; reloading its configuration"
    pg_ctlcluster "$VERSION" "$CLUSTER" reload
else
    log "starting cluster ${VERSION}/${CLUSTER}"
    pg_ctlcluster "$VERSION" "$CLUSTER" start
fi

for _ in $(seq 1 60); do
    if pg_isready -q -h 127.0.0.1 -p "$PORT"; then
        break
    fi
    sleep 1
done
if ! pg_isready -h 127.0.0.1 -p "$PORT"; then
    log "server did not become ready within 60 s; see /var/log/postgresql/postgresql-${VERSION}-${CLUSTER}.log"
    exit 1
fi

psql_admin() { runuser -u postgres -- psql -p "$PORT" -v ON_ERROR_STOP=1 -qtA "$@"; }

if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '${ROLE}'")" != "1" ]; then
    log "creating role ${ROLE}"
    psql_admin -c "CREATE ROLE ${ROLE} LOGIN PASSWORD '${PASSWORD}'"
fi
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '${DATABASE}'")" != "1" ]; then
    log "creating database ${DATABASE}"
    psql_admin -c "CREATE DATABASE ${DATABASE} OWNER ${ROLE}"
fi

log "ready: postgresql://${ROLE}:***@127.0.0.1:${PORT}/${DATABASE}"
