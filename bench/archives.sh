#!/usr/bin/env bash
# Archive-serving benchmark (issue 9): one PMTiles and one MBTiles file served by `tessera serve --tiles DIR`
# and by martin, same files, same tile list, same interleaved rounds (rounds.sh), tile caches off on both
# (martin keeps its PMTiles directory cache: that is how it reads an archive, not a tile cache).
# The files: BENCH_DATA/points_z14_16.mbtiles (tippecanoe, UK crime z14-16, no dropping; peers-load.sh) and
# a PMTiles of the same tiles converted from it once (pmtiles-convert, cached in BENCH_DATA), so both archives
# hold byte-identical tiles and tiles_z14_16.txt (all present in both) is the tile list.
# Before the rounds, SAMPLE tiles are fetched from every server and compared byte for byte with the archive
# (read with Python's sqlite3 / the pmtiles package): a server answering something else is reported, and
# the rounds' non-2xx count must be 0 (a cheaper error page would inflate req/s).
# The tessera side is skipped with a notice when the binary's `serve` has no `--tiles`.
#
# Usage: bench/archives.sh TESSERA_BIN [BENCH_DATA]
# Environment (all optional):
#   ROUNDS=3 SECS=15 CONNS=8 WARMUP=5 SAMPLE=20   MARTIN_BIN=/opt/martin/bin/martin
#   TESSERA_PORT=8090 MARTIN_PORT=3010   VENV=/opt/tessera-peers   SHARED_BENCH=<repo>/../shared/bench
#   TESSERA_PATH='/tiles/{id}/{}'   tessera's tile path ({id} = archive file stem, {} = z/x/y)
#   OUT=<BENCH_DATA>/archives-<timestamp>
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

