#!/usr/bin/env bash
# One-time (per machine) setup for bench/compare.sh: peers, benchmark inputs, PostGIS + MBTiles loads.
# Each step is skipped when its output is already there (FORCE=1 redoes all). Run as root.
# Usage: bench/setup.sh [BENCH_DATA]      (default $BENCH_DATA or /work/bench-data)
# Environment: VENV=/opt/tessera-peers SHARED_BENCH=/work/shared/bench UK_DATA=/work/shared/data/uk_police_street_crime
#              NYC=1 also makes the 1M synthetic NYC points (nyc1m.csv; needs numpy, pip-installed if missing)
set -euo pipefail
BENCH_DATA=${1:-${BENCH_DATA:-/work/bench-data}}
SHARED_BENCH=${SHARED_BENCH:-/work/shared/bench}
UK_DATA=${UK_DATA:-/work/shared/data/uk_police_street_crime}
VENV=${VENV:-/opt/tessera-peers}
FORCE=${FORCE:-0} NYC=${NYC:-0}
[ "$(id -u)" = 0 ] || { echo "run as root (apt-get, su postgres)" >&2; exit 1; }
stamp() { date +%T; }

if [ "$FORCE" = 1 ] || ! { [ -x "$VENV/bin/uvicorn" ] && [ -x "$VENV/bin/tippecanoe" ] && command -v wrk >/dev/null \
    && command -v psql >/dev/null && [ -d /usr/share/postgresql/15/extension ] && ls /usr/share/postgresql/15/extension/postgis.control >/dev/null 2>&1; }; then
  echo "$(stamp) peers-install.sh (about 1 minute)"
  t0=$(date +%s); "$SHARED_BENCH/peers-install.sh" "$VENV"; echo "$(stamp) installed in $(( $(date +%s) - t0 )) s"
fi
command -v bc >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bc >/dev/null        # peers-load.sh
[ -x /usr/bin/time ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null           # compare.sh peak RSS

mkdir -p "$BENCH_DATA"
if [ "$FORCE" = 1 ] || [ ! -s "$BENCH_DATA/points.csv" ] || [ ! -s "$BENCH_DATA/bboxes_z15.txt" ] || [ ! -s "$BENCH_DATA/tiles_z14_16.txt" ]; then
  echo "$(stamp) prepare.py (about 1 minute)"
  python3 "$SHARED_BENCH/prepare.py" "$UK_DATA" "$BENCH_DATA"
fi

rows=$(( $(wc -l < "$BENCH_DATA/points.csv") - 1 ))
pg_ctlcluster 15 main start >/dev/null 2>&1 || true
pg_rows=$(PGPASSWORD=bench psql -h 127.0.0.1 -U postgres -d bench -tAc 'SELECT count(*) FROM points' 2>/dev/null || echo 0)
if [ "$FORCE" = 1 ] || [ "$pg_rows" != "$rows" ] || [ ! -s "$BENCH_DATA/points_z14_16.mbtiles" ]; then
  echo "$(stamp) peers-load.sh (PostGIS ~10 s, tippecanoe ~100 s)"
  "$SHARED_BENCH/peers-load.sh" "$BENCH_DATA" "$VENV"
fi

if [ "$NYC" = 1 ] && { [ "$FORCE" = 1 ] || [ ! -s "$BENCH_DATA/nyc1m.csv" ]; }; then
  python3 -c 'import numpy' 2>/dev/null || pip install -q numpy
  python3 "$SHARED_BENCH/gen_points.py" 1000000 "$BENCH_DATA/nyc1m.csv" 42
fi
echo "$(stamp) ready: $BENCH_DATA ($rows points; PostGIS bench.points; $(ls "$BENCH_DATA" | tr '\n' ' '))"
