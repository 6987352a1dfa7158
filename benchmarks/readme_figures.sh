#!/usr/bin/env bash
# Writes again the result files behind the README's speed, memory, MPI and picture-folder figures,
# one measurement after another (never two at once: each would slow the other on a 2-core host),
# into benchmarks/results/<folder>/. Every file starts with the command, the commit, the host and the
# date, then holds the program's raw output (and /usr/bin/time -v where peak memory is a figure).
#
#   benchmarks/readme_figures.sh                      the default parts: pytorch layers mpi png (~23 min on 2 cores)
#   benchmarks/readme_figures.sh layers mpi           only the parts named
#   benchmarks/readme_figures.sh png-train            a long part: named only, never by default
#
#   part        writes                                   minutes on 2 cores (estimates: see each part)
#   pytorch     pytorch_compare/compare.txt              ~12
#   layers      per_layer/convnet_bench.txt              ~2
#   mpi         mpi_scaling/{cifar,paper_2ranks,paper_alone}.txt   ~4
#   png         png_folder/{loader_png,loader_jpeg,paper_pipeline}.txt   ~5
#   png-memory  png_folder/{gen20k_loader,gen20k_memory}.txt         ~7   (named only)
#   png-train   png_folder/{binary,png}/: time.txt, report.txt, metrics.csv, timing.csv  ~10 (named only)
#   default-run default_run/: the same four files of a plain `make train` run           ~26 (named only)
#   fast        fast_recipe/seed<N>/: the same four files of `convnet train --recipe fast`, a run per
#               seed in $FAST_SEEDS (default 1)                                             ~14 a seed (named only)
#   fast-step   fast_recipe/step.txt: the fast network's training step, layer by layer     ~1 (named only)
#   fast-pytorch fast_recipe/pytorch_seed<N>/: benchmarks/pytorch_fast_cifar.py, the peer    ~18 a seed (named only)
#   tiles       conv_tiles/steps.txt: three networks' steps, convolutions on the tiles against
#               Winograd and direct, layer by layer                                         ~4 (named only)
#   fast-ablation fast_recipe/ablation/<name>/: the recipe less one ingredient, a run per name in
#               $FAST_ABLATIONS (default all four)                                          ~14 a run (named only)
#   fast-fp32   fast_recipe/fp32/: the recipe in fp32 (--precision fp32, whatever the host has): its
#               step (step.txt; FAST_STEP=0: not again) and a run per seed in $FAST_SEEDS (seed<N>/)
#                                                                                           ~15 a seed (named only)
#   fast-fp32-pytorch fast_recipe/fp32/pytorch_seed<N>/: the peer in fp32 (channels_last)   ~20 a seed (named only)
#   fast-long   fast_recipe/epochs<N>/: the recipe at seed 1 for $FAST_EPOCHS epochs (default 20), to
#               see what this copy of CIFAR-10 gives with more time                         ~26 (named only)
#   fast-published fast_recipe/published/seed<N>.txt: benchmarks/pytorch_published_recipe.py, the
#               record's recipe exactly as published, a run per seed in $FAST_SEEDS, to tell
#               what this copy of CIFAR-10 allows it                                        ~25 a seed (named only)
#   fast-plot   fast_recipe/plot.{png,csv} and fast_recipe/fp32/plot.{png,csv}: validation accuracy
#               against minutes of the committed runs above, ours beside PyTorch's            ~0 (named only)
#
# Needs a Release build in build/ with the benchmarks and MPI (make bench, or make test), the
# CIFAR-10 binary files ($CIFAR10_DIR, else ../shared/data/cifar-10-batches-bin), /usr/bin/python3
# with PyTorch (python3-torch) for `pytorch`, and mpirun (openmpi-bin) for `mpi`. It builds nothing.
# Scratch data (the PNG copy of CIFAR-10, generated JPEGs, training folders) goes to $WORK
# (default /tmp/readme_figures) and is kept, so that png and png-train share the PNG copy.
# Overridable: BUILD_DIR, CIFAR10_DIR, WORK, PYTORCH_PRECISION (fp32, what docs/performance.md's
# table is; auto compares the programs' default instead).
# shellcheck disable=SC2317  # the parts are called by name (part_$name)
set -euo pipefail
cd "$(dirname "$0")/.."

