#!/usr/bin/env python3
"""Accuracy against wall-clock minutes, convnet beside PyTorch, as a Markdown table.

    python3 benchmarks/accuracy_curve.py --ours runs/cifar10 --pytorch runs/pytorch_cifar

--ours is a `convnet train` output folder (metrics.csv: validation accuracy per
epoch; timing.csv: seconds per epoch, training and validation), --pytorch is
pytorch_cifar_time.py's (curve.csv: minutes since its start per epoch;
summary.json: its test figures). Our minutes are the running sum of the epoch
times, so they leave out reading the data before the first epoch (seconds);
PyTorch's count from its start, its 35-step timing probe included. A row per
epoch of the longer run; the last rows give the test figures of each side's
best-validation weights. There is no matplotlib here, so the curve is a table.
Needs only the standard library.
"""
import argparse
import csv
import json
import os
import re
import sys


def read_csv(path):
    try:
        with open(path) as f:
            return list(csv.DictReader(f))
    except OSError as e:
        sys.exit("accuracy_curve: cannot read %s: %s" % (path, e.strerror))


def ours(folder):
    """(minutes, validation accuracy) per epoch, and the report's test figures by view."""
    metrics, timing = read_csv(os.path.join(folder, "metrics.csv")), read_csv(os.path.join(folder, "timing.csv"))
    if len(metrics) != len(timing):
        sys.exit("accuracy_curve: %s has %d epochs in metrics.csv but %d in timing.csv"
                 % (folder, len(metrics), len(timing)))
    curve, seconds = [], 0.0
    for m, t in zip(metrics, timing):
        seconds += float(t["seconds"])
        curve.append((seconds / 60, float(m["val_accuracy"])))
    tests = {}
    report = os.path.join(folder, "report.txt")
    if os.path.exists(report):
        for line in open(report):
            hit = re.match(r"\s*test top-1(?: \(([^)]*)\))?: ([0-9.]+)%", line)
            if hit:
                view = (hit.group(1) or "centre").split(",")[0]  # "test top-1 (flip, 2 views): 85.59%"
                tests.setdefault(view, float(hit.group(2)) / 100)
    return curve, tests


def pytorch(folder):
    curve = [(float(r["minutes"]), float(r["val_accuracy"])) for r in read_csv(os.path.join(folder, "curve.csv"))]
    path = os.path.join(folder, "summary.json")
    summary = json.load(open(path)) if os.path.exists(path) else {}
    return curve, summary


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ours", default="runs/cifar10")
    p.add_argument("--pytorch", default="runs/pytorch_cifar")
    a = p.parse_args()
    mine, tests = ours(a.ours)
    theirs, summary = pytorch(a.pytorch)
    cell = lambda c, i: ("%.1f | %.2f%%" % (c[i][0], 100 * c[i][1])) if i < len(c) else "— | —"
    print("| epoch | convnet minutes | convnet validation | PyTorch minutes | PyTorch validation |")
    print("|---|---|---|---|---|")
    for i in range(max(len(mine), len(theirs))):
        print("| %d | %s | %s |" % (i + 1, cell(mine, i), cell(theirs, i)))
    fmt = lambda v: "%.2f%%" % (100 * v) if isinstance(v, float) else "—"
    print("| test, centre | | %s | | %s |" % (fmt(tests.get("centre")), fmt(summary.get("test_top1"))))
    print("| test, with the mirror | | %s | | %s |" % (fmt(tests.get("flip")), fmt(summary.get("test_top1_flip"))))


if __name__ == "__main__":
    main()
