#!/usr/bin/env bash
# The whole test suite, as CI runs it: set-up, formatting, lints, every test.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

if [[ ! -d ../shared ]]; then
  echo "NOTICE: ../shared is not beside the repository: the corpus, schema and benchmark-scenario tests will say 'skipped'."
fi

cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked --no-fail-fast