build=${BUILD_DIR:-build}
cifar=${CIFAR10_DIR:-../shared/data/cifar-10-batches-bin}
work=${WORK:-/tmp/readme_figures}
python=/usr/bin/python3  # Debian's python3-torch lives in the system interpreter
pytorch_precision=${PYTORCH_PRECISION:-fp32}
results=benchmarks/results
convnet=$build/bin/convnet
step=$build/benchmarks/convnet_step
bench=$build/benchmarks/convnet_bench
loader=$build/benchmarks/convnet_loader
mpi_step=$build/benchmarks/convnet_mpi_step

default_parts=(pytorch layers mpi png)
all_parts=(pytorch layers mpi png png-memory png-train default-run fast fast-step fast-pytorch fast-ablation fast-fp32 fast-fp32-pytorch fast-long fast-published fast-plot tiles)
usage="usage: benchmarks/readme_figures.sh [PART...]   PART: ${all_parts[*]} (default: ${default_parts[*]})"

failed=0

# A command line as one would type it: words that need it are single-quoted.
quoted() {
  local word words=()
  for word in "$@"; do
    if [[ $word =~ ^[A-Za-z0-9_./:=,+@%-]+$ ]]; then words+=("$word"); else words+=("'${word//\'/\'\\\'\'}'"); fi
  done
  echo "${words[*]}"
}

# header FILE LINE: starts FILE with the command LINE and what the figures depend on. The load
# average says whether something else ran beside the measurement (this host is shared).
header() {
  local file=$1 command=$2
  mkdir -p "$(dirname "$file")"
  {
    echo "command: $command"
    # Result files are left out of the check: this very file is already truncated here, and earlier
    # parts of the same call have rewritten theirs; neither changes what is measured. Nor does prose
    # (Markdown, docs/ written while a long part runs).
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- . ':(exclude)benchmarks/results' ':(exclude)docs' ':(exclude)*.md' 2>/dev/null || echo ' (+ uncommitted changes)')"
    echo "host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, flags:$(grep -m1 -o -w -E 'amx_bf16|amx_tile|avx512_bf16|avx512f|avx2|fma' /proc/cpuinfo | sort -u | tr '\n' ' ' | sed 's/^/ /;s/ $//')"
    echo "uname: $(uname -a)"
    echo "date: $(date -u)"
    echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
  } > "$file"
}

# run_into FILE CMD...: appends everything CMD prints (stdout and stderr) and its exit status. A
# failure is reported and remembered, and the next measurement still runs.
run_into() {
  local file=$1 rc=0
  shift
  "$@" >> "$file" 2>&1 || rc=$?
  echo "exit status: $rc" >> "$file"
  if [ "$rc" -ne 0 ]; then
    echo "readme_figures: failed ($rc): $(quoted "$@"); see $file" >&2
    failed=1
  fi
}

# record FILE CMD...: one command, one file.
record() {
  local file=$1
  shift
  header "$file" "$(quoted "$@")"
  run_into "$file" "$@"
}

# train_into FOLDER OUT ARGS...: one training run under /usr/bin/time -v, kept as the other
# committed runs are (networks_45min/, bf16_train/): time.txt (command, host, the whole log and
# time -v's lines), and the run's report.txt, metrics.csv and timing.csv. No checkpoints.
train_into() {
  local folder=$1 out=$2
  shift 2
  rm -rf "$out"  # a fresh run: the trainer would otherwise meet the last one's files
  mkdir -p "$folder"
  record "$folder/time.txt" /usr/bin/time -v "$convnet" train "$@" --out "$out"
  local f
  for f in report.txt metrics.csv timing.csv; do
    if [ -f "$out/$f" ]; then cp "$out/$f" "$folder/$f"; else echo "readme_figures: $out/$f missing" >&2; failed=1; fi
  done
}

