#!/usr/bin/env bash
# Counts by area: Tessera's /collections/{id}/aggregate against PostGIS `ST_Contains … GROUP BY`
# with a GiST index, on the same data in the same run, in interleaved rounds.
#
# Data: the 1.39M UK street-crime points with coordinates (all four months, made by
# ../shared/bench/prepare.py as points.csv), counted with a time filter (one month) into
#   bristol    the 263 LSOAs of Bristol    (tests/fixtures/bristol-lsoa.geojson)
#   liverpool  the 298 LSOAs of Liverpool  (tests/fixtures/liverpool-lsoa.geojson)
#   london     the 33 London boroughs, 186k vertices (../shared/data/neighbourhoods/london.geojson;
#              left out with a notice when missing). The Met's own data is not in the set, so
#              these are the City of London, British Transport Police and border forces' points.
#
# Usage: bench/aggregate.sh [BENCH_DATA [TESSERA_BIN]]
#   BENCH_DATA   folder holding points.csv (made here with prepare.py when missing; default /work/bench-data)
#   TESSERA_BIN  default <repo>/target/release/tessera
# Environment: ROUNDS=3 SECS=10 CONNS=4 PG_RUNS=15 PORT=8093 PG_DB=bench_aggregate
#   SHARED_BENCH=SHARED/bench  UK_DATA=SHARED/data/uk_police_street_crime
#   LONDON=SHARED/data/neighbourhoods/london.geojson  (SHARED: <repo>/../shared, else
#   <repo>/../../shared for a worktree in a folder of worktrees)  PGUSER=postgres (a superuser; psql
#   over the local socket; the cluster must be running: pg_ctlcluster 15 main start)
# Each round, for each area set:
#   tessera serial   wrk, 1 connection: p50 is the latency of one request (compared with PostGIS)
#   tessera loaded   wrk, CONNS connections: req/s, p50, p99
#   postgis          the query PG_RUNS times in one psql session (after one discarded warm-up
#                    run per round; JIT off, GiST index only: see below): median and max of
#                    psql's \timing
#   choropleth       wrk, CONNS connections, over every z10-z14 tile of the set's extent (at most
#                    400 a zoom): /collections/points/aggregate/{z}/{x}/{y}.mvt?by=…&datetime=…
#   area tiles       the same tiles of the areas alone (/tiles/{set}-areas/…): the baseline
#                    the choropleth is compared with (tile cache off, so both draw every tile)
# The summary gives the medians over rounds and the ratios PostGIS median / Tessera serial p50
# and choropleth / area tiles req/s (medians of the per-round ratios). Both sides' counts are
# checked against each other first.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); repo=$(cd "$here/.." && pwd)
BENCH_DATA=${1:-${BENCH_DATA:-/work/bench-data}}
TESSERA=${2:-${TESSERA:-$repo/target/release/tessera}}
ROUNDS=${ROUNDS:-3} SECS=${SECS:-10} CONNS=${CONNS:-4} PG_RUNS=${PG_RUNS:-15} PORT=${PORT:-8093}
PG_DB=${PG_DB:-bench_aggregate} PGUSER=${PGUSER:-postgres}
# The shared folder beside the clone (or beside the folder of worktrees).
shared=$repo/../shared; [ -d "$shared" ] || shared=$repo/../../shared
SHARED_BENCH=${SHARED_BENCH:-$shared/bench}
UK_DATA=${UK_DATA:-$shared/data/uk_police_street_crime}
LONDON=${LONDON:-$shared/data/neighbourhoods/london.geojson}
MONTH=2018-12
HOST=127.0.0.1
[[ $PG_DB =~ ^[a-z_][a-z0-9_]*$ ]] || { echo "PG_DB must be a plain name" >&2; exit 2; }
for tool in wrk curl python3 psql; do
  command -v "$tool" > /dev/null || { echo "needs $tool (apt-get install wrk curl python3 postgresql-15-postgis-3)" >&2; exit 2; }
