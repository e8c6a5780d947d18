#!/usr/bin/env bash
# Side-by-side benchmark: Tessera against tipg (OGC API Features on PostGIS), same data, same run.
# See bench/README.md for prerequisites (bench/setup.sh) and what each figure means.
#
# Usage: bench/compare.sh [--tipg-only] [BENCH_DATA [TESSERA_BIN]]
#   BENCH_DATA   folder made by prepare.py + peers-load.sh (default $BENCH_DATA or /work/bench-data)
#   TESSERA_BIN  built binary (default $TESSERA or <repo>/target/release/tessera)
#   --tipg-only  skip everything Tessera (checks the peer side alone)
# Environment (all optional):
#   ROUNDS=3 SECS=15 CONNS=8   rounds.sh parameters          WARMUP=5   seconds of discarded warm-up per server
#   IMPORT_RUNS=3              timed imports per dataset      TILES=1    also compare z14-16 tiles (tessera vs tipg)
#   TESSERA_PORT=8080 TIPG_PORT=8081   VENV=/opt/tessera-peers   SHARED_BENCH=/work/shared/bench
#   UK_DATA=/work/shared/data/uk_police_street_crime   OUT=<BENCH_DATA>/compare-<timestamp>
# Stages: (a) time `tessera import` (median of IMPORT_RUNS, peak RSS via /usr/bin/time -v, catalog size)
#         (b) serve tessera + tipg, interleaved rounds.sh over bboxes_z15.txt, ratio of medians and p99
#         (c) VmHWM of the servers   (d) stop everything this script started (also on error / Ctrl-C).
# Every server is bound to and queried on 127.0.0.1 only.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd); repo=$(cd "$here/.." && pwd)
tipg_only=0; [ "${1:-}" = "--tipg-only" ] && { tipg_only=1; shift; }
BENCH_DATA=$(cd "${1:-${BENCH_DATA:-/work/bench-data}}" && pwd)
TESSERA=${2:-${TESSERA:-$repo/target/release/tessera}}
SHARED_BENCH=${SHARED_BENCH:-/work/shared/bench}
UK_DATA=${UK_DATA:-/work/shared/data/uk_police_street_crime}
VENV=${VENV:-/opt/tessera-peers}
ROUNDS=${ROUNDS:-3} SECS=${SECS:-15} CONNS=${CONNS:-8} WARMUP=${WARMUP:-5}
IMPORT_RUNS=${IMPORT_RUNS:-3} TILES=${TILES:-0}
TESSERA_PORT=${TESSERA_PORT:-8080} TIPG_PORT=${TIPG_PORT:-8081}
HOST=127.0.0.1   # fixed on purpose: this script never targets anything else
OUT=${OUT:-$BENCH_DATA/compare-$(date +%Y%m%d-%H%M%S)}
PG_URL="postgresql://postgres:bench@$HOST:5432/bench"

for v in ROUNDS SECS CONNS WARMUP IMPORT_RUNS TESSERA_PORT TIPG_PORT; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be a number, got '${!v}'" >&2; exit 2; }
done
mkdir -p "$OUT"
summary=$OUT/summary.txt
say() { echo "$*" | tee -a "$summary"; }
die() { echo "ERROR: $*" | tee -a "$summary" >&2; exit 1; }

# ---------------------------------------------------------------- cleanup (d)
pids=()          # servers started here
pg_started=0     # 1 if this script started the PostgreSQL cluster
stop_pid() {
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid" 2>/dev/null || true
  for i in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
  echo "pid $pid ignored SIGTERM for 10 s; sending SIGKILL" >&2
  kill -9 "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do stop_pid "$pid"; done
  if [ "$pg_started" = 1 ]; then pg_ctlcluster 15 main stop >/dev/null 2>&1 || true; fi
  [ -f "$summary" ] && echo "(results in $OUT)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers
port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }
wait_http() {  # NAME PID URL [TIMEOUT_S]: wait until URL answers 200, fail if PID dies first
  local name=$1 pid=$2 url=$3 t=${4:-120} i code
  for i in $(seq 1 $((t * 4))); do
    kill -0 "$pid" 2>/dev/null || { tail -20 "$OUT/$name.log" >&2; die "$name exited during start-up (log $OUT/$name.log)"; }
    code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "$url" || true)
    [ "$code" = 200 ] && return 0
    sleep 0.25
  done
  die "$name did not answer 200 on $url within $t s (last status $code)"
}
median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
# rounds.sh substitutes with sed, where a bare '&' means "the matched line": escape it in templates.
tmpl() { printf '%s' "$1" | sed 's/&/\\\&/g'; }
vmhwm() { awk '/VmHWM/ {print $2, $3}' "/proc/$1/status" 2>/dev/null || echo "n/a"; }
file_bytes() { local s=0 f; for f in "$1" "$1-wal" "$1-shm" "$1-journal"; do [ -f "$f" ] && s=$((s + $(stat -c %s "$f"))); done; echo "$s"; }