need() {  # need FILE WHAT: stop before measuring anything when a program is missing
  [ -e "$1" ] || { echo "readme_figures: $1 not found ($2)" >&2; exit 1; }
}

# The PNG copy of CIFAR-10 that png and png-train read (~0.5 min to write 60,000 small PNGs).
png_folder() {
  if [ ! -d "$work/cifar-png/test" ]; then
    rm -rf "$work/cifar-png"
    "$convnet" to-folder --data "$cifar" --out "$work/cifar-png"
  fi
}

# ---- the parts ------------------------------------------------------------------------------

# docs/performance.md, "Against PyTorch at its best": nine rows, ours and each way of running
# PyTorch alternating, three times, medians; peak memory from /usr/bin/time -v. The docs' command
# (`compare_pytorch.py --repeats 3`), so the figures are the table's.
# ~12 min: a repeat of the nine rows is about 3.5-4 min here (paper training ~55 s: ours 4 steps of
# ~1.2 s, PyTorch's 4 steps of 2.5-4 s with default malloc and with glibc kept, plus its bf16 autocast
# on a bf16 host; each PyTorch process also pays ~3 s to import torch and build the network; the
# batch-1 rows are almost only that start-up). Without libtcmalloc-minimal4 (not installed on the
# AMX host) PyTorch runs two ways in fp32 instead of the docs' three.
part_pytorch() {
  need "$step" "build it: make bench"
  "$python" -c 'import torch' 2>/dev/null || { echo "readme_figures: no PyTorch in $python; pytorch skipped" >&2; failed=1; return; }
  local file=$results/pytorch_compare/compare.txt
  local cmd=("$python" benchmarks/compare_pytorch.py --repeats 3 --precision "$pytorch_precision" --ours "$step")
  header "$file" "$(quoted "${cmd[@]}")"
  echo "PyTorch: $("$python" -c 'import torch; print(torch.__version__)'); tcmalloc: $([ -e /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 ] && echo yes || echo 'not installed')" >> "$file"
  echo >> "$file"
  run_into "$file" "${cmd[@]}"
}

# docs/performance.md, "Per layer": conv1-conv5 of paper (batch 64) and cifar (batch 128), forward
# and backward, effective GFLOP/s and share of the peak measured in the same run; medians of three.
# The docs' command. ~2 min: 20 layer benchmarks of ~0.5 s a repetition (Google Benchmark's
# default minimum) x 3, plus working out the iterations, BM_Peak and building the two networks.
part_layers() {
  need "$bench" "build it: make bench"
  record "$results/per_layer/convnet_bench.txt" "$bench" '--benchmark_filter=BM_Peak|Layer/(paper|cifar)/conv' \
    --benchmark_repetitions=3
}

# docs/distributed.md, "Measured on one machine".
# ~4 min: cifar 1.2 min (3 repeats of 3 runs of 13 steps of 0.4-0.9 s, plus mpirun's start);
# paper 2 ranks 3 x ~40 s (22 steps of 1.3-2 s and 10 sums of 250 MB); paper alone ~30 s.
part_mpi() {
  need "$mpi_step" "configure with MPI (libopenmpi-dev) and make bench"
  command -v mpirun > /dev/null || { echo "readme_figures: no mpirun; mpi skipped" >&2; failed=1; return; }
  # The table (1 x 1, 1 x 2 threads, 2 ranks x 1) and cifar's sum: the docs' command.
  record "$results/mpi_scaling/cifar.txt" "$python" benchmarks/mpi_scaling.py --config cifar --batch 128 --repeats 3 \
    --binary "$mpi_step"
  # paper's sum and the overlap (2.13-2.16 s -> 1.81-2.02 s in the docs: ranges, so several runs):
  # the docs' command, three times one after another into one file.
  local flags=(--oversubscribe)
  [ "$(id -u)" = 0 ] && flags+=(--allow-run-as-root)  # Open MPI refuses root unless told (as the Makefile)
  local cmd=(mpirun "${flags[@]}" -x OMP_NUM_THREADS=1 -np 2 "$mpi_step" --config paper --batch 64 --threads 1)
  local file=$results/mpi_scaling/paper_2ranks.txt
  header "$file" "$(quoted "${cmd[@]}")   (three runs, one after another)"
  local i
  for i in 1 2 3; do
    echo "run $i:" >> "$file"
    run_into "$file" "${cmd[@]}"
  done
  # "the measured step (1.52 s on 2 cores)" the projection for many machines starts from: the docs
  # name no command for it; one process of two threads of the same program is that step.
  record "$results/mpi_scaling/paper_alone.txt" "$mpi_step" --config paper --batch 64 --threads 2
}

