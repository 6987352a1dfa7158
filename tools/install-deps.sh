#!/usr/bin/env bash
# Installs the Debian packages convnet needs and a fresh machine lacks.
# Idempotent: a package that is already installed is left alone, and when
# nothing is missing this script touches neither apt nor sudo.
#   tools/install-deps.sh            the library's own: Eigen and stb
#   tools/install-deps.sh clang      also clang, its OpenMP runtime and
#                                    sanitizer runtimes (make fuzz, make check-tsan)
set -euo pipefail

required=(libeigen3-dev libstb-dev)
if [ "${1:-}" = "clang" ]; then required+=(clang libomp-dev libclang-rt-dev); fi
missing=()
for pkg in "${required[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "convnet: installing missing packages: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  run=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  run=(sudo)
else
  echo "convnet: cannot install ${missing[*]}: not root and no password-less sudo." >&2
  echo "convnet: please run:  sudo apt-get install ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# A fresh image may have stale or empty package lists: retry once after an update.
if ! "${run[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; then
  "${run[@]}" apt-get update
  "${run[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi
