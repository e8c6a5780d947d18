#!/usr/bin/env bash
# Bake benchmark (issue 9): the UK crime points (points.csv, 1,394,792 rows) baked z0-MAXZOOM into one tile
# archive three ways, interleaved run by run on the same machine:
#   tessera     tessera bake (catalog made once from points.csv, untimed) -> PMTiles
#   tippecanoe  tippecanoe from points.csv -> PMTiles, in the preset(s) of TIPPECANOE (see below)
#   martin_cp   martin-cp from PostGIS table bench.points (martin's points_pg source) -> MBTiles
# For each run: wall time, CPU time (user+sys of the process; PostgreSQL's own work for martin-cp is not
# counted), peak RSS, file size, tiles per zoom. Then medians and per-run time ratios (peer / tessera,
# > 1 = tessera faster). The tessera side is skipped with a notice when the binary has no `bake` command.
#
# Usage: bench/bake.sh TESSERA_BIN [BENCH_DATA]
#   BENCH_DATA  folder made by prepare.py + peers-load.sh (default $BENCH_DATA, else ../bench-data beside the repo)
# Environment (all optional):
#   RUNS=3 MAXZOOM=14            runs of each tool (the median is quoted); zooms 0..MAXZOOM
#   TIPPECANOE=cluster,defaults  presets, comma-separated:
#       cluster   -Z0 -zMAXZOOM -r1 --cluster-distance=16 --no-feature-limit --no-tile-size-limit: every point
#                 kept and counted in clusters of 1/16 of a tile side at every zoom, as tessera draws a dataset
#                 below its cluster zoom (16 for this data: 16x16 cells per tile); the like-for-like setting
#       defaults  -Z0 -zMAXZOOM only: tippecanoe's own choice (drops points at low zooms, 500 KB tile limit),
#                 what a user gets without tuning; less work, so not like-for-like
#   MARTIN_CP_BIN=/opt/martin/bin/martin-cp   CONCURRENCY=<cores> (martin-cp --concurrency; the others use
#                 every core on their own)   BAKE_ARGS  extra arguments of tessera bake
#   VENV=/opt/tessera-peers   SHARED_BENCH=<repo>/../shared/bench   OUT=<BENCH_DATA>/bake-<timestamp>   KEEP=0 (1 keeps the archives of every run)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

[ $# -ge 1 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
TESSERA_SRC=$1
BENCH_DATA=$(cd "${2:-${BENCH_DATA:-$repo/../bench-data}}" && pwd)
RUNS=${RUNS:-3} MAXZOOM=${MAXZOOM:-14} TIPPECANOE=${TIPPECANOE:-cluster,defaults}
MARTIN_CP_BIN=${MARTIN_CP_BIN:-/opt/martin/bin/martin-cp} CONCURRENCY=${CONCURRENCY:-$(nproc)}
VENV=${VENV:-/opt/tessera-peers} SHARED_BENCH=${SHARED_BENCH:-$repo/../shared/bench} KEEP=${KEEP:-0} BAKE_ARGS=${BAKE_ARGS:-}
OUT=${OUT:-$BENCH_DATA/bake-$(date +%Y%m%d-%H%M%S)}
for v in RUNS MAXZOOM CONCURRENCY KEEP; do [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be a number" >&2; exit 2; }; done
[ -s "$BENCH_DATA/points.csv" ] || { echo "$BENCH_DATA/points.csv missing: run bench/setup.sh" >&2; exit 1; }
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
summary=$OUT/summary.txt; runs_txt=$OUT/runs.txt
say() { echo "$*" | tee -a "$summary"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

pg_started=0
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ "$pg_started" = 1 ] && pg_ctlcluster 15 main stop >/dev/null 2>&1 || true
  echo "(results in $OUT)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- which tools run
have_tessera=0
if [ -x "$TESSERA_SRC" ]; then
  cp "$TESSERA_SRC" "$OUT/tessera"; TESSERA=$OUT/tessera
  if "$TESSERA" bake --help > "$OUT/bake-help.txt" 2>&1; then have_tessera=1
  else say "NOTICE: $TESSERA_SRC has no 'bake' command: tessera side skipped (peers only)"; fi
else
  say "NOTICE: tessera binary '$TESSERA_SRC' not found: tessera side skipped (peers only)"
fi
have_martin=0
if [ -x "$MARTIN_CP_BIN" ]; then have_martin=1
else say "NOTICE: $MARTIN_CP_BIN not found: martin-cp skipped (peers-install.sh --with-martin builds it)"; fi
[ -x "$VENV/bin/tippecanoe" ] || { echo "$VENV/bin/tippecanoe missing: run bench/setup.sh" >&2; exit 1; }
presets=()
IFS=, read -ra presets <<< "$TIPPECANOE"
tippecanoe_args() {  # PRESET -> the arguments of that preset
  case $1 in
    cluster)  echo "-Z0 -z$MAXZOOM -r1 --cluster-distance=16 --no-feature-limit --no-tile-size-limit" ;;
    defaults) echo "-Z0 -z$MAXZOOM" ;;
    *) echo "unknown TIPPECANOE preset '$1' (cluster, defaults)" >&2; return 1 ;;
  esac
}
for p in "${presets[@]}"; do tippecanoe_args "$p" > /dev/null; done

