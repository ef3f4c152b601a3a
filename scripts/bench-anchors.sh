#!/usr/bin/env bash
# Side-by-side build benchmarks: kiln, docker build (BuildKit, Docker 20.10's
# dockerd on a private socket) and buildah, on the scenarios of
# ../shared/bench (S1-S5), in one run on the same machine, with hyperfine.
#
# usage: scripts/bench-anchors.sh [SCENARIO...]   (default: s1 s2 s3 s3copy s4 s5 run)
#   RUNS=N       hyperfine runs per command (default 5)
#   COLD_RUNS=N  runs for the slow scenarios: S3, S4, S5 cold (default 3)
#   TOOLS="kiln docker buildah"   which tools to run
#   OUT=DIR      where results go (default target/bench-anchors)
#   KILN=PATH    a kiln binary to use instead of building target/release/kiln
#   KILN_NET=... kiln's network flag (default --network=none, as the anchors)
#
# Every tool gets the same busybox base, built by kiln from busybox-static and
# loaded into docker and buildah from kiln's docker archive. All builds run
# with networking off where the tool can (docker has no bridge here; buildah's
# chroot isolation has no network namespace at all). Cold runs remove the
# image and prune the build cache first; the empty-RUN figure uses --no-cache.
# Needs root (dockerd, buildah) and ../shared/bench.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

bench_dir="${repo}/../shared/bench"
if [[ ! -d "${bench_dir}" ]]; then
  echo "bench-anchors: ${bench_dir} not found; these scenarios live in the team's shared material" >&2
  exit 2
fi
if [[ "$(id -u)" -ne 0 ]]; then
  echo "bench-anchors: needs root (dockerd and buildah)" >&2
  exit 2
fi

