#!/usr/bin/env bash
# Side-by-side benchmark: Tessera against PostGIS / tipg (OGC API Features + ST_AsMVT tiles), same data, same run.
# See bench/README.md for prerequisites (bench/setup.sh), what each figure means, and the latest results
# (bench/RESULTS.md). Tiles are compared with tipg's PostGIS ST_AsMVT tiles and, when martin is built
# (peers-install.sh --with-martin, ~20 min), with martin on PostGIS and on the tippecanoe MBTiles.
#
# Usage: bench/compare.sh [--tipg-only] [BENCH_DATA [TESSERA_BIN]]
#   BENCH_DATA   folder made by prepare.py + peers-load.sh (default $BENCH_DATA or /work/bench-data)
#   TESSERA_BIN  built binary (default $TESSERA or <repo>/target/release/tessera); it is copied into OUT first,
#                so a rebuild during the run does not change what is measured
#   --tipg-only  skip everything Tessera (checks the peer side alone)
# Environment (all optional):
#   ROUNDS=3 SECS=15 CONNS=8   rounds.sh parameters          WARMUP=5   seconds of discarded warm-up per target
#   IMPORT=1  IMPORT_RUNS=3    (a) tessera import vs PostGIS load, interleaved; UK_RUNS=1 runs of the 4-file gz import
#   ITEMS=1                    (b) GeoJSON pages over bboxes_z15.txt, tessera vs tipg
#   TILES=1                    (c) z14-16 tiles: tessera cache off (default cluster zoom and --cluster-zoom 14, i.e.
#                              every point drawn like tipg), tessera cache on + warm, tipg -- all in the same rounds
#   LOW=1                      (d) tiles_low.txt (z0-13, clusters) on the uncached server + single heavy requests
#   GZIP=1                     (e) --tile-gzip-level 1 / 3 / 6 (cache off) over tiles_z14_16.txt, req/s and bytes/tile
#   MARTIN=1                   (f) z14-16 tiles against martin (skipped with a notice when MARTIN_BIN is missing):
#                              tessera --cluster-zoom 14, cache off vs martin + PostGIS (points_pg); tessera cache warm
#                              vs martin serving the tippecanoe MBTiles (points_mbt). MARTIN_BIN=/opt/martin/bin/martin
#                              MARTIN_PORT=3000 (martin.yaml's port; a martin already listening there is reused)
#   TESSERA_PORT=8080 TIPG_PORT=8081 (further tessera servers use TESSERA_PORT+2 ...)
#   VENV=/opt/tessera-peers   SHARED_BENCH=/work/shared/bench
#   UK_DATA=/work/shared/data/uk_police_street_crime   OUT=<BENCH_DATA>/compare-<timestamp>
#   PG_IMPORT_DB=bench_import  scratch database of the timed PostGIS loads (dropped at the end; `bench` is not touched)
# Also reported: start-up time to the first tile (/tiles/points/0/0/0.mvt) of every tessera server, and VmHWM.
# Every server is bound to and queried on 127.0.0.1 only; an EXIT trap stops all of them (by PID).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd); repo=$(cd "$here/.." && pwd)
tipg_only=0; [ "${1:-}" = "--tipg-only" ] && { tipg_only=1; shift; }
BENCH_DATA=$(cd "${1:-${BENCH_DATA:-/work/bench-data}}" && pwd)
TESSERA_SRC=${2:-${TESSERA:-$repo/target/release/tessera}}
SHARED_BENCH=${SHARED_BENCH:-/work/shared/bench}
UK_DATA=${UK_DATA:-/work/shared/data/uk_police_street_crime}
VENV=${VENV:-/opt/tessera-peers}
ROUNDS=${ROUNDS:-3} SECS=${SECS:-15} CONNS=${CONNS:-8} WARMUP=${WARMUP:-5}
IMPORT=${IMPORT:-1} IMPORT_RUNS=${IMPORT_RUNS:-3} UK_RUNS=${UK_RUNS:-1}
ITEMS=${ITEMS:-1} TILES=${TILES:-1} LOW=${LOW:-1} GZIP=${GZIP:-1} MARTIN=${MARTIN:-1}
MARTIN_BIN=${MARTIN_BIN:-/opt/martin/bin/martin} MARTIN_PORT=${MARTIN_PORT:-3000}
TESSERA_PORT=${TESSERA_PORT:-8080} TIPG_PORT=${TIPG_PORT:-8081}
PG_IMPORT_DB=${PG_IMPORT_DB:-bench_import}
HOST=127.0.0.1   # fixed on purpose: this script never targets anything else
OUT=${OUT:-$BENCH_DATA/compare-$(date +%Y%m%d-%H%M%S)}
PG_URL="postgresql://postgres:bench@$HOST:5432/bench"