# docs/datasets.md, "Measured", the paragraphs after the table: the loader's rates on the PNG copy
# and on generated 256 x 256 JPEGs, and the paper network trained from the PNG folder.
# ~5 min: the PNG copy ~0.5; the loader on it ~0.3 (scanning 50,000 headers, 3 passes of 640 pictures
# for 1 and 2 workers); 2,000 JPEGs written and read ~0.5; the 200 batches of 16 ~3.5 (191 s of
# training on the docs' host, faster with bf16 on an AMX one, then 200 batches of validation and
# of the centre view).
part_png() {
  need "$convnet" "build it: make train-build"
  need "$loader" "build it: cmake --build build --target convnet_loader"
  png_folder
  # "medians of three passes of 640 pictures": --pictures 640 (the program's default is 2,000).
  record "$results/png_folder/loader_png.txt" "$loader" --folder "$work/cifar-png/train" --workers 1,2 --pictures 640
  rm -rf "$work/gen2k"
  record "$results/png_folder/loader_jpeg.txt" "$loader" --folder "$work/gen2k" --make 2000 --workers 1,2 --pictures 640
  # The docs' command, under /usr/bin/time -v for the memory, and with --eval centre: the figures are
  # the training rate and the validation accuracy, and the default views would add ten crops and the
  # mirror of 3,200 test pictures at 227 x 227 (about 38,000 passes of the paper network, ~4 min) to them.
  rm -rf "$work/runs/png-paper"
  record "$results/png_folder/paper_pipeline.txt" /usr/bin/time -v "$convnet" train --dataset "folder:$work/cifar-png" \
    --batch-size 16 --max-batches 200 --epochs 1 --eval centre --progress-every 50 --out "$work/runs/png-paper"
}

# docs/datasets.md, "Bounded memory": the same run on 20,000 generated 256 x 256 JPEGs (2.99 GB).
# ~7 min: writing the pictures ~1.5-2 (196,608 random draws and a JPEG encoding each), the loader's
# passes of the docs' command (3 x 2,000 pictures for 1 and for 2 workers) ~0.3, the run ~4.5.
part_png_memory() {
  need "$convnet" "build it: make train-build"
  need "$loader" "build it: cmake --build build --target convnet_loader"
  rm -rf "$work/gen20k" "$work/runs/gen20k"
  record "$results/png_folder/gen20k_loader.txt" "$loader" --folder "$work/gen20k" --make 20000
  record "$results/png_folder/gen20k_memory.txt" /usr/bin/time -v "$convnet" train --dataset "folder:$work/gen20k" \
    --batch-size 16 --max-batches 200 --epochs 1 --eval centre --progress-every 50 --out "$work/runs/gen20k"
}

# docs/datasets.md, the table: today's default recipe (cifar-half-bn, --precision auto) for 4 epochs
# (the one-cycle schedule planned for 4) from the binary files and from the PNG copy of the same
# pictures, with the table's commands: the same network should come out of both to within a seed's
# spread. ~10 min on 2 cores alone: each half ~5 (4 epochs of ~52 s plus loading, the embedding
# report and three test views; the PNG half decodes every picture each epoch at the same speed).
# Alone, never beside another run: two OpenMP programs on 2 cores slowed the binary half tenfold. The earlier table (the
# LRN default, 16 epochs, ~40 min) had no result file; 4 epochs keep the comparison affordable.
part_png_train() {
  need "$convnet" "build it: make train-build"
  png_folder
  local recipe=(--epochs 4)
  train_into "$results/png_folder/binary" "$work/runs/png-binary" --data "$cifar" "${recipe[@]}"
  # --config: a folder's default network is the paper's (227 x 227 inputs), not CIFAR's.
  train_into "$results/png_folder/png" "$work/runs/png-folder" --dataset "folder:$work/cifar-png" --config cifar-half-bn \
    --pipeline small --statistics-sample 50000 "${recipe[@]}"
}

