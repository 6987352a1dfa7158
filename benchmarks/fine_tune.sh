#!/usr/bin/env bash
# Fine-tuning against training from scratch, same recipe, same epochs, same seed: what docs/models.md
# cites. CIFAR-100 cannot be downloaded here, so CIFAR-10 is split in two halves of five classes: a
# network trained on the first (airplane, automobile, bird, cat, deer) starts the training on the
# second (dog, frog, horse, ship, truck), beside the same network trained on those from scratch.
#
#   benchmarks/fine_tune.sh CIFAR10_DIR WORK_DIR [BUILD_DIR]
#
# Writes WORK_DIR/png (convnet to-folder), WORK_DIR/{a,b} (the halves, linked), the three runs under
# WORK_DIR/runs, and copies each run's log and metrics.csv to benchmarks/results/fine_tune/.
set -euo pipefail
cifar=$1 work=$2 build=${3:-build}
convnet="$build/bin/convnet"
results=benchmarks/results/fine_tune
mkdir -p "$work" "$results"
[ -d "$work/png/train" ] || "$convnet" to-folder --data "$cifar" --out "$work/png"
for part in train test; do
  mkdir -p "$work/a/$part" "$work/b/$part"
  for c in airplane automobile bird cat deer; do ln -sfn "$work/png/$part/$c" "$work/a/$part/$c"; done
  for c in dog frog horse ship truck; do ln -sfn "$work/png/$part/$c" "$work/b/$part/$c"; done
done
common="--config cifar-half-bn --pipeline small --seed 1"
run() {  # name, then the rest of the command line
  local name=$1; shift
  { echo "command: $convnet train $*"; echo "commit: $(git rev-parse --short HEAD)";
    echo "host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; $(date -u)"; echo;
    "$convnet" train "$@" --out "$work/runs/$name"; } > "$results/$name.log" 2>&1
  cp "$work/runs/$name/metrics.csv" "$results/$name.metrics.csv"
}
run a_pretrain --dataset "folder:$work/a" $common --epochs 10
run b_finetuned --dataset "folder:$work/b" $common --epochs 5 --init-from "$work/runs/a_pretrain/best.ckpt"
run b_scratch --dataset "folder:$work/b" $common --epochs 5
grep -h 'test top-1\|^command' "$results"/*.log