for v in ROUNDS SECS CONNS WARMUP IMPORT IMPORT_RUNS UK_RUNS ITEMS TILES LOW GZIP MARTIN MARTIN_PORT TESSERA_PORT TIPG_PORT; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be a number, got '${!v}'" >&2; exit 2; }
done
[[ $PG_IMPORT_DB =~ ^[a-z_][a-z0-9_]*$ ]] && [ "$PG_IMPORT_DB" != bench ] || { echo "PG_IMPORT_DB must be a plain name other than bench" >&2; exit 2; }
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
summary=$OUT/summary.txt
say() { echo "$*" | tee -a "$summary"; }
die() { echo "ERROR: $*" | tee -a "$summary" >&2; exit 1; }

# ---------------------------------------------------------------- cleanup
pids=()          # servers started here
pg_started=0     # 1 if this script started the PostgreSQL cluster
pg_import_made=0
stop_pid() {
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid" 2>/dev/null || true
  for i in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }; sleep 0.25; done
  echo "pid $pid ignored SIGTERM for 10 s; sending SIGKILL" >&2
  kill -9 "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do stop_pid "$pid"; done
  if [ "$pg_import_made" = 1 ]; then su postgres -c "dropdb --if-exists $PG_IMPORT_DB" >/dev/null 2>&1 || true; fi
  if [ "$pg_started" = 1 ]; then pg_ctlcluster 15 main stop >/dev/null 2>&1 || true; fi
  [ -f "$summary" ] && echo "(results in $OUT)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers
port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}'; }
wait_http() {  # NAME PID URL [TIMEOUT_S]: wait until URL answers 200, fail if PID dies first
  local name=$1 pid=$2 url=$3 t=${4:-120} i code=none
  for i in $(seq 1 $((t * 20))); do
    kill -0 "$pid" 2>/dev/null || { tail -20 "$OUT/$name.log" >&2; die "$name exited during start-up (log $OUT/$name.log)"; }
    code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "$url" || true)
    [ "$code" = 200 ] && return 0
    sleep 0.05
  done
  die "$name did not answer 200 on $url within $t s (last status $code)"
}
median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
# rounds.sh substitutes with sed, where a bare '&' means "the matched line": escape it in templates.
tmpl() { printf '%s' "$1" | sed 's/&/\\\&/g'; }
vmhwm() { awk '/VmHWM/ {print $2, $3}' "/proc/$1/status" 2>/dev/null || echo "n/a"; }
file_bytes() { local s=0 f; for f in "$1" "$1-wal" "$1-shm" "$1-journal"; do [ -f "$f" ] && s=$((s + $(stat -c %s "$f"))); done; echo "$s"; }
rmdb() { rm -f "$1" "$1-wal" "$1-shm" "$1-journal"; }
load1() { cut -d' ' -f1 /proc/loadavg; }