# ---------------------------------------------------------------- prerequisites
for f in points.csv bboxes_z15.txt; do [ -s "$BENCH_DATA/$f" ] || die "$BENCH_DATA/$f missing: run bench/setup.sh (prepare.py)"; done
[ -x "$SHARED_BENCH/rounds.sh" ] || die "$SHARED_BENCH/rounds.sh not found"
command -v wrk >/dev/null || die "wrk missing: run bench/setup.sh (peers-install.sh)"
[ -x "$VENV/bin/uvicorn" ] || die "$VENV/bin/uvicorn missing: run bench/setup.sh (peers-install.sh)"
if [ "$tipg_only" = 0 ]; then
  [ -x "$TESSERA" ] || die "tessera binary '$TESSERA' not found (cargo build --release, or pass its path)"
  if [ ! -x /usr/bin/time ]; then
    if [ "$(id -u)" = 0 ]; then
      (apt-get install -y -qq time >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }) || true
    fi
    [ -x /usr/bin/time ] || die "/usr/bin/time missing (apt-get install time)"
  fi
fi
for p in "$TIPG_PORT" $([ "$tipg_only" = 0 ] && echo "$TESSERA_PORT"); do
  port_busy "$p" && die "port $HOST:$p is already in use: stop whatever listens there first"
done
if ! pg_isready -q -h "$HOST" -p 5432; then
  pg_ctlcluster 15 main start || die "could not start PostgreSQL 15 (cluster 15/main)"
  pg_started=1
  for i in $(seq 1 40); do pg_isready -q -h "$HOST" -p 5432 && break; sleep 0.25; done
fi
csv_rows=$(( $(wc -l < "$BENCH_DATA/points.csv") - 1 ))
pg_rows=$(PGPASSWORD=bench psql -h "$HOST" -U postgres -d bench -tAc 'SELECT count(*) FROM points' 2>/dev/null) \
  || die "PostGIS table bench.points not readable: run $SHARED_BENCH/peers-load.sh $BENCH_DATA"
[ "$pg_rows" = "$csv_rows" ] || say "WARNING: PostGIS has $pg_rows rows, points.csv $csv_rows: reload with peers-load.sh"

say "== Tessera vs peers, $(date -Is)"
say "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), load1 at start $(cut -d' ' -f1 /proc/loadavg)"
say "data: $BENCH_DATA (points.csv $csv_rows rows, $(wc -l < "$BENCH_DATA/bboxes_z15.txt") z15 bboxes)"
if [ "$tipg_only" = 0 ]; then
  say "tessera: $TESSERA ($("$TESSERA" --version 2>/dev/null | head -1 || echo 'no --version'); repo commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo none))"
fi
say "tipg: $("$VENV/bin/pip" show tipg 2>/dev/null | awk '/^Version/ {print $2}') (uvicorn, 1 worker), PostgreSQL $(PGPASSWORD=bench psql -h "$HOST" -U postgres -d bench -tAc 'SHOW server_version' | cut -d' ' -f1), PostGIS $(PGPASSWORD=bench psql -h "$HOST" -U postgres -d bench -tAc 'SELECT postgis_lib_version()')"

