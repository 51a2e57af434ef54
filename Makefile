# Settee: `make dev` serves it locally, `make test` runs every test.
# Both install what is missing first (scripts/setup.sh).

export WRANGLER_SEND_METRICS := false

PORT ?= 5984
STATE ?= .settee/state
TOOLS_ENV := .settee/tools.env
BUNDLE := router/build/index.js
CARGO_TEST ?= cargo test --workspace

.PHONY: setup build dev test unit bench compat torture deploy deploy-check lint fmt clean

setup:
	@scripts/setup.sh

# Builds the Worker bundle (router + actors) with worker-build.
build: setup
	@. ./$(TOOLS_ENV) && cd router && "$$WORKER_BUILD" --release
	@scripts/bundle-size.sh

# Builds, creates .dev.vars with a random admin password on first run, and
# serves Settee at http://127.0.0.1:$(PORT) with data kept in $(STATE).
dev: build
	@scripts/dev-vars.sh
	@. ./$(TOOLS_ENV) && cargo run --quiet --release -p e2e --bin settee-serve -- \
		--port $(PORT) --state $(STATE) --vars .dev.vars

# Unit tests (native, fast) and e2e tests against the real Worker on workerd.
test: build
	@. ./$(TOOLS_ENV) && $(CARGO_TEST)

unit:
	cargo test --workspace --exclude e2e

bench: build
	@. ./$(TOOLS_ENV) && cd bench/ceiling-rs && "$$WORKER_BUILD" --release >/dev/null
	@. ./$(TOOLS_ENV) && node bench/run.mjs

# Abuses a real workerd (SIGKILLs under load, conflict storms, 10,000
# generated hostile requests, resource limits) and writes the figures into
# RELIABILITY.md. Not part of `make test`; SHORT=1 is the subset CI runs
# (it prints its figures and leaves RELIABILITY.md alone).
torture: build
	@. ./$(TOOLS_ENV) && TORTURE_CASES=$(if $(SHORT),512,20000) cargo test --release -p shared --test parsers_never_panic
	@. ./$(TOOLS_ENV) && cargo run --quiet --release -p e2e --bin torture -- $(if $(SHORT),--short,--report RELIABILITY.md)

# Runs the CouchDB ecosystem's own test suites (../shared/compat) against a
# fresh Settee and writes COMPATIBILITY.md. Long (about an hour); not part of
# `make test`. SUITES="nano7 pouchdb510" picks a subset; see scripts/compat.sh.
compat: build
	@COMPAT_COMMAND="make compat" scripts/compat.sh

# Deploys to Cloudflare (needs `wrangler login` and the admin secrets:
# `npx wrangler secret put COUCHDB_USER` / `COUCHDB_PASSWORD`).
deploy: build
	npx wrangler deploy

# What `make deploy` would upload, without an account.
deploy-check: build
	npx wrangler deploy --dry-run --outdir .settee/deploy

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	. ./$(TOOLS_ENV) && cargo clippy -p router -p ceiling-rs --target wasm32-unknown-unknown -- -D warnings

fmt:
	cargo fmt --all

clean:
	rm -rf router/build target/wasm32-unknown-unknown