done
[ -x "$TESSERA" ] || { echo "no Tessera binary at $TESSERA (cargo build --release)" >&2; exit 2; }
mkdir -p "$BENCH_DATA"; BENCH_DATA=$(cd "$BENCH_DATA" && pwd)
OUT=$BENCH_DATA/aggregate-$(date +%Y%m%d-%H%M%S); mkdir -p "$OUT"
# psql runs as $PGUSER and reads the SQL files and the CSV from here.
chmod a+rx "$OUT"
say() { echo "$*" | tee -a "$OUT/summary.txt"; }
psql_() { su "$PGUSER" -c "cd /tmp && psql -X -q -v ON_ERROR_STOP=1 $*"; }

[ -f "$BENCH_DATA/points.csv" ] || python3 "$SHARED_BENCH/prepare.py" "$UK_DATA" "$BENCH_DATA"
say "points: $(($(wc -l < "$BENCH_DATA/points.csv") - 1)) rows; $ROUNDS rounds; load: $(uptime)"

# The area sets: name, file, the property holding each area's code.
sets=("bristol $repo/tests/fixtures/bristol-lsoa.geojson LSOA11CD"
      "liverpool $repo/tests/fixtures/liverpool-lsoa.geojson LSOA11CD")
if [ -f "$LONDON" ]; then sets+=("london $(realpath "$LONDON") name")
else say "notice: no London boroughs at $LONDON; LSOAs only"; fi

# ------------------------------------------------------------------ load both
db=$OUT/tessera.db
"$TESSERA" import --db "$db" --dataset points --time month --category category --lon lon --lat lat \
  --id-column id "$BENCH_DATA/points.csv" > "$OUT/import.log" 2>&1
for s in "${sets[@]}"; do
  read -r name file _ <<< "$s"
  "$TESSERA" import --db "$db" --dataset "$name-areas" --kind boundaries "$file" >> "$OUT/import.log" 2>&1
done

psql_ "-c 'DROP DATABASE IF EXISTS $PG_DB'"; psql_ "-c 'CREATE DATABASE $PG_DB'"
cp "$BENCH_DATA/points.csv" "$OUT/points.csv"; chmod a+r "$OUT/points.csv"
psql_ "-d $PG_DB" <<SQL
CREATE EXTENSION postgis;
CREATE TABLE points (id text, lon float8, lat float8, category text, month text);
COPY points FROM '$OUT/points.csv' CSV HEADER;
ALTER TABLE points ADD COLUMN geom geometry(Point, 4326);
UPDATE points SET geom = ST_SetSRID(ST_MakePoint(lon, lat), 4326);
CREATE INDEX ON points USING gist (geom);
VACUUM ANALYZE points;
SQL
rm -f "$OUT/points.csv"
for s in "${sets[@]}"; do
  read -r name file code <<< "$s"
  python3 - "$file" "$name" "$code" > "$OUT/$name.sql" <<'PY'
import json, sys
path, name, code = sys.argv[1:]
print(f"CREATE TABLE {name}_areas (code text, geom geometry(Geometry, 4326));")
for f in json.load(open(path))["features"]:
    g = json.dumps(f["geometry"]).replace("'", "''")
    c = str(f["properties"][code]).replace("'", "''")
    print(f"INSERT INTO {name}_areas VALUES ('{c}', ST_SetSRID(ST_GeomFromGeoJSON('{g}'), 4326));")
