#!/usr/bin/env bash
# Dense synthetic workload: 1M NYC-like points (gen_points.py -> nyc1m.csv), Tessera against tipg and, when
# built, martin (both drawing every point from z14 on).
# Imports nyc1m.csv into its own Tessera catalog (dataset id `points`, no time column) and into PostGIS table
# bench.points_nyc (the SQL of peers-load.sh with another table name), IMPORT_RUNS interleaved runs each;
# makes its own lists (every non-empty z14 tile + up to 3000 z15 tiles; bboxes of the non-empty z15 tiles);
# then interleaved rounds.sh: GeoJSON pages (limit 1000) and tiles, Tessera tile cache off, gzip accepted.
# Usage: bench/compare-nyc.sh [BENCH_DATA [TESSERA_BIN]]     (needs BENCH_DATA/nyc1m.csv: bench/setup.sh with NYC=1)
# Environment: ROUNDS=3 SECS=15 CONNS=8 WARMUP=5 IMPORT_RUNS=3 TESSERA_PORT=8090 TIPG_PORT=8091 OUT=... (as compare.sh)
# Only 127.0.0.1 is used; an EXIT trap stops the servers it started (by PID). Table bench.points_nyc is left in place.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); repo=$(cd "$here/.." && pwd)
BENCH_DATA=$(cd "${1:-${BENCH_DATA:-/work/bench-data}}" && pwd)
TESSERA_SRC=${2:-${TESSERA:-$repo/target/release/tessera}}
SHARED_BENCH=${SHARED_BENCH:-/work/shared/bench}
VENV=${VENV:-/opt/tessera-peers}
ROUNDS=${ROUNDS:-3} SECS=${SECS:-15} CONNS=${CONNS:-8} WARMUP=${WARMUP:-5} IMPORT_RUNS=${IMPORT_RUNS:-3}
TESSERA_PORT=${TESSERA_PORT:-8090} TIPG_PORT=${TIPG_PORT:-8091}
HOST=127.0.0.1
OUT=${OUT:-$BENCH_DATA/compare-nyc-$(date +%Y%m%d-%H%M%S)}
csv=$BENCH_DATA/nyc1m.csv
for v in ROUNDS SECS CONNS WARMUP IMPORT_RUNS TESSERA_PORT TIPG_PORT; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be a number, got '${!v}'" >&2; exit 2; }
done
[ -s "$csv" ] || { echo "$csv missing: NYC=1 bench/setup.sh" >&2; exit 1; }
[ -x "$TESSERA_SRC" ] || { echo "tessera binary '$TESSERA_SRC' not found" >&2; exit 1; }
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd); summary=$OUT/summary.txt
say() { echo "$*" | tee -a "$summary"; }
die() { echo "ERROR: $*" | tee -a "$summary" >&2; exit 1; }
cp "$TESSERA_SRC" "$OUT/tessera"; TESSERA=$OUT/tessera

pids=()
cleanup() {
  local rc=$? pid i
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || continue
    for i in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  done
  echo "(results in $OUT)"; exit "$rc"
}
trap cleanup EXIT; trap 'exit 130' INT; trap 'exit 143' TERM
port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}'; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
wait_http() {  # NAME PID URL
  local i code=none
  for i in $(seq 1 2400); do
    kill -0 "$2" 2>/dev/null || die "$1 exited during start-up (log $OUT/$1.log)"
    code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "$3" || true); [ "$code" = 200 ] && return 0; sleep 0.05
  done
  die "$1 did not answer 200 on $3 (last $code)"
}
for p in "$TESSERA_PORT" "$TIPG_PORT"; do port_busy "$p" && die "port $HOST:$p already in use"; done
pg_isready -q -h "$HOST" -p 5432 || die "PostgreSQL is not running (pg_ctlcluster 15 main start)"
rows=$(( $(wc -l < "$csv") - 1 ))
say "== NYC synthetic ($rows points), $(date -Is), load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- lists
python3 - "$csv" "$OUT" <<'PY' | tee -a "$summary"
import csv, math, random, sys
def tile_of(lon, lat, z):
    n = 1 << z; s = math.sin(math.radians(lat))
    x = int((lon + 180.0) / 360.0 * n); y = int((0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)) * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)
