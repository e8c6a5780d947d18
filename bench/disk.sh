#!/usr/bin/env bash
# Disk space of re-imports: imports INPUT into a fresh catalog N times (default 3) and
# prints the catalog and WAL sizes after each import has returned, and the import's time.
# A re-import must give the replaced version's pages back and leave a small WAL.
#
#   bench/disk.sh INPUT [TESSERA_BIN [N]]
#
# The sizes do not depend on the build profile, so a debug binary measures them as well.
set -euo pipefail
input=${1:?usage: bench/disk.sh INPUT [TESSERA_BIN [N]]}
bin=${2:-target/release/tessera}
n=${3:-3}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
size() { stat -c %s "$1" 2>/dev/null || echo 0; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "input $(basename "$input"): $(mib "$(size "$input")")"
for i in $(seq 1 "$n"); do
    start=$(date +%s.%N)
    RUST_LOG=tessera=warn "$bin" import "$input" --dataset bench --db "$dir/c.db" >/dev/null
    secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    echo "import $i (${secs} s): catalog $(mib "$(size "$dir/c.db")"), WAL $(mib "$(size "$dir/c.db-wal")")"
done
