#!/usr/bin/env bash
# kiln's main job on the shipped examples: set-up, build kiln, then parse
# every Dockerfile under fixtures/ and show one in full.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo build --release --locked --quiet
kiln="${CARGO_TARGET_DIR:-target}/release/kiln"

echo "== kiln parse: every fixture"
status=0
for f in fixtures/syntax/ok/*.Dockerfile; do
  if "$kiln" parse --format dump "$f" >/dev/null; then
    echo "ok      $f"
  else
    echo "FAILED  $f"; status=1
  fi
done

echo
echo "== kiln parse fixtures/syntax/ok/multistage.Dockerfile"
"$kiln" parse fixtures/syntax/ok/multistage.Dockerfile

echo
echo "== kiln parse on a file with mistakes (errors are expected here)"
"$kiln" parse fixtures/syntax/err/typos.Dockerfile >/dev/null || true
exit "$status"
