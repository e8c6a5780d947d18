#!/usr/bin/env bash
# Scale benchmark (issue 9): how import and serving grow from 1.39M to N points (default 20M).
# Three datasets, each in its own catalog and served by its own `tessera serve` (tile cache off):
#   uk     the UK crime points (BENCH_DATA/points.csv, 1,394,792 rows, --time month)
#   syn1m  gen_points.py 1394792 (seed 42): the synthetic NYC-like set at UK crime's size
#   synN   gen_points.py N       (seed 42): the same distribution, N points
# syn1m -> synN is the clean growth ratio (same generator, same tile lists); uk -> synN adds the change
# from sparse national data to a dense city.
# For each: import wall time and peak RSS (/usr/bin/time -v), catalog size, start -> first 200 on
# /tiles/points/0/0/0.mvt (the point index is built at start-up), RSS after start, peak RSS (VmHWM) after
# the rounds; then interleaved wrk rounds (rounds.sh, one round of each server in turn) over a z14-16 list and
# a low-zoom (z0-13, clusters) list: req/s and p99, and 3 single requests of 0/0/0.
# Lists: uk uses prepare.py's tiles_z14_16.txt and tiles_low.txt; both synthetic sets use lists made the same
# way (every non-empty z14 and z15 tile + 3,000 z16 tiles; every non-empty z0-10 tile + 500 each of z11-13)
# from syn1m's points, so every listed tile holds data in both.
# The generated CSVs are kept in BENCH_DATA (synN is about 46 bytes a row) and reused when present.
#
# Usage: bench/scale.sh TESSERA_BIN [N] [BENCH_DATA]
# Environment (all optional):
#   ROUNDS=3 SECS=15 CONNS=8 WARMUP=5   IMPORT_RUNS=1 (runs per dataset; the median is quoted)
#   PORT=8095 (the servers use PORT, PORT+1, PORT+2)   VENV=/opt/tessera-peers (python with numpy)
#   SHARED_BENCH=<repo>/../shared/bench   OUT=<BENCH_DATA>/scale-<timestamp>   KEEP_DB=0 (1 keeps the catalogs)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

