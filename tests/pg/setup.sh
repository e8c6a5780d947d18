#!/usr/bin/env bash
# Makes Debian's PostgreSQL 15 cluster ready for the integration tests' PostgreSQL pass,
# and prints the TESSERA_TEST_PG value (a server URL; each test creates its own database
# from tessera_template). Idempotent: run it as root, as often as you like, in CI or at a
# desk. Needs the Debian packages postgresql-15-postgis-3 and postgresql-client-15.
set -euo pipefail

VERSION=15
CLUSTER=main
PORT=5432
URL="postgresql://tessera:tessera@127.0.0.1:${PORT}/"

# Standard output is for the URL alone (callers capture it); everything else goes to stderr.
exec 3>&1 1>&2

if [ "$(id -u)" -ne 0 ]; then
    echo "tests/pg/setup.sh: run me as root (I start the cluster and act as user postgres)" >&2
    exit 1
fi

as_postgres() { runuser -u postgres -- "$@"; }
# The server pg_ctlcluster starts keeps every descriptor it inherits open for its whole
# life. Descriptor 3 is our standard output, which callers read until it closes
# (URL="$(bash tests/pg/setup.sh)"): handed to the server, that read would never end.
cluster() { pg_ctlcluster "$VERSION" "$CLUSTER" "$@" 3>&- </dev/null; }
sql() { PGOPTIONS='-c client_min_messages=warning' as_postgres psql -p "$PORT" -X -q -v ON_ERROR_STOP=1 "$@"; }

# The package creates 15/main when it is installed; a machine whose install skipped that
# (create_main_cluster = false, or a cluster dropped by hand) gets one here.
if ! pg_lsclusters -h | awk '{print $1"/"$2}' | grep -qx "${VERSION}/${CLUSTER}"; then
    pg_createcluster "$VERSION" "$CLUSTER" --port "$PORT" 3>&- </dev/null
fi

# pg_hba.conf: Debian's default already lets every user in over 127.0.0.1 with a
# password (scram-sha-256), replication included; add those lines only where missing so
# that a hand-tightened file still works for the tests (h2's replica uses pg_basebackup).
HBA="$(as_postgres psql -p "$PORT" -XAtc 'SHOW hba_file' 2>/dev/null ||
    echo "/etc/postgresql/${VERSION}/${CLUSTER}/pg_hba.conf")"
hba_changed=0
if ! grep -Eq '^host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+(scram-sha-256|md5)' "$HBA"; then
    echo "host    all             tessera         127.0.0.1/32            scram-sha-256" >>"$HBA"
    hba_changed=1
fi
if ! grep -Eq '^host[[:space:]]+replication[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+(scram-sha-256|md5)' "$HBA"; then
    echo "host    replication     tessera         127.0.0.1/32            scram-sha-256" >>"$HBA"
    hba_changed=1
fi

status=0
cluster status >/dev/null 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
    cluster start
else
    # A running server older than the installed binaries (apt upgraded the packages under
    # it without a restart) fails to load its own libraries: restart it on the new ones.
    installed="$(/usr/lib/postgresql/${VERSION}/bin/postgres --version | awk '{print $3}')"
    running="$(as_postgres psql -p "$PORT" -XAtc 'SHOW server_version' | awk '{print $1}')"
    if [ "$installed" != "$running" ]; then
        echo "PostgreSQL $running runs on installed $installed binaries: restarting it" >&2
        cluster restart
    elif [ "$hba_changed" -eq 1 ]; then
        cluster reload
    fi
fi

for _ in $(seq 1 60); do
    if as_postgres pg_isready -q -p "$PORT"; then break; fi
    sleep 1
done
as_postgres pg_isready -p "$PORT" >/dev/null

# The role the tests log in as: a superuser, because each test creates and drops its own
# database and the catalog runs CREATE EXTENSION. The password is set every time so that a
# role left from elsewhere with another password still works.
sql <<'SQL'
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tessera') THEN
        CREATE ROLE tessera SUPERUSER LOGIN REPLICATION;
    END IF;
END
$$;
ALTER ROLE tessera SUPERUSER LOGIN REPLICATION PASSWORD 'tessera';
SQL

# The template every test database is copied from: PostGIS is installed once here, not
# in every test (CREATE EXTENSION postgis takes seconds; a copy of the template does not).
if [ -z "$(sql -Atc "SELECT 1 FROM pg_database WHERE datname = 'tessera_template'")" ]; then
    sql -c 'CREATE DATABASE tessera_template OWNER tessera'
fi
sql -d tessera_template -c 'CREATE EXTENSION IF NOT EXISTS postgis'

# Proves the URL works the way the tests use it: a password login over TCP.
PGPASSWORD=tessera psql -X -q -v ON_ERROR_STOP=1 "${URL}tessera_template" \
    -Atc 'SELECT postgis_lib_version()' >/dev/null

echo "$URL" >&3
