#!/usr/bin/env bash
# Polygon tiles on PostGIS (issue 10, Build item 3): is Tessera's own clip + encode of the
# geometries it reads from PostGIS faster than PostGIS's ST_AsMVT(ST_AsMVTGeom(...))?
# Same table, same tiles, same connection count: Tessera's tile endpoint under wrk (tile cache
# off, no Accept-Encoding: ST_AsMVT does not compress either) against pgbench running the
# ST_AsMVT query of postgis/asmvt.sql over the tiles of table bench_tiles.
#   chicago  the 77 Chicago community areas (data/chicago/community-areas.geojson.gz)
#   london   the 33 London boroughs, 186k vertices (../shared/data/neighbourhoods/london.geojson)
# Tiles: up to TILES_PER_ZOOM (150) tiles of each of z10-z16 that touch a polygon, seeded order.
# Called by bench/postgis.sh: `shapes.sh load` (imports both, writes bench_tiles), then
# `shapes.sh run` (rounds). Environment: DB PG OUT DRY TESSERA ROUNDS SECS CONNS WARMUP PORT.
# The pgbench side includes no HTTP and no tile cache lookup; Tessera's includes both.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); repo=$(cd "$here/../.." && pwd)
HOST=127.0.0.1 ROUNDS=${ROUNDS:-3} SECS=${SECS:-15} CONNS=${CONNS:-8} PORT=${PORT:-8188}
TILES_PER_ZOOM=${TILES_PER_ZOOM:-150}
shared=$repo/../shared; [ -d "$shared" ] || shared=$repo/../../shared
source "$here/lib.sh"
sets=("chicago $repo/data/chicago/community-areas.geojson.gz"
      "london ${LONDON:-$shared/data/neighbourhoods/london.geojson}")

table_of() {  # DATASET_ID -> tessera.f_<gen>
  local gen; gen=$(psql_ "$DB" -Atc "SELECT gen FROM tessera.datasets WHERE id = '$1'")
  [[ $gen =~ ^[0-9]+$ ]] || die "no dataset $1 in $DB"
  echo "tessera.f_$gen"
}

# dry_shapes ID FILE: the polygons in Tessera's layout without Tessera (for DRY=1), c0 = name.
dry_shapes() {
  local gen; gen=$(psql_ "$DB" -Atc "SELECT coalesce(max(gen), 0) + 1 FROM tessera.datasets")
  python3 - "$2" "$1" "$gen" <<'PY' | psql_ "$DB" > /dev/null
import gzip, json, sys
path, ds, gen = sys.argv[1], sys.argv[2], int(sys.argv[3])
fc = json.load(gzip.open(path, "rt") if path.endswith(".gz") else open(path))
q = lambda s: "'" + str(s).replace("'", "''") + "'"
print(f"CREATE TABLE tessera.f_{gen} (fid bigint PRIMARY KEY, src text, minx float8, miny float8, maxx float8,"
      f" maxy float8, geom geometry(Geometry, 4326), t0 bigint, t1 bigint, c0 text);")
for i, f in enumerate(fc["features"], 1):
    name = next((v for k, v in f["properties"].items() if k.lower() in ("name", "community", "pri_neigh")), i)
    print(f"INSERT INTO tessera.f_{gen} (fid, src, geom, c0) VALUES ({i}, {q(path)},"
          f" ST_SetSRID(ST_GeomFromGeoJSON({q(json.dumps(f['geometry']))}), 4326), {q(name)});")
print(f"UPDATE tessera.f_{gen} SET minx = ST_XMin(geom), miny = ST_YMin(geom), maxx = ST_XMax(geom), maxy = ST_YMax(geom);")
print(f"CREATE INDEX ON tessera.f_{gen} USING gist (geom); ANALYZE tessera.f_{gen};")
print(f"INSERT INTO tessera.datasets VALUES ({q(ds)}, {gen}, 1, '{{\"dry_run\": true}}');")
PY
}