[ $# -ge 1 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
TESSERA_SRC=$1 N=${2:-20000000}
BENCH_DATA=$(cd "${3:-${BENCH_DATA:-$repo/../bench-data}}" && pwd)
ROUNDS=${ROUNDS:-3} SECS=${SECS:-15} CONNS=${CONNS:-8} WARMUP=${WARMUP:-5} IMPORT_RUNS=${IMPORT_RUNS:-1}
PORT=${PORT:-8095} VENV=${VENV:-/opt/tessera-peers} SHARED_BENCH=${SHARED_BENCH:-$repo/../shared/bench} KEEP_DB=${KEEP_DB:-0}
OUT=${OUT:-$BENCH_DATA/scale-$(date +%Y%m%d-%H%M%S)}
HOST=127.0.0.1 SMALL=1394792
for v in N ROUNDS SECS CONNS WARMUP IMPORT_RUNS PORT KEEP_DB; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be a number" >&2; exit 2; }
done
[ -x "$TESSERA_SRC" ] || { echo "tessera binary '$TESSERA_SRC' not found" >&2; exit 1; }
[ -s "$BENCH_DATA/points.csv" ] || { echo "$BENCH_DATA/points.csv missing: run bench/setup.sh" >&2; exit 1; }
"$VENV/bin/python" -c 'import numpy' 2>/dev/null || { echo "numpy missing in $VENV: $VENV/bin/pip install numpy" >&2; exit 1; }
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
summary=$OUT/summary.txt
say() { echo "$*" | tee -a "$summary"; }
die() { echo "ERROR: $*" | tee -a "$summary" >&2; exit 1; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.2f", b - a}'; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

pids=()
cleanup() {
  local rc=$? pid i
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || continue
    for i in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  done
  [ "$KEEP_DB" = 1 ] || rm -f "$OUT"/*.db "$OUT"/*.db-wal "$OUT"/*.db-shm
  echo "(results in $OUT)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }
kib() { awk -v k="$1" 'BEGIN {printf "%.0f MiB", k / 1024}'; }
status_kib() { awk -v f="$2" '$1 == f":" {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

cp "$TESSERA_SRC" "$OUT/tessera"; TESSERA=$OUT/tessera
say "== scale benchmark, $(date -Is): uk (points.csv), syn1m ($SMALL synthetic), syn$N ($N synthetic)"
say "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), load average at start $(load)"
say "tessera: $TESSERA_SRC ($("$TESSERA" --version 2>/dev/null | head -1); commit $(cat "$TESSERA_SRC.commit" 2>/dev/null || echo unknown); sha256 $(sha256sum "$TESSERA" | cut -c1-16))"

# ---------------------------------------------------------------- inputs
for n in "$SMALL" "$N"; do
  csv=$BENCH_DATA/synthetic-$n.csv
  if [ ! -s "$csv" ]; then
    t0=$(now)
    "$VENV/bin/python" "$SHARED_BENCH/gen_points.py" "$n" "$csv.tmp" 42 && mv "$csv.tmp" "$csv"
    say "generated $csv in $(elapsed "$t0") s"
  fi
done
syn_z=$BENCH_DATA/synthetic-tiles_z14_16.txt syn_low=$BENCH_DATA/synthetic-tiles_low.txt
if [ ! -s "$syn_z" ] || [ ! -s "$syn_low" ] || [ "$syn_z" -ot "$BENCH_DATA/synthetic-$SMALL.csv" ]; then
  "$VENV/bin/python" - "$BENCH_DATA/synthetic-$SMALL.csv" "$syn_z" "$syn_low" <<'PY'
import sys, random, numpy as np
pts = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1, usecols=(1, 2))
lon, lat = pts[:, 0], pts[:, 1]
def tiles(z):  # the non-empty tiles of zoom z, as sorted (x, y)
    n = 1 << z
    x = np.clip(((lon + 180.0) / 360.0 * n).astype(np.int64), 0, n - 1)
    s = np.sin(np.radians(lat))
    y = np.clip(((0.5 - np.log((1 + s) / (1 - s)) / (4 * np.pi)) * n).astype(np.int64), 0, n - 1)
    return sorted(set(zip(x.tolist(), y.tolist())))
rng = random.Random(7)
names = lambda z: [f"{z}/{x}/{y}" for x, y in tiles(z)]
mix = names(14) + names(15)
z16 = names(16); rng.shuffle(z16); mix += z16[:3000]; rng.shuffle(mix)
low = [t for z in range(0, 11) for t in names(z)]
for z in range(11, 14):
    l = names(z); rng.shuffle(l); low += l[:500]
rng.shuffle(low)
open(sys.argv[2], "w").write("\n".join(mix) + "\n"); open(sys.argv[3], "w").write("\n".join(low) + "\n")
PY
fi
say "lists: uk $(wc -l < "$BENCH_DATA/tiles_z14_16.txt") z14-16 + $(wc -l < "$BENCH_DATA/tiles_low.txt") low tiles; synthetic $(wc -l < "$syn_z") z14-16 + $(wc -l < "$syn_low") low tiles"

names=(uk syn1m "syn$N")
declare -A csv=([uk]=$BENCH_DATA/points.csv [syn1m]=$BENCH_DATA/synthetic-$SMALL.csv ["syn$N"]=$BENCH_DATA/synthetic-$N.csv)
declare -A zlist=([uk]=$BENCH_DATA/tiles_z14_16.txt [syn1m]=$syn_z ["syn$N"]=$syn_z)
declare -A lowlist=([uk]=$BENCH_DATA/tiles_low.txt [syn1m]=$syn_low ["syn$N"]=$syn_low)
declare -A port=([uk]=$PORT [syn1m]=$((PORT + 1)) ["syn$N"]=$((PORT + 2)))
declare -A pid

# ---------------------------------------------------------------- imports
for name in "${names[@]}"; do
  db=$OUT/$name.db; extra=(); [ "$name" = uk ] && extra=(--time month)
  rows=$(($(wc -l < "${csv[$name]}") - 1)); ts=(); rs=()
  for r in $(seq 1 "$IMPORT_RUNS"); do
    rm -f "$db" "$db-wal" "$db-shm"
    t0=$(now)
    /usr/bin/time -v -o "$OUT/$name.import.$r.time-v" "$TESSERA" import "${csv[$name]}" --dataset points "${extra[@]}" --db "$db" \
      > "$OUT/$name.import.$r.log" 2>&1 || { tail -5 "$OUT/$name.import.$r.log" >&2; die "import of $name failed"; }
    ts+=("$(elapsed "$t0")"); rs+=("$(awk -F': ' '/Maximum resident/ {print $2}' "$OUT/$name.import.$r.time-v")")
  done
  tm=$(printf '%s\n' "${ts[@]}" | median); rm_=$(printf '%s\n' "${rs[@]}" | median)
  size=$(du -cb "$db"* | tail -1 | cut -f1)
  say "import $name: $rows rows, median $tm s [${ts[*]}] ($(awk -v n="$rows" -v t="$tm" 'BEGIN {printf "%.0f", n / t}') rows/s), peak RSS $(kib "$rm_"), catalog $(awk -v b="$size" 'BEGIN {printf "%.0f MiB", b / 1048576}'), load1 $(cut -d' ' -f1 /proc/loadavg)"
  echo "IMPORT name=$name rows=$rows secs=$tm rss_kib=$rm_ bytes=$size" >> "$OUT/scale.txt"
done

# ---------------------------------------------------------------- servers
for name in "${names[@]}"; do
  p=${port[$name]}
  port_busy "$p" && die "port $p is taken: stop whatever listens there first"
  t0=$(now)
  "$TESSERA" serve --db "$OUT/$name.db" --listen "$HOST:$p" --no-manifest --tile-cache-mb 0 > "$OUT/$name.serve.log" 2>&1 &
  pid[$name]=$!; pids+=("${pid[$name]}")
  ok=0
  for _ in $(seq 1 12000); do  # up to 10 minutes
    kill -0 "${pid[$name]}" 2>/dev/null || { tail -20 "$OUT/$name.serve.log" >&2; die "server $name exited during start-up"; }
    [ "$(curl -s -o /dev/null -m 30 -w '%{http_code}' "http://$HOST:$p/tiles/points/0/0/0.mvt" || true)" = 200 ] && { ok=1; break; }
    sleep 0.05
  done
  [ "$ok" = 1 ] || die "server $name gave no tile within 10 minutes"
  first=$(elapsed "$t0")
  cz=$(curl -s "http://$HOST:$p/tiles/points" | python3 -c 'import json,sys; print(json.load(sys.stdin)["vector_layers"][0].get("tessera:cluster_zoom"))' 2>/dev/null || echo '?')
  rss=$(status_kib "${pid[$name]}" VmRSS)
  say "serve $name (pid ${pid[$name]}, port $p, --tile-cache-mb 0): start -> first tile $first s, cluster zoom $cz, RSS after start $(kib "$rss")"
  echo "SERVE name=$name first_s=$first rss_start_kib=$rss" >> "$OUT/scale.txt"
done

# ---------------------------------------------------------------- rounds (one round of every server in turn)
for kind in z14_16 low; do
  for name in "${names[@]}"; do
    if [ "$kind" = z14_16 ]; then list=${zlist[$name]}; else list=${lowlist[$name]}; fi
    target="$name.$kind=http://$HOST:${port[$name]}/tiles/points/{}.mvt"
    [ "$WARMUP" -gt 0 ] && "$SHARED_BENCH/rounds.sh" 1 "$WARMUP" "$CONNS" "$list" "$target" > /dev/null
  done
done
for r in $(seq 1 "$ROUNDS"); do
  for kind in z14_16 low; do
    for name in "${names[@]}"; do
      if [ "$kind" = z14_16 ]; then list=${zlist[$name]}; else list=${lowlist[$name]}; fi
      "$SHARED_BENCH/rounds.sh" 1 "$SECS" "$CONNS" "$list" "$name.$kind=http://$HOST:${port[$name]}/tiles/points/{}.mvt" \
        | sed "s/round=1/round=$r/" | tee -a "$OUT/rounds.txt"
    done
  done
done
say "-- rounds: $ROUNDS x $SECS s x $CONNS connections per server and list, interleaved, gzip accepted, tile cache off"
for name in "${names[@]}"; do
  r=""; for _ in 1 2 3; do
    r+="$(curl -s -o /dev/null -H 'Accept-Encoding: gzip' -w '%{http_code} %{size_download}B %{time_total}s' "http://$HOST:${port[$name]}/tiles/points/0/0/0.mvt"); "
  done
  hwm=$(status_kib "${pid[$name]}" VmHWM)
  echo "HWM name=$name kib=$hwm" >> "$OUT/scale.txt"
  say "   $name: 0/0/0 x3: $r peak RSS (VmHWM) after the rounds $(kib "$hwm")"
done
python3 - "$OUT/rounds.txt" "$OUT/scale.txt" "syn$N" <<'PY' | tee -a "$summary"
import sys, statistics as st
res = [dict(kv.split("=", 1) for kv in l.split()[1:]) for l in open(sys.argv[1]) if l.startswith("RESULT")]
facts = {}
for l in open(sys.argv[2]):
    kind, *kv = l.split(); d = dict(x.split("=", 1) for x in kv); facts.setdefault(d["name"], {}).update(d)
big = sys.argv[3]
med = lambda lab, k: st.median(float(r[k]) for r in res if r["label"] == lab)
bad = lambda lab: sum(int(r["non2xx"]) + int(r["errors_connect"]) + int(r["errors_read"]) + int(r["errors_timeout"])
                      for r in res if r["label"] == lab)
for lab in dict.fromkeys(r["label"] for r in res):
    rs = [r for r in res if r["label"] == lab]
    print(f"{lab}: median {med(lab, 'rps'):.1f} req/s [{' '.join(r['rps'] for r in rs)}], median p50 "
          f"{med(lab, 'p50_us')/1000:.2f} ms, median p99 {med(lab, 'p99_us')/1000:.2f} ms "
          f"[{' '.join('%.1f' % (int(r['p99_us'])/1000) for r in rs)}], max {max(int(r['max_us']) for r in rs)/1000:.0f} ms, "
          f"load1 [{' '.join(r['load1'] for r in rs)}], non-2xx+errors {bad(lab)}" + ("   <-- INVALID" if bad(lab) else ""))
    # wrk gives up on a request after 2 s and leaves it out of the latencies: past 1% of them, p99 is > 2 s
    slow = sum(int(r["errors_timeout"]) for r in rs) / max(sum(int(r["requests"]) for r in rs), 1)
    if slow > 0.01:
        print(f"   {lab}: {100 * slow:.1f}% of requests hit wrk's 2 s timeout, so the true p99 is above 2 s")
def ratio(a, b, key):
    fa, fb = float(facts[a][key]), float(facts[b][key])
    return f"{fa / fb:.2f}x" if fb else "n/a"
for small in ("syn1m", "uk"):
    if small not in facts or big not in facts: continue
    rows = int(facts[big]["rows"]) / int(facts[small]["rows"])
    line = [f"GROWTH {small} -> {big} ({rows:.1f}x the rows): import time {ratio(big, small, 'secs')}, "
            f"import peak RSS {ratio(big, small, 'rss_kib')}, catalog {ratio(big, small, 'bytes')}, "
            f"start -> first tile {ratio(big, small, 'first_s')}, serve peak RSS {ratio(big, small, 'kib')}"]
    for kind in ("z14_16", "low"):
        a, b = f"{big}.{kind}", f"{small}.{kind}"
        per = [float(x["rps"]) / float(y["rps"]) for x in res if x["label"] == a
               for y in res if y["label"] == b and y["round"] == x["round"]]
        if per:
            line.append(f"{kind} req/s {st.median(per):.2f}x (per round), p99 {med(a, 'p99_us') / med(b, 'p99_us'):.2f}x")
    print("; ".join(line))
PY
say "load average at end $(load)"
