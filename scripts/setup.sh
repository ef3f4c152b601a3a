#!/usr/bin/env bash
# Installs what kiln's build, tests and demo need on a Debian machine.
# Idempotent: packages already present are not touched, and apt is only
# called when something is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: kiln needs a Rust toolchain (cargo). Install one (e.g. rustup) and run this again." >&2
  exit 2
fi

missing=()
if [[ -f scripts/apt-packages.txt ]]; then
  while read -r pkg _; do
    [[ -z "${pkg}" || "${pkg}" == \#* ]] && continue
    dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q "install ok installed" || missing+=("${pkg}")
  done < scripts/apt-packages.txt
fi

if ((${#missing[@]})); then
  sudo=""
  [[ "$(id -u)" -ne 0 ]] && sudo="sudo"
  echo "setup: installing ${missing[*]}"
  ${sudo} apt-get update -qq
  DEBIAN_FRONTEND=noninteractive ${sudo} apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# A user with subordinate ids, for the rootless tests that need a full id range
# (newuidmap/newgidmap from the uidmap package). Only as root, and only once:
# useradd gives a new user a range in /etc/subuid and /etc/subgid.
rootless_user=kiln-subids
if [[ "$(id -u)" -eq 0 ]] && ! id "${rootless_user}" >/dev/null 2>&1; then
  useradd --system --no-create-home --shell /usr/sbin/nologin "${rootless_user}"
fi
if [[ "$(id -u)" -eq 0 ]] && ! grep -q "^${rootless_user}:" /etc/subuid 2>/dev/null; then
  touch /etc/subuid /etc/subgid # usermod refuses to make them
  usermod --add-subuids 500000000-500065535 --add-subgids 500000000-500065535 "${rootless_user}"
fi
