#!/usr/bin/env bash
# What a burst of map views costs: imports FILE... as one dataset with a category (its
# legend is a GROUP BY over every row), serves it, then fires N simultaneous requests
# for the map page and N for its style, three times: right after the import (cold: the
# first request computes, the others wait for it) and twice warm (served from the
# per-version memo). Prints wall time per burst. Stops the server it started.
#
#   bench/pages.sh [-n 16] [-c 'Crime type'] FILE...
#   TESSERA_BIN=target/debug/tessera bench/pages.sh data.csv.gz   # default: target/release/tessera
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${TESSERA_BIN:-$root/target/release/tessera}
n=16
category='Crime type'
while getopts "n:c:" o; do
  case $o in n) n=$OPTARG ;; c) category=$OPTARG ;; *) exit 2 ;; esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { echo "usage: $0 [-n N] [-c CATEGORY] FILE..." >&2; exit 2; }
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

t0=$(date +%s.%N)
"$bin" import --db "$work/c.db" --dataset bench --category "$category" "$@" >/dev/null
echo "import: $(echo "$(date +%s.%N) - $t0" | bc) s"

"$bin" serve --db "$work/c.db" --no-manifest --listen 127.0.0.1:0 >"$work/log" 2>&1 &
pid=$!
base=""
for _ in $(seq 1 600); do
  base=$(grep -o 'serving on http://[0-9.:]*' "$work/log" | head -1 | sed 's/serving on //') || true
  [ -n "$base" ] && curl -sf "$base/conformance" >/dev/null && break
  sleep 0.2
done
[ -n "$base" ] || { cat "$work/log"; exit 1; }

burst() {
  local t0 t1 curls=()
  t0=$(date +%s.%N)
  for _ in $(seq 1 "$n"); do
    curl -sf -o /dev/null --max-time 120 "$base/maps/bench" & curls+=($!)
    curl -sf -o /dev/null --max-time 120 "$base/styles/bench.json" & curls+=($!)
  done
  wait "${curls[@]}"  # not the server
  t1=$(date +%s.%N)
  echo "$1: $n map pages + $n styles at once: $(echo "$t1 - $t0" | bc) s"
}
# One request alone first would warm the memo; the cold burst is the first thing served.
burst cold
burst warm
burst warm
