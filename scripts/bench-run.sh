#!/bin/sh
# RUN overhead (empty RUN with --network=none and with the default slirp4netns network) and the
# S5 layer-commit cost (500 MB RUN: "ran" is the sandboxed run, DONE the whole step), measured on
# a temporary store. Needs root (or rootless userns), busybox-static, hyperfine and a release build:
#   cargo build --release && scripts/bench-run.sh
set -eu
K=${KILN:-target/release/kiln}
SHARED=${SHARED:-../shared}
B=${BENCH_DIR:-/tmp/kiln-run-bench}
S=$B/store
mkdir -p "$B"
rm -rf "$S" "$B/bb" "$B/r0" "$B/r20n" "$B/r20d"
mkdir -p "$B/bb" "$B/r0" "$B/r20n" "$B/r20d"
sh $SHARED/bench/make-busybox-rootfs.sh "$B/bb/rootfs" >/dev/null
printf 'FROM scratch\nCOPY rootfs/ /\n' > "$B/bb/Dockerfile"
$K --root "$S" build -q -t localhost/busybox:local "$B/bb" >/dev/null
printf 'FROM localhost/busybox:local\nLABEL x=1\n' > "$B/r0/Dockerfile"
{ echo 'FROM localhost/busybox:local'; for i in $(seq 1 20); do echo "RUN --network=none true $i"; done; } > "$B/r20n/Dockerfile"
{ echo 'FROM localhost/busybox:local'; for i in $(seq 1 20); do echo "RUN true $i"; done; } > "$B/r20d/Dockerfile"
echo "== sandbox run times (20 RUNs each, --progress=plain 'ran' field)"
for d in r20n r20d; do
  $K --root "$S" build --no-cache --progress=plain "$B/$d" 2>&1 | grep 'sandbox:' | sed 's/.*ran //; s/s$//' | sort -n |
    awk -v d=$d '{a[NR]=$1} END {printf "%s: median %.1f ms, min %.1f ms, max %.1f ms\n", d, a[int((NR+1)/2)]*1000, a[1]*1000, a[NR]*1000}'
done
echo "== whole builds (hyperfine): no RUN vs 20 RUNs"
hyperfine -N -w 2 -r 10 \
  "$K --root $S build -q --no-cache $B/r0" \
  "$K --root $S build -q --no-cache $B/r20n" \
  "$K --root $S build -q --no-cache $B/r20d" 2>&1 | grep -E 'Benchmark|Time'
echo "== S5: 500 MB random RUN (3 runs)"
for i in 1 2 3; do
  /usr/bin/time -f "wall %e s" $K --root "$S" build --no-cache --progress=plain --build-arg BASE=localhost/busybox:local -t s5 $SHARED/bench/s5 2>&1 |
    grep -E 'sandbox:|DONE|wall' | tail -3
done
echo "== S3 with its RUN, cold (20,000-file COPY, then the RUN on its snapshot; 2 runs)"
if [ ! -d "$B/s3/files" ]; then
  mkdir -p "$B/s3" && python3 $SHARED/bench/s3/gen-context.py "$B/s3/files" >/dev/null
fi
cp $SHARED/bench/s3/Dockerfile "$B/s3/Dockerfile"
for i in 1 2; do
  rm -rf "$S/snapshots"
  /usr/bin/time -f "wall %e s" $K --root "$S" build --no-cache --progress=plain --build-arg BASE=localhost/busybox:local -t s3 "$B/s3" 2>&1 |
    grep -E '^#[23] DONE|wall'
done