say "== bake benchmark, $(date -Is): points.csv $(($(wc -l < "$BENCH_DATA/points.csv") - 1)) rows, z0-$MAXZOOM, $RUNS runs each, interleaved"
say "machine: $(nproc) cores, load average at start $(load) (other builds may be running)"
[ "$have_tessera" = 1 ] && say "tessera: $TESSERA_SRC ($("$TESSERA" --version 2>/dev/null | head -1); sha256 $(sha256sum "$TESSERA" | cut -c1-16))"
say "tippecanoe: $("$VENV/bin/tippecanoe" --version 2>&1 | head -1); martin-cp: $([ "$have_martin" = 1 ] && "$MARTIN_CP_BIN" --version 2>&1 | head -1 || echo absent)"

# ---------------------------------------------------------------- inputs
db=$OUT/bake.db
if [ "$have_tessera" = 1 ]; then
  t0=$(date +%s.%N)
  "$TESSERA" import "$BENCH_DATA/points.csv" --dataset uk-crime --time month --db "$db" > "$OUT/import.log" 2>&1 \
    || { tail -5 "$OUT/import.log" >&2; exit 1; }
  say "tessera catalog (untimed preparation): tessera import points.csv --dataset uk-crime --time month, $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s"
  bake_zoom_args=(--maxzoom "$MAXZOOM")
  grep -q -- '--minzoom' "$OUT/bake-help.txt" && bake_zoom_args=(--minzoom 0 --maxzoom "$MAXZOOM")
fi
if [ "$have_martin" = 1 ]; then
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    pg_ctlcluster 15 main start; pg_started=1
    for _ in $(seq 1 40); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.25; done
  fi
  PGPASSWORD=bench psql -h 127.0.0.1 -U postgres -d bench -tAc 'SELECT 1 FROM points LIMIT 1' > /dev/null \
    || { echo "PostGIS table bench.points missing: run peers-load.sh" >&2; exit 1; }
  # martin.yaml's PostGIS source, alone (martin-cp copies one source); bbox = the data's extent
  bbox=$(PGPASSWORD=bench psql -h 127.0.0.1 -U postgres -d bench -tAc \
    "SELECT concat_ws(',', ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)) FROM (SELECT ST_Extent(geom) AS e FROM points) s")
  sed '/^mbtiles:/,$d' "$SHARED_BENCH/martin.yaml" > "$OUT/martin-cp.yaml"
  grep -q points_pg "$OUT/martin-cp.yaml" || { echo "$SHARED_BENCH/martin.yaml has no points_pg source" >&2; exit 1; }
  say "martin-cp source: points_pg of martin.yaml (extent 4096, buffer 64, properties category, month), bbox $bbox"
fi

# ---------------------------------------------------------------- runs
# timed TOOL RUN OUTPUT CMD...: runs CMD under /usr/bin/time -v, appends one line to runs.txt
timed() {
  local tool=$1 r=$2 out=$3; shift 3
  rm -f "$out" "$out-journal" "$out-wal" "$out-shm"
  local t0; t0=$(date +%s.%N)
  if ! /usr/bin/time -v -o "$OUT/$tool.$r.time-v" "$@" > "$OUT/$tool.$r.log" 2>&1; then
    say "   run $r $tool: FAILED (log $OUT/$tool.$r.log)"; tail -5 "$OUT/$tool.$r.log" >&2; return 0
  fi
  local secs; secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}')
  local rss cpu; rss=$(awk -F': ' '/Maximum resident/ {printf "%.0f", $2 / 1024}' "$OUT/$tool.$r.time-v")
  cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%.1f", s}' "$OUT/$tool.$r.time-v")
  local counts; counts=$("$VENV/bin/python" - "$out" <<'PY'
import sys, sqlite3, collections
path = sys.argv[1]
per = collections.Counter()
if path.endswith(".pmtiles"):
    from pmtiles.reader import Reader, MmapSource, all_tiles
    with open(path, "rb") as f:
        src = MmapSource(f)
        h = Reader(src).header()
        for (z, _, _), _ in all_tiles(src):
            per[z] += 1
        extra = f"unique_contents={h.get('tile_contents_count')}"
else:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    for z, n in con.execute("SELECT zoom_level, count(*) FROM tiles GROUP BY zoom_level"):
        per[z] = n
    extra = "unique_contents=" + str(con.execute(
        "SELECT count(DISTINCT tile_data) FROM tiles").fetchone()[0])
print(f"tiles={sum(per.values())} {extra} per_zoom=" + ",".join(f"{z}:{per[z]}" for z in sorted(per)))
PY
)
  local size; size=$(stat -c %s "$out")
  echo "RUN tool=$tool run=$r secs=$secs cpu_s=$cpu rss_mib=$rss bytes=$size $counts load1=$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$runs_txt"
  [ "$KEEP" = 1 ] || [ "$r" = "$RUNS" ] || rm -f "$out"
}