def tile_bbox(z, x, y):
    n = 1 << z; lat = lambda t: math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * t / n))))
    return x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y)
t14, t15 = {}, {}
with open(sys.argv[1], newline="") as f:
    for r in csv.DictReader(f):
        lon, lat = float(r["lon"]), float(r["lat"])
        for z, d in ((14, t14), (15, t15)):
            k = tile_of(lon, lat, z); d[k] = d.get(k, 0) + 1
rng = random.Random(7)
z15 = sorted(t15); rng.shuffle(z15)
tiles = [f"14/{x}/{y}" for x, y in sorted(t14)] + [f"15/{x}/{y}" for x, y in z15[:3000]]
rng.shuffle(tiles)
bb = [",".join(f"{v:.7f}" for v in tile_bbox(15, x, y)) for x, y in z15]
open(sys.argv[2] + "/nyc_tiles.txt", "w").write("\n".join(tiles) + "\n")
open(sys.argv[2] + "/nyc_bboxes_z15.txt", "w").write("\n".join(bb) + "\n")
c14 = sorted(t14.values()); c15 = sorted(t15.values())
print(f"lists: {len(tiles)} tiles ({len(t14)} z14, median {c14[len(c14)//2]} max {c14[-1]} points; "
      f"{min(3000, len(t15))} z15 of {len(t15)}), {len(bb)} z15 bboxes (median {c15[len(c15)//2]} max {c15[-1]} points)")
PY

# ---- imports (interleaved)
db=$OUT/NYC.db
tt=(); pt=()
for r in $(seq 1 "$IMPORT_RUNS"); do
  rm -f "$db" "$db-wal" "$db-shm"
  t0=$(now); /usr/bin/time -v -o "$OUT/import.time-v.$r" "$TESSERA" import "$csv" --dataset points --db "$db" > "$OUT/import.$r.log" 2>&1 \
    || { tail -5 "$OUT/import.$r.log"; die "tessera import failed"; }
  tt+=("$(elapsed "$t0")")
  t0=$(now)
  su postgres -c "psql -q -v ON_ERROR_STOP=1 -d bench" > "$OUT/postgis-load.$r.log" 2>&1 <<SQL || die "PostGIS load failed (see $OUT/postgis-load.$r.log)"
DROP TABLE IF EXISTS points_nyc_raw; DROP TABLE IF EXISTS points_nyc;
CREATE UNLOGGED TABLE points_nyc_raw (id bigint, lon double precision, lat double precision, category text, value integer);
\copy points_nyc_raw FROM '$csv' WITH (FORMAT csv, HEADER true)
CREATE TABLE points_nyc AS SELECT id, category, value, ST_SetSRID(ST_MakePoint(lon, lat), 4326)::geometry(Point,4326) AS geom FROM points_nyc_raw;
ALTER TABLE points_nyc ADD PRIMARY KEY (id);
CREATE INDEX points_nyc_geom_gist ON points_nyc USING gist (geom);
VACUUM ANALYZE points_nyc;
DROP TABLE points_nyc_raw;
SQL
  pt+=("$(elapsed "$t0")")
  say "   import run $r: tessera ${tt[-1]} s (peak RSS $(awk -F': ' '/Maximum resident/ {printf "%.0f MiB", $2/1024}' "$OUT/import.time-v.$r")), PostGIS ${pt[-1]} s, load1 $(cut -d' ' -f1 /proc/loadavg)"
done
tm=$(printf '%s\n' "${tt[@]}" | median); pm=$(printf '%s\n' "${pt[@]}" | median)
say "import: tessera median $tm s [${tt[*]}], PostGIS median $pm s [${pt[*]}]; PostGIS/tessera time $(awk -v a="$pm" -v b="$tm" 'BEGIN {printf "%.2f", a/b}')x;" \
    "catalog $(du -cb "$db"* | tail -1 | awk '{printf "%.1f MiB", $1/1048576}')"
say "   tessera: $TESSERA import $csv --dataset points --db $db"

