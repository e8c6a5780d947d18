#!/usr/bin/env bash
# A streaming read replica of the local PostgreSQL 15 cluster (the 5432 one that
# tests/pg/setup.sh starts), for the replica tests in tests/integration/cluster.rs.
#
#   tests/pg/replica.sh start     fresh base backup (pg_basebackup -R) and start; prints the URL
#   tests/pg/replica.sh stop [fast|immediate]
#                                 fast shutdown (sessions are cut, as when a replica is taken
#                                 away), or immediate (as in a crash: no goodbye to clients)
#   tests/pg/replica.sh resume    start the stopped replica again (it catches up by streaming)
#   tests/pg/replica.sh destroy   stop and remove its data directory
#   tests/pg/replica.sh status    print running/stopped/absent
#   tests/pg/replica.sh log       print the end of the replica's log
#
# The replica streams through a replication slot (tessera_test_replica_PORT) so that the
# primary keeps the WAL it has not received yet, even under heavy writes or while it is
# stopped; destroy drops the slot (a slot left behind would keep WAL on the primary).
#
# Run as root (it runs PostgreSQL as user postgres) or as postgres. The primary needs
# replication connections from 127.0.0.1 for the tessera role (Debian's default pg_hba
# has `host replication all 127.0.0.1/32 scram-sha-256`; the role is SUPERUSER).
# Settings: TESSERA_REPLICA_PORT (5433), TESSERA_REPLICA_DIR (/tmp/tessera-replica-PORT),
# TESSERA_PRIMARY_PORT (5432), PGPASSWORD (tessera).
set -euo pipefail

port=${TESSERA_REPLICA_PORT:-5433}
primary_port=${TESSERA_PRIMARY_PORT:-5432}
base=${TESSERA_REPLICA_DIR:-/tmp/tessera-replica-$port}
data=$base/data
log=$base/postgres.log
bin=/usr/lib/postgresql/15/bin
export PGPASSWORD=${PGPASSWORD:-tessera}
url="postgresql://tessera:$PGPASSWORD@127.0.0.1:$port/"
slot=tessera_test_replica_$port

# Runs a command as postgres (the data directory's owner); PGPASSWORD goes along.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- env PGPASSWORD="$PGPASSWORD" "$@"
  else
    "$@"
  fi
}

running() { [ -f "$data/postmaster.pid" ] && as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; }

primary_sql() { psql -X -At -h 127.0.0.1 -p "$primary_port" -U tessera -d postgres -c "$1"; }

# Waits until the replica accepts connections and is a standby (in recovery).
wait_ready() {
  for _ in $(seq 1 120); do
    if psql -X -At -h 127.0.0.1 -p "$port" -U tessera -d postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null | grep -qx t; then
      return 0
    fi
    sleep 0.5
  done
  echo "replica on port $port did not become ready; its log:" >&2
  tail -n 30 "$log" >&2 || true
  return 1
}

start_server() {
  as_pg "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 -o "-p $port -k /tmp" start >/dev/null
  wait_ready
}

# Debian keeps the configuration in /etc/postgresql, so the base backup has none: the
# replica gets its own, with the settings a hot standby must have at least as high as
# its primary's (PostgreSQL refuses to start otherwise).
write_config() {
  local conf=$data/postgresql.conf
  {
    echo "# written by tests/pg/replica.sh"
    echo "listen_addresses = '127.0.0.1'"
    echo "port = $port"
    echo "unix_socket_directories = '/tmp'"
    echo "hot_standby = on"
    echo "hba_file = '$data/pg_hba.conf'"
    echo "ident_file = '$data/pg_ident.conf'"
    for s in max_connections max_worker_processes max_wal_senders max_prepared_transactions max_locks_per_transaction; do
      echo "$s = $(primary_sql "SHOW $s")"
    done
  } >"$conf"
  cat >"$data/pg_hba.conf" <<HBA
local all all peer
host all all 127.0.0.1/32 scram-sha-256
HBA
  : >"$data/pg_ident.conf"
  chown postgres:postgres "$conf" "$data/pg_hba.conf" "$data/pg_ident.conf" 2>/dev/null || true
}

destroy() {
  if running; then
    as_pg "$bin/pg_ctl" -D "$data" -m immediate -w stop >/dev/null
  fi
  rm -rf "$base"
  primary_sql "SELECT pg_drop_replication_slot('$slot') FROM pg_replication_slots WHERE slot_name = '$slot'" >/dev/null
}

case ${1:-} in
  start)
    if running; then
      wait_ready
      echo "$url"
      exit 0
    fi
    destroy
    mkdir -p "$base"
    chown postgres:postgres "$base" 2>/dev/null || true
    chmod 700 "$base"
    # -R writes standby.signal, primary_conninfo (with the password given here) and
    # primary_slot_name; -C creates the slot.
    as_pg pg_basebackup -h 127.0.0.1 -p "$primary_port" -U tessera -D "$data" -R -X stream -c fast -C -S "$slot"
    write_config
    start_server
    echo "$url"
    ;;
  stop)
    mode=${2:-fast}
    case $mode in fast | immediate) ;; *) echo "stop mode must be fast or immediate, not $mode" >&2; exit 2 ;; esac
    if running; then
      as_pg "$bin/pg_ctl" -D "$data" -m "$mode" -w -t 60 stop >/dev/null
    fi
    ;;
  resume)
    [ -d "$data" ] || { echo "no replica in $data: run '$0 start' first" >&2; exit 1; }
    running || start_server
    echo "$url"
    ;;
  destroy)
    destroy
    ;;
  log)
    tail -n 40 "$log" 2>/dev/null || echo "no replica log at $log"
    ;;
  status)
    if running; then echo running; elif [ -d "$data" ]; then echo stopped; else echo absent; fi
    ;;
  *)
    echo "usage: $0 start|stop [fast|immediate]|resume|destroy|status|log" >&2
    exit 2
    ;;
esac