load() {
  for s in "${sets[@]}"; do
    read -r name file <<< "$s"
    [ -s "$file" ] || die "$file missing"
    if [ "$DRY" = 1 ]; then dry_shapes "$name-areas" "$file"
    else "$TESSERA" import "$file" --dataset "$name-areas" --kind boundaries --db "$PG/$DB" > "$OUT/$name-areas.import.log" 2>&1 \
      || die "import of $file failed ($OUT/$name-areas.import.log)"; fi
  done
  psql_ "$DB" -c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS bench_tiles" \
    -c "CREATE TABLE bench_tiles (i serial PRIMARY KEY, ds text NOT NULL, z int NOT NULL, x int NOT NULL, y int NOT NULL)"
  for s in "${sets[@]}"; do
    read -r name _ <<< "$s"
    # Every tile of z10-16 over the table's extent that touches a polygon; TILES_PER_ZOOM of each
    # zoom in md5 order (a fixed shuffle), the zooms mixed the same way.
    psql_ "$DB" -v ds="$name" -v n="$TILES_PER_ZOOM" <<SQL
INSERT INTO bench_tiles (ds, z, x, y)
SELECT :'ds', z, x, y FROM (
  SELECT z, x, y, row_number() OVER (PARTITION BY z ORDER BY md5(z || '/' || x || '/' || y)) AS k
  FROM (SELECT ST_Extent(geom) AS b FROM $(table_of "$name-areas")) e,
       generate_series(10, 16) AS z,
       generate_series(floor((ST_XMin(b) + 180) / 360 * 2 ^ z)::int, floor((ST_XMax(b) + 180) / 360 * 2 ^ z)::int) AS x,
       generate_series(floor((1 - asinh(tan(radians(ST_YMax(b)))) / pi()) / 2 * 2 ^ z)::int,
                       floor((1 - asinh(tan(radians(ST_YMin(b)))) / pi()) / 2 * 2 ^ z)::int) AS y
  WHERE EXISTS (SELECT 1 FROM $(table_of "$name-areas") f
                WHERE ST_Intersects(f.geom, ST_Transform(ST_TileEnvelope(z, x, y), 4326)))
) t WHERE k <= :n ORDER BY md5(z || '/' || x || '/' || y);
SQL
  done
  say "polygon tiles: $(psql_ "$DB" -Atc "SELECT string_agg(ds || ' ' || n, ', ') FROM (SELECT ds, count(*) n FROM bench_tiles GROUP BY ds) c") (z10-16, up to $TILES_PER_ZOOM a zoom, touching a polygon)"
}