scenarios=("$@")
((${#scenarios[@]})) || scenarios=(s1 s2 s3 s3copy s4 s5 run)
runs=${RUNS:-5}
cold_runs=${COLD_RUNS:-3}
tools=${TOOLS:-"kiln docker buildah"}
out=${OUT:-"${repo}/target/bench-anchors"}
mkdir -p "${out}"
work=$(mktemp -d /var/tmp/kiln-bench.XXXXXX)

need=()
for pkg in hyperfine buildah docker.io busybox-static python3; do
  dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q "install ok installed" || need+=("${pkg}")
done
if ((${#need[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [[ -n "${KILN:-}" ]]; then
  kiln=${KILN}
else
  cargo build --release --locked --quiet
  kiln="${CARGO_TARGET_DIR:-${repo}/target}/release/kiln"
fi
store="${work}/kiln-store"
base=localhost/busybox:local

has_tool() { [[ " ${tools} " == *" $1 "* ]]; }

# --- the busybox base, for every tool -------------------------------------
scripts/busybox-base.sh "${kiln}" "${store}" "${base}" "${work}/busybox" >/dev/null
"${kiln}" save --root "${store}" "${base}" -o "${work}/busybox.tar" --format docker

docker_pid=""
cleanup() {
  if [[ -n "${docker_pid}" ]]; then
    kill -TERM "${docker_pid}" 2>/dev/null || true
    wait "${docker_pid}" 2>/dev/null || true
    grep -E ' /(run|var/lib)/docker-kiln-bench' /proc/self/mountinfo | awk '{print $5}' | sort -r |
      xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf /run/docker-kiln-bench /var/lib/docker-kiln-bench
  fi
  rm -rf "${work}"
}
trap cleanup EXIT

export DOCKER_HOST=unix:///run/docker-kiln-bench.sock DOCKER_BUILDKIT=1
docker=/usr/bin/docker
if has_tool docker; then
  dockerd --data-root /var/lib/docker-kiln-bench --exec-root /run/docker-kiln-bench \
    --pidfile /run/docker-kiln-bench.pid -H "${DOCKER_HOST}" --iptables=false --ip-masq=false \
    --ip-forward=false --bridge=none --storage-driver overlay2 --default-runtime runc \
    --log-level warn >"${out}/dockerd.log" 2>&1 &
  docker_pid=$!
  for _ in $(seq 100); do "${docker}" version >/dev/null 2>&1 && break; sleep 0.1; done
  "${docker}" load -q -i "${work}/busybox.tar" >/dev/null
fi
if has_tool buildah; then
  buildah rmi -f "${base}" >/dev/null 2>&1 || true
  buildah pull -q "docker-archive:${work}/busybox.tar" >/dev/null
fi

# --- the scenarios' contexts ------------------------------------------------
ctx="${work}/ctx"
mkdir -p "${ctx}"
cp -r "${bench_dir}"/s1 "${bench_dir}"/s3 "${bench_dir}"/s4 "${bench_dir}"/s5 "${ctx}/"
(cd "${ctx}/s3" && python3 gen-context.py >/dev/null)
# The COPY-only variant of S3 (issue 4's targets): the same files, no RUN.
mkdir -p "${ctx}/s3copy"
cp -al "${ctx}/s3/files" "${ctx}/s3copy/files"
grep -v '^RUN' "${ctx}/s3/Dockerfile" >"${ctx}/s3copy/Dockerfile"
mkdir -p "${ctx}/run"
printf 'ARG BASE=%s\nFROM ${BASE}\nRUN true\n' "${base}" >"${ctx}/run/Dockerfile"

kiln_build() { # scenario [extra...]
  local s=$1
  shift
  echo "${kiln} build --root ${store} ${KILN_NET---network=none} --build-arg BASE=${base} -q -t ${s} $* ${ctx}/${s}"
}
docker_build() {
  local s=$1
  shift
  echo "${docker} build -q --network none --build-arg BASE=${base} -t ${s} $* ${ctx}/${s}"
}
buildah_build() {
  local s=$1
  shift
  echo "buildah build -q --layers --isolation chroot --build-arg BASE=${base} -t ${s} $* ${ctx}/${s}"
}

# What "cold" means (../shared/bench/README.md): the built image removed and
# the build cache pruned before every run, so nothing of an earlier run is
# reused (kiln's prune also drops unpacked snapshots no image needs).
cold_prepare() { # tool scenario
  case "$1" in
  kiln) echo "sh -c '${kiln} --root ${store} rmi $2 >/dev/null 2>&1; ${kiln} --root ${store} prune >/dev/null'" ;;
  docker) echo "sh -c '${docker} rmi -f $2 >/dev/null 2>&1; ${docker} builder prune -af >/dev/null'" ;;
  buildah) echo "sh -c 'buildah rmi -f $2 >/dev/null 2>&1; buildah rmi --prune >/dev/null 2>&1; true'" ;;
  esac
}

compare() { # name runs prepare(""|cold|shell command) scenario [build args...]
  local name=$1 n=$2 prepare=$3 scenario=$4
  local cmds=() prep=()
  for tool in ${tools}; do
    cmds+=(-n "${tool}" "$("${tool}_build" "${@:4}")")
    case "${prepare}" in
    "") ;;
    cold) prep+=(--prepare "$(cold_prepare "${tool}" "${scenario}")") ;;
    *) prep+=(--prepare "${prepare}") ;;
    esac
  done
  echo "== ${name}"
  cut -d' ' -f1-3 /proc/loadavg >"${out}/${name}.load"
  hyperfine -N --warmup 1 --runs "${n}" "${prep[@]}" --export-markdown "${out}/${name}.md" \
    --export-json "${out}/${name}.json" "${cmds[@]}"
}

# hyperfine runs the same --prepare before every command; touching one file
# in the S3 context gives every tool a "one file changed" rebuild.
change_one="sh -c 'date +%s%N > ${ctx}/s3/files/changed.txt'"
change_one_copy="sh -c 'date +%s%N > ${ctx}/s3copy/files/changed.txt'"

for s in "${scenarios[@]}"; do
  case "${s}" in
  s1) compare s1-cold "${runs}" cold s1 ;;
  s2) compare s2-unchanged "$((runs * 2))" "" s1 ;;
  s3)
    compare s3-cold "${cold_runs}" cold s3
    compare s3-unchanged "${runs}" "" s3
    compare s3-one-file-changed "${cold_runs}" "${change_one}" s3
    ;;
  s3copy)
    compare s3copy-cold "${cold_runs}" cold s3copy
    compare s3copy-unchanged "${runs}" "" s3copy
    compare s3copy-one-file-changed "${cold_runs}" "${change_one_copy}" s3copy
    ;;
  s4) compare s4-cold "${cold_runs}" cold s4 ;;
  s5) compare s5-cold "${cold_runs}" cold s5 ;;
  run) compare empty-run "$((runs * 2))" "" run --no-cache ;;
  *) echo "unknown scenario ${s}" >&2 ;;
  esac
done

echo
echo "results: ${out}/*.md"
for md in "${out}"/*.md; do
  printf '\n### %s (load %s)\n' "$(basename "${md}" .md)" "$(cat "${md%.md}.load" 2>/dev/null)"
  cat "${md}"
done
