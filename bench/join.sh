#!/usr/bin/env bash
# Counts by area of a dataset joined by attribute (the demo's Chicago crimes 2022: 215,551
# rows without positions, joined to the 77 community areas by number): one Tessera build
# against another (e.g. the build before a change), each serving the demo manifest from
# its own catalog, in interleaved wrk rounds over three requests: a month, a month and a
# crime type, and no filter. Prints each run, then per request the medians of req/s and
# p99 and the median ratio NEW/BASE of req/s.
#
# Usage: bench/join.sh NEW_BIN BASE_BIN
# Environment (optional): ROUNDS=3 SECS=10 CONNS=4 PORT=8097 (BASE on PORT+1)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
[ $# -eq 2 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
NEW=$1 BASE=$2
ROUNDS=${ROUNDS:-3} SECS=${SECS:-10} CONNS=${CONNS:-4} PORT=${PORT:-8097}
command -v wrk >/dev/null || { echo "wrk missing (apt-get install wrk)" >&2; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

cp "$(dirname "$0")/result.lua" "$work/result.lua"

servers=("new $NEW $PORT" "base $BASE $((PORT + 1))")
for s in "${servers[@]}"; do
  read -r name bin port <<< "$s"
  "$bin" serve --db "$work/$name.db" --manifest "$repo/data/tessera.toml" --listen "127.0.0.1:$port" \
    > "$work/$name.log" 2>&1 &
  pids+=($!)
done
# The first start imports the demo datasets; wait until both serve the joined one.
for s in "${servers[@]}"; do
  read -r name _ port <<< "$s"
  for _ in $(seq 1 600); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/collections/chicago-crimes-2022" && break
    sleep 0.5
  done
  curl -sf -o /dev/null "http://127.0.0.1:$port/collections/chicago-crimes-2022" \
    || { echo "$name did not start:"; tail "$work/$name.log"; exit 1; }
done

path=/collections/chicago-crimes-2022/aggregate?by=chicago-community-areas
queries=("month $path&datetime=2022-06" "month+type $path&datetime=2022-06&Primary%20Type=THEFT" "all $path")
# Same answers from both builds, and a first request each (builds any per-version state).
for q in "${queries[@]}"; do
  read -r label url <<< "$q"
  for s in "${servers[@]}"; do
    read -r name _ port <<< "$s"
    secs=$(curl -sf -o "$work/$name-$label.json" -w '%{time_total}' "http://127.0.0.1:$port$url")
    echo "$label: $name first request $secs s"
  done
  cmp -s "$work/new-$label.json" "$work/base-$label.json" \
    || { echo "$label: the two builds answer differently" >&2; exit 1; }
done
echo "$ROUNDS rounds of ${SECS}s, $CONNS connections; load: $(uptime)"
for r in $(seq 1 "$ROUNDS"); do
  for q in "${queries[@]}"; do
    read -r label url <<< "$q"
    for s in "${servers[@]}"; do
      read -r name _ port <<< "$s"
      wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$work/result.lua" "http://127.0.0.1:$port$url" \
        | grep RESULT | sed "s/^RESULT/round=$r query=$label build=$name load1=$(cut -d' ' -f1 /proc/loadavg)/" \
        | tee -a "$work/results.txt"
    done
  done
done
python3 - "$work/results.txt" <<'PY'
import re, statistics, sys
rows = [dict(re.findall(r"(\w+)=([\w.+]+)", l)) for l in open(sys.argv[1])]
med = statistics.median
for q in dict.fromkeys(r["query"] for r in rows):
    pick = lambda b: {r["round"]: r for r in rows if r["query"] == q and r["build"] == b}
    new, base = pick("new"), pick("base")
    ratios = [float(new[k]["rps"]) / float(base[k]["rps"]) for k in new]
    line = lambda rs: (f"{med(float(r['rps']) for r in rs.values()):.0f} req/s, "
                       f"p99 {med(float(r['p99_us']) for r in rs.values()) / 1000:.1f} ms")
    print(f"{q}: new {line(new)}; base {line(base)}; new/base {med(ratios):.1f}x "
          f"(rounds: {', '.join(f'{x:.1f}' for x in ratios)})")
PY
echo "load at the end: $(uptime)"
