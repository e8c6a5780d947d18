#!/usr/bin/env bash
# Basemap tile serving: `tessera serve` with the basemap archive (data/basemap/basemap.pmtiles)
# as its only tileset, tile cache off, wrk replaying a fixed list of basemap tiles a map page
# asks for over the demo cities (z0-3 whole, then 5x5 tiles around each city at z4, z8, z10,
# z12 and z14). ROUNDS rounds; prints each round and the medians of req/s and p99.
# martin is measured on the same archive and list, interleaved, with its tile cache off
# too, when MARTIN_BIN exists (`cargo install martin`, or ../shared/bench/peers-install.sh
# --with-martin); then each round also prints the ratio tessera/martin of req/s.
#
# Usage: bench/basemap.sh TESSERA_BIN [ARCHIVE]
# Environment (optional): ROUNDS=3 SECS=10 CONNS=8 PORT=8095 MARTIN_PORT=3015
#   MARTIN_BIN (default: martin on PATH, else ~/.cargo/bin/martin)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 1 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
BIN=$1
ARCHIVE=$(realpath "${2:-$repo/data/basemap/basemap.pmtiles}")
ROUNDS=${ROUNDS:-3} SECS=${SECS:-10} CONNS=${CONNS:-8} PORT=${PORT:-8095}
MARTIN_BIN=${MARTIN_BIN:-$(command -v martin || echo "$HOME/.cargo/bin/martin")} MARTIN_PORT=${MARTIN_PORT:-3015}
command -v wrk >/dev/null || { echo "wrk missing (apt-get install wrk)" >&2; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# The tile list: tile paths without the tileset prefix.
python3 - "$work/tiles.txt" <<'PY'
import math, sys
cities = [(-73.985, 40.758), (-122.418, 37.778), (-93.265, 44.975), (-87.63, 41.88), (-2.59, 51.45)]
def tile(lon, lat, z):
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y
with open(sys.argv[1], "w") as f:
    for z in range(4):
        for x in range(2 ** z):
            for y in range(2 ** z):
                f.write(f"{z}/{x}/{y}\n")
    for z in (4, 8, 10, 12, 14):
        for lon, lat in cities:
            x, y = tile(lon, lat, z)
            for dx in range(-2, 3):
                for dy in range(-2, 3):
                    f.write(f"{z}/{x + dx}/{y + dy}\n")
PY
cat > "$work/urls.lua" <<'EOF_LUA'
-- Replays PREFIX..path for each line of a file, round-robin; one RESULT line at the end.
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  paths = {}
  for line in io.lines(args[1]) do paths[#paths + 1] = args[2] .. line .. args[3] end
  idx, bad = 0, 0
end
function request() idx = idx % #paths + 1; return wrk.format("GET", paths[idx], {["Accept-Encoding"] = "gzip"}) end
function response(status) if status ~= 200 and status ~= 204 then bad = bad + 1 end end
function done(summary, latency)
  local n = 0
  for _, t in ipairs(threads) do n = n + t:get("bad") end
  io.write(string.format("RESULT rps=%.1f p50_us=%d p99_us=%d non2xx=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99), n,
    summary.errors.connect + summary.errors.read + summary.errors.timeout))
end
EOF_LUA

wait_up() { for _ in $(seq 1 100); do curl -sf -o /dev/null "$1" && return 0; sleep 0.2; done; echo "server at $1 did not start" >&2; exit 1; }

mkdir "$work/tiles"
ln -s "$ARCHIVE" "$work/tiles/basemap.pmtiles"
# --tiles (not --basemap) so older binaries can be compared too; the archive id is the same.
"$BIN" serve --no-manifest --db "$work/empty.db" --listen "127.0.0.1:$PORT" --tiles "$work/tiles" \
  --tile-cache-mb 0 >"$work/tessera.log" 2>&1 &
pids+=($!)
wait_up "http://127.0.0.1:$PORT/tiles/basemap"
servers=("tessera $PORT /tiles/basemap/ .mvt")
if [ -x "$MARTIN_BIN" ]; then
  # Cache off (-C 0), as Tessera's above: both read the archive for every tile.
  "$MARTIN_BIN" --listen-addresses "127.0.0.1:$MARTIN_PORT" -C 0 "$ARCHIVE" >"$work/martin.log" 2>&1 &
  pids+=($!)
  wait_up "http://127.0.0.1:$MARTIN_PORT/basemap"
  servers+=("martin $MARTIN_PORT /basemap/ ")
else
  echo "notice: no martin at $MARTIN_BIN; tessera only"
fi
echo "$(wc -l <"$work/tiles.txt") tiles, $ROUNDS rounds of ${SECS}s, $CONNS connections; load: $(uptime)"
for round in $(seq 1 "$ROUNDS"); do
  for s in "${servers[@]}"; do
    read -r name port prefix suffix <<<"$s"
    wrk -t1 -c"$CONNS" -d"${SECS}s" --latency -s "$work/urls.lua" "http://127.0.0.1:$port" \
      -- "$work/tiles.txt" "$prefix" "${suffix:-}" 2>&1 | grep RESULT \
      | sed "s/^/round $round $name load1=$(cut -d' ' -f1 /proc/loadavg) /" | tee -a "$work/results.txt"
  done
done
for s in "${servers[@]}"; do
  read -r name _ <<<"$s"
  grep " $name " "$work/results.txt" | python3 -c '
import re, statistics, sys
rows = [dict(re.findall(r"(\w+)=([\d.]+)", l)) for l in sys.stdin]
print(sys.argv[1], "median rps=%.0f p99_ms=%.2f" % (statistics.median(float(r["rps"]) for r in rows),
      statistics.median(float(r["p99_us"]) for r in rows) / 1000))' "$name"
done
if [ "${#servers[@]}" -gt 1 ]; then
  python3 - "$work/results.txt" <<'PY'
import re, statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
rps = {(r[1], r[2]): float(dict(re.findall(r"(\w+)=([\d.]+)", " ".join(r)))["rps"]) for r in rows}
ratios = [rps[(k, "tessera")] / rps[(k, "martin")] for k in sorted({k for k, _ in rps}) if (k, "martin") in rps]
print("tessera/martin req/s: median %.2fx (rounds: %s)" % (statistics.median(ratios), ", ".join("%.2f" % x for x in ratios)))
PY
fi
echo "load at the end: $(uptime)"
