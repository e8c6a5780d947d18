#!/usr/bin/env bash
# PostGIS backend (issue 10): Tessera on PostgreSQL against the peers on the same PostGIS table, in
# the same run, in interleaved rounds (../shared/bench/rounds.sh; medians and per-round ratios).
# Data: the UK crime points (BENCH_DATA/points.csv and its lists, made by ../shared/bench/prepare.py);
#   another set with POINTS=FILE.csv (id,lon,lat,category,<5th>) TILE_LIST=... BBOX_LIST=... (from
#   postgis/lists.py) TIME_ARGS='' (UK crime: '--time month') DATASET=<id> (default uk).
#
# Usage: bench/postgis.sh [BENCH_DATA [TESSERA_BIN]]
#   BENCH_DATA   default /work/bench-data;  TESSERA_BIN default <repo>/target/release/tessera (copied to OUT)
# Stages (environment, 1 = run, 0 = skip):
#   IMPORT=1  IMPORT_RUNS times, alternating: `tessera import points.csv --dataset uk --time month
#             --category category --db PG/DB` into a fresh database, and plain COPY + GiST
#             (postgis/copy-load.sql) into DB_copy; wall time, peak RSS, ratio (goal <= 1.3x)
#   TILES=1   tiles_z14_16.txt: tessera (--cluster-zoom 14: every point drawn, tile cache off) vs
#             martin on the table tessera.f_<gen> (its cache off); req/s, p99, ratio (goal >= 4x)
#   ITEMS=1   bboxes_z15.txt, limit=1000: tessera vs tipg on the same table (goal >= 20x)
#   START=1   START_RUNS times, alternating: start -> first 200 on /tiles/$DATASET/0/0/0.mvt and peak RSS
#             (VmHWM after one SECS run over tiles_z14_16.txt) of `tessera serve` on PostGIS and on a
#             SQLite catalog imported from the same file with the same options
#   NGINX=1   nginx (1 worker) in front of one replica and of two (same database), and the replica
#             direct: tiles_z14_16.txt and bboxes_z15.txt, ratio two/one
#   SHAPES=1  polygons (Chicago community areas, London boroughs): Tessera's tile endpoint vs
#             ST_AsMVT(ST_AsMVTGeom(...)) run by pgbench on the same tiles (postgis/shapes.sh)
# DRY=1: no Tessera at all (UK crime points only): the table is loaded in Tessera's layout by
#   postgis/dry-load.sql and only the peer sides run (checks martin, tipg, COPY, nginx's config with
#   two martins as stand-in replicas, and the ST_AsMVT loop).
# Other knobs: ROUNDS=3 SECS=15 CONNS=8 WARMUP=5 IMPORT_RUNS=3 START_RUNS=3
#   PG=postgresql://tessera:tessera@127.0.0.1:5432 (no database; a superuser) DB=h4_bench (served
#   database; DB_copy is the COPY scratch) REUSE=0 (1: keep DB's data if it holds DATASET)
#   PORT=8180 (tessera PORT, second replica +1, nginx +3/+4, martin +5, tipg +6, start-up runs +7)
#   MARTIN_BIN=/work/tools/martin/bin/martin MARTIN_PROPS (martin's properties, default every cN
#   column) VENV=/work/tools/tipg-venv (tipg, uvicorn) SHARED_BENCH=/work/shared/bench OUT=...
# Everything listens on 127.0.0.1; an EXIT trap stops what this script started (by PID).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); repo=$(cd "$here/.." && pwd)
BENCH_DATA=$(cd "${1:-${BENCH_DATA:-/work/bench-data}}" && pwd)
TESSERA_SRC=${2:-${TESSERA:-$repo/target/release/tessera}}
DRY=${DRY:-0} IMPORT=${IMPORT:-1} TILES=${TILES:-1} ITEMS=${ITEMS:-1} START=${START:-1}
NGINX=${NGINX:-1} SHAPES=${SHAPES:-1} REUSE=${REUSE:-0}
ROUNDS=${ROUNDS:-3} SECS=${SECS:-15} CONNS=${CONNS:-8} WARMUP=${WARMUP:-5}
IMPORT_RUNS=${IMPORT_RUNS:-3} START_RUNS=${START_RUNS:-3} PORT=${PORT:-8180}
PG=${PG:-postgresql://tessera:tessera@127.0.0.1:5432} DB=${DB:-h4_bench}
MARTIN_BIN=${MARTIN_BIN:-/work/tools/martin/bin/martin} VENV=${VENV:-/work/tools/tipg-venv}
SHARED_BENCH=${SHARED_BENCH:-/work/shared/bench}
OUT=${OUT:-$BENCH_DATA/postgis-$(date +%Y%m%d-%H%M%S)}
HOST=127.0.0.1
for v in DRY IMPORT TILES ITEMS START NGINX SHAPES REUSE ROUNDS SECS CONNS WARMUP IMPORT_RUNS START_RUNS PORT; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be a number, got '${!v}'" >&2; exit 2; }
done
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
source "$here/postgis/lib.sh"
plain_name "$DB"
for tool in wrk curl psql python3 /usr/bin/time; do command -v "$tool" > /dev/null || die "needs $tool"; done
POINTS=${POINTS:-$BENCH_DATA/points.csv} DATASET=${DATASET:-uk} TIME_ARGS=${TIME_ARGS---time month}
TILE_LIST=${TILE_LIST:-$BENCH_DATA/tiles_z14_16.txt} BBOX_LIST=${BBOX_LIST:-$BENCH_DATA/bboxes_z15.txt}
[[ $DATASET =~ ^[a-z0-9-]+$ ]] || die "DATASET must be a plain id"
for f in "$POINTS" "$TILE_LIST" "$BBOX_LIST"; do
  [ -s "$f" ] || die "$f missing: python3 $SHARED_BENCH/prepare.py UK_DATA $BENCH_DATA (or postgis/lists.py)"
done
if [ "$DRY" = 0 ]; then
  [ -x "$TESSERA_SRC" ] || die "no Tessera binary at $TESSERA_SRC (cargo build --release; DRY=1 runs the peers alone)"
  cp "$TESSERA_SRC" "$OUT/tessera"; TESSERA=$OUT/tessera
fi
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_all; drop_db "${DB}_copy"
  echo "(results in $OUT)"; exit "$rc"
}
trap cleanup EXIT; trap 'exit 130' INT; trap 'exit 143' TERM