# ---------------------------------------------------------------- (a) imports
time_import() {  # LABEL DB ROWS -- tessera import args...; leaves DB of the last run in place
  local label=$1 db=$2 rows=$3; shift 3
  local times=() rss=() r t0 t1 cmd
  rm -f "$db" "$db-wal" "$db-shm" "$db-journal"
  if command -v hyperfine >/dev/null; then
    cmd=$(printf '%q ' "$TESSERA" "$@")
    if ! hyperfine -r "$IMPORT_RUNS" -n "$label" --export-json "$OUT/$label.hyperfine.json" \
        --prepare "rm -f $(printf '%q ' "$db" "$db-wal" "$db-shm" "$db-journal")" "$cmd" > "$OUT/$label.hyperfine.txt" 2>&1; then
      say "$label import: FAILED (see $OUT/$label.hyperfine.txt)"; return 1
    fi
    mapfile -t times < <(python3 -c 'import json,sys; print(*json.load(open(sys.argv[1]))["results"][0]["times"], sep="\n")' "$OUT/$label.hyperfine.json")
    rm -f "$db" "$db-wal" "$db-shm" "$db-journal"   # one more run, under time -v, for peak RSS
    if ! /usr/bin/time -v -o "$OUT/$label.time-v.rss" "$TESSERA" "$@" > "$OUT/$label.import.rss.log" 2>&1; then
      say "$label import: FAILED (see $OUT/$label.import.rss.log)"; return 1
    fi
    rss+=("$(awk -F': ' '/Maximum resident/ {print $2}' "$OUT/$label.time-v.rss")")
  else
    for r in $(seq 1 "$IMPORT_RUNS"); do
      rm -f "$db" "$db-wal" "$db-shm" "$db-journal"
      t0=$(date +%s.%N)
      if ! /usr/bin/time -v -o "$OUT/$label.time-v.$r" "$TESSERA" "$@" > "$OUT/$label.import.$r.log" 2>&1; then
        say "$label import: FAILED on run $r (see $OUT/$label.import.$r.log)"; tail -5 "$OUT/$label.import.$r.log" >&2; return 1
      fi
      t1=$(date +%s.%N)
      times+=("$(echo "$t1 - $t0" | bc)")
      rss+=("$(awk -F': ' '/Maximum resident/ {print $2}' "$OUT/$label.time-v.$r")")
    done
  fi
  local med; med=$(printf '%s\n' "${times[@]}" | median)
  say "$label import: median $(printf '%.2f' "$med") s of ${#times[@]} runs [$(printf '%.2f ' "${times[@]}")s]," \
      "$(awk -v n="$rows" -v t="$med" 'BEGIN {printf "%.0f", n / t}') rows/s;" \
      "peak RSS $(printf '%s\n' "${rss[@]}" | sort -g | tail -1 | awk '{printf "%.1f MiB", $1/1024}');" \
      "catalog $(file_bytes "$db" | awk '{printf "%.1f MiB", $1/1048576}') ($db)"
}

