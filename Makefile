# The one gate: what CI runs and what you run before a commit.
.PHONY: ci fmt lint test test-pg doc browser api-fuzz pyenv

ci: fmt lint test doc

fmt:
	cargo fmt --all -- --check

lint:
	cargo clippy --all-targets -- -D warnings

# The first pass runs on SQLite whatever the environment says; then, when
# TESSERA_TEST_PG names a PostgreSQL server (tests/pg/setup.sh prints one), the whole
# integration suite runs again with every test catalog in a database of its own there.
# (An empty TESSERA_TEST_PG marks the SQLite pass, where the multi-process PostgreSQL
# tests skip; unset under CI, they fail, so CI cannot pass by skipping them.)
test:
	TESSERA_TEST_PG= cargo test --all-targets
	TESSERA_TEST_PG= cargo test --doc
	if [ -n "$$TESSERA_TEST_PG" ]; then cargo test --test integration; fi

# The PostgreSQL pass alone: readies Debian's cluster 15/main (as root), then runs it.
test-pg:
	url="$$(bash tests/pg/setup.sh)" && TESSERA_TEST_PG="$$url" cargo test --test integration

doc:
	RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet

# Map pages in headless Chromium against a real server (needs Debian chromium and
# node; .ci/run installs them). `--all-targets` resolves features as `make test` does, so
# after it the debug binary is already built and nothing is compiled again.
browser:
	cargo build --all-targets
	bash tests/browser/run.sh

# schemathesis (PyPI, pinned, in a venv under target/) against the server's own /api
# document: no 5xx, and every answer conforms to the document. Bounded, fixed seed.
api-fuzz:
	cargo build --all-targets
	bash tests/schemathesis/run.sh

# Python readers and makers of tile archives (pinned in tests/python/requirements.txt)
# in one venv: the integration tests run target/py-venv/bin/python (or $TESSERA_PYTHON).
pyenv:
	python3 -m venv target/py-venv
	target/py-venv/bin/pip install -q -r tests/python/requirements.txt
