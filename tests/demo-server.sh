# Sourced by the browser and schemathesis runners: starts the debug (or $TESSERA_BIN)
# `tessera serve` on the demo catalog of data/, on a free port (port 0, the address read
# back from its log), in a temporary folder removed on exit. Sets $base, $pid, $work, $log.
root=${root:?set root to the repository before sourcing}
bin=${TESSERA_BIN:-$root/target/debug/tessera}
work=$(mktemp -d)
log=$work/serve.log
(cd "$root" && exec "$bin" serve --db "$work/catalog.db" --manifest data/tessera.toml --listen 127.0.0.1:0) >"$log" 2>&1 &
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
