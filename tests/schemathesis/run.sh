#!/usr/bin/env bash
# schemathesis against a real Tessera serving the demo catalog of data/: it reads the
# server's own /api document, generates requests from it (valid and invalid), and checks
# that no answer is a 5xx and that every answer conforms to the document (status code,
# content type, body schema). Where they disagree, the document or the server is wrong.
#
# Builds nothing (expects target/debug/tessera); installs the pinned schemathesis into
# a virtualenv under $SCHEMATHESIS_VENV (default: target/schemathesis-venv) on first use.
# Bounded and reproducible: a fixed seed, no example database, a small number of
# examples per operation (about 3 minutes on a loaded 2-core machine).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${SCHEMATHESIS_VENV:-$root/target/schemathesis-venv}
version=4.32.5
examples=${SCHEMATHESIS_EXAMPLES:-50}

if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$version"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==$version"
fi

. "$root/tests/demo-server.sh"

status=0
cd "$work" # schemathesis writes its state into the current directory
"$venv/bin/schemathesis" run "$base/api" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing \
  --max-examples "$examples" \
  --seed 20261201 \
  --generation-database none \
  --workers 2 \
  --request-timeout 30 \
  --no-color \
  --report junit --report-dir "$work/report" || status=$?
if grep -q "panicked\|ERROR" "$log"; then
  echo "server log has errors:"; grep "panicked\|ERROR" "$log" | head -20; status=1
fi
exit "$status"
