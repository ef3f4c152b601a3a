#!/usr/bin/env bash
# kiln's main job on the shipped example (fixtures/demo): build a busybox base
# image from the busybox-static binary with kiln itself, build a small
# multi-stage app on it (RUN, COPY, COPY --from), explain the result, plan a
# rebuild after an edit, then a short parse/lint pass.
#
# Everything goes to a store under the target directory, never your default
# store. RUN needs root or working unprivileged user namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo build --release --locked --quiet
target="${CARGO_TARGET_DIR:-target}"
kiln="$target/release/kiln"
demo="$target/demo"
store="$demo/store"
rm -rf "$demo"
mkdir -p "$demo"
# Same inputs, same digests: mtimes clamped and `created` fixed.
export SOURCE_DATE_EPOCH=1700000000

step() { printf '\n== %s\n' "$*"; }

step "a busybox base image from busybox-static, built by kiln (FROM scratch + COPY rootfs/ /)"
fixtures/demo/make-busybox-rootfs.sh "$demo/busybox"
"$kiln" --root "$store" build --progress=plain -t demo/busybox:1 "$demo/busybox"

step "a multi-stage app on it (fixtures/demo/app)"
cp -r fixtures/demo/app "$demo/app"
"$kiln" --root "$store" build --progress=plain -t demo/app:1 "$demo/app"
"$kiln" --root "$store" images

step "kiln explain: which instruction made which layer, what it holds, why it was (not) cached"
"$kiln" --root "$store" explain --top 3 "$demo/app"

step "after editing src/greeting.txt: kiln explain --plan (nothing is built)"
printf 'hello again' >"$demo/app/src/greeting.txt"
"$kiln" --root "$store" explain --plan "$demo/app"

step "the rebuild, and what it says about the steps it redid"
"$kiln" --root "$store" build -q -t demo/app:1 "$demo/app"
"$kiln" --root "$store" explain "$demo/app" | grep -E '^(STEP|──|[0-9]+ +Dockerfile)'

step "kiln lint and kiln parse on the example"
"$kiln" lint --no-fail fixtures/demo/app/Dockerfile fixtures/demo/busybox.Dockerfile
"$kiln" parse fixtures/demo/app/Dockerfile | sed -n 1,12p
status=0
for f in fixtures/syntax/ok/*.Dockerfile; do
  "$kiln" parse --format dump "$f" >/dev/null || { echo "FAILED  $f"; status=1; }
done
echo "parsed $(ls fixtures/syntax/ok/*.Dockerfile | wc -l) fixtures"
exit "$status"
