#!/usr/bin/env bash
# What pictures of map views cost (GET /maps/{id}.png at 1280x800): imports FILE... as
# one dataset with a category, serves it, then runs wrk twice:
#   - uncached: every request a different view (a random quarter of the dataset's extent,
#     so the picture cache cannot answer; the tiles under it may be cached, as in use);
#   - cached: one view over and over (answered from the cache after the first).
# ROUNDS rounds of both, interleaved; prints each run and the medians of req/s, p50 and p99
# over the rounds. Stops the server it started.
#
#   bench/picture.sh [-d SECS] [-c CATEGORY] [-t CONNECTIONS] [-r ROUNDS] FILE...
#   TESSERA_BIN=target/debug/tessera bench/picture.sh data.csv.gz   # default: target/release/tessera
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${TESSERA_BIN:-$root/target/release/tessera}
secs=20
category='Crime type'
conns=2
rounds=3
while getopts "d:c:t:r:" o; do
  case $o in d) secs=$OPTARG ;; c) category=$OPTARG ;; t) conns=$OPTARG ;; r) rounds=$OPTARG ;; *) exit 2 ;; esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { echo "usage: $0 [-d SECS] [-c CATEGORY] [-t CONNECTIONS] [-r ROUNDS] FILE..." >&2; exit 2; }
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
local threads = {}
function setup(thread) counter = counter + 1; thread:set("seed", counter); table.insert(threads, thread) end
function init() math.randomseed(seed * 7919); bad = 0 end
function request()
  local dx, dy = (e - w) / 4, (n - s) / 4
  local x = w + math.random() * (e - w - dx)
  local y = s + math.random() * (n - s - dy)
  local path = string.format("/maps/bench.png?width=1280&height=800&bbox=%.6f,%.6f,%.6f,%.6f", x, y, x + dx, y + dy)
  return wrk.format("GET", path)
end
LUA

cp "$(dirname "$0")/result.lua" "$work/result.lua"
# The views script takes response() and done() from result.lua (its setup/init are its own).
sed -n '/^function response/,$p' "$work/result.lua" >>"$work/views.lua"
one="$base/maps/bench.png?width=1280&height=800&bbox=$w,$s,$e,$n"
curl -sf -o /dev/null "$one"
echo "$rounds rounds of ${secs}s, $conns connections; load: $(uptime)"
for r in $(seq 1 "$rounds"); do
  load=$(cut -d' ' -f1 /proc/loadavg)
  wrk -t "$conns" -c "$conns" -d "${secs}s" --latency -s "$work/views.lua" "$base" | grep RESULT \
    | sed "s/^RESULT/round=$r run=uncached load1=$load/" | tee -a "$work/results.txt"
  wrk -t "$conns" -c "$conns" -d "${secs}s" --latency -s "$work/result.lua" "$one" | grep RESULT \
    | sed "s/^RESULT/round=$r run=cached load1=$load/" | tee -a "$work/results.txt"
done
python3 - "$work/results.txt" <<'PY'
import re, statistics, sys
rows = [dict(re.findall(r"(\w+)=([\w.]+)", l)) for l in open(sys.argv[1])]
med = statistics.median
for run in ("uncached", "cached"):
    rs = [r for r in rows if r["run"] == run]
    print(f"{run}: median {med(float(r['rps']) for r in rs):.1f} req/s, p50 {med(float(r['p50_us']) for r in rs) / 1000:.1f} ms, "
          f"p99 {med(float(r['p99_us']) for r in rs) / 1000:.1f} ms, non-2xx or errors {sum(int(r['non2xx']) + int(r['errors']) for r in rs)}")
PY
echo "load at the end: $(uptime)"