db=$OUT/BENCH.db
if [ "$tipg_only" = 0 ]; then
  say "-- (a) import (median of $IMPORT_RUNS, $(command -v hyperfine >/dev/null && echo hyperfine || echo 'date loop'); peak RSS = max 'Maximum resident set size' of /usr/bin/time -v)"
  time_import points "$db" "$csv_rows" import "$BENCH_DATA/points.csv" --dataset points --time month --db "$db" \
    || die "points import failed: cannot serve"
  gz=("$UK_DATA"/*-street.csv.gz)
  if [ -e "${gz[0]}" ]; then
    gz_rows=0; for f in "${gz[@]}"; do gz_rows=$((gz_rows + $(zcat "$f" | wc -l) - 1)); done
    time_import uk-crime "$OUT/uk-crime.db" "$gz_rows" import "${gz[@]}" --dataset uk-crime --time Month --db "$OUT/uk-crime.db" \
      || say "   (uk-crime import failure is not fatal; continuing)"
    rm -f "$OUT/uk-crime.db"*   # keep only the size reported above
  else
    say "uk-crime import: skipped (no *-street.csv.gz in $UK_DATA)"
  fi
fi

# ---------------------------------------------------------------- (b) serve + rounds
first_bbox=$(head -1 "$BENCH_DATA/bboxes_z15.txt")
tipg_items="http://$HOST:$TIPG_PORT/collections/public.points/items?limit=1000&bbox={}"
tess_items="http://$HOST:$TESSERA_PORT/collections/points/items?limit=1000&bbox={}"

DATABASE_URL=$PG_URL "$VENV/bin/uvicorn" tipg.main:app --host "$HOST" --port "$TIPG_PORT" > "$OUT/tipg.log" 2>&1 &
tipg_pid=$!; pids+=("$tipg_pid")
targets=()
if [ "$tipg_only" = 0 ]; then
  "$TESSERA" serve --db "$db" --listen "$HOST:$TESSERA_PORT" > "$OUT/tessera.log" 2>&1 &
  tess_pid=$!; pids+=("$tess_pid")
  wait_http tessera "$tess_pid" "${tess_items//\{\}/$first_bbox}"
  targets+=("tessera=$(tmpl "$tess_items")")
fi
wait_http tipg "$tipg_pid" "${tipg_items//\{\}/$first_bbox}"
targets+=("tipg=$(tmpl "$tipg_items")")
say "-- (b) servers up: tipg pid $tipg_pid${tess_pid:+, tessera pid $tess_pid}"

# Sanity: both servers answer the same pages with the same number of features, and say how they encode.
if [ "$tipg_only" = 0 ]; then
  mism=0
  while read -r bb; do
    a=$(curl -s -m 20 "${tess_items//\{\}/$bb}" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["features"]))' 2>/dev/null || echo err)
    b=$(curl -s -m 20 "${tipg_items//\{\}/$bb}" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["features"]))' 2>/dev/null || echo err)
    [ "$a" = "$b" ] || { mism=$((mism + 1)); echo "bbox $bb: tessera $a features, tipg $b" >> "$OUT/sanity.txt"; }
  done < <(head -25 "$BENCH_DATA/bboxes_z15.txt")
  [ "$mism" = 0 ] && say "sanity: feature counts agree on 25 bboxes" \
                  || say "WARNING: feature counts differ on $mism of 25 bboxes (see $OUT/sanity.txt)"
  say "encoding with Accept-Encoding: gzip: tessera '$(curl -s -D - -o /dev/null -H 'Accept-Encoding: gzip' "${tess_items//\{\}/$first_bbox}" | tr -d '\r' | awk -F': ' 'tolower($1)=="content-encoding" {print $2}')'," \
      "tipg '$(curl -s -D - -o /dev/null -H 'Accept-Encoding: gzip' "${tipg_items//\{\}/$first_bbox}" | tr -d '\r' | awk -F': ' 'tolower($1)=="content-encoding" {print $2}')' (empty = identity)"
fi

summarize() {  # RESULTS_FILE: medians per label, ratios against tipg
  python3 - "$1" <<'PY'
import sys, statistics as st
res = []
for line in open(sys.argv[1]):
    if line.startswith("RESULT"):
        res.append(dict(kv.split("=", 1) for kv in line.split()[1:]))
labels = list(dict.fromkeys(r["label"] for r in res))
def med(lab, key): return st.median(float(r[key]) for r in res if r["label"] == lab)
def failed(lab): return sum(int(r["non2xx"]) + int(r["errors_connect"]) + int(r["errors_read"]) + int(r["errors_timeout"])
                            for r in res if r["label"] == lab)
for lab in labels:
    rs = [r for r in res if r["label"] == lab]
    bad = failed(lab)
    print(f"{lab}: median {med(lab, 'rps'):.1f} req/s [{' '.join(r['rps'] for r in rs)}], "
          f"median p50 {med(lab, 'p50_us')/1000:.1f} ms, median p99 {med(lab, 'p99_us')/1000:.1f} ms, "
          f"non-2xx+errors {bad}" + ("   <-- INVALID: failed requests" if bad else ""))
peer = "tipg"
for lab in labels:
    if lab == peer or peer not in labels: continue
    per_round = []
    for rnd in sorted({r["round"] for r in res}):
        a = [float(r["rps"]) for r in res if r["label"] == lab and r["round"] == rnd]
        b = [float(r["rps"]) for r in res if r["label"] == peer and r["round"] == rnd]
        if a and b: per_round.append(a[0] / b[0])
    print(f"RATIO {lab}/{peer}: req/s ratio of medians {med(lab, 'rps')/med(peer, 'rps'):.2f}x, "
          f"median of per-round ratios {st.median(per_round):.2f}x [{' '.join(f'{x:.2f}' for x in per_round)}]; "
          f"p99 {med(lab, 'p99_us')/1000:.1f} ms vs {med(peer, 'p99_us')/1000:.1f} ms "
          f"(p99 ratio {lab}/{peer} {med(lab, 'p99_us')/med(peer, 'p99_us'):.2f})"
          + ("   <-- INVALID: failed requests" if failed(lab) or failed(peer) else ""))
PY
}

run_rounds() {  # NAME LIST TARGET...
  local name=$1 list=$2; shift 2
  if [ "$WARMUP" -gt 0 ]; then "$SHARED_BENCH/rounds.sh" 1 "$WARMUP" "$CONNS" "$list" "$@" > "$OUT/$name.warmup.txt"; fi
  "$SHARED_BENCH/rounds.sh" "$ROUNDS" "$SECS" "$CONNS" "$list" "$@" | tee "$OUT/$name.rounds.txt"
  say "-- $name: $ROUNDS rounds x $SECS s x $CONNS connections over $(basename "$list") (interleaved, gzip accepted)"
  summarize "$OUT/$name.rounds.txt" | tee -a "$summary"
}

run_rounds items "$BENCH_DATA/bboxes_z15.txt" "${targets[@]}"

if [ "$TILES" = 1 ] && [ -s "$BENCH_DATA/tiles_z14_16.txt" ]; then
  tt=("tipg=http://$HOST:$TIPG_PORT/collections/public.points/tiles/WebMercatorQuad/{}")
  [ "$tipg_only" = 0 ] && tt=("tessera=http://$HOST:$TESSERA_PORT/tiles/points/{}.mvt" "${tt[@]}")
  run_rounds tiles "$BENCH_DATA/tiles_z14_16.txt" "${tt[@]}"
fi

# ---------------------------------------------------------------- (c) peak memory
say "-- (c) peak RSS (VmHWM) after the runs: ${tess_pid:+tessera serve $(vmhwm "$tess_pid"); }tipg $(vmhwm "$tipg_pid") (PostgreSQL not included)"
say "load1 at end $(cut -d' ' -f1 /proc/loadavg)"
# (d) cleanup runs from the EXIT trap