# The default run (`make train`) alone, for its peak memory: the committed bf16_train/bf16/time.txt
# already gives the wall time (25:21 with building the program; 0:23:13 of training in report.txt),
# but its peak (1,280,320 kB) is that of the largest process make started, the compiler
# included, so it is not the trainer's. The program make train runs, as it runs it, without make.
# ~26 min (23 min of training, loading and the three test views). Named only.
part_default_run() {
  need "$convnet" "build it: make train-build"
  train_into "$results/default_run" "$work/runs/default" --data "$cifar"
}

# docs/fast.md: `convnet train --recipe fast` (the fast CIFAR network), a run per seed in
# $FAST_SEEDS (default 1) into fast_recipe/seed<N>/. ~14 min a seed on this 2-core host today
# (10 epochs of ~75 s at ~650 img/s, the whitening, validation and the three test views). Named only.
part_fast() {
  need "$convnet" "build it: make train-build"
  local seed
  for seed in ${FAST_SEEDS:-1}; do
    train_into "$results/fast_recipe/seed$seed" "$work/runs/fast-seed$seed" --recipe fast --data "$cifar" --seed "$seed"
  done
}

# docs/fast.md, where the time goes: the fast network's training step at the recipe's batch, every
# layer's forward and backward (convnet_step --per-layer), bf16 where the host has AMX. ~1 min. Named only.
part_fast_step() {
  need "$step" "build it: cmake --build build --target convnet_step"
  record "$results/fast_recipe/step.txt" "$step" --config fast-cifar --mode train --batch 512 --steps 5 --warmup 2 \
    --precision auto --per-layer
}

# docs/fast.md: the same recipe written for PyTorch (benchmarks/pytorch_fast_cifar.py, bf16 autocast
# and channels_last on an AMX host), a run per seed in $FAST_SEEDS into fast_recipe/pytorch_seed<N>/:
# time.txt (its log and time -v), curve.csv and summary.json. ~18 min a seed here. Named only.
part_fast_pytorch() {
  local seed out
  for seed in ${FAST_SEEDS:-1}; do
    out="$work/runs/pytorch-fast-seed$seed"
    rm -rf "$out"
    record "$results/fast_recipe/pytorch_seed$seed/time.txt" /usr/bin/time -v "$python" benchmarks/pytorch_fast_cifar.py \
      --data "$cifar" --threads 2 --precision auto --seed "$seed" --out "$out"
    cp "$out/curve.csv" "$out/summary.json" "$results/fast_recipe/pytorch_seed$seed/" 2>/dev/null || failed=1
  done
}

