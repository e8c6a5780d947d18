#!/usr/bin/env bash
# What pictures of map views cost (GET /maps/{id}.png at 1280x800): imports FILE... as
# one dataset with a category, serves it, then runs wrk twice:
#   - uncached: every request a different view (a random quarter of the dataset's extent,
#     so the picture cache cannot answer; the tiles under it may be cached, as in use);
#   - cached: one view over and over (answered from the cache after the first).
# Prints wrk's requests/s and latency percentiles. Stops the server it started.
#
#   bench/picture.sh [-d SECS] [-c CATEGORY] [-t CONNECTIONS] FILE...
#   TESSERA_BIN=target/debug/tessera bench/picture.sh data.csv.gz   # default: target/release/tessera
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${TESSERA_BIN:-$root/target/release/tessera}
secs=20
category='Crime type'
conns=2
while getopts "d:c:t:" o; do
  case $o in d) secs=$OPTARG ;; c) category=$OPTARG ;; t) conns=$OPTARG ;; *) exit 2 ;; esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { echo "usage: $0 [-d SECS] [-c CATEGORY] [-t CONNECTIONS] FILE..." >&2; exit 2; }
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 2; }
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$bin" import --db "$work/c.db" --dataset bench --category "$category" "$@" >/dev/null
"$bin" serve --db "$work/c.db" --no-manifest --listen 127.0.0.1:0 >"$work/log" 2>&1 &
pid=$!
base=""
for _ in $(seq 1 600); do
  base=$(grep -o 'serving on http://[0-9.:]*' "$work/log" | head -1 | sed 's/serving on //') || true
  [ -n "$base" ] && curl -sf "$base/conformance" >/dev/null && break
  sleep 0.2
done
[ -n "$base" ] || { cat "$work/log"; exit 1; }

# The dataset's extent, for the random views.
read -r w s e n < <(curl -sf "$base/collections/bench" | python3 -c '
import json, sys
b = json.load(sys.stdin)["extent"]["spatial"]["bbox"][0]
print(*b[:4])')
# One picture first: builds the point index, so neither run measures that.
curl -sf -o /dev/null --max-time 300 "$base/maps/bench.png?width=1280&height=800"

cat >"$work/views.lua" <<LUA
local w, s, e, n = $w, $s, $e, $n
local counter = 0
function setup(thread) counter = counter + 1; thread:set("seed", counter) end
function init() math.randomseed(seed * 7919) end
function request()
  local dx, dy = (e - w) / 4, (n - s) / 4
  local x = w + math.random() * (e - w - dx)
  local y = s + math.random() * (n - s - dy)
  local path = string.format("/maps/bench.png?width=1280&height=800&bbox=%.6f,%.6f,%.6f,%.6f", x, y, x + dx, y + dy)
  return wrk.format("GET", path)
end
LUA

echo "== uncached: a different 1280x800 view each request ($conns connections, ${secs}s)"
wrk -t "$conns" -c "$conns" -d "${secs}s" --latency -s "$work/views.lua" "$base" | grep -E 'Requests/sec|Latency|50%|90%|99%|Non-2xx'
one="$base/maps/bench.png?width=1280&height=800&bbox=$w,$s,$e,$n"
curl -sf -o /dev/null "$one"
echo "== cached: one 1280x800 view over and over ($conns connections, ${secs}s)"
wrk -t "$conns" -c "$conns" -d "${secs}s" --latency "$one" | grep -E 'Requests/sec|Latency|50%|90%|99%|Non-2xx'
