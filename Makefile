# The one gate: what CI runs and what you run before a commit.
.PHONY: ci fmt lint test doc browser api-fuzz pyenv

ci: fmt lint test doc

fmt:
	cargo fmt --all -- --check

lint:
	cargo clippy --all-targets -- -D warnings

test:
	cargo test --all-targets
	cargo test --doc

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