# ---- servers
DATABASE_URL=postgresql://postgres:bench@$HOST:5432/bench "$VENV/bin/uvicorn" tipg.main:app --host "$HOST" --port "$TIPG_PORT" > "$OUT/tipg.log" 2>&1 &
tipg_pid=$!; pids+=("$tipg_pid")
t0=$(now)
"$TESSERA" serve --db "$db" --listen "$HOST:$TESSERA_PORT" --no-manifest --tile-cache-mb 0 > "$OUT/tessera.log" 2>&1 &
tess_pid=$!; pids+=("$tess_pid")
wait_http tessera "$tess_pid" "http://$HOST:$TESSERA_PORT/tiles/points/0/0/0.mvt"
say "tessera (pid $tess_pid): tessera serve --db $db --listen $HOST:$TESSERA_PORT --no-manifest --tile-cache-mb 0; first tile after $(elapsed "$t0") s;" \
    "cluster zoom $(curl -s "http://$HOST:$TESSERA_PORT/tiles/points" | python3 -c 'import json,sys; print(json.load(sys.stdin)["vector_layers"][0].get("tessera:cluster_zoom"))')"
bb=$(head -1 "$OUT/nyc_bboxes_z15.txt"); t14=$(grep -m1 '^14/' "$OUT/nyc_tiles.txt")
wait_http tipg "$tipg_pid" "http://$HOST:$TIPG_PORT/collections/public.points_nyc/items?limit=1000&bbox=$bb"
code=$(curl -s -o "$OUT/tipg-z14.mvt" -H 'Accept-Encoding: gzip' -w '%{http_code} %{size_download}' "http://$HOST:$TIPG_PORT/collections/public.points_nyc/tiles/WebMercatorQuad/$t14")
say "sanity: tipg tile $t14 -> $code bytes; tessera: $("$TESSERA" tile points "$t14" --db "$db" 2>/dev/null | head -1);" \
    "PostGIS points in it: $(PGPASSWORD=bench psql -h "$HOST" -U postgres -d bench -tAc "SELECT count(*) FROM points_nyc WHERE geom && ST_Transform(ST_TileEnvelope(${t14//\//,}), 4326)")"
[ "${code%% *}" = 200 ] || die "tipg tile path failed"
a=$(curl -s "http://$HOST:$TESSERA_PORT/collections/points/items?limit=1000&bbox=$bb" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["features"]))')
b=$(curl -s "http://$HOST:$TIPG_PORT/collections/public.points_nyc/items?limit=1000&bbox=$bb" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["features"]))')
say "sanity: first bbox: tessera $a features, tipg $b"

run() {  # NAME LIST PEER TARGET...: ratios of every other target to PEER
  local name=$1 list=$2 peer=$3; shift 3
  [ "$WARMUP" -gt 0 ] && "$SHARED_BENCH/rounds.sh" 1 "$WARMUP" "$CONNS" "$list" "$@" > "$OUT/$name.warmup.txt"
  "$SHARED_BENCH/rounds.sh" "$ROUNDS" "$SECS" "$CONNS" "$list" "$@" | tee "$OUT/$name.rounds.txt"
  say "-- $name: $ROUNDS x $SECS s x $CONNS conns over $(basename "$list"): $*"
  python3 - "$OUT/$name.rounds.txt" "$peer" <<'PY' | tee -a "$summary"
import sys, statistics as st
res = [dict(kv.split("=", 1) for kv in l.split()[1:]) for l in open(sys.argv[1]) if l.startswith("RESULT")]
for lab in dict.fromkeys(r["label"] for r in res):
    rs = [r for r in res if r["label"] == lab]
    bad = sum(int(r[k]) for r in rs for k in ("non2xx", "errors_connect", "errors_read", "errors_timeout"))
    print(f"{lab}: median {st.median(float(r['rps']) for r in rs):.1f} req/s [{' '.join(r['rps'] for r in rs)}], "
          f"p50 {st.median(int(r['p50_us']) for r in rs)/1000:.1f} ms, p99 {st.median(int(r['p99_us']) for r in rs)/1000:.1f} ms, "
          f"{st.median(int(r['bytes'])/max(int(r['requests']),1) for r in rs):.0f} B/resp, load1 [{' '.join(r['load1'] for r in rs)}], "
          f"non-2xx+errors {bad}" + ("  <-- INVALID" if bad else ""))
peer = sys.argv[2]
for lab in dict.fromkeys(r["label"] for r in res):
    if lab == peer: continue
    rr = [float(a["rps"]) / float(b["rps"]) for a in res for b in res if a["round"] == b["round"] and a["label"] == lab and b["label"] == peer]
    if rr: print(f"RATIO {lab}/{peer}: median of per-round ratios {st.median(rr):.2f}x [{' '.join(f'{x:.2f}' for x in rr)}]")
PY
}
run nyc_items "$OUT/nyc_bboxes_z15.txt" tipg \
  "tessera=http://$HOST:$TESSERA_PORT/collections/points/items?limit=1000\&bbox={}" \
  "tipg=http://$HOST:$TIPG_PORT/collections/public.points_nyc/items?limit=1000\&bbox={}"
run nyc_tiles "$OUT/nyc_tiles.txt" tipg \
  "tessera=http://$HOST:$TESSERA_PORT/tiles/points/{}.mvt" \
  "tipg=http://$HOST:$TIPG_PORT/collections/public.points_nyc/tiles/WebMercatorQuad/{}"
say "VmHWM: tessera $(awk '/VmHWM/ {print $2, $3}' /proc/$tess_pid/status), tipg $(awk '/VmHWM/ {print $2, $3}' /proc/$tipg_pid/status); load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- martin (when built): both draw every point from z14 on, caches off
MARTIN_BIN=${MARTIN_BIN:-/opt/martin/bin/martin} MARTIN_PORT=${MARTIN_PORT:-3000}
if [ -x "$MARTIN_BIN" ]; then
  port_busy "$MARTIN_PORT" && die "port $HOST:$MARTIN_PORT in use: stop what listens there (this stage starts martin with a points_nyc source)"
  cat > "$OUT/martin-nyc.yaml" <<YAML
listen_addresses: '$HOST:$MARTIN_PORT'
cache_size_mb: 0
postgres:
  connection_string: 'postgresql://postgres:bench@$HOST:5432/bench'
  pool_size: 4
  auto_publish: false
  tables:
    points_nyc:
      schema: public
      table: points_nyc
      srid: 4326
      geometry_column: geom
      geometry_type: POINT
      id_column: id
      extent: 4096
      buffer: 64
      clip_geom: true
      properties:
        category: text
        value: int4
YAML
  "$MARTIN_BIN" --config "$OUT/martin-nyc.yaml" > "$OUT/martin.log" 2>&1 &
  martin_pid=$!; pids+=("$martin_pid")
  wait_http martin "$martin_pid" "http://$HOST:$MARTIN_PORT/points_nyc/$t14"
  p_cz=$((TESSERA_PORT + 2))
  "$TESSERA" serve --db "$db" --listen "$HOST:$p_cz" --no-manifest --tile-cache-mb 0 --cluster-zoom 14 > "$OUT/tessera_cz14.log" 2>&1 &
  cz_pid=$!; pids+=("$cz_pid")
  wait_http tessera_cz14 "$cz_pid" "http://$HOST:$p_cz/tiles/points/0/0/0.mvt"
  say "martin (pid $martin_pid): $MARTIN_BIN --config $OUT/martin-nyc.yaml; tessera_cz14 (pid $cz_pid): --cluster-zoom 14 --tile-cache-mb 0"
  run nyc_martin "$OUT/nyc_tiles.txt" martin_pg \
    "tessera_cz14=http://$HOST:$p_cz/tiles/points/{}.mvt" \
    "martin_pg=http://$HOST:$MARTIN_PORT/points_nyc/{}"
  say "VmHWM tessera_cz14 $(awk '/VmHWM/ {print $2, $3}' /proc/$cz_pid/status)"
else
  say "martin not found at $MARTIN_BIN: martin stage skipped (peers-install.sh --with-martin)"
fi