[ $# -ge 1 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
TESSERA_SRC=$1
BENCH_DATA=$(cd "${2:-${BENCH_DATA:-$repo/../bench-data}}" && pwd)
ROUNDS=${ROUNDS:-3} SECS=${SECS:-15} CONNS=${CONNS:-8} WARMUP=${WARMUP:-5} SAMPLE=${SAMPLE:-20}
MARTIN_BIN=${MARTIN_BIN:-/opt/martin/bin/martin} TESSERA_PORT=${TESSERA_PORT:-8090} MARTIN_PORT=${MARTIN_PORT:-3010}
VENV=${VENV:-/opt/tessera-peers} SHARED_BENCH=${SHARED_BENCH:-$repo/../shared/bench}
TESSERA_PATH=${TESSERA_PATH:-'/tiles/{id}/{}'}
OUT=${OUT:-$BENCH_DATA/archives-$(date +%Y%m%d-%H%M%S)}
HOST=127.0.0.1
for v in ROUNDS SECS CONNS WARMUP SAMPLE TESSERA_PORT MARTIN_PORT; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be a number" >&2; exit 2; }
done
list=$BENCH_DATA/tiles_z14_16.txt mbt_src=$BENCH_DATA/points_z14_16.mbtiles
[ -s "$list" ] && [ -s "$mbt_src" ] || { echo "$list or $mbt_src missing: run bench/setup.sh" >&2; exit 1; }
mkdir -p "$OUT/archives"; OUT=$(cd "$OUT" && pwd)
summary=$OUT/summary.txt
say() { echo "$*" | tee -a "$summary"; }
die() { echo "ERROR: $*" | tee -a "$summary" >&2; exit 1; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

pids=()
cleanup() {
  local rc=$? pid i
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || continue
    for i in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  done
  echo "(results in $OUT)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }
wait_http() {  # NAME PID URL: until URL answers 200 (60 s), fail if PID dies first
  local i
  for i in $(seq 1 1200); do
    kill -0 "$2" 2>/dev/null || { tail -20 "$OUT/$1.log" >&2; die "$1 exited during start-up (log $OUT/$1.log)"; }
    [ "$(curl -s -o /dev/null -m 5 -w '%{http_code}' "$3" || true)" = 200 ] && return 0
    sleep 0.05
  done
  die "$1 did not answer 200 on $3 within 60 s"
}
vmhwm() { awk '/VmHWM/ {print $2, $3}' "/proc/$1/status" 2>/dev/null || echo "n/a"; }

# ---------------------------------------------------------------- archives (same tiles in both)
pmt_src=$BENCH_DATA/points_z14_16.pmtiles
if [ ! -s "$pmt_src" ] || [ "$pmt_src" -ot "$mbt_src" ]; then
  echo "converting $mbt_src to PMTiles (once, cached as $pmt_src) ..."
  rm -f "$pmt_src.tmp.pmtiles"
  "$VENV/bin/pmtiles-convert" "$mbt_src" "$pmt_src.tmp.pmtiles" > "$OUT/convert.log" 2>&1 || { cat "$OUT/convert.log" >&2; exit 1; }
  mv "$pmt_src.tmp.pmtiles" "$pmt_src"
fi
dir=$OUT/archives
ln -f "$mbt_src" "$dir/uk-crime-mbt.mbtiles" 2>/dev/null || cp "$mbt_src" "$dir/uk-crime-mbt.mbtiles"
ln -f "$pmt_src" "$dir/uk-crime-pmt.pmtiles" 2>/dev/null || cp "$pmt_src" "$dir/uk-crime-pmt.pmtiles"

have_tessera=0
if [ -x "$TESSERA_SRC" ]; then
  cp "$TESSERA_SRC" "$OUT/tessera"; TESSERA=$OUT/tessera
  if "$TESSERA" serve --help 2>/dev/null | grep -q -- '--tiles'; then have_tessera=1
  else say "NOTICE: $TESSERA_SRC has no 'serve --tiles': tessera side skipped (martin only)"; fi
else
  say "NOTICE: tessera binary '$TESSERA_SRC' not found: tessera side skipped (martin only)"
fi
have_martin=1
[ -x "$MARTIN_BIN" ] || { have_martin=0; say "NOTICE: $MARTIN_BIN not found: martin side skipped (peers-install.sh --with-martin builds it)"; }
[ "$have_martin$have_tessera" = 00 ] && die "neither martin nor a tessera with 'serve --tiles': nothing to measure"
command -v wrk > /dev/null || die "wrk missing: run bench/setup.sh"

say "== archive serving, $(date -Is): $(wc -l < "$list") tiles of tiles_z14_16.txt; $ROUNDS rounds x $SECS s x $CONNS connections, gzip accepted"
say "machine: $(nproc) cores, load average at start $(load)"
say "archives: uk-crime-mbt.mbtiles $(stat -c %s "$dir/uk-crime-mbt.mbtiles") bytes (tippecanoe), uk-crime-pmt.pmtiles $(stat -c %s "$dir/uk-crime-pmt.pmtiles") bytes (pmtiles-convert of it)"

# ---------------------------------------------------------------- servers
cat > "$OUT/martin.yaml" <<YAML
listen_addresses: '$HOST:$MARTIN_PORT'
cache:
  size_mb: 64
  tile_size_mb: 0
pmtiles:
  directory_cache:
    size_mb: 64
  sources:
    uk-crime-pmt: $dir/uk-crime-pmt.pmtiles
mbtiles:
  sources:
    uk-crime-mbt: $dir/uk-crime-mbt.mbtiles
YAML
z14=$(grep -m1 '^14/' "$list")
if [ "$have_martin" = 1 ]; then
  port_busy "$MARTIN_PORT" && die "port $MARTIN_PORT is taken: stop whatever listens there first"
  "$MARTIN_BIN" --config "$OUT/martin.yaml" > "$OUT/martin.log" 2>&1 &
  martin_pid=$!; pids+=("$martin_pid")
  wait_http martin "$martin_pid" "http://$HOST:$MARTIN_PORT/uk-crime-mbt/$z14"
  say "martin (pid $martin_pid): $MARTIN_BIN --config $OUT/martin.yaml ($("$MARTIN_BIN" --version 2>&1 | head -1); tile cache off, PMTiles directory cache 64 MB)"
fi
targets=()
if [ "$have_tessera" = 1 ]; then
  port_busy "$TESSERA_PORT" && die "port $TESSERA_PORT is taken: stop whatever listens there first"
  t0=$(date +%s.%N)
  "$TESSERA" serve --tiles "$dir" --db "$OUT/empty.db" --no-manifest --tile-cache-mb 0 --listen "$HOST:$TESSERA_PORT" > "$OUT/tessera.log" 2>&1 &
  tess_pid=$!; pids+=("$tess_pid")
  tpath=${TESSERA_PATH//\{id\}/uk-crime-mbt}
  wait_http tessera "$tess_pid" "http://$HOST:$TESSERA_PORT${tpath//\{\}/$z14}"
  say "tessera (pid $tess_pid): tessera serve --tiles $dir --db OUT/empty.db --no-manifest --tile-cache-mb 0;" \
      "start -> first tile $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}') s"
  targets+=("tessera_pmt=http://$HOST:$TESSERA_PORT${TESSERA_PATH//\{id\}/uk-crime-pmt}"
            "tessera_mbt=http://$HOST:$TESSERA_PORT${TESSERA_PATH//\{id\}/uk-crime-mbt}")
fi
[ "$have_martin" = 1 ] && targets+=("martin_pmt=http://$HOST:$MARTIN_PORT/uk-crime-pmt/{}" "martin_mbt=http://$HOST:$MARTIN_PORT/uk-crime-mbt/{}")

# ---------------------------------------------------------------- sanity: bytes as stored
shuf -n "$SAMPLE" --random-source=<(yes) "$list" > "$OUT/sample.txt"
"$VENV/bin/python" - "$dir" "$OUT/sample.txt" "${targets[@]}" <<'PY' | tee -a "$summary"
import sys, sqlite3, urllib.request
from pmtiles.reader import Reader, MmapSource
d, sample, targets = sys.argv[1], [l.strip() for l in open(sys.argv[2]) if l.strip()], sys.argv[3:]
con = sqlite3.connect(f"file:{d}/uk-crime-mbt.mbtiles?mode=ro", uri=True)
pmf = open(f"{d}/uk-crime-pmt.pmtiles", "rb"); pm = Reader(MmapSource(pmf))
def stored(kind, z, x, y):
    if kind == "mbt":
        r = con.execute("SELECT tile_data FROM tiles WHERE zoom_level=? AND tile_column=? AND tile_row=?",
                        (z, x, (1 << z) - 1 - y)).fetchone()
        return r and r[0]
    return pm.get(z, x, y)
for t in targets:
    name, tmpl = t.split("=", 1)
    same = other = 0; enc = set()
    for zxy in sample:
        z, x, y = map(int, zxy.split("/"))
        req = urllib.request.Request(tmpl.replace("{}", zxy), headers={"Accept-Encoding": "gzip"})
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                body = r.read(); enc.add(r.headers.get("Content-Encoding") or "identity")
        except Exception as e:
            body = None; enc.add(f"error {e}")
        if body is not None and body == stored(name.split("_")[-1], z, x, y): same += 1
        else: other += 1
    flag = "" if other == 0 else "   <-- WARNING: not the stored bytes (see which encoding was sent)"
    print(f"sanity {name}: {same}/{len(sample)} sampled tiles byte-identical to the archive, content-encoding {sorted(enc)}{flag}")
PY

# ---------------------------------------------------------------- rounds
if [ "$WARMUP" -gt 0 ]; then "$SHARED_BENCH/rounds.sh" 1 "$WARMUP" "$CONNS" "$list" "${targets[@]}" > "$OUT/warmup.txt"; fi
"$SHARED_BENCH/rounds.sh" "$ROUNDS" "$SECS" "$CONNS" "$list" "${targets[@]}" | tee "$OUT/rounds.txt"
say "-- rounds: $ROUNDS x $SECS s x $CONNS connections over tiles_z14_16.txt (interleaved), targets: ${targets[*]}"
python3 - "$OUT/rounds.txt" <<'PY' | tee -a "$summary"
import sys, statistics as st
res = [dict(kv.split("=", 1) for kv in l.split()[1:]) for l in open(sys.argv[1]) if l.startswith("RESULT")]
labels = list(dict.fromkeys(r["label"] for r in res))
med = lambda lab, k: st.median(float(r[k]) for r in res if r["label"] == lab)
bad = lambda lab: sum(int(r["non2xx"]) + int(r["errors_connect"]) + int(r["errors_read"]) + int(r["errors_timeout"])
                      for r in res if r["label"] == lab)
for lab in labels:
    rs = [r for r in res if r["label"] == lab]
    print(f"{lab}: median {med(lab, 'rps'):.1f} req/s [{' '.join(r['rps'] for r in rs)}], median p99 "
          f"{med(lab, 'p99_us')/1000:.2f} ms [{' '.join('%.1f' % (int(r['p99_us'])/1000) for r in rs)}], "
          f"load1 [{' '.join(r['load1'] for r in rs)}], non-2xx+errors {bad(lab)}" + ("   <-- INVALID" if bad(lab) else ""))
for kind in ("pmt", "mbt"):
    a, b = f"tessera_{kind}", f"martin_{kind}"
    if a not in labels or b not in labels: continue
    per = [float(x["rps"]) / float(y["rps"]) for x in res if x["label"] == a
           for y in res if y["label"] == b and y["round"] == x["round"]]
    print(f"RATIO {a}/{b}: median of per-round req/s ratios {st.median(per):.2f}x [{' '.join(f'{v:.2f}' for v in per)}]; "
          f"p99 {med(a, 'p99_us')/1000:.2f} vs {med(b, 'p99_us')/1000:.2f} ms")
PY
say "VmHWM: ${martin_pid:+martin $(vmhwm "$martin_pid") }${tess_pid:+tessera $(vmhwm "$tess_pid")}; load average at end $(load)"
