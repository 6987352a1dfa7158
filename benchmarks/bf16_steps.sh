#!/usr/bin/env bash
# The training step and inference of each network at fp32 and at bf16, side by side in one run,
# with each layer's time: what docs/performance.md cites for bf16 on the matrix units.
#
#   benchmarks/bf16_steps.sh [BUILD_DIR] > benchmarks/results/bf16_step/steps.txt
#
# Runs alternate fp32 and bf16 for each case, so that the host's load falls on both alike.
set -euo pipefail
build=${1:-build}
step="$build/benchmarks/convnet_step"
echo "command: benchmarks/bf16_steps.sh $build"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, flags:$(grep -m1 -o -w -E 'amx_bf16|amx_tile|avx512_bf16|avx512f' /proc/cpuinfo | sort -u | tr '\n' ' ' | sed 's/^/ /')"
echo "date: $(date -u)"
echo
for case in "paper train 64" "cifar train 128" "cifar-half-bn train 128" "paper infer 64" "cifar infer 64" "paper infer 1"; do
  read -r config mode batch <<< "$case"
  steps=5
  [ "$batch" = 1 ] && steps=20
  for precision in fp32 bf16; do
    "$step" --config "$config" --mode "$mode" --batch "$batch" --steps "$steps" --warmup 1 --precision "$precision" --per-layer
    echo
  done
done
