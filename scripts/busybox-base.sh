#!/usr/bin/env bash
# Builds a busybox base image with kiln itself: `FROM scratch` plus a rootfs
# made from the busybox-static package (the binary, one symlink per applet,
# /etc/passwd and /etc/group, fixed mtimes). Nothing is pulled.
#
# usage: scripts/busybox-base.sh KILN STORE_ROOT TAG [WORK_DIR]
# Prints the image id. Idempotent: an unchanged rebuild is a cache hit.
set -euo pipefail

kiln=${1:?usage: busybox-base.sh KILN STORE_ROOT TAG [WORK_DIR]}
root=${2:?store root}
tag=${3:?tag}
work=${4:-"${root}/busybox-context"}

if [[ ! -x /bin/busybox ]]; then
  echo "busybox-base: /bin/busybox is missing (apt-get install busybox-static)" >&2
  exit 2
fi

rootfs="${work}/rootfs"
rm -rf "${rootfs}"
mkdir -p "${rootfs}"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,var,dev,proc,sys}
chmod 1777 "${rootfs}/tmp"
chmod 700 "${rootfs}/root"
cp /bin/busybox "${rootfs}/bin/busybox"
for applet in $(/bin/busybox --list-full); do
  [[ "${applet}" == bin/busybox ]] && continue
  ln -sf /bin/busybox "${rootfs}/${applet}"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"${rootfs}/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"${rootfs}/etc/group"
find "${rootfs}" -exec touch -h -d @1700000000 {} +

printf 'FROM scratch\nCOPY rootfs/ /\nCMD ["/bin/sh"]\n' >"${work}/Dockerfile"
SOURCE_DATE_EPOCH=1700000000 "${kiln}" build --root "${root}" -q -t "${tag}" "${work}"