csv=$POINTS rows=$(($(wc -l < "$POINTS") - 1))
read -ra time_args <<< "$TIME_ARGS"
import_args=(--dataset "$DATASET" "${time_args[@]}" --category category)
serve_args=(--no-manifest --tile-cache-mb 0 --cluster-zoom 14)
say "== PostGIS benchmark, $(date -Is), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
say "data: $csv ($rows rows); PostgreSQL $(psql_ postgres -Atc 'SHOW server_version' | cut -d' ' -f1); database $DB"
if [ "$DRY" = 1 ]; then say "DRY=1: no Tessera; table loaded by bench/postgis/dry-load.sql"
else say "tessera: $TESSERA_SRC ($("$TESSERA" --version 2>/dev/null | head -1); commit $(git -C "$repo" rev-parse --short HEAD))"; fi

# tessera_import DB LOG: one timed import of POINTS into a fresh DB; prints "seconds rss_kib".
tessera_import() {
  recreate_db "$1"
  local t0; t0=$(now)
  /usr/bin/time -v -o "$2.time-v" "$TESSERA" import "$csv" "${import_args[@]}" --db "$PG/$1" > "$2" 2>&1 \
    || { tail -5 "$2" >&2; return 1; }
  echo "$(elapsed "$t0") $(awk -F': ' '/Maximum resident/ {print $2}' "$2.time-v")"
}
dry_load() { recreate_db "$1"; psql_ "$1" -f "$here/postgis/dry-load.sql" < "$csv" > "$2" 2>&1; }
copy_load() {
  recreate_db "$1"
  local t0; t0=$(now)
  psql_ "$1" -f "$here/postgis/copy-load.sql" < "$csv" > "$2" 2>&1 || { cat "$2" >&2; return 1; }
  elapsed "$t0"
}
has_dataset() { [ "$(psql_ "$DB" -Atc "SELECT count(*) FROM tessera.datasets WHERE id = '$DATASET'" 2>/dev/null)" = 1 ]; }

