#!/usr/bin/env bash
# Every check the project has, as CI runs it: formatting, lints, all tests
# (the AWS adapters against a moto server on 127.0.0.1), and the
# differential check of search results against the reference semantics.
set -euo pipefail
cd "$(dirname "$0")/.."
# A one-off build gains nothing from incremental state; it only costs disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

echo "== python tools (.venv: moto server, SAM CLI, cfn-lint)"
scripts/python-tools.sh

echo "== formatting and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== SAM template: sam validate --lint, cfn-lint, IAM wildcard check"
scripts/lint-template.sh

echo "== function binaries (the end-to-end test runs them under cargo lambda)"
cargo build --workspace --bins --quiet

echo "== tests"
cargo test --workspace

echo "== the web page in a real browser (Debian's chromium, driven by playwright-core)"
scripts/browser-test.sh

echo "== sam local (Docker, started if missing): every fixture, start-api, start-lambda behind the front mode"
scripts/sam-local.sh

echo "== search results against the reference"
scripts/check-reference.sh 100000