# docs/performance.md, the tile path (kernels/conv_tiles.hpp): a training step of the fast CIFAR
# network (batch 512), cifar-half-bn (128) and paper (64) at bf16, with the convolutions as Auto
# takes them (the tiles where they apply), then forced to Winograd and to the direct path (where
# they fit; the rest direct), every layer timed. Needs AMX for the tiles. ~4 min. Named only.
part_tiles() {
  need "$step" "build it: cmake --build build --target convnet_step"
  local file=$results/conv_tiles/steps.txt net batch conv
  header "$file" "convnet_step --mode train --precision auto --per-layer --steps 5 --warmup 1, per network and --conv"
  for net in fast-cifar:512 cifar-half-bn:128 paper:64; do
    batch=${net#*:}
    for conv in auto winograd direct; do
      echo "== $step --config ${net%%:*} --mode train --batch $batch --steps 5 --warmup 1 --precision auto --per-layer --conv $conv" >> "$file"
      run_into "$file" "$step" --config "${net%%:*}" --mode train --batch "$batch" --steps 5 --warmup 1 --precision auto \
        --per-layer --conv "$conv"
    done
  done
}

# docs/fast.md's ablation: `convnet train --recipe fast` at seed 1 less one ingredient, one run each
# (seed1/ is the whole recipe; its report's centre row is the run without test-time views), into
# fast_recipe/ablation/<name>/ for each name in $FAST_ABLATIONS. ~14 min a run. Named only.
#   no-whitening   --whiten 0: the first layer trains from its random start
#   no-lookahead   --no-lookahead: no slow weights
#   no-smoothing   --label-smoothing 0
#   random-flip    --augment crop,flip: a fair coin per picture instead of alternating flips
part_fast_ablation() {
  need "$convnet" "build it: make train-build"
  local name
  for name in ${FAST_ABLATIONS:-no-whitening no-lookahead no-smoothing random-flip}; do
    local change=()
    case $name in
      no-whitening) change=(--whiten 0) ;;
      no-lookahead) change=(--no-lookahead) ;;
      no-smoothing) change=(--label-smoothing 0) ;;
      random-flip) change=(--augment "crop,flip") ;;
      *) echo "readme_figures: unknown ablation '$name'" >&2; failed=1; continue ;;
    esac
    train_into "$results/fast_recipe/ablation/$name" "$work/runs/fast-ablation-$name" --recipe fast --data "$cifar" \
      --seed 1 "${change[@]}"
  done
}

# docs/fast.md, the fp32 clause of issue 42 (<= 30 minutes on a 2-core AVX-512 host): the step and the
# whole run with every product in fp32 (FMA, no bf16), into fast_recipe/fp32/. The host line of each
# file says which host it was. ~15 min a seed on the AVX-512 Zen 5 host (~78 s an epoch). Named only.
part_fast_fp32() {
  need "$convnet" "build it: make train-build"
  need "$step" "build it: cmake --build build --target convnet_step"
  if [ "${FAST_STEP:-1}" != 0 ]; then
    record "$results/fast_recipe/fp32/step.txt" "$step" --config fast-cifar --mode train --batch 512 --steps 5 --warmup 2 \
      --precision fp32 --per-layer
  fi
  local seed
  for seed in ${FAST_SEEDS:-1}; do
    train_into "$results/fast_recipe/fp32/seed$seed" "$work/runs/fast-fp32-seed$seed" --recipe fast --data "$cifar" \
      --seed "$seed" --precision fp32
  done
}

# The peer of fast-fp32: benchmarks/pytorch_fast_cifar.py with --precision fp32 (oneDNN's fp32
# convolutions, channels_last) with glibc told to keep its memory (both measured faster on the Zen 5
# host: fast_recipe/fp32/pytorch_ways.txt) into fast_recipe/fp32/pytorch_seed<N>/. Named only.
part_fast_fp32_pytorch() {
  local seed out
  for seed in ${FAST_SEEDS:-1}; do
    out="$work/runs/pytorch-fast-fp32-seed$seed"
    rm -rf "$out"
    record "$results/fast_recipe/fp32/pytorch_seed$seed/time.txt" env MALLOC_MMAP_THRESHOLD_=17179869184 \
      MALLOC_TRIM_THRESHOLD_=17179869184 MALLOC_TOP_PAD_=1073741824 /usr/bin/time -v "$python" benchmarks/pytorch_fast_cifar.py \
      --data "$cifar" --threads 2 --precision fp32 --seed "$seed" --out "$out"
    cp "$out/curve.csv" "$out/summary.json" "$results/fast_recipe/fp32/pytorch_seed$seed/" 2>/dev/null || failed=1
  done
}

# docs/fast.md, where the accuracy stands: the recipe at seed 1 with more epochs ($FAST_EPOCHS, default
# 20; the schedule stretches with them), into fast_recipe/epochs<N>/. ~26 min for 20 epochs on the
# Zen 5 host. Named only.
part_fast_long() {
  need "$convnet" "build it: make train-build"
  local epochs=${FAST_EPOCHS:-20}
  train_into "$results/fast_recipe/epochs$epochs" "$work/runs/fast-epochs$epochs" --recipe fast --data "$cifar" \
    --seed 1 --epochs "$epochs"
}

