#!/usr/bin/env bash
# Builds the busybox base image with kiln itself: the context laid out by
# fixtures/demo/make-busybox-rootfs.sh (FROM scratch + a rootfs made from the
# busybox-static binary, fixed modes and mtimes). Nothing is pulled.
#
# usage: scripts/busybox-base.sh KILN STORE_ROOT TAG [WORK_DIR]
# Prints the image id. Idempotent: an unchanged rebuild is a cache hit.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

kiln=${1:?usage: busybox-base.sh KILN STORE_ROOT TAG [WORK_DIR]}
root=${2:?store root}
tag=${3:?tag}
work=${4:-"${root}/busybox-context"}

"${here}/fixtures/demo/make-busybox-rootfs.sh" "${work}"
SOURCE_DATE_EPOCH=1700000000 "${kiln}" build --root "${root}" -q -t "${tag}" "${work}"
