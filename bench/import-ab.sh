#!/bin/sh
# Interleaved A/B timing of `tessera import`: runs each binary ROUNDS times (A, B, A, B...)
# on the same files into a fresh catalog, and prints per-binary median wall time and the
# largest peak RSS (GNU time). Nothing stays running; the catalogs go in a temp dir.
#
#   bench/import-ab.sh BIN_A BIN_B [ROUNDS] -- IMPORT_ARGS...
#   bench/import-ab.sh old/tessera target/release/tessera 3 -- data.csv.gz --dataset uk
set -eu
a=$1 b=$2 rounds=3
shift 2
if [ "${1:-}" != "--" ]; then rounds=$1; shift; fi
[ "${1:-}" = "--" ] && shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for i in $(seq "$rounds"); do
  for side in a b; do
    bin=$a; [ "$side" = b ] && bin=$b
    rm -f "$tmp"/c.db*
    /usr/bin/time -f "%e %M" -o "$tmp/t" "$bin" import "$@" --db "$tmp/c.db" >/dev/null
    cat "$tmp/t" >> "$tmp/$side"
  done
done
for side in a b; do
  bin=$a; [ "$side" = b ] && bin=$b
  median=$(cut -d' ' -f1 "$tmp/$side" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
  rss=$(cut -d' ' -f2 "$tmp/$side" | sort -n | tail -1)
  echo "$side $bin: median ${median} s of $rounds, peak RSS $((rss / 1024)) MiB; runs: $(cut -d' ' -f1 "$tmp/$side" | tr '\n' ' ')"
done
