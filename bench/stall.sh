#!/usr/bin/env bash
# Tile p99 with and without slow CSV readers (issue 8: 16 clients that opened items?f=csv
# and never read used to stop every database-backed route).
#
# usage: bench/stall.sh [UK_CRIME_DIR [TESSERA_BIN]]
#   UK_CRIME_DIR  the data.police.uk monthly *.csv.gz (default ../shared/data/uk_police_street_crime)
#   TESSERA_BIN   default target/release/tessera (cargo build --release)
# env: ROUNDS=3 SECS=10 CONNS=8 SLOW=20 GREEDY=4 PORT=18480
#      EXPORT='/collections/uk-crime/items?f=csv&bbox=-3.0,51.2,-2.3,51.6'  (what each slow
#      reader asks: 42k rows, 11.6 MB, far more than socket buffers hold)
# Needs wrk, curl, python3 (apt-get install wrk curl python3).
#
# Each round runs wrk over a fixed, shuffled list of z10-z15 tiles of the data, first with no
# other clients, then while SLOW clients hold an export each without reading, then while GREEDY
# clients download the whole dataset as CSV over and over at full speed. Prints one line per
# run and the medians of the rounds: p99 alone, with slow readers, with greedy exports, and
# the ratios. Stops everything it started.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
data=${1:-$repo/../shared/data/uk_police_street_crime}
bin=${2:-$repo/target/release/tessera}
rounds=${ROUNDS:-3} secs=${SECS:-10} conns=${CONNS:-8} slow=${SLOW:-20} port=${PORT:-18480}
export_path=${EXPORT:-/collections/uk-crime/items?f=csv&bbox=-3.0,51.2,-2.3,51.6}
greedy=${GREEDY:-4}
for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "stall.sh: $tool is missing (apt-get install $tool)" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "stall.sh: no $bin (cargo build --release)" >&2; exit 1; }
ls "$data"/*.csv.gz >/dev/null || { echo "stall.sh: no *.csv.gz in $data" >&2; exit 1; }

work=$(mktemp -d)
server='' readers='' greedy_pids=''
stop_greedy() {
  for p in $greedy_pids; do kill -- "-$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  greedy_pids=''
}
cleanup() {
  [ -n "$readers" ] && kill "$readers" 2>/dev/null || true
  stop_greedy
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "importing $(ls "$data"/*.csv.gz | wc -l) files of $data"
start=$(date +%s)
"$bin" import --db "$work/catalog.db" --dataset uk-crime --category 'Crime type' \
  --title 'UK street crime' --attribution 'data.police.uk' --licence 'OGL-UK-3.0' \
  "$data"/*.csv.gz | head -1
echo "import took $(( $(date +%s) - start )) s"

# Tiles around 4,000 points of the data, z10-z15, deduplicated and shuffled (fixed seed).
python3 - "$data" > "$work/tiles.txt" <<'EOF'
import csv, glob, gzip, math, random, sys
rng = random.Random(8)
f = sorted(glob.glob(sys.argv[1] + "/*.csv.gz"))[0]
pts = []
with gzip.open(f, "rt", encoding="utf-8", errors="replace") as fh:
    for i, row in enumerate(csv.DictReader(fh)):
        if i % 50 == 0 and row.get("Longitude") and row.get("Latitude"):
            pts.append((float(row["Longitude"]), float(row["Latitude"])))
        if len(pts) >= 4000:
            break
tiles = set()
for lon, lat in pts:
    z = rng.randint(10, 15)
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    r = math.radians(lat)
    y = int((1 - math.log(math.tan(r) + 1 / math.cos(r)) / math.pi) / 2 * n)
    tiles.add(f"/tiles/uk-crime/{z}/{x}/{y}.mvt")
tiles = sorted(tiles)
rng.shuffle(tiles)
print("\n".join(tiles))
EOF
echo "$(wc -l < "$work/tiles.txt") tile paths"

cat > "$work/paths.lua" <<'EOF'
-- Cycles through the paths of a file; counts answers other than 200/204.
local threads = {}
function setup(t) table.insert(threads, t) end
function init(args)
  paths = {}
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  i, bad = math.random(#paths), 0
end
function request() i = i % #paths + 1; return wrk.format("GET", paths[i]) end
function response(status) if status ~= 200 and status ~= 204 then bad = bad + 1 end end
function done(summary, latency)
  local b = 0
  for _, t in ipairs(threads) do b = b + t:get("bad") end
  io.write(string.format("RESULT requests=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.1f non2xx=%d errors=%d\n",
    summary.requests, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3, b,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
EOF

# Tile cache off: every tile is drawn on a blocking thread, the resource slow readers used to take.
"$bin" serve --db "$work/catalog.db" --no-manifest --listen "127.0.0.1:$port" --tile-cache-mb 0 2> "$work/serve.log" &
server=$!
for _ in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$port/collections/uk-crime" >/dev/null && break
  sleep 0.2
done
base="http://127.0.0.1:$port"
run() {
  wrk -t2 -c"$conns" -d"${1}s" --latency -s "$work/paths.lua" "$base" -- "$work/tiles.txt" | grep RESULT
}
# Warm-up: the point index and the page cache, so round 1 is like the others.
run 5 > /dev/null

p99() { sed -E 's/.*p99_ms=([0-9.]+).*/\1/'; }
without=() with=() busy=()
for r in $(seq 1 "$rounds"); do
  a=$(run "$secs"); echo "round $r alone: $a"
  python3 "$repo/bench/slow_readers.py" 127.0.0.1 "$port" "$export_path" "$slow" 3600 > "$work/readers.out" &
  readers=$!
  for _ in $(seq 1 3000); do grep -q READY "$work/readers.out" 2>/dev/null && break; kill -0 "$readers" || break; sleep 0.1; done
  grep -q READY "$work/readers.out" || { echo "slow readers failed" >&2; exit 1; }
  b=$(run "$secs"); echo "round $r with $slow slow readers ($(cat "$work/readers.out")): $b"
  kill "$readers"; wait "$readers" 2>/dev/null || true; readers=''
  greedy_pids='' ; : > "$work/greedy.out"
  for _ in $(seq 1 "$greedy"); do
    # Own process group each (setsid), so the kill below also stops the curl in flight.
    setsid timeout $((secs + 5)) bash -c "while :; do curl -s -o /dev/null --max-time 60 -w '%{http_code}\n' '$base/collections/uk-crime/items?f=csv'; done" >> "$work/greedy.out" &
    greedy_pids="$greedy_pids $!"
  done
  c=$(run "$secs"); echo "round $r with $greedy greedy full exports ($(sort "$work/greedy.out" | uniq -c | tr -s ' \n' ' ')): $c"
  stop_greedy
  without+=("$(echo "$a" | p99)") with+=("$(echo "$b" | p99)") busy+=("$(echo "$c" | p99)")
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b / a}'; }
m0=$(median "${without[@]}") m1=$(median "${with[@]}") m2=$(median "${busy[@]}")
echo "MEDIAN of $rounds rounds, tile p99: ${m0} ms alone; ${m1} ms with $slow slow CSV readers (ratio $(ratio "$m0" "$m1")); ${m2} ms with $greedy greedy full exports (ratio $(ratio "$m0" "$m2"))"