# ---------------------------------------------------------------- import (and the served data)
if [ "$IMPORT" = 1 ]; then
  say "-- import: $IMPORT_RUNS runs each, alternating; baseline: psql -f bench/postgis/copy-load.sql < $(basename "$csv") into ${DB}_copy"
  [ "$DRY" = 0 ] && say "   tessera: $TESSERA import $csv ${import_args[*]} --db $PG/$DB (fresh database each run)"
  tt=(); pt=(); ratios=()
  for r in $(seq 1 "$IMPORT_RUNS"); do
    if [ "$DRY" = 0 ]; then
      res=$(tessera_import "$DB" "$OUT/import.$r.log") || die "tessera import failed (run $r, $OUT/import.$r.log)"
    else
      t0=$(now); dry_load "$DB" "$OUT/import.$r.log" || die "dry-load.sql failed"; res="$(elapsed "$t0") 0"
    fi
    p=$(copy_load "${DB}_copy" "$OUT/copy.$r.log") || die "COPY load failed (run $r)"
    tt+=("${res% *}"); pt+=("$p"); ratios+=("$(awk -v a="${res% *}" -v b="$p" 'BEGIN {printf "%.2f", a / b}')")
    say "   run $r: $([ "$DRY" = 1 ] && echo dry-load.sql || echo tessera) ${res% *} s (peak RSS $(mib "${res#* }")), COPY + GiST $p s, load1 $(load1)"
  done
  tm=$(printf '%s\n' "${tt[@]}" | median); pm=$(printf '%s\n' "${pt[@]}" | median)
  say "import $([ "$DRY" = 1 ] && echo 'dry-load.sql (NOT tessera)' || echo tessera): median $tm s [${tt[*]}] ($(awk -v n="$rows" -v t="$tm" 'BEGIN {printf "%.0f", n / t}') rows/s); COPY + GiST: median $pm s [${pt[*]}]"
  say "RATIO import time $([ "$DRY" = 1 ] && echo dry-load.sql || echo tessera)/COPY: median of per-run ratios $(printf '%s\n' "${ratios[@]}" | median)x [${ratios[*]}] (goal <= 1.3x)"
  drop_db "${DB}_copy"
elif [ "$REUSE" = 1 ] && has_dataset; then
  say "REUSE=1: serving the data already in $DB"
elif [ "$DRY" = 1 ]; then
  dry_load "$DB" "$OUT/import.log" || die "dry-load.sql failed"
else
  tessera_import "$DB" "$OUT/import.log" > /dev/null || die "tessera import failed ($OUT/import.log)"
fi
gen=$(psql_ "$DB" -Atc "SELECT gen FROM tessera.datasets WHERE id = '$DATASET'")
[[ $gen =~ ^[0-9]+$ ]] || die "no generation for dataset $DATASET in $DB.tessera.datasets (got '$gen')"
table=f_$gen
say "table: tessera.$table, $(psql_ "$DB" -Atc "SELECT count(*) FROM tessera.$table") rows, $(psql_ "$DB" -Atc "SELECT pg_size_pretty(pg_total_relation_size('tessera.$table'))") with indexes"
if [ "$SHAPES" = 1 ]; then
  DB=$DB PG=$PG OUT=$OUT DRY=$DRY TESSERA=${TESSERA:-} "$here/postgis/shapes.sh" load || die "loading the polygons failed"
fi

# ---------------------------------------------------------------- servers
z14=$(grep -m1 '^14/' "$TILE_LIST"); bbox1=$(head -1 "$BBOX_LIST")
tess_tiles="http://$HOST:$PORT/tiles/$DATASET/{}.mvt" tess_items="http://$HOST:$PORT/collections/$DATASET/items?limit=1000&bbox={}"
run_rounds() {  # NAME LIST PEER TARGET...: warm-up, ROUNDS interleaved rounds, summary with ratios to PEER
  local name=$1 list=$2 peer=$3; shift 3
  [ "$WARMUP" -gt 0 ] && "$SHARED_BENCH/rounds.sh" 1 "$WARMUP" "$CONNS" "$list" "$@" > "$OUT/$name.warmup.txt"
  "$SHARED_BENCH/rounds.sh" "$ROUNDS" "$SECS" "$CONNS" "$list" "$@" > "$OUT/$name.rounds.txt"
  say "-- $name: $ROUNDS rounds x $SECS s x $CONNS connections over $(basename "$list"), interleaved, gzip accepted: $*"
  python3 "$here/postgis/summary.py" "$OUT/$name.rounds.txt" "$peer" | tee -a "$OUT/summary.txt"
}
if [ "$DRY" = 0 ] && [ $((TILES + ITEMS + NGINX)) -gt 0 ]; then
  t_start=$(now); start tessera "$PORT" "$TESSERA" serve --db "$PG/$DB" --listen "$HOST:$PORT" "${serve_args[@]}"
  tess_pid=$started; s=$(wait_200 "$tess_pid" "http://$HOST:$PORT/tiles/$DATASET/0/0/0.mvt") || die "tessera did not serve (see $OUT/tessera.log)"
  say "tessera pid $tess_pid: $TESSERA serve --db $PG/$DB --listen $HOST:$PORT ${serve_args[*]} (first tile after $s s)"
fi

# ---------------------------------------------------------------- z14-16 tiles vs martin
if [ "$TILES" = 1 ]; then
  [ -x "$MARTIN_BIN" ] || die "no martin at $MARTIN_BIN (cargo install martin --root ...; TILES=0 skips)"
  mport=$((PORT + 5))
  # The properties Tessera puts on a point (its category, time start and end; fid is the id):
  # the category's column is c<i> for field i of the dataset's info. Without one (DRY=1), every cN.
  cat_col=$(psql_ "$DB" -Atc "SELECT 'c' || (f.i - 1) FROM tessera.datasets d,
    json_array_elements(d.info::json -> 'fields') WITH ORDINALITY AS f(v, i)
    WHERE d.id = '$DATASET' AND f.v ->> 'name' = d.info::json -> 'meta' ->> 'category'")
  if [ -n "$cat_col" ]; then props_default="$cat_col: text, t0: int8, t1: int8"
  else props_default=$(psql_ "$DB" -Atc "SELECT string_agg(column_name || ': ' || udt_name, ', ' ORDER BY ordinal_position)
    FROM information_schema.columns WHERE table_schema = 'tessera' AND table_name = '$table' AND column_name ~ '^c[0-9]+$'"); fi
  props=${MARTIN_PROPS:-$props_default}
  cat > "$OUT/martin.yaml" <<YAML
# written by bench/postgis.sh: martin on the table Tessera serves; tile cache off, as Tessera's.
listen_addresses: '$HOST:$mport'
cache_size_mb: 0
postgres:
  connection_string: '$PG/$DB'
  pool_size: $CONNS
  auto_publish: false
  tables:
    points_pg:
      schema: tessera
      table: $table
      srid: 4326
      geometry_column: geom
      geometry_type: GEOMETRY
      id_column: fid
      extent: 4096
      buffer: 64
      clip_geom: true
      properties: {$props}
YAML
  t_start=$(now); start martin "$mport" "$MARTIN_BIN" --config "$OUT/martin.yaml"; martin_pid=$started
  s=$(wait_200 "$martin_pid" "http://$HOST:$mport/points_pg/$z14" 120) || die "martin did not serve (see $OUT/martin.log)"
  say "martin pid $martin_pid: $("$MARTIN_BIN" --version 2>&1 | head -1), $OUT/martin.yaml (properties {$props}; pool $CONNS), first tile after $s s"
  for t in "tessera $tess_tiles" "martin_pg http://$HOST:$mport/points_pg/{}"; do
    [ "$DRY" = 1 ] && [ "${t%% *}" = tessera ] && continue
    u=${t#* }; u=${u//\{\}/$z14}
    say "sanity: ${t%% *} $z14 -> $(curl -s -o /dev/null -H 'Accept-Encoding: gzip' -w '%{http_code}, %{size_download} bytes, %header{content-encoding}' "$u")"
  done
  targets=("martin_pg=http://$HOST:$mport/points_pg/{}"); [ "$DRY" = 0 ] && targets=("tessera=$tess_tiles" "${targets[@]}")
  run_rounds tiles "$TILE_LIST" martin_pg "${targets[@]}"
  say "peak RSS (VmHWM): martin $(mib "$(status_kib "$martin_pid" VmHWM)")"
  stop_one "$martin_pid"
fi

# ---------------------------------------------------------------- GeoJSON z15 pages vs tipg
if [ "$ITEMS" = 1 ]; then
  [ -x "$VENV/bin/uvicorn" ] || die "no uvicorn in $VENV (python3 -m venv $VENV && $VENV/bin/pip install tipg uvicorn)"
  tport=$((PORT + 6)); tipg_items="http://$HOST:$tport/collections/tessera.$table/items?limit=1000&bbox={}"
  t_start=$(now)
  start tipg "$tport" env DATABASE_URL="$PG/$DB" TIPG_DB_SCHEMAS='["tessera"]' "$VENV/bin/uvicorn" tipg.main:app --host "$HOST" --port "$tport"
  tipg_pid=$started; s=$(wait_200 "$tipg_pid" "${tipg_items//\{\}/$bbox1}" 120) || die "tipg did not serve (see $OUT/tipg.log)"
  say "tipg pid $tipg_pid: tipg $("$VENV/bin/pip" show tipg 2>/dev/null | awk '/^Version/ {print $2}'), DATABASE_URL=$PG/$DB TIPG_DB_SCHEMAS='[\"tessera\"]' uvicorn tipg.main:app (1 worker), first page after $s s"
  if [ "$DRY" = 0 ]; then  # both must return the same features (an error page is cheaper than a page)
    mism=0
    while read -r bb; do
      a=$(curl -s -m 30 "${tess_items//\{\}/$bb}" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["features"]))' 2>/dev/null || echo err)
      b=$(curl -s -m 30 "${tipg_items//\{\}/$bb}" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["features"]))' 2>/dev/null || echo err)
      [ "$a" = "$b" ] || { mism=$((mism + 1)); echo "bbox $bb: tessera $a, tipg $b" >> "$OUT/items-sanity.txt"; }
    done < <(head -25 "$BBOX_LIST")
    say "sanity: features per page equal for $((25 - mism)) of the first 25 bboxes (differences in $OUT/items-sanity.txt)"
  fi
  targets=("tipg=$(tmpl "$tipg_items")"); [ "$DRY" = 0 ] && targets=("tessera=$(tmpl "$tess_items")" "${targets[@]}")
  run_rounds items "$BBOX_LIST" tipg "${targets[@]}"
  say "peak RSS (VmHWM): tipg $(mib "$(status_kib "$tipg_pid" VmHWM)")"
  stop_one "$tipg_pid"
fi

# ---------------------------------------------------------------- nginx: one replica vs two
if [ "$NGINX" = 1 ]; then
  command -v nginx > /dev/null || die "needs nginx (apt-get install nginx)"
  mkdir -p "$OUT/nginx"
  if [ "$DRY" = 0 ]; then
    b_port=$((PORT + 1))
  else  # no Tessera: two martins stand in for the replicas, to check the proxy set-up
    b_port=$((PORT + 1))
    for p in "$PORT" "$b_port"; do
      sed "s/^listen_addresses: .*/listen_addresses: '$HOST:$p'/" "$OUT/martin.yaml" > "$OUT/martin-$p.yaml"
      start "martin-$p" "$p" "$MARTIN_BIN" --config "$OUT/martin-$p.yaml"
      wait_200 "$started" "http://$HOST:$p/points_pg/$z14" 120 > /dev/null || die "martin on $p did not start"
    done
    tess_tiles="http://$HOST:$PORT/points_pg/{}"
  fi
  if [ "$DRY" = 0 ]; then
    t_start=$(now); start tessera-b "$b_port" "$TESSERA" serve --db "$PG/$DB" --listen "$HOST:$b_port" "${serve_args[@]}"
    s=$(wait_200 "$started" "http://$HOST:$b_port/tiles/$DATASET/0/0/0.mvt") || die "second replica did not serve"
    say "second replica pid $started on port $b_port, same options (first tile after $s s)"
  fi
  sed -e "s#@OUT@#$OUT/nginx#g" -e "s#@A@#$HOST:$PORT#g" -e "s#@B@#$HOST:$b_port#g" \
    -e "s#@ONE@#$HOST:$((PORT + 3))#g" -e "s#@TWO@#$HOST:$((PORT + 4))#g" "$here/postgis/nginx.conf.in" > "$OUT/nginx/nginx.conf"
  start nginx "$((PORT + 3))" nginx -p "$OUT/nginx" -c "$OUT/nginx/nginx.conf" -g 'daemon off;'
  nginx_pid=$started
  one=${tess_tiles/:$PORT/:$((PORT + 3))} two=${tess_tiles/:$PORT/:$((PORT + 4))}
  for u in "$one" "$two"; do
    wait_200 "$nginx_pid" "${u//\{\}/$z14}" 30 > /dev/null || die "nginx did not answer ${u//\{\}/$z14} (see $OUT/nginx.log)"
  done
  say "nginx pid $nginx_pid (bench/postgis/nginx.conf.in: 1 worker, keep-alive upstreams, no proxy cache): :$((PORT + 3)) -> one replica, :$((PORT + 4)) -> both"
  run_rounds nginx-tiles "$TILE_LIST" nginx_one "direct=$tess_tiles" "nginx_one=$one" "nginx_two=$two"
  if [ "$DRY" = 0 ]; then
    run_rounds nginx-items "$BBOX_LIST" nginx_one "direct=$(tmpl "$tess_items")" \
      "nginx_one=$(tmpl "${tess_items/:$PORT/:$((PORT + 3))}")" "nginx_two=$(tmpl "${tess_items/:$PORT/:$((PORT + 4))}")"
  fi
  say "CPU: $(nproc) cores for wrk, nginx, every replica and PostgreSQL together; load1 at the end $(load1)"
fi
[ "$DRY" = 0 ] && [ -n "${tess_pid:-}" ] && say "peak RSS (VmHWM): tessera $(mib "$(status_kib "$tess_pid" VmHWM)")"
stop_all

# ---------------------------------------------------------------- start-up and memory: PostGIS vs SQLite
if [ "$START" = 1 ] && [ "$DRY" = 0 ]; then
  sq=$OUT/$DATASET.db; rm -f "$sq" "$sq-wal" "$sq-shm"
  "$TESSERA" import "$csv" "${import_args[@]}" --db "$sq" > "$OUT/sqlite-import.log" 2>&1 || die "SQLite import failed"
  sp=$((PORT + 7)); : > "$OUT/start.txt"
  say "-- start-up: $START_RUNS runs each, alternating; $TESSERA serve --db (PG/$DB | $sq) --listen $HOST:$sp ${serve_args[*]}"
  for r in $(seq 1 "$START_RUNS"); do
    for kind in postgis sqlite; do
      if [ "$kind" = postgis ]; then db=$PG/$DB; else db=$sq; fi
      t_start=$(now); start "start-$kind-$r" "$sp" "$TESSERA" serve --db "$db" --listen "$HOST:$sp" "${serve_args[@]}"
      s=$(wait_200 "$started" "http://$HOST:$sp/tiles/$DATASET/0/0/0.mvt") || die "$kind server did not serve (run $r)"
      rss=$(status_kib "$started" VmRSS)
      "$SHARED_BENCH/rounds.sh" 1 "$SECS" "$CONNS" "$TILE_LIST" "start_$kind=http://$HOST:$sp/tiles/$DATASET/{}.mvt" \
        | sed "s/round=1/round=$r/" >> "$OUT/start.rounds.txt"
      # GeoJSON pages too: the part of a request that the store answers (points' tiles come from memory)
      "$SHARED_BENCH/rounds.sh" 1 "$SECS" "$CONNS" "$BBOX_LIST" "items_$kind=$(tmpl "http://$HOST:$sp/collections/$DATASET/items?limit=1000&bbox={}")" \
        | sed "s/round=1/round=$r/" >> "$OUT/start.items.txt"
      hwm=$(status_kib "$started" VmHWM)
      echo "$kind $s $rss $hwm" >> "$OUT/start.txt"
      say "   run $r $kind: first tile $s s, RSS after start $(mib "$rss"), peak RSS after $SECS s each of z14-16 tiles and z15 pages $(mib "$hwm"), load1 $(load1)"
      stop_one "$started"
    done
  done
  for kind in postgis sqlite; do
    say "start $kind: first tile median $(awk -v k=$kind '$1 == k {print $2}' "$OUT/start.txt" | median) s, peak RSS median $(mib "$(awk -v k=$kind '$1 == k {print $4}' "$OUT/start.txt" | median)")"
  done
  python3 "$here/postgis/summary.py" "$OUT/start.rounds.txt" start_sqlite | tee -a "$OUT/summary.txt"
  python3 "$here/postgis/summary.py" "$OUT/start.items.txt" items_sqlite | tee -a "$OUT/summary.txt"
  rm -f "$sq" "$sq-wal" "$sq-shm"
fi

# ---------------------------------------------------------------- polygons: Tessera vs ST_AsMVT
if [ "$SHAPES" = 1 ]; then
  DB=$DB PG=$PG OUT=$OUT DRY=$DRY TESSERA=${TESSERA:-} ROUNDS=$ROUNDS SECS=$SECS CONNS=$CONNS WARMUP=$WARMUP PORT=$((PORT + 8)) \
    "$here/postgis/shapes.sh" run || die "the polygon stage failed"
fi
say "load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