run() {
  cp "$here/../result.lua" "$OUT/result.lua"
  { cat <<'LUA'
-- Replays args[2]..line..args[3] for each line of file args[1], round-robin, with no
-- Accept-Encoding (tiles uncompressed, like ST_AsMVT's); 204 (an empty tile) is a success.
function init(args)
  paths = {}
  for line in io.lines(args[1]) do paths[#paths + 1] = args[2] .. line .. args[3] end
  idx, bad = 0, 0
end
function request() idx = idx % #paths + 1; return wrk.format("GET", paths[idx]) end
function response(status) if status ~= 200 and status ~= 204 then bad = bad + 1 end end
LUA
    sed -e '/^function response/d' -e '/^function init/d' "$OUT/result.lua"; } > "$OUT/shape-tiles.lua"
  local pid="" name lo hi cols table r l
  if [ "$DRY" = 0 ]; then
    t_start=$(now); start shapes-tessera "$PORT" "$TESSERA" serve --db "$PG/$DB" --listen "$HOST:$PORT" --no-manifest --tile-cache-mb 0
    pid=$started; wait_200 "$pid" "http://$HOST:$PORT/tiles/chicago-areas" 300 > /dev/null || die "shape server did not start"
  fi
  for s in "${sets[@]}"; do
    read -r name _ <<< "$s"
    psql_ "$DB" -Atc "SELECT z || '/' || x || '/' || y FROM bench_tiles WHERE ds = '$name' ORDER BY i" > "$OUT/$name.tiles"
    read -r lo hi < <(psql_ "$DB" -AtF' ' -c "SELECT min(i), max(i) FROM bench_tiles WHERE ds = '$name'")
    table=$(table_of "$name-areas")
    cols=$(psql_ "$DB" -Atc "SELECT string_agg('f.' || column_name, ', ' ORDER BY ordinal_position) FROM information_schema.columns
      WHERE table_schema = 'tessera' AND table_name = '${table#tessera.}' AND column_name ~ '^c[0-9]+$'")
    if [ -n "$cols" ]; then cols="s/@COLS@/$cols/"; else cols='s/, @COLS@//'; fi
    sed -e "s/@TABLE@/$table/" -e "$cols" -e "s/@LAYER@/$name-areas/" "$here/asmvt.sql" > "$OUT/$name.asmvt.sql"
    say "$name: tiles $lo-$hi of bench_tiles, table $table, pgbench script $OUT/$name.asmvt.sql"
    if [ "$DRY" = 0 ]; then  # the same tiles? sizes and feature counts of a few, by both
      while read -r i t; do
        a=$(curl -s -o /dev/null -w '%{http_code}, %{size_download} bytes' "http://$HOST:$PORT/tiles/$name-areas/$t.mvt")
        # timeout: `tessera tile` on PostgreSQL has been seen to hang on a large shape (a fresh
        # connection's type lookup queued behind the rows, as it seemed); a sanity check must not.
        n=$(timeout 30 "$TESSERA" tile "$name-areas" "$t" --db "$PG/$DB" 2>/dev/null | grep -o '[0-9]* features' | head -1 || true)
        q=$(sed -e '/^\\set/d' -e '/^--/d' -e "s/:i\b/$i/" "$OUT/$name.asmvt.sql" | tr '\n' ' ')
        b=$(psql_ "$DB" -Atc "SELECT length(m) FROM (${q%;*}) AS r(m)")
        say "   sanity $name $t: tessera $a, ${n:-0 features}; ST_AsMVT $b bytes"
      done < <(psql_ "$DB" -AtF' ' -c "SELECT i, z || '/' || x || '/' || y FROM bench_tiles WHERE ds = '$name' ORDER BY i LIMIT 3")
    fi
  done
  for r in $(seq 0 "$ROUNDS"); do  # round 0: a discarded warm-up of WARMUP seconds
    secs=$SECS; [ "$r" = 0 ] && secs=${WARMUP:-5}
    [ "$secs" -gt 0 ] || continue
    for s in "${sets[@]}"; do
      read -r name _ <<< "$s"
      read -r lo hi < <(psql_ "$DB" -AtF' ' -c "SELECT min(i), max(i) FROM bench_tiles WHERE ds = '$name'")
      if [ "$DRY" = 0 ]; then
        l=$(load1)
        wrk -t1 -c"$CONNS" -d"${secs}s" --latency -s "$OUT/shape-tiles.lua" "http://$HOST:$PORT" -- "$OUT/$name.tiles" "/tiles/$name-areas/" ".mvt" \
          | grep RESULT | sed "s/^RESULT/RESULT label=${name}_tessera round=$r load1=$l/" | tee -a "$OUT/shapes.rounds.txt"
      fi
      l=$(load1); rm -f "$OUT"/pgb."$name".*
      (cd "$OUT" && pgbench -n -M prepared -c "$CONNS" -j 1 -T "$secs" -D lo="$lo" -D hi="$hi" -l --log-prefix="pgb.$name" \
        -f "$OUT/$name.asmvt.sql" "$PG/$DB") > "$OUT/pgbench.$name.$r.txt" 2>&1 || { cat "$OUT/pgbench.$name.$r.txt" >&2; die "pgbench failed"; }
      python3 "$here/summary.py" --pgbench "${name}_asmvt" "$r" "$OUT/pgbench.$name.$r.txt" "$OUT"/pgb."$name".* \
        | sed "s/\$/ load1=$l/" | tee -a "$OUT/shapes.rounds.txt"
      rm -f "$OUT"/pgb."$name".*
    done
  done
  say "-- polygon tiles: $ROUNDS rounds x $SECS s x $CONNS connections; <set>_tessera = GET /tiles/<set>-areas/{z}/{x}/{y}.mvt (wrk, no gzip, cache off), <set>_asmvt = pgbench -M prepared over the same tiles"
  for s in "${sets[@]}"; do
    read -r name _ <<< "$s"
    grep "label=${name}_" "$OUT/shapes.rounds.txt" | grep -v ' round=0 ' > "$OUT/shapes.$name.txt"
    python3 "$here/summary.py" "$OUT/shapes.$name.txt" "${name}_asmvt" | tee -a "$OUT/summary.txt"
  done
  [ -n "$pid" ] && say "peak RSS (VmHWM): shape server $(mib "$(status_kib "$pid" VmHWM)")"
  stop_all
}

case "${1:-}" in
  load) load ;;
  run) trap stop_all EXIT; run ;;
  *) sed -n '2,13p' "$0" >&2; exit 2 ;;
esac
