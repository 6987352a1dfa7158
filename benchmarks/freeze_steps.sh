#!/usr/bin/env bash
# What freezing saves in a training step (fine-tuning): each network's step with no layer frozen,
# with conv1-conv2 frozen and with every convolution frozen (..conv5: the classifier alone trains),
# one after the other in one run, at the precision --precision auto picks on this host.
#
#   benchmarks/freeze_steps.sh [BUILD_DIR] > benchmarks/results/fine_tune/freeze_steps.txt
set -euo pipefail
build=${1:-build}
step="$build/benchmarks/convnet_step"
echo "command: benchmarks/freeze_steps.sh $build"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; $(date -u)"
echo
for case in "paper 64" "cifar-half-bn 128"; do
  read -r config batch <<< "$case"
  for freeze in "" "..conv2" "..conv5"; do
    echo "freeze: ${freeze:-none}"
    "$step" --config "$config" --mode train --batch "$batch" --steps 5 --warmup 1 --precision auto ${freeze:+--freeze "$freeze"}
    echo
  done
done
