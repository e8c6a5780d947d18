# Helpers shared by bench/postgis.sh and bench/postgis/shapes.sh (sourced, not run).
# Expects OUT, PG (a postgresql:// URL without the database) and HOST to be set.

say() { echo "$*" | tee -a "$OUT/summary.txt"; }
die() { echo "ERROR: $*" | tee -a "$OUT/summary.txt" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.2f", b - a}'; }
load1() { cut -d' ' -f1 /proc/loadavg; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
mib() { awk -v k="$1" 'BEGIN {printf "%.0f MiB", k / 1024}'; }
status_kib() { awk -v f="$2" '$1 == f":" {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }
# rounds.sh replaces {} with sed, where a bare & means "the matched line": escape it.
tmpl() { echo "${1//&/\\&}"; }

# psql_ DB ARGS...: psql on database DB of $PG, stopping at the first error.
psql_() { local db=$1; shift; psql -X -q -v ON_ERROR_STOP=1 "$PG/$db" "$@"; }
# Database names are interpolated into SQL here: only plain names are accepted.
plain_name() { [[ $1 =~ ^[a-z_][a-z0-9_]*$ ]] || die "'$1' is not a plain database name"; }
recreate_db() {
  plain_name "$1"
  psql_ postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" 2>&1 | grep -v 'does not exist, skipping' || true
}
drop_db() { plain_name "$1"; psql_ postgres -c "DROP DATABASE IF EXISTS $1" > /dev/null 2>&1 || true; }

# Servers started here, stopped by PID (SIGTERM, SIGKILL after 10 s) by stop_all or stop_one.
pids=()
stop_one() {
  local pid=$1 i rest=()
  # Forget it first, so that a PID reused by the system later is never signalled from here.
  for i in "${pids[@]}"; do [ "$i" = "$pid" ] || rest+=("$i"); done; pids=("${rest[@]}")
  kill "$pid" 2>/dev/null || return 0
  for i in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null || true
}
# Newest first: a proxy goes before the servers behind it, whose graceful shutdown would
# otherwise wait for its keep-alive connections.
stop_all() { local i; for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_one "${pids[$i]}"; done; pids=(); }

# start NAME PORT CMD...: starts CMD in the background (log OUT/NAME.log); sets $started.
start() {
  local name=$1 port=$2; shift 2
  port_busy "$port" && die "port $HOST:$port is taken: stop whatever listens there first"
  "$@" > "$OUT/$name.log" 2>&1 &
  started=$!; pids+=("$started")
}
# wait_200 PID URL [SECONDS]: polls URL every 50 ms until it answers 200; prints the seconds
# waited since the start given in $t_start (or now). Fails when the process dies or time runs out.
wait_200() {
  local pid=$1 url=$2 limit=${3:-600} t0=${t_start:-$(now)} code
  while :; do
    kill -0 "$pid" 2>/dev/null || return 1
    code=$(curl -s -o /dev/null -m 30 -w '%{http_code}' "$url" || true)
    [ "$code" = 200 ] && { elapsed "$t0"; return 0; }
    [ "$(awk -v a="$t0" -v b="$(now)" -v l="$limit" 'BEGIN {print (b - a > l)}')" = 1 ] && return 1
    sleep 0.05
  done
}