# docs/fast.md, what this copy of CIFAR-10 allows: the speed record's recipe with every setting as
# published (batch 1,024, all 50,000 pictures, reflect padding, ...: the script's header lists how it
# differs from ours), trained in PyTorch in fp32, into fast_recipe/published/seed<N>.txt. ~25 min a
# seed on the Zen 5 host. Named only.
part_fast_published() {
  local seed
  for seed in ${FAST_SEEDS:-1}; do
    record "$results/fast_recipe/published/seed$seed.txt" env MALLOC_MMAP_THRESHOLD_=17179869184 \
      MALLOC_TRIM_THRESHOLD_=17179869184 MALLOC_TOP_PAD_=1073741824 /usr/bin/time -v "$python" \
      benchmarks/pytorch_published_recipe.py --data "$cifar" --threads 2 --seed "$seed" --out "$work/runs/published-seed$seed"
  done
}

# docs/fast.md's plots: validation accuracy against wall-clock minutes, drawn from the committed
# result files of the parts above (no training): the AMX host's bf16 runs (fast, fast-pytorch) and the
# Zen 5 host's fp32 runs (fast-fp32, fast-fp32-pytorch, fast-long). Named only.
part_fast_plot() {
  local plot=$build/benchmarks/convnet_accuracy_plot f=$results/fast_recipe
  need "$plot" "build it: cmake --build build --target convnet_accuracy_plot"
  record "$f/plot.txt" "$plot" --out "$f/plot.png" --title "fast recipe, bf16, 2-core AMX host, seed 1" \
    --ours "convnet, 10 epochs (90.21% test)=$f/seed1" --pytorch "PyTorch 1.13, 10 epochs (90.52% test)=$f/pytorch_seed1"
  record "$f/fp32/plot.txt" "$plot" --out "$f/fp32/plot.png" --title "fast recipe, fp32, 2-core Zen 5, seed 1" \
    --ours "convnet, 10 epochs (90.50% test)=$f/fp32/seed1" \
    --pytorch "PyTorch 1.13, 10 epochs (90.43% test)=$f/fp32/pytorch_seed1" \
    --ours "convnet, 20 epochs (91.00% test)=$f/epochs20"
}

# ---- main -----------------------------------------------------------------------------------

case "${1:-}" in -h|--help) echo "$usage"; exit 0 ;; esac
parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=("${default_parts[@]}")
for part in "${parts[@]}"; do
  [[ " ${all_parts[*]} " == *" $part "* ]] || { echo "readme_figures: unknown part '$part'; $usage" >&2; exit 2; }
done

# Two copies of this script at once would measure each other.
mkdir -p "$work"
exec 9> "$work/.lock"
flock -n 9 || { echo "readme_figures: another readme_figures.sh holds $work/.lock" >&2; exit 1; }

# Figures from a debug build or from binaries older than the sources would be wrong, not slow.
if ! grep -q '^CMAKE_BUILD_TYPE:STRING=Release$' "$build/CMakeCache.txt" 2>/dev/null; then
  echo "readme_figures: $build is not a Release build" >&2
  exit 1
fi
for bin in "$convnet" "$step" "$bench" "$loader" "$mpi_step"; do
  [ -e "$bin" ] || continue
  newer=$(find include apps benchmarks \( -name '*.hpp' -o -name '*.cpp' \) -newer "$bin" -print -quit)
  [ -z "$newer" ] || echo "readme_figures: warning: $newer is newer than $bin; rebuild first?" >&2
done
read -r load _ < /proc/loadavg
if awk -v l="$load" 'BEGIN { exit !(l > 0.5) }'; then
  echo "readme_figures: warning: load average $load: something else is running, and every figure will show it" >&2
fi

for part in "${parts[@]}"; do
  start=$SECONDS
  echo "readme_figures: $part ..."
  "part_${part//-/_}"
  echo "readme_figures: $part took $(( (SECONDS - start + 30) / 60 )) min"
done
echo "readme_figures: all parts took $(( (SECONDS + 30) / 60 )) min; the files are under $results/"
exit "$failed"
