#!/bin/bash
# Training throughput of the CIFAR networks side by side: each network trains BATCHES steps
# (batch 128, the default recipe), the networks alternating, ROUNDS times, so that a slow
# minute of a shared host falls on all of them; take the median img/s of each. Used to give
# each network the epochs that fit the same wall-clock budget (README, recipe section).
# The real trainer, not the synthetic convnet_step, so that loading and augmentation count.
#
#   benchmarks/epoch_cost.sh build/bin/convnet ../shared/data/cifar-10-batches-bin [ROUNDS] [BATCHES]
set -euo pipefail
usage="usage: epoch_cost.sh CONVNET CIFAR10_DIR [ROUNDS] [BATCHES]"
trainer=${1:?$usage}
data=${2:?$usage}
rounds=${3:-3}
batches=${4:-150}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for round in $(seq "$rounds"); do
  for config in cifar-half-bn cifar-half cifar-bn; do
    log="$out/$round-$config.log"
    if ! "$trainer" train --data "$data" --config "$config" --epochs 1 --max-batches "$batches" \
           --progress-every "$batches" --eval centre --out "$out/$round-$config" > "$log" 2>&1; then
      echo "epoch_cost: $trainer failed for --config $config:" >&2
      tail -3 "$log" >&2
      exit 1
    fi
    echo "round $round $config: $(grep 'img/s' "$log" | tail -1)"
  done
done
