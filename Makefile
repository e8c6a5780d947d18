# The one gate: what CI runs and what you run before a commit.
.PHONY: ci fmt lint test doc browser

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
# node; .ci/run installs them). Uses the debug binary built by `make test`.
browser:
	cargo build
	bash tests/browser/run.sh
