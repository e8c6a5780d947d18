#!/usr/bin/env bash
# Browser tests against a real Tessera serving the demo catalog of data/:
# builds nothing (expects target/debug/tessera), starts the server on a free port
# (port 0, address read from its log), validates the styles, runs the Playwright suite.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/tests/demo-server.sh"
cd "$root/tests/browser"
[ -d node_modules ] || npm ci --no-audit --no-fund
node validate-styles.mjs
node validate-styles.mjs "$base"
BASE_URL=$base node --test --test-concurrency=1 run.mjs
