#!/usr/bin/env bash
# The whole check, as CI runs it: formatting, lints, then every test. With
# OMNIHUB_TEST_POSTGRES_URL set, the store conformance suite runs on PostgreSQL as well as SQLite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/steps.sh
source scripts/steps.sh

# Debian packages (Dovecot, Postfix, chromium) and the private mail servers of the tests.
bash scripts/test-deps.sh

export OMNIHUB_TEST_POSTGRES_URL="${OMNIHUB_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"

# The website widget first: the binary embeds widget/dist.
step "website widget"
(
  cd widget
  npm ci --no-audit --no-fund
  npm run typecheck
  npm test
  npm run build
)

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo nextest"
cargo nextest run --workspace

# The web console (web/): its node packages, the type check, the unit tests, then the browser
# tests against the debug binary the steps above built (with the console embedded).
step "web console"
(
  cd web
  npm ci --no-audit --no-fund
  npm run typecheck
  npm test
  npm run e2e
)
