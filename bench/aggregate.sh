#!/usr/bin/env bash
# Counts by area: Tessera's /collections/{id}/aggregate against PostGIS `ST_Contains … GROUP BY`
# with a GiST index, on the same data in the same run.
#
# Data: the 1.39M UK street-crime points with coordinates (all four months, made by
# ../shared/bench/prepare.py as points.csv), counted into the 263 LSOAs of Bristol and the
# 298 of Liverpool (tests/fixtures/*-lsoa.geojson), with a time filter (one month).
#
# Usage: bench/aggregate.sh [BENCH_DATA [TESSERA_BIN]]
#   BENCH_DATA   folder holding points.csv (made here with prepare.py when missing; default /work/bench-data)
#   TESSERA_BIN  default <repo>/target/release/tessera
# Environment: SECS=15 CONNS=4 PG_RUNS=15 PORT=8093 PG_DB=bench_aggregate SHARED_BENCH=<repo>/../shared/bench
#   UK_DATA=<repo>/../shared/data/uk_police_street_crime  PGUSER=postgres (a superuser; psql over the local socket)
# Tessera: wrk --latency, p50/p99 as wrk prints them. PostGIS: the query run PG_RUNS times in one
# session after one discarded warm-up run, median and max of psql's \timing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); repo=$(cd "$here/.." && pwd)
BENCH_DATA=${1:-${BENCH_DATA:-/work/bench-data}}
TESSERA=${2:-${TESSERA:-$repo/target/release/tessera}}
SECS=${SECS:-15} CONNS=${CONNS:-4} PG_RUNS=${PG_RUNS:-15} PORT=${PORT:-8093}
PG_DB=${PG_DB:-bench_aggregate} PGUSER=${PGUSER:-postgres}
SHARED_BENCH=${SHARED_BENCH:-$repo/../shared/bench}
UK_DATA=${UK_DATA:-$repo/../shared/data/uk_police_street_crime}
MONTH=2018-12
HOST=127.0.0.1
[[ $PG_DB =~ ^[a-z_][a-z0-9_]*$ ]] || { echo "PG_DB must be a plain name" >&2; exit 2; }
mkdir -p "$BENCH_DATA"; BENCH_DATA=$(cd "$BENCH_DATA" && pwd)
OUT=$BENCH_DATA/aggregate-$(date +%Y%m%d-%H%M%S); mkdir -p "$OUT"
say() { echo "$*" | tee -a "$OUT/summary.txt"; }
psql_() { su "$PGUSER" -c "psql -X -q -v ON_ERROR_STOP=1 $*"; }

[ -f "$BENCH_DATA/points.csv" ] || python3 "$SHARED_BENCH/prepare.py" "$UK_DATA" "$BENCH_DATA"
say "points: $(($(wc -l < "$BENCH_DATA/points.csv") - 1)) rows"

# ------------------------------------------------------------------ Tessera
db=$OUT/tessera.db
"$TESSERA" import --db "$db" --dataset points --time month --category category --lon lon --lat lat \
  --id-column id "$BENCH_DATA/points.csv" > "$OUT/import.log" 2>&1
for a in bristol liverpool; do
  "$TESSERA" import --db "$db" --dataset "$a-lsoa" --kind boundaries "$repo/tests/fixtures/$a-lsoa.geojson" >> "$OUT/import.log" 2>&1
done
"$TESSERA" serve --db "$db" --no-manifest --listen "$HOST:$PORT" > "$OUT/serve.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://$HOST:$PORT/collections" > /dev/null && break; sleep 0.2; done
for a in bristol liverpool; do
  url="http://$HOST:$PORT/collections/points/aggregate?by=$a-lsoa&datetime=$MONTH"
  start=$(date +%s.%N); curl -sf "$url" > "$OUT/tessera-$a.json"; end=$(date +%s.%N)
  say "tessera $a first request (builds the point index and the areas of every point): $(echo "$end - $start" | bc) s"
  wrk -t2 -c"$CONNS" -d"${SECS}s" --latency "$url" > "$OUT/wrk-$a.txt"
  say "tessera $a: $(grep -E '^ +50%' "$OUT/wrk-$a.txt" | awk '{print "p50", $2}'), $(grep -E '^ +99%' "$OUT/wrk-$a.txt" | awk '{print "p99", $2}'), $(grep Requests/sec "$OUT/wrk-$a.txt")"
done

# ------------------------------------------------------------------ PostGIS
psql_ "-c 'DROP DATABASE IF EXISTS $PG_DB'" ; psql_ "-c 'CREATE DATABASE $PG_DB'"
cp "$BENCH_DATA/points.csv" "$OUT/points.csv"; chmod a+r "$OUT" "$OUT/points.csv"
psql_ "-d $PG_DB" <<SQL
CREATE EXTENSION postgis;
CREATE TABLE points (id text, lon float8, lat float8, category text, month text);
COPY points FROM '$OUT/points.csv' CSV HEADER;
ALTER TABLE points ADD COLUMN geom geometry(Point, 4326);
UPDATE points SET geom = ST_SetSRID(ST_MakePoint(lon, lat), 4326);
CREATE INDEX ON points USING gist (geom);
CREATE INDEX ON points (month);
VACUUM ANALYZE points;
SQL
rm -f "$OUT/points.csv"
for a in bristol liverpool; do
  python3 - "$repo/tests/fixtures/$a-lsoa.geojson" > "$OUT/$a.sql" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))["features"]
name = sys.argv[1].rsplit("/", 1)[1].split("-")[0]
print(f"CREATE TABLE {name}_lsoa (code text, geom geometry(Geometry, 4326));")
for f in rows:
    g = json.dumps(f["geometry"]).replace("'", "''")
    print(f"INSERT INTO {name}_lsoa VALUES ('{f['properties']['LSOA11CD']}', ST_SetSRID(ST_GeomFromGeoJSON('{g}'), 4326));")
print(f"CREATE INDEX ON {name}_lsoa USING gist (geom); ANALYZE {name}_lsoa;")
PY
  psql_ "-d $PG_DB -f $OUT/$a.sql"
  q="SELECT a.code, count(p.id) FROM ${a}_lsoa a LEFT JOIN points p ON ST_Contains(a.geom, p.geom) AND p.month = '$MONTH' GROUP BY a.code;"
  { echo '\timing on'; for _ in $(seq $((PG_RUNS + 1))); do echo "$q"; done; } > "$OUT/$a-query.sql"
  psql_ "-d $PG_DB -o /dev/null -f $OUT/$a-query.sql" > "$OUT/pg-$a.txt"
  say "postgis $a: $(python3 -c "
import re, statistics, sys
t = [float(m) for m in re.findall(r'Time: ([0-9.]+) ms', open(sys.argv[1]).read())][1:]
print(f'median {statistics.median(t):.1f} ms, max {max(t):.1f} ms over {len(t)} runs')" "$OUT/pg-$a.txt")"
done
psql_ "-c 'DROP DATABASE $PG_DB'"
say "results in $OUT"