print(f"CREATE INDEX ON {name}_areas USING gist (geom); ANALYZE {name}_areas;")
PY
  chmod a+r "$OUT/$name.sql"
  psql_ "-d $PG_DB -f $OUT/$name.sql"
  q="SELECT a.code, count(p.id) FROM ${name}_areas a LEFT JOIN points p ON ST_Contains(a.geom, p.geom) AND p.month = '$MONTH' GROUP BY a.code;"
  # JIT off: this query's cost estimate turns it on, and compiling took ~460 ms of a ~80 ms
  # query. No index on month: with one the planner ANDs a bitmap of a third of the table
  # into every area's GiST scan (7 s a query). Both choices make PostGIS faster.
  { echo 'SET jit = off;'; echo '\timing on'; for _ in $(seq $((PG_RUNS + 1))); do echo "$q"; done; } > "$OUT/$name-query.sql"
  echo "SET jit = off; SELECT sum(n) FROM (${q%;}) AS c(code, n);" > "$OUT/$name-sum.sql"
  chmod a+r "$OUT/$name-query.sql" "$OUT/$name-sum.sql"
done

# ------------------------------------------------------------------ serve Tessera
"$TESSERA" serve --db "$db" --no-manifest --listen "$HOST:$PORT" --tile-cache-mb 0 > "$OUT/serve.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://$HOST:$PORT/collections" > /dev/null && break; sleep 0.2; done
url_of() { echo "http://$HOST:$PORT/collections/points/aggregate?by=$1-areas&datetime=$MONTH"; }
cp "$(dirname "$0")/result.lua" "$OUT/result.lua"
cat > "$OUT/tiles.lua" <<'LUA'
-- Replays args[2]..line..args[3] for each line of file args[1], round-robin.
function init(args)
  paths = {}
  for line in io.lines(args[1]) do paths[#paths + 1] = args[2] .. line .. args[3] end
  idx, bad = 0, 0
end
function request() idx = idx % #paths + 1; return wrk.format("GET", paths[idx], {["Accept-Encoding"] = "gzip"}) end
function response(status) if status ~= 200 and status ~= 204 then bad = bad + 1 end end
LUA
# tiles.lua also takes result.lua's setup() and done() (204, an empty tile, counts as success).
sed -e '/^function response/d' -e '/^function init/d' \
  "$OUT/result.lua" >> "$OUT/tiles.lua"
for s in "${sets[@]}"; do
  read -r name file _ <<< "$s"
  python3 - "$file" > "$OUT/tiles-$name.txt" <<'PY'
import json, math, random, sys
xs, ys = [], []
def walk(c):
    if isinstance(c[0], (int, float)):
        xs.append(c[0]); ys.append(c[1])
    else:
        for d in c:
            walk(d)
for f in json.load(open(sys.argv[1]))["features"]:
    walk(f["geometry"]["coordinates"])
def tile(lon, lat, z):
    n = 2 ** z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
rng = random.Random(11)
out = []
for z in range(10, 15):
    (x0, y0), (x1, y1) = tile(min(xs), max(ys), z), tile(max(xs), min(ys), z)
    ts = [f"{z}/{x}/{y}" for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
    rng.shuffle(ts)
    out += ts[:400]
rng.shuffle(out)
print("\n".join(out))
PY
done
for s in "${sets[@]}"; do
  read -r name _ <<< "$s"
  secs=$(curl -sf -o "$OUT/tessera-$name.json" -w '%{time_total}' "$(url_of "$name")")
  say "tessera $name first request (point index + the area of every point): $secs s"
  pg_sum=$(psql_ "-d $PG_DB -t -A -f $OUT/$name-sum.sql")
  say "$name counts in areas: tessera $(python3 -c '
import json, sys
print(sum(a["count"] for a in json.load(open(sys.argv[1]))["areas"]))' "$OUT/tessera-$name.json"), postgis $pg_sum"
done

# ------------------------------------------------------------------ rounds
results=$OUT/results.txt
for round in $(seq "$ROUNDS"); do
  for s in "${sets[@]}"; do
    read -r name _ <<< "$s"
    load=$(cut -d' ' -f1 /proc/loadavg)
    wrk -t1 -c1 -d"${SECS}s" --latency -s "$OUT/result.lua" "$(url_of "$name")" | grep RESULT \
      | sed "s/^RESULT/round=$round set=$name side=serial load1=$load/" | tee -a "$results"
    wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$OUT/result.lua" "$(url_of "$name")" | grep RESULT \
      | sed "s/^RESULT/round=$round set=$name side=loaded load1=$load/" | tee -a "$results"
    wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$OUT/tiles.lua" "http://$HOST:$PORT" -- "$OUT/tiles-$name.txt" \
      "/collections/points/aggregate/" ".mvt?by=$name-areas&datetime=$MONTH" | grep RESULT \
      | sed "s/^RESULT/round=$round set=$name side=choropleth load1=$load/" | tee -a "$results"
    wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$OUT/tiles.lua" "http://$HOST:$PORT" -- "$OUT/tiles-$name.txt" \
      "/tiles/$name-areas/" ".mvt" | grep RESULT \
      | sed "s/^RESULT/round=$round set=$name side=areatiles load1=$load/" | tee -a "$results"
    psql_ "-d $PG_DB -o /dev/null -f $OUT/$name-query.sql" > "$OUT/pg-$name-$round.txt"
    python3 - "$OUT/pg-$name-$round.txt" "$round" "$name" "$load" <<'PY' | tee -a "$results"
import re, statistics, sys
t = [float(m) for m in re.findall(r"Time: ([0-9.]+) ms", open(sys.argv[1]).read())][1:]
print(f"round={sys.argv[2]} set={sys.argv[3]} side=postgis load1={sys.argv[4]} "
      f"median_us={statistics.median(t) * 1000:.0f} max_us={max(t) * 1000:.0f} runs={len(t)}")
PY
  done
done
psql_ "-c 'DROP DATABASE $PG_DB'"

python3 - "$results" <<'PY' | tee -a "$OUT/summary.txt"
import re, statistics, sys
rows = [dict(re.findall(r"(\w+)=([\w.]+)", l)) for l in open(sys.argv[1])]
med = statistics.median
for name in dict.fromkeys(r["set"] for r in rows):
    get = lambda side: [r for r in rows if r["set"] == name and r["side"] == side]
    serial, loaded, pg = get("serial"), get("loaded"), get("postgis")
    choro, plain = get("choropleth"), get("areatiles")
    by_round = {r["round"]: r for r in pg}
    ratios = [float(by_round[r["round"]]["median_us"]) / float(r["p50_us"]) for r in serial]
    plain_rps = {r["round"]: float(r["rps"]) for r in plain}
    tile_ratios = [float(r["rps"]) / plain_rps[r["round"]] for r in choro]
    bad = sum(int(r["non2xx"]) + int(r["errors"]) for r in serial + loaded + choro + plain)
    print(f"{name}: tessera serial p50 {med(float(r['p50_us']) for r in serial) / 1000:.2f} ms; "
          f"loaded {med(float(r['rps']) for r in loaded):.0f} req/s, "
          f"p50 {med(float(r['p50_us']) for r in loaded) / 1000:.2f} ms, "
          f"p99 {med(float(r['p99_us']) for r in loaded) / 1000:.2f} ms; "
          f"postgis median {med(float(r['median_us']) for r in pg) / 1000:.1f} ms "
          f"(max {max(float(r['max_us']) for r in pg) / 1000:.1f}); "
          f"postgis/tessera {med(ratios):.1f}x (rounds: {', '.join(f'{x:.1f}' for x in ratios)}); "
          f"choropleth tiles {med(float(r['rps']) for r in choro):.0f} req/s, "
          f"p99 {med(float(r['p99_us']) for r in choro) / 1000:.2f} ms; "
          f"area tiles alone {med(float(r['rps']) for r in plain):.0f} req/s, "
          f"p99 {med(float(r['p99_us']) for r in plain) / 1000:.2f} ms; "
          f"choropleth/area tiles {med(tile_ratios):.2f}x; non-2xx or errors {bad}")
PY
say "load at the end: $(uptime)"
say "results in $OUT"
