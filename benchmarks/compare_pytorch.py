#!/usr/bin/env python3
"""Side-by-side speed and memory of convnet and PyTorch on the same AlexNets.

Builds the three networks of convnet's AlexNet header in PyTorch (LRN in the
paper's formula: size 5, alpha 5e-4 in PyTorch's alpha/n units, beta 0.75,
k 2), then for each case runs ours (build/benchmarks/convnet_step) and theirs
alternately, each in its own process under /usr/bin/time -v, on the same
thread count, and prints medians of images/s, the ratio ours/PyTorch, and
peak resident memory.

    python3 benchmarks/compare_pytorch.py [--threads 2] [--repeats 3] [--quick]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

CONFIGS = {
    # name: (input side, [(out, kernel, stride, pad, grouped)], fc width, classes)
    "paper": (227, [(96, 11, 4, 0), (256, 5, 1, 2), (384, 3, 1, 1), (384, 3, 1, 1), (256, 3, 1, 1)], 4096, 1000),
    "cifar": (32, [(64, 5, 1, 2), (192, 5, 1, 2), (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1)], 1024, 10),
    "cifar-half": (32, [(32, 5, 1, 2), (96, 5, 1, 2), (192, 3, 1, 1), (128, 3, 1, 1), (128, 3, 1, 1)], 512, 10),
}

# (config, mode, batch): the table.
CASES = [
    ("paper", "train", 64), ("cifar", "train", 128), ("cifar-half", "train", 128),
    ("paper", "infer", 64), ("cifar", "infer", 64), ("cifar-half", "infer", 64),
    ("paper", "infer", 1), ("cifar", "infer", 1), ("cifar-half", "infer", 1),
]


def torch_alexnet(name):
    import torch.nn as nn
    side, convs, fc, classes = CONFIGS[name]
    layers, channels = [], 3
    for i, (out, k, s, p) in enumerate(convs):
        layers += [nn.Conv2d(channels, out, k, s, p), nn.ReLU(inplace=True)]
        if i < 2:
            layers.append(nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0))
        if i in (0, 1, 4):
            layers.append(nn.MaxPool2d(3, 2))
        channels = out
    size = side
    for i, (out, k, s, p) in enumerate(convs):
        size = (size + 2 * p - k) // s + 1
        if i in (0, 1, 4):
            size = (size - 3) // 2 + 1
    layers += [nn.Flatten(), nn.Linear(channels * size * size, fc), nn.ReLU(inplace=True), nn.Dropout(0.5),
               nn.Linear(fc, fc), nn.ReLU(inplace=True), nn.Dropout(0.5), nn.Linear(fc, classes)]
    return nn.Sequential(*layers), side, classes


def torch_worker(config, mode, batch, steps, warmup, threads):
    import torch
    torch.set_num_threads(threads)
    net, side, classes = torch_alexnet(config)
    x = torch.randn(batch, 3, side, side)
    y = torch.arange(batch) % classes
    opt = torch.optim.SGD(net.parameters(), lr=1e-4, momentum=0.9, weight_decay=5e-4, nesterov=True)
    loss_fn = torch.nn.CrossEntropyLoss()
    if mode == "infer":
        net.eval()
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        if mode == "train":
            opt.zero_grad()
            loss_fn(net(x), y).backward()
            opt.step()
        else:
            with torch.no_grad():
                net(x)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(f"pytorch config={config} mode={mode} batch={batch} threads={threads} median_s={median:.6f} "
          f"images_per_s={batch / median:.2f}")


def measure(command, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    run = subprocess.run(["/usr/bin/time", "-v"] + command, capture_output=True, text=True, env=env)
    if run.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{run.stdout}\n{run.stderr}")
    rate = float(re.search(r"images_per_s=([\d.]+)", run.stdout).group(1))
    rss_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr).group(1))
    return rate, rss_kib / 1024.0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ours", default=os.path.join(os.path.dirname(__file__), "..", "build", "benchmarks",
                                                       "convnet_step"))
    parser.add_argument("--quick", action="store_true", help="skip the paper network (minutes per case)")
    parser.add_argument("--configs", default="", help="comma-separated networks to run (default: all)")
    parser.add_argument("--worker", nargs=3, metavar=("CONFIG", "MODE", "BATCH"), help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=0, help="timed steps per process (default: by case)")
    args = parser.parse_args()

    if args.worker:
        config, mode, batch = args.worker
        steps = args.steps or (3 if config == "paper" and mode == "train" else 8)
        torch_worker(config, mode, int(batch), steps, 1, args.threads)
        return 0
    try:
        import torch  # noqa: F401
    except ImportError:
        print("compare_pytorch: PyTorch is not installed (Debian: apt-get install python3-torch); "
              "skipping the side-by-side comparison.")
        return 0
    if not os.path.exists(args.ours):
        print(f"compare_pytorch: {args.ours} not found; build first (make bench)", file=sys.stderr)
        return 1

    print(f"{args.threads} threads, {args.repeats} alternating runs per case, medians\n")
    header = f"{'network':<11} {'mode':<6} {'batch':>5} {'ours img/s':>11} {'PyTorch img/s':>14} {'ours/PyTorch':>13} " \
             f"{'ours MiB':>9} {'PyTorch MiB':>12}"
    print(header)
    print("-" * len(header))
    for config, mode, batch in CASES:
        if args.quick and config == "paper":
            continue
        if args.configs and config not in args.configs.split(","):
            continue
        steps = args.steps or (3 if config == "paper" and mode == "train" else 8)
        ours_cmd = [args.ours, "--config", config, "--mode", mode, "--batch", str(batch), "--steps", str(steps),
                    "--warmup", "1", "--threads", str(args.threads)]
        theirs_cmd = [sys.executable, os.path.abspath(__file__), "--worker", config, mode, str(batch),
                      "--threads", str(args.threads), "--steps", str(steps)]
        ours, theirs = [], []
        for _ in range(args.repeats):
            ours.append(measure(ours_cmd, args.threads))
            theirs.append(measure(theirs_cmd, args.threads))
        o_rate = statistics.median(r for r, _ in ours)
        t_rate = statistics.median(r for r, _ in theirs)
        o_mem = statistics.median(m for _, m in ours)
        t_mem = statistics.median(m for _, m in theirs)
        print(f"{config:<11} {mode:<6} {batch:>5} {o_rate:>11.1f} {t_rate:>14.1f} {o_rate / t_rate:>12.2f}x "
              f"{o_mem:>9.0f} {t_mem:>12.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
