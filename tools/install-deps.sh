#!/usr/bin/env bash
# Installs the Debian packages convnet needs and a fresh machine lacks.
# Idempotent: what is already there is left alone, and when nothing is
# missing this script touches neither apt nor sudo.
#   tools/install-deps.sh           what training needs: g++, make, cmake, Eigen 3.4, stb, zlib
#   tools/install-deps.sh test      also GoogleTest, Google Benchmark, OpenBLAS, Open MPI, and
#                                   python3-onnx and python3-opencv (the test suite builds the
#                                   benchmarks, checks the OpenBLAS build of the package, trains
#                                   over MPI, and has ONNX's checker and OpenCV's dnn read our
#                                   ONNX files)
#   tools/install-deps.sh mpi       also Open MPI (make train-mpi: data-parallel training)
#   tools/install-deps.sh bench     also Google Benchmark
#   tools/install-deps.sh clang     also clang, its OpenMP runtime and sanitizer runtimes
#                                   (make fuzz, make check-tsan)
set -euo pipefail

missing=()
# Tools are looked for as commands (they may come from elsewhere than Debian);
# libraries as Debian packages.
need_command() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need_package() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" || missing+=("$1")
}

need_command g++ g++
need_command make make
need_command cmake cmake
need_package libeigen3-dev
need_package libstb-dev
need_package zlib1g-dev  # gzip-compressed datasets (MNIST as published)
case "${1:-}" in
  "") ;;
  test) need_package libgtest-dev; need_package libbenchmark-dev; need_package libopenblas-openmp-dev
        need_package libopenmpi-dev; need_package openmpi-bin; need_package python3-onnx; need_package python3-opencv ;;
  mpi) need_package libopenmpi-dev; need_package openmpi-bin ;;
  bench) need_package libbenchmark-dev ;;
  clang) need_package clang; need_package libomp-dev; need_package libclang-rt-dev ;;
  *) echo "usage: tools/install-deps.sh [test|mpi|bench|clang]" >&2; exit 2 ;;
esac
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
