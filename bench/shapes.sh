#!/usr/bin/env bash
# Shape tiles (lines and polygons) before/after a change: two tessera binaries, each with its own
# catalog of the same two datasets (Manhattan roads, 8,451 lines; London boroughs, 33 polygons
# with 186k vertices), served with the tile cache off, wrk over one fixed list of z12-z16 tiles,
# the binaries alternating in every round. Prints the req/s of each run and the median ratio.
# Usage: bench/shapes.sh BIN_BEFORE BIN_AFTER
# Environment: DATA (the shared open-data folder, default ../shared/data from the repo),
#   ROUNDS=3 SECS=10 CONNS=8 WARMUP=3 PORT_BEFORE=8093 PORT_AFTER=8094 OUT=... (results folder)
#   WKB=1 rewrites the AFTER catalog's GeoJSON text into WKB (python3, stdlib) before serving,
#   for a binary that reads WKB but whose importer still writes text.
# Only 127.0.0.1 is used; an EXIT trap stops the servers it started (by PID).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); repo=$(cd "$here/.." && pwd)
[ $# -eq 2 ] || { sed -n '2,12p' "$0" >&2; exit 2; }
BEFORE=$(realpath "$1") AFTER=$(realpath "$2")
DATA=${DATA:-$repo/../shared/data}
ROUNDS=${ROUNDS:-3} SECS=${SECS:-10} CONNS=${CONNS:-8} WARMUP=${WARMUP:-3}
PORT_BEFORE=${PORT_BEFORE:-8093} PORT_AFTER=${PORT_AFTER:-8094} WKB=${WKB:-0}
OUT=${OUT:-$(mktemp -d -t tessera-shapes-XXXXXX)}
HOST=127.0.0.1
for v in ROUNDS SECS CONNS WARMUP PORT_BEFORE PORT_AFTER WKB; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be a number, got '${!v}'" >&2; exit 2; }
done
roads=$DATA/nyc/manhattan_roads.json boroughs=$DATA/neighbourhoods/london.geojson
for f in "$BEFORE" "$AFTER"; do [ -x "$f" ] || { echo "binary '$f' not found" >&2; exit 1; }; done
for f in "$roads" "$boroughs"; do [ -s "$f" ] || { echo "$f missing (set DATA)" >&2; exit 1; }; done
command -v wrk >/dev/null || { echo "wrk missing (apt-get install wrk)" >&2; exit 1; }
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd); summary=$OUT/summary.txt
say() { echo "$*" | tee -a "$summary"; }

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

# The fixed tile list: a 3x3 block at each of z12..z16 around a point of each city.
python3 - "$OUT" <<'EOF'
import math, sys
out = sys.argv[1]
def tile(lon, lat, z):
    n = 2 ** z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return int((lon + 180) / 360 * n), int(y)
for name, lon, lat in [("roads", -73.9712, 40.7831), ("boroughs", -0.1181, 51.5095)]:
    with open(f"{out}/{name}.tiles", "w") as f:
        for z in range(12, 17):
            x, y = tile(lon, lat, z)
            for dx in (-1, 0, 1):
                for dy in (-1, 0, 1):
                    f.write(f"/tiles/{name}/{z}/{x + dx}/{y + dy}.mvt\n")
EOF
cat "$OUT/roads.tiles" "$OUT/boroughs.tiles" > "$OUT/all.tiles"

cat > "$OUT/urls.lua" <<'EOF'
-- Replays the paths of a file (one per line) round-robin; one RESULT line at the end.
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  paths = {}
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  idx, bad = 0, 0
end
function request() idx = idx % #paths + 1; return wrk.format("GET", paths[idx]) end
function response(status) if status ~= 200 and status ~= 204 then bad = bad + 1 end end
function done(summary, latency)
  local n = 0
  for _, t in ipairs(threads) do n = n + t:get("bad") end
  io.write(string.format("RESULT rps=%.1f p50_us=%d p99_us=%d non2xx=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99), n,
    summary.errors.connect + summary.errors.read + summary.errors.timeout))
end
EOF

to_wkb() {  # DB: GeoJSON text in geom columns -> ISO WKB little-endian XY (an independent writer)
  python3 - "$1" <<'EOF'
import json, sqlite3, struct, sys
def coords(cs): return struct.pack("<I", len(cs)) + b"".join(struct.pack("<dd", c[0], c[1]) for c in cs)
def wkb(g):
    t, c = g["type"], g.get("coordinates")
    code = {"Point": 1, "LineString": 2, "Polygon": 3, "MultiPoint": 4, "MultiLineString": 5,
            "MultiPolygon": 6, "GeometryCollection": 7}[t]
    head = struct.pack("<BI", 1, code)
    if t == "Point": return head + struct.pack("<dd", c[0], c[1])
    if t == "LineString": return head + coords(c)
    if t == "Polygon": return head + struct.pack("<I", len(c)) + b"".join(coords(r) for r in c)
    if t == "GeometryCollection":
        return head + struct.pack("<I", len(g["geometries"])) + b"".join(wkb(m) for m in g["geometries"])
    kind = {"MultiPoint": "Point", "MultiLineString": "LineString", "MultiPolygon": "Polygon"}[t]
    return head + struct.pack("<I", len(c)) + b"".join(wkb({"type": kind, "coordinates": m}) for m in c)
db = sqlite3.connect(sys.argv[1])
tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 'f\\_%' ESCAPE '\\'")]
for t in tables:
    rows = db.execute(f"SELECT fid, geom FROM {t} WHERE typeof(geom) = 'text'").fetchall()
    db.executemany(f"UPDATE {t} SET geom = ? WHERE fid = ?", [(wkb(json.loads(g)), f) for f, g in rows])
db.commit()
print(f"rewrote {sum(1 for _ in tables)} tables as WKB")
EOF
}

start() {  # NAME BIN PORT
  local db=$OUT/$1.db
  rm -f "$db"*
  "$2" import --db "$db" --dataset roads --kind lines "$roads" > "$OUT/$1.import.log" 2>&1
  "$2" import --db "$db" --dataset boroughs --kind boundaries "$boroughs" >> "$OUT/$1.import.log" 2>&1
  if [ "$1" = after ] && [ "$WKB" = 1 ]; then to_wkb "$db" | tee -a "$summary"; fi
  "$2" serve --db "$db" --listen "$HOST:$3" --tile-cache-mb 0 > "$OUT/$1.log" 2>&1 &
  pids+=($!)
  local i
  for i in $(seq 1 400); do
    curl -sf -o /dev/null "http://$HOST:$3/collections" && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || { echo "$1 exited (log $OUT/$1.log)" >&2; exit 1; }
    sleep 0.1
  done
  echo "$1 did not start" >&2; exit 1
}
start before "$BEFORE" "$PORT_BEFORE"
start after "$AFTER" "$PORT_AFTER"

# Same tiles from both (the change must not alter them): compare decoded bytes of the list.
same=0 differ=0
while read -r p; do
  a=$(curl -s "http://$HOST:$PORT_BEFORE$p" | sha1sum) b=$(curl -s "http://$HOST:$PORT_AFTER$p" | sha1sum)
  if [ "$a" = "$b" ]; then same=$((same + 1)); else differ=$((differ + 1)); echo "differs: $p" >> "$summary"; fi
done < "$OUT/all.tiles"
say "== shape tiles $(date -Is), load $(cut -d' ' -f1-3 /proc/loadavg); $(wc -l < "$OUT/all.tiles") tiles, identical bytes: $same, different: $differ"

run() {  # NAME PORT SECS
  wrk -t1 -c"$CONNS" -d"$3s" --latency -s "$OUT/urls.lua" "http://$HOST:$2" -- "$OUT/all.tiles" 2>&1 | grep RESULT | sed "s/^/$1 /"
}
if [ "$WARMUP" -gt 0 ]; then run before "$PORT_BEFORE" "$WARMUP" > /dev/null; run after "$PORT_AFTER" "$WARMUP" > /dev/null; fi
for r in $(seq 1 "$ROUNDS"); do
  # Alternate which binary goes first, so a drift in machine load hits both alike.
  if [ $((r % 2)) = 1 ]; then order="before after"; else order="after before"; fi
  for name in $order; do
    port=$PORT_BEFORE; [ "$name" = after ] && port=$PORT_AFTER
    run "$name" "$port" "$SECS" | sed "s/\$/ round=$r load1=$(cut -d' ' -f1 /proc/loadavg)/" | tee -a "$summary"
  done
done
python3 - "$summary" <<'EOF' | tee -a "$summary"
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    m = re.match(r"(before|after) RESULT rps=([\d.]+).* round=(\d+)", line)
    if m: runs.setdefault(int(m[3]), {})[m[1]] = float(m[2])
ratios = [r["after"] / r["before"] for r in runs.values() if len(r) == 2]
med = lambda k: statistics.median(r[k] for r in runs.values())
print(f"median req/s before {med('before'):.0f}, after {med('after'):.0f}; "
      f"median ratio after/before {statistics.median(ratios):.2f} over {len(ratios)} rounds")
EOF
