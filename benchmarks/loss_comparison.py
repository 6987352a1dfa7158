#!/usr/bin/env python3
"""Trains AlexNet on CIFAR-10 once per loss function, with the same seed,
recipe and budget, and writes a Markdown table of test accuracy (the study's
loss comparison, its Figure 12).

    python3 benchmarks/loss_comparison.py --data ../shared/data/cifar-10-batches-bin \
        --epochs 4 --max-batches 150 --out runs/loss_comparison

Each run is build/examples/cifar10_train with --loss NAME and everything else
at the trainer's defaults (cifar-half, SGD Nesterov, one-cycle 0.05, batch
128, crop + flip) unless --trainer-args says otherwise. A run that stops on a
non-finite loss is reported as such, not left out. Needs only the standard
library.
"""
import argparse
import os
import re
import subprocess
import sys
import time

# The study's comparison: each loss alone, and the combinations it lists.
DEFAULT_LOSSES = [
    ("cross-entropy", ""),
    ("hinge", ""),
    ("squared-hinge", ""),
    ("cosine", ""),
    ("cross-entropy+hinge", "1,1"),
    ("cross-entropy+triplet", "1,1"),
]


def parse_report(path):
    text = open(path).read()
    top1 = re.search(r"test top-1: ([0-9.]+)%", text)
    top5 = re.search(r"test top-5: ([0-9.]+)%", text)
    best = re.search(r"validation accuracy ([0-9.]+)%", text)
    return (float(top1.group(1)), float(top5.group(1)), float(best.group(1)))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trainer", default=os.path.join(root, "build", "examples", "cifar10_train"))
    p.add_argument("--data", default=os.environ.get("CIFAR10_DIR", "data/cifar-10-batches-bin"))
    p.add_argument("--out", default="runs/loss_comparison")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--max-batches", type=int, default=150, help="training batches per epoch (0 = all 352)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--losses", default="",
                   help="space-separated NAME or NAME:WEIGHTS entries, e.g. 'hinge cross-entropy+triplet:1,0.5' "
                        "(default: the study's list)")
    p.add_argument("--trainer-args", default="", help="further flags for every run")
    a = p.parse_args()

    if not os.access(a.trainer, os.X_OK):
        sys.exit("loss_comparison: no trainer at %s (build first: make build)" % a.trainer)
    losses = DEFAULT_LOSSES
    if a.losses:
        losses = [(e.split(":")[0], e.split(":")[1] if ":" in e else "") for e in a.losses.split()]
    os.makedirs(a.out, exist_ok=True)

    rows = []
    for name, weights in losses:
        out = os.path.join(a.out, name)
        cmd = [a.trainer, "--data", a.data, "--out", out, "--loss", name, "--epochs", str(a.epochs),
               "--seed", str(a.seed)]
        if a.max_batches > 0:
            cmd += ["--max-batches", str(a.max_batches)]
        if weights:
            cmd += ["--loss-weights", weights]
        cmd += a.trainer_args.split()
        print("==> " + " ".join(cmd), flush=True)
        start = time.time()
        run = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        minutes = (time.time() - start) / 60
        open(os.path.join(a.out, name + ".log"), "w").write(run.stdout)
        label = name + (" (" + weights + ")" if weights else "")
        if run.returncode == 0:
            top1, top5, val = parse_report(os.path.join(out, "report.txt"))
            rows.append((label, "%.2f%%" % top1, "%.2f%%" % top5, "%.2f%%" % val, "%.1f" % minutes))
            print("    test top-1 %.2f%%, top-5 %.2f%% (%.1f min)" % (top1, top5, minutes), flush=True)
        else:
            last = [l for l in run.stdout.splitlines() if l.strip()][-1:] or ["(no output)"]
            rows.append((label, "failed", "", "", "%.1f" % minutes))
            print("    failed (exit %d): %s" % (run.returncode, last[0]), flush=True)

    budget = "%d epochs x %s batches of 128" % (a.epochs, a.max_batches if a.max_batches > 0 else "all")
    lines = ["| loss | test top-1 | test top-5 | best validation top-1 | minutes |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    table = "\n".join(lines)
    header = ("AlexNet cifar-half on CIFAR-10, seed %d, %s, trainer defaults otherwise%s.\n\n"
              % (a.seed, budget, (" plus " + a.trainer_args) if a.trainer_args else ""))
    path = os.path.join(a.out, "loss_comparison.md")
    open(path, "w").write(header + table + "\n")
    print("\n" + header + table + "\n\nwrote " + path)
    return 0 if all(r[1] != "failed" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