[ "$have_tessera" = 1 ] && say "tessera:    tessera bake uk-crime --db $db --out OUT/tessera.R.pmtiles ${bake_zoom_args[*]} $BAKE_ARGS"
for p in "${presets[@]}"; do say "tippecanoe_$p: tippecanoe -q -f -o OUT/tippecanoe_$p.R.pmtiles -l points $(tippecanoe_args "$p") -b4 points.csv"; done
[ "$have_martin" = 1 ] && say "martin_cp:  martin-cp --config OUT/martin-cp.yaml --source points_pg --output-file OUT/martin_cp.R.mbtiles --min-zoom 0 --max-zoom $MAXZOOM --bbox=$bbox --concurrency $CONCURRENCY (normalized MBTiles, gzip)"
for r in $(seq 1 "$RUNS"); do
  say "-- run $r, load average $(load)"
  if [ "$have_tessera" = 1 ]; then
    # shellcheck disable=SC2086
    timed tessera "$r" "$OUT/tessera.$r.pmtiles" "$TESSERA" bake uk-crime --db "$db" --out "$OUT/tessera.$r.pmtiles" "${bake_zoom_args[@]}" $BAKE_ARGS
  fi
  for p in "${presets[@]}"; do
    # shellcheck disable=SC2046
    timed "tippecanoe_$p" "$r" "$OUT/tippecanoe_$p.$r.pmtiles" "$VENV/bin/tippecanoe" -q -f -o "$OUT/tippecanoe_$p.$r.pmtiles" \
      -l points $(tippecanoe_args "$p") -b4 "$BENCH_DATA/points.csv"
  done
  if [ "$have_martin" = 1 ]; then
    timed martin_cp "$r" "$OUT/martin_cp.$r.mbtiles" "$MARTIN_CP_BIN" --config "$OUT/martin-cp.yaml" --source points_pg \
      --output-file "$OUT/martin_cp.$r.mbtiles" --min-zoom 0 --max-zoom "$MAXZOOM" --bbox="$bbox" --concurrency "$CONCURRENCY"
  fi
done

# ---------------------------------------------------------------- summary
[ -s "$runs_txt" ] || { say "no run succeeded"; exit 1; }
python3 - "$runs_txt" <<'PY' | tee -a "$summary"
import sys, statistics as st
runs = [dict(kv.split("=", 1) for kv in l.split()[1:]) for l in open(sys.argv[1]) if l.startswith("RUN ")]
tools = list(dict.fromkeys(r["tool"] for r in runs))
med = lambda t, k: st.median(float(r[k]) for r in runs if r["tool"] == t)
for t in tools:
    rs = [r for r in runs if r["tool"] == t]
    last = rs[-1]
    print(f"{t}: median {med(t, 'secs'):.1f} s [{' '.join(r['secs'] for r in rs)}], CPU {med(t, 'cpu_s'):.1f} s, "
          f"peak RSS {med(t, 'rss_mib'):.0f} MiB, {int(last['bytes'])/1048576:.1f} MiB, {last['tiles']} tiles "
          f"({last['unique_contents']} unique), per zoom {last['per_zoom']}, load1 [{' '.join(r['load1'] for r in rs)}]")
if "tessera" in tools:
    for t in tools:
        if t == "tessera": continue
        per = [float(p["secs"]) / float(q["secs"]) for p in runs if p["tool"] == t
               for q in runs if q["tool"] == "tessera" and q["run"] == p["run"]]
        if per:
            print(f"RATIO time {t}/tessera (> 1 = tessera faster): median of per-run ratios {st.median(per):.2f}x "
                  f"[{' '.join(f'{x:.2f}' for x in per)}]; size {t}/tessera "
                  f"{med(t, 'bytes') / med('tessera', 'bytes'):.2f}")
PY
say "load average at end $(load)"