# start_tessera NAME PORT ARGS...: start `tessera serve` on the catalog $db, time start -> first 200 on
# /tiles/points/0/0/0.mvt (the point index is built at start-up), set tess_pid.
declare -A tess_pids
start_tessera() {
  local name=$1 port=$2; shift 2
  port_busy "$port" && die "port $HOST:$port is already in use: stop whatever listens there first"
  local t0; t0=$(now)
  "$TESSERA" serve --db "$db" --listen "$HOST:$port" --no-manifest "$@" > "$OUT/$name.log" 2>&1 &
  tess_pid=$!; pids+=("$tess_pid"); tess_pids[$name]=$tess_pid
  wait_http "$name" "$tess_pid" "http://$HOST:$port/tiles/points/0/0/0.mvt"
  local t; t=$(elapsed "$t0")
  echo "$t" >> "$OUT/first-tile.txt"
  say "started $name (pid $tess_pid): tessera serve --db $db --listen $HOST:$port --no-manifest $*;" \
      "start -> first 200 on /tiles/points/0/0/0.mvt ${t} s; cluster zoom" \
      "$(curl -s "http://$HOST:$port/tiles/points" | python3 -c 'import json,sys; print(json.load(sys.stdin)["vector_layers"][0].get("tessera:cluster_zoom"))' 2>/dev/null || echo '?')"
}

# ---------------------------------------------------------------- prerequisites
for f in points.csv bboxes_z15.txt tiles_z14_16.txt tiles_low.txt; do [ -s "$BENCH_DATA/$f" ] || die "$BENCH_DATA/$f missing: run bench/setup.sh (prepare.py)"; done
[ -x "$SHARED_BENCH/rounds.sh" ] || die "$SHARED_BENCH/rounds.sh not found"
command -v wrk >/dev/null || die "wrk missing: run bench/setup.sh (peers-install.sh)"
[ -x "$VENV/bin/uvicorn" ] || die "$VENV/bin/uvicorn missing: run bench/setup.sh (peers-install.sh)"
if [ "$tipg_only" = 0 ]; then
  [ -x "$TESSERA_SRC" ] || die "tessera binary '$TESSERA_SRC' not found (cargo build --release, or pass its path)"
  cp "$TESSERA_SRC" "$OUT/tessera"; TESSERA=$OUT/tessera
  if [ ! -x /usr/bin/time ]; then
    if [ "$(id -u)" = 0 ]; then
      (apt-get install -y -qq time >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }) || true
    fi
    [ -x /usr/bin/time ] || die "/usr/bin/time missing (apt-get install time)"
  fi
