#!/usr/bin/env python3
"""Data-parallel training against one process, side by side on one machine.

Runs build/benchmarks/convnet_mpi_step as 1 process x 1 thread, 1 process x T threads and
N ranks x 1 thread (mpirun --oversubscribe), alternating, --repeats times each, and prints a
Markdown table of medians: images/s, the step with and without overlapping the sums, and
one blocking sum of every gradient. Then, from the measured step and sum, a projection for
more machines (ring allreduce: each rank sends and receives 2 (N-1)/N of the gradients).

  benchmarks/mpi_scaling.py --config cifar --batch 128 [--ranks 2] [--repeats 3]
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys


def run(command, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run(command, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{out.stdout}\n{out.stderr}")
    line = next(l for l in out.stdout.splitlines() if l.startswith("convnet_mpi "))
    return {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", line) if k != "config"}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="cifar")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--threads", type=int, default=2, help="threads of the single process")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", "build", "benchmarks",
                                                     "convnet_mpi_step"))
    args = p.parse_args()
    mpirun = shutil.which("mpirun")
    if not mpirun or not os.path.exists(args.binary):
        print("mpi_scaling: needs mpirun (openmpi-bin) and convnet_mpi_step (build with libopenmpi-dev)")
        return 1
    common = ["--config", args.config, "--batch", str(args.batch), "--steps", str(args.steps), "--warmup", "1"]
    root = ["--allow-run-as-root"] if os.geteuid() == 0 else []
    cases = [
        ("1 process x 1 thread", [args.binary, *common, "--threads", "1"], 1),
        (f"1 process x {args.threads} threads", [args.binary, *common, "--threads", str(args.threads)], args.threads),
        (f"{args.ranks} ranks x 1 thread", [mpirun, "--oversubscribe", *root, "-x", "OMP_NUM_THREADS=1", "-np",
                                            str(args.ranks), args.binary, *common, "--threads", "1"], 1),
    ]
    results = {name: [] for name, _, _ in cases}
    for _ in range(args.repeats):
        for name, command, threads in cases:
            results[name].append(run(command, threads))
    med = lambda name, key: statistics.median(r[key] for r in results[name])
    print(f"`{args.config}` training, global batch {args.batch}, {args.repeats} alternating runs, medians\n")
    print("| run | images/s | step s | step s, sums after backward | one sum of all gradients s |")
    print("|---|---:|---:|---:|---:|")
    for name, _, _ in cases:
        sum_s = med(name, "allreduce_s")
        print(f"| {name} | {med(name, 'images_per_s'):.1f} | {med(name, 'median_s'):.4f} | "
              f"{med(name, 'serial_median_s'):.4f} | {sum_s:.4f} |" if sum_s > 0 else
              f"| {name} | {med(name, 'images_per_s'):.1f} | {med(name, 'median_s'):.4f} | - | - |")
    mpi = cases[2][0]
    floats = med(mpi, "gradient_floats")
    print(f"\ngradients: {floats:.0f} floats ({floats * 4 / 1e6:.1f} MB); a blocking sum of them between "
          f"{args.ranks} local ranks: {med(mpi, 'allreduce_s') * 1e3:.1f} ms, "
          f"{100 * med(mpi, 'allreduce_s') / med(mpi, 'median_s'):.1f}% of the step; overlap: step "
          f"{med(mpi, 'serial_median_s'):.4f} s -> {med(mpi, 'median_s'):.4f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
