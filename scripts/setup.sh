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
