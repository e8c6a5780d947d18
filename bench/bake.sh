#!/usr/bin/env bash
# `tessera bake` of UK crime (1.39M points, four months of police.uk street crime) z0-14
# to PMTiles: wall time, peak RSS, file size and tiles per zoom. Release build.
# Usage: bench/bake.sh [OUT_DIR]    (default: a fresh temporary directory)
# Environment: UK_DATA (folder of *-street.csv.gz), BIN (default target/release/tessera),
#              MAXZOOM (default 14), THREADS (default: every core)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
UK_DATA=${UK_DATA:?set UK_DATA to the folder of the police.uk *-street.csv.gz files}
BIN=${BIN:-$root/target/release/tessera}
MAXZOOM=${MAXZOOM:-14}
out=${1:-$(mktemp -d)}
mkdir -p "$out"
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
db=$out/bake-bench.db
if ! "$BIN" datasets --db "$db" 2>/dev/null | grep -q '^uk-crime'; then
  echo "importing UK crime into $db"
  RUST_LOG=warn "$BIN" import "$UK_DATA"/*-street.csv.gz --dataset uk-crime --time Month \
    --category "Crime type" --db "$db" | head -1
fi
threads=()
[ -n "${THREADS:-}" ] && threads=(--threads "$THREADS")
echo "bake z0-$MAXZOOM on $(nproc) cores"
RUST_LOG=warn /usr/bin/time -f "wall %e s, peak RSS %M KiB" \
  "$BIN" bake uk-crime --db "$db" --out "$out/uk-crime.pmtiles" --maxzoom "$MAXZOOM" "${threads[@]}"
ls -l "$out/uk-crime.pmtiles"
