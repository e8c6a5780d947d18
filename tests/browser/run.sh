#!/usr/bin/env bash
# Browser tests against a real Tessera serving the demo catalog of data/:
# builds nothing (expects target/debug/tessera), starts the server on a free port
# (port 0, address read from its log), validates the styles, runs the Playwright suite.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${TESSERA_BIN:-$root/target/debug/tessera}
work=$(mktemp -d)
log=$work/serve.log
cd "$root"
"$bin" serve --db "$work/catalog.db" --manifest data/tessera.toml --listen 127.0.0.1:0 >"$log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
base=""
for _ in $(seq 1 600); do
  base=$(grep -o 'serving on http://[0-9.:]*' "$log" | head -1 | sed 's/serving on //') || true
  [ -n "$base" ] && curl -sf "$base/conformance" >/dev/null && break
  kill -0 "$pid" 2>/dev/null || { echo "tessera serve exited:"; cat "$log"; exit 1; }
  sleep 0.5
done
[ -n "$base" ] || { echo "tessera serve did not start:"; cat "$log"; exit 1; }
echo "server at $base"
cd tests/browser
[ -d node_modules ] || npm ci --no-audit --no-fund
node validate-styles.mjs
node validate-styles.mjs "$base"
BASE_URL=$base node --test --test-concurrency=1 run.mjs
