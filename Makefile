# The one gate: what CI runs and what you run before a commit.
.PHONY: ci fmt lint test doc browser bench-data

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
