#!/usr/bin/env bash
# Draws the pictures of docs/inspection.md from a trained checkpoint and keeps what each command
# printed in benchmarks/results/inspection/inspect.txt (command, commit, host, output), the file the
# document's figures are read from.
#
#   benchmarks/inspection_pictures.sh CHECKPOINT
#
# CHECKPOINT: a best.ckpt of the default recipe (`make train`: runs/cifar10/best.ckpt). The pictures
# in docs/ are of the committed default run, benchmarks/results/bf16_train/bf16/. Needs build/bin/convnet
# (make train-build), the CIFAR-10 binary files ($CIFAR10_DIR, else ../shared/data/cifar-10-batches-bin)
# and a PNG copy of its test pictures ($WORK/cifar-png, written with convnet to-folder when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
checkpoint=${1:?usage: benchmarks/inspection_pictures.sh CHECKPOINT}
convnet=${BUILD_DIR:-build}/bin/convnet
cifar=${CIFAR10_DIR:-../shared/data/cifar-10-batches-bin}
work=${WORK:-/tmp/readme_figures}
pictures=docs/inspection
file=benchmarks/results/inspection/inspect.txt
[ -x "$convnet" ] || { echo "inspection_pictures: $convnet not found (make train-build)" >&2; exit 1; }
[ -d "$work/cifar-png/test" ] || "$convnet" to-folder --data "$cifar" --out "$work/cifar-png"
mkdir -p "$pictures" "$(dirname "$file")"
{
  echo "command: benchmarks/inspection_pictures.sh $checkpoint"
  echo "checkpoint: $checkpoint (sha256 $(sha256sum "$checkpoint" | cut -d' ' -f1))"
  echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' (+ uncommitted changes)')"
  echo "host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
  echo "date: $(date -u)"
  echo
} > "$file"
step() {  # step CMD...: the command line, then what it printed
  echo "\$ $*" >> "$file"
  "$@" >> "$file" 2>&1
  echo >> "$file"
}
test_png=$work/cifar-png/test
step "$convnet" inspect filters --checkpoint "$checkpoint" --out "$pictures/filters_conv1.png"
step "$convnet" inspect activations --checkpoint "$checkpoint" "$test_png/ship/00033.png" --layers relu1,relu2,relu5,relu7 \
  --out "$pictures/activations_ship.png"
step "$convnet" inspect saliency --checkpoint "$checkpoint" "$test_png/frog/00012.png" --out "$pictures/saliency_frog.png"
step "$convnet" inspect saliency --checkpoint "$checkpoint" "$test_png/cat/00000.png" --out "$pictures/saliency_cat.png"
step "$convnet" inspect neighbours --checkpoint "$checkpoint" --dataset "cifar10:$cifar" --queries 8 --seed 1 \
  --out "$pictures/neighbours.png"
# The share of neighbours of the query's class over many queries (the picture of 185 rows at most is
# not kept: the figure is the point).
step "$convnet" inspect neighbours --checkpoint "$checkpoint" --dataset "cifar10:$cifar" --queries 180 --seed 2 \
  --out "$work/neighbours_180.png"
step "$convnet" inspect neighbours --checkpoint "$checkpoint" --dataset "cifar10:$cifar" --queries 180 --seed 2 \
  --metric cosine --out "$work/neighbours_180_cosine.png"
step "$convnet" inspect confusion --checkpoint "$checkpoint" --dataset "cifar10:$cifar" --out "$pictures/confusion.png"
echo "inspection_pictures: wrote $pictures/*.png and $file"