fi
port_busy "$TIPG_PORT" && die "port $HOST:$TIPG_PORT is already in use: stop whatever listens there first"
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
say "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
say "data: $BENCH_DATA (points.csv $csv_rows rows, $(wc -l < "$BENCH_DATA/bboxes_z15.txt") z15 bboxes, $(wc -l < "$BENCH_DATA/tiles_z14_16.txt") z14-16 tiles, $(wc -l < "$BENCH_DATA/tiles_low.txt") low tiles)"
if [ "$tipg_only" = 0 ]; then
  commit=$(cat "$TESSERA_SRC.commit" 2>/dev/null || git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
  say "tessera: $TESSERA_SRC ($("$TESSERA" --version 2>/dev/null | head -1 || echo 'no --version'); commit $commit; sha256 $(sha256sum "$TESSERA" | cut -c1-16))"
fi
say "tipg: $("$VENV/bin/pip" show tipg 2>/dev/null | awk '/^Version/ {print $2}') (uvicorn, 1 worker), PostgreSQL $(PGPASSWORD=bench psql -h "$HOST" -U postgres -d bench -tAc 'SHOW server_version' | cut -d' ' -f1), PostGIS $(PGPASSWORD=bench psql -h "$HOST" -U postgres -d bench -tAc 'SELECT postgis_lib_version()')"
say "tiles: tipg serves PostGIS ST_AsMVT tiles; stage (f) compares with martin when MARTIN_BIN ($MARTIN_BIN) is built"

# ---------------------------------------------------------------- (a) imports
db=$OUT/BENCH.db
postgis_load() {  # the SQL of peers-load.sh, into the scratch database PG_IMPORT_DB; prints seconds
  su postgres -c "dropdb --if-exists $PG_IMPORT_DB; createdb $PG_IMPORT_DB" >&2
  local t0; t0=$(now)
  su postgres -c "psql -q -v ON_ERROR_STOP=1 -d $PG_IMPORT_DB" >&2 <<SQL
CREATE EXTENSION postgis;
CREATE UNLOGGED TABLE points_raw (id bigint, lon double precision, lat double precision, category text, month text);
\copy points_raw FROM '$BENCH_DATA/points.csv' WITH (FORMAT csv, HEADER true)
CREATE TABLE points AS SELECT id, category, month, ST_SetSRID(ST_MakePoint(lon, lat), 4326)::geometry(Point,4326) AS geom FROM points_raw;
ALTER TABLE points ADD PRIMARY KEY (id);
CREATE INDEX points_geom_gist ON points USING gist (geom);
VACUUM ANALYZE points;
DROP TABLE points_raw;
SQL
  elapsed "$t0"
}
tessera_import() {  # LABEL RUN DB ARGS...: one timed run from an empty catalog; prints "seconds rss_kib"
  local label=$1 r=$2 cdb=$3; shift 3
  rmdb "$cdb"
  local t0; t0=$(now)
  if ! /usr/bin/time -v -o "$OUT/$label.time-v.$r" "$TESSERA" import "$@" --db "$cdb" > "$OUT/$label.import.$r.log" 2>&1; then
    tail -5 "$OUT/$label.import.$r.log" >&2; return 1
  fi
  echo "$(elapsed "$t0") $(awk -F': ' '/Maximum resident/ {print $2}' "$OUT/$label.time-v.$r")"
}

if [ "$tipg_only" = 0 ] && [ "$IMPORT" = 1 ]; then
  say "-- (a) import of points.csv, $IMPORT_RUNS interleaved runs each (tessera from an empty catalog; PostGIS = peers-load.sh SQL into a fresh database $PG_IMPORT_DB)"
  say "   tessera: /usr/bin/time -v $TESSERA import $BENCH_DATA/points.csv --dataset points --time month --db $db"
  tt=(); tr=(); pt=(); pg_import_made=1
  for r in $(seq 1 "$IMPORT_RUNS"); do
    res=$(tessera_import points "$r" "$db" "$BENCH_DATA/points.csv" --dataset points --time month) || die "tessera import of points.csv failed (run $r)"
    tt+=("${res% *}"); tr+=("${res#* }")
    p=$(postgis_load 2> "$OUT/postgis-load.$r.err") || { cat "$OUT/postgis-load.$r.err" >&2; die "PostGIS load failed (run $r)"; }
    pt+=("$p")
    say "   run $r: tessera ${res% *} s (peak RSS $(awk -v k="${res#* }" 'BEGIN {printf "%.0f MiB", k/1024}'), $(grep -o '([0-9]* rows/s)' "$OUT/points.import.$r.log" | head -1) self-reported), PostGIS $p s, load1 $(load1)"
  done
  tm=$(printf '%s\n' "${tt[@]}" | median); pm=$(printf '%s\n' "${pt[@]}" | median)
  ratios=(); for i in "${!tt[@]}"; do ratios+=("$(awk -v a="${pt[$i]}" -v b="${tt[$i]}" 'BEGIN {printf "%.2f", a / b}')"); done
  say "import tessera: median $tm s [${tt[*]}], $(awk -v n="$csv_rows" -v t="$tm" 'BEGIN {printf "%.0f", n / t}') rows/s; peak RSS max $(printf '%s\n' "${tr[@]}" | sort -g | tail -1 | awk '{printf "%.1f MiB", $1/1024}'); catalog $(file_bytes "$db" | awk '{printf "%.1f MiB", $1/1048576}')"
  say "import PostGIS: median $pm s [${pt[*]}], $(awk -v n="$csv_rows" -v t="$pm" 'BEGIN {printf "%.0f", n / t}') rows/s"
  say "RATIO import speed tessera/PostGIS (PostGIS time / tessera time): median of medians $(awk -v a="$pm" -v b="$tm" 'BEGIN {printf "%.2f", a / b}')x, per run [${ratios[*]}]"
  su postgres -c "dropdb --if-exists $PG_IMPORT_DB" >/dev/null 2>&1 || true; pg_import_made=0

  gz=("$UK_DATA"/*-street.csv.gz)
  if [ -e "${gz[0]}" ] && [ "$UK_RUNS" -gt 0 ]; then
    gz_rows=0; for f in "${gz[@]}"; do gz_rows=$((gz_rows + $(zcat "$f" | wc -l) - 1)); done
    say "   tessera: /usr/bin/time -v $TESSERA import ${gz[*]} --dataset uk-crime --time Month --db $OUT/uk-crime.db"
    ut=(); ok=1
    for r in $(seq 1 "$UK_RUNS"); do
      res=$(tessera_import uk-crime "$r" "$OUT/uk-crime.db" "${gz[@]}" --dataset uk-crime --time Month) || { ok=0; break; }
      ut+=("${res% *}")
      say "   run $r: ${res% *} s, peak RSS $(awk -v k="${res#* }" 'BEGIN {printf "%.0f MiB", k/1024}'), load1 $(load1); tessera says: $(grep -m1 'imported' "$OUT/uk-crime.import.$r.log")"
    done
    if [ "$ok" = 1 ]; then
      um=$(printf '%s\n' "${ut[@]}" | median)
      say "import uk-crime (4 gz files, $gz_rows data rows incl. those without coordinates): median $um s end-to-end, $(awk -v n="$gz_rows" -v t="$um" 'BEGIN {printf "%.0f", n / t}') input rows/s; catalog $(file_bytes "$OUT/uk-crime.db" | awk '{printf "%.1f MiB", $1/1048576}')"
    else
      say "import uk-crime: FAILED (see $OUT/uk-crime.import.*.log; not fatal)"
    fi
    rmdb "$OUT/uk-crime.db"
  fi
elif [ "$tipg_only" = 0 ]; then
  rmdb "$db"; "$TESSERA" import "$BENCH_DATA/points.csv" --dataset points --time month --db "$db" > "$OUT/points.import.log" 2>&1 \
    || die "tessera import of points.csv failed"
fi

# ---------------------------------------------------------------- servers
first_bbox=$(head -1 "$BENCH_DATA/bboxes_z15.txt")
z14_tile=$(grep -m1 '^14/' "$BENCH_DATA/tiles_z14_16.txt")
tipg_items="http://$HOST:$TIPG_PORT/collections/public.points/items?limit=1000&bbox={}"
tess_items="http://$HOST:$TESSERA_PORT/collections/points/items?limit=1000&bbox={}"
tipg_tiles="http://$HOST:$TIPG_PORT/collections/public.points/tiles/WebMercatorQuad/{}"

DATABASE_URL=$PG_URL "$VENV/bin/uvicorn" tipg.main:app --host "$HOST" --port "$TIPG_PORT" > "$OUT/tipg.log" 2>&1 &
tipg_pid=$!; pids+=("$tipg_pid")
wait_http tipg "$tipg_pid" "${tipg_items//\{\}/$first_bbox}"
say "-- servers: tipg pid $tipg_pid: DATABASE_URL=$PG_URL $VENV/bin/uvicorn tipg.main:app --host $HOST --port $TIPG_PORT"
# tipg's tile path must give real tiles (a 404/422 page would be much cheaper than a tile)
read -r code size enc < <(curl -s -o /dev/null -H 'Accept-Encoding: gzip' -w '%{http_code} %{size_download} ' -D "$OUT/tipg-tile.headers" "${tipg_tiles//\{\}/$z14_tile}"; \
  tr -d '\r' < "$OUT/tipg-tile.headers" | awk -F': ' 'tolower($1)=="content-encoding" {printf "%s", $2}'; echo)
[ "$code" = 200 ] && [ "${size:-0}" -gt 100 ] || die "tipg tile $z14_tile answered $code with $size bytes: check the tile path in /api"
say "sanity: tipg tile $z14_tile -> 200, $size bytes, content-encoding '${enc:-identity}'"

if [ "$tipg_only" = 0 ]; then
  # main server: tile cache off, default gzip level (3) and cluster zoom
  start_tessera tessera "$TESSERA_PORT" --tile-cache-mb 0
  main_pid=$tess_pid
  wait_http tessera "$main_pid" "${tess_items//\{\}/$first_bbox}"
  mism=0
  while read -r bb; do
    a=$(curl -s -m 20 "${tess_items//\{\}/$bb}" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["features"]))' 2>/dev/null || echo err)
    b=$(curl -s -m 20 "${tipg_items//\{\}/$bb}" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["features"]))' 2>/dev/null || echo err)
    [ "$a" = "$b" ] || { mism=$((mism + 1)); echo "bbox $bb: tessera $a features, tipg $b" >> "$OUT/sanity.txt"; }
  done < <(head -25 "$BENCH_DATA/bboxes_z15.txt")
  [ "$mism" = 0 ] && say "sanity: GeoJSON feature counts agree on 25 bboxes" \
                  || say "WARNING: GeoJSON feature counts differ on $mism of 25 bboxes (see $OUT/sanity.txt)"
  hdr() { curl -s -D - -o /dev/null -H 'Accept-Encoding: gzip' "$1" | tr -d '\r' | awk -F': ' 'tolower($1)=="content-encoding" {print $2}'; }
  say "encoding with Accept-Encoding: gzip: items tessera '$(hdr "${tess_items//\{\}/$first_bbox}")', tipg '$(hdr "${tipg_items//\{\}/$first_bbox}")';" \
      "tiles tessera '$(hdr "http://$HOST:$TESSERA_PORT/tiles/points/$z14_tile.mvt")', tipg '$(hdr "${tipg_tiles//\{\}/$z14_tile}")' (empty = identity)"
  pg_n=$(PGPASSWORD=bench psql -h "$HOST" -U postgres -d bench -tAc "SELECT count(*) FROM points WHERE geom && ST_Transform(ST_TileEnvelope(${z14_tile//\//,}), 4326)")
  say "sanity: tile $z14_tile holds $pg_n points in PostGIS (all drawn by tipg); tessera draws: $("$TESSERA" tile points "$z14_tile" --db "$db" 2>/dev/null | head -1)"
fi

summarize() {  # RESULTS_FILE [PEER]: medians per label, ratios against PEER (default tipg)
  python3 - "$1" "${2:-tipg}" <<'PY'
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
    bpr = st.median(int(r["bytes"]) / max(int(r["requests"]), 1) for r in rs)
    p99s = " ".join("%.1f" % (int(r["p99_us"]) / 1000) for r in rs)
    loads = " ".join(r["load1"] for r in rs)
    print(f"{lab}: median {med(lab, 'rps'):.1f} req/s [{' '.join(r['rps'] for r in rs)}], "
          f"median p50 {med(lab, 'p50_us')/1000:.2f} ms, median p99 {med(lab, 'p99_us')/1000:.2f} ms "
          f"[{p99s}], max {max(int(r['max_us']) for r in rs)/1000:.1f} ms, "
          f"{bpr:.0f} bytes/response (wrk bytes/requests, incl. headers), load1 [{loads}], "
          f"non-2xx+errors {bad}" + ("   <-- INVALID: failed requests" if bad else ""))
peer = sys.argv[2]
for lab in labels:
    if lab == peer or peer not in labels: continue
    per_round = []
    for rnd in sorted({r["round"] for r in res}, key=int):
        a = [float(r["rps"]) for r in res if r["label"] == lab and r["round"] == rnd]
        b = [float(r["rps"]) for r in res if r["label"] == peer and r["round"] == rnd]
        if a and b: per_round.append(a[0] / b[0])
    print(f"RATIO {lab}/{peer}: req/s ratio of medians {med(lab, 'rps')/med(peer, 'rps'):.2f}x, "
          f"median of per-round ratios {st.median(per_round):.2f}x [{' '.join(f'{x:.2f}' for x in per_round)}]; "
          f"p99 {med(lab, 'p99_us')/1000:.2f} ms vs {med(peer, 'p99_us')/1000:.2f} ms "
          f"(p99 ratio {lab}/{peer} {med(lab, 'p99_us')/med(peer, 'p99_us'):.2f})"
          + ("   <-- INVALID: failed requests" if failed(lab) or failed(peer) else ""))
PY
}

run_rounds() {  # NAME LIST PEER TARGET...
  local name=$1 list=$2 peer=$3; shift 3
  if [ "$WARMUP" -gt 0 ]; then "$SHARED_BENCH/rounds.sh" 1 "$WARMUP" "$CONNS" "$list" "$@" > "$OUT/$name.warmup.txt"; fi
  "$SHARED_BENCH/rounds.sh" "$ROUNDS" "$SECS" "$CONNS" "$list" "$@" | tee "$OUT/$name.rounds.txt"
  say "-- $name: $ROUNDS rounds x $SECS s x $CONNS connections over $(basename "$list") (interleaved, gzip accepted), targets: $*"
  summarize "$OUT/$name.rounds.txt" "$peer" | tee -a "$summary"
}

# ---------------------------------------------------------------- (b) GeoJSON pages
if [ "$ITEMS" = 1 ]; then
  targets=()
  [ "$tipg_only" = 0 ] && targets+=("tessera=$(tmpl "$tess_items")")
  targets+=("tipg=$(tmpl "$tipg_items")")
  run_rounds items "$BENCH_DATA/bboxes_z15.txt" tipg "${targets[@]}"
fi

# ---------------------------------------------------------------- (c) z14-16 tiles
if [ "$TILES" = 1 ]; then
  tt=()
  if [ "$tipg_only" = 0 ]; then
    p_cz=$((TESSERA_PORT + 2)) p_cache=$((TESSERA_PORT + 3))
    start_tessera tessera_cz14 "$p_cz" --tile-cache-mb 0 --cluster-zoom 14
    start_tessera tessera_cache "$p_cache"
    say "warming tessera_cache: one round of $SECS s over tiles_z14_16.txt (discarded)"
    "$SHARED_BENCH/rounds.sh" 1 "$SECS" "$CONNS" "$BENCH_DATA/tiles_z14_16.txt" "tessera_cache=http://$HOST:$p_cache/tiles/points/{}.mvt" > "$OUT/tiles.cachewarm.txt"
    say "   $(grep -o 'requests=[0-9]*' "$OUT/tiles.cachewarm.txt") during the warm-up (list has $(wc -l < "$BENCH_DATA/tiles_z14_16.txt") tiles)"
    tt+=("tessera=http://$HOST:$TESSERA_PORT/tiles/points/{}.mvt"
         "tessera_cz14=http://$HOST:$p_cz/tiles/points/{}.mvt"
         "tessera_cache=http://$HOST:$p_cache/tiles/points/{}.mvt")
  fi
  tt+=("tipg=$tipg_tiles")
  run_rounds tiles "$BENCH_DATA/tiles_z14_16.txt" tipg "${tt[@]}"
  [ "$tipg_only" = 0 ] && say "VmHWM tessera_cache after the tile rounds: $(vmhwm "${tess_pids[tessera_cache]}")"
fi

# ---------------------------------------------------------------- (d) low zoom (clusters)
if [ "$LOW" = 1 ] && [ "$tipg_only" = 0 ]; then
  "$SHARED_BENCH/rounds.sh" "$ROUNDS" "$SECS" "$CONNS" "$BENCH_DATA/tiles_low.txt" "tessera_low=http://$HOST:$TESSERA_PORT/tiles/points/{}.mvt" | tee "$OUT/low.rounds.txt"
  say "-- low: $ROUNDS rounds x $SECS s x $CONNS connections over tiles_low.txt on the uncached server (non-2xx counts anything but 200/204)"
  summarize "$OUT/low.rounds.txt" | tee -a "$summary"
  say "single requests (uncached server, Accept-Encoding: gzip; status bytes seconds, 3 each):"
  for t in 0/0/0 5/15/10 5/16/10 5/15/9; do
    r=""; for i in 1 2 3; do
      r+="$(curl -s -o /dev/null -H 'Accept-Encoding: gzip' -w '%{http_code} %{size_download}B %{time_total}s' "http://$HOST:$TESSERA_PORT/tiles/points/$t.mvt"); "
    done
    say "   $t: $r"
  done
fi

# ---------------------------------------------------------------- (e) gzip level
if [ "$GZIP" = 1 ] && [ "$tipg_only" = 0 ]; then
  p1=$((TESSERA_PORT + 4)) p6=$((TESSERA_PORT + 5))
  start_tessera tessera_gz1 "$p1" --tile-cache-mb 0 --tile-gzip-level 1
  start_tessera tessera_gz6 "$p6" --tile-cache-mb 0 --tile-gzip-level 6
  run_rounds gzip "$BENCH_DATA/tiles_z14_16.txt" gz3 \
    "gz1=http://$HOST:$p1/tiles/points/{}.mvt" "gz3=http://$HOST:$TESSERA_PORT/tiles/points/{}.mvt" "gz6=http://$HOST:$p6/tiles/points/{}.mvt"
fi

# ---------------------------------------------------------------- (f) martin
if [ "$MARTIN" = 1 ] && [ "$tipg_only" = 0 ]; then
  martin_pg="http://$HOST:$MARTIN_PORT/points_pg/{}"
  martin_mbt="http://$HOST:$MARTIN_PORT/points_mbt/{}"
  if port_busy "$MARTIN_PORT"; then
    say "-- martin: reusing the server already on $HOST:$MARTIN_PORT ($(curl -s "http://$HOST:$MARTIN_PORT/catalog" | head -c 200))"
  elif [ -x "$MARTIN_BIN" ]; then
    sed "s#BENCH_DATA#$BENCH_DATA#" "$SHARED_BENCH/martin.yaml" > "$OUT/martin.yaml"
    "$MARTIN_BIN" --config "$OUT/martin.yaml" > "$OUT/martin.log" 2>&1 &
    martin_pid=$!; pids+=("$martin_pid")
    wait_http martin "$martin_pid" "${martin_pg//\{\}/$z14_tile}"
    say "-- martin: pid $martin_pid: $MARTIN_BIN --config $OUT/martin.yaml ($("$MARTIN_BIN" --version 2>/dev/null))"
  else
    say "-- martin: $MARTIN_BIN not found, stage (f) skipped (peers-install.sh --with-martin builds it)"
    MARTIN=0
  fi
fi
if [ "$MARTIN" = 1 ] && [ "$tipg_only" = 0 ]; then
  # Both Tessera servers draw every point from z14 on, as martin's sources do.
  p_cz=$((TESSERA_PORT + 2)) p_mc=$((TESSERA_PORT + 6))
  [ -n "${tess_pids[tessera_cz14]:-}" ] || start_tessera tessera_cz14 "$p_cz" --tile-cache-mb 0 --cluster-zoom 14
  start_tessera tessera_cache_cz14 "$p_mc" --cluster-zoom 14 --tile-cache-mb 256
  run_rounds martin_pg "$BENCH_DATA/tiles_z14_16.txt" martin_pg \
    "tessera_cz14=http://$HOST:$p_cz/tiles/points/{}.mvt" "martin_pg=$martin_pg"
  say "warming tessera_cache_cz14: one round of $SECS s over tiles_z14_16.txt (discarded)"
  "$SHARED_BENCH/rounds.sh" 1 "$SECS" "$CONNS" "$BENCH_DATA/tiles_z14_16.txt" "tessera_cache_cz14=http://$HOST:$p_mc/tiles/points/{}.mvt" > "$OUT/martin.cachewarm.txt"
  run_rounds martin_mbt "$BENCH_DATA/tiles_z14_16.txt" martin_mbt \
    "tessera_cache_cz14=http://$HOST:$p_mc/tiles/points/{}.mvt" "martin_mbt=$martin_mbt"
fi

# ---------------------------------------------------------------- peak memory, start-up
if [ -s "$OUT/first-tile.txt" ]; then
  say "start -> first tile (index build), all tessera servers started: median $(median < "$OUT/first-tile.txt") s [$(tr '\n' ' ' < "$OUT/first-tile.txt")]"
fi
say "-- peak RSS (VmHWM) after all runs: ${main_pid:+tessera serve (cache off, all runs) $(vmhwm "$main_pid"); }tipg $(vmhwm "$tipg_pid") (PostgreSQL not included)"
for n in "${!tess_pids[@]}"; do [ "$n" = tessera ] || say "   VmHWM $n: $(vmhwm "${tess_pids[$n]}")"; done
say "load average at end $(cut -d' ' -f1-3 /proc/loadavg)"
# cleanup (servers, scratch database) runs from the EXIT trap
