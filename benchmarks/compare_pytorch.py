#!/usr/bin/env python3
"""Side-by-side speed and memory of convnet and PyTorch on the same AlexNets.

Builds the three networks of convnet's AlexNet header in PyTorch (LRN in the
paper's formula: size 5, alpha 5e-4 in PyTorch's alpha/n units, beta 0.75,
k 2), then for each case runs ours (build/benchmarks/convnet_step) and theirs
alternately, each in its own process under /usr/bin/time -v, on the same
thread count, and prints medians of images/s, the ratio ours/PyTorch, peak
resident memory, and our effective share of the machine's peak.

PyTorch is run the ways a user tuning it would: with glibc's default malloc,
with glibc told to keep its memory (PyTorch's allocation churn otherwise
costs it a page fault per fresh page every step), and with tcmalloc preloaded
when Debian's libtcmalloc-minimal4 is installed; and, on a host with bf16
arithmetic (avx512_bf16 or AMX in /proc/cpuinfo), under
torch.cpu.amp.autocast(dtype=torch.bfloat16) with channels_last tensors and the
fastest of those allocators (oneDNN's AMX convolutions). The fastest of all is
the peer of each row, and the table says which it was. --precision runs ours
at fp32, bf16 or auto (convnet_step --precision).

    python3 benchmarks/compare_pytorch.py [--threads 2] [--repeats 3] [--quick] [--precision bf16]
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


def torch_worker(config, mode, batch, steps, warmup, threads, bf16=False):
    import contextlib
    import torch
    torch.set_num_threads(threads)
    net, side, classes = torch_alexnet(config)
    x = torch.randn(batch, 3, side, side)
    if bf16:  # the recipe PyTorch documents for CPUs: channels_last, autocast to bf16
        net = net.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    arithmetic = (lambda: torch.cpu.amp.autocast(dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
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
            with arithmetic():
                loss = loss_fn(net(x), y)
            loss.backward()
            opt.step()
        else:
            with torch.no_grad(), arithmetic():
                net(x)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(f"pytorch config={config} mode={mode} batch={batch} threads={threads} median_s={median:.6f} "
          f"images_per_s={batch / median:.2f}")


# How PyTorch may be run: name -> extra environment.
GLIBC_KEEP = {"MALLOC_MMAP_THRESHOLD_": "17179869184", "MALLOC_TRIM_THRESHOLD_": "17179869184",
              "MALLOC_TOP_PAD_": "1073741824"}
TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"


def host_has_bf16():
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


# name -> (extra environment, bf16 autocast)
def pytorch_variants():
    variants = [("default malloc", {}, False), ("glibc kept", GLIBC_KEEP, False)]
    if os.path.exists(TCMALLOC):
        variants.append(("tcmalloc", {"LD_PRELOAD": TCMALLOC}, False))
    if host_has_bf16():
        fastest = ("tcmalloc", {"LD_PRELOAD": TCMALLOC}) if os.path.exists(TCMALLOC) else ("glibc kept", GLIBC_KEEP)
        variants.append((f"bf16 autocast, channels_last, {fastest[0]}", fastest[1], True))
    return variants


def measure(command, threads, extra_env=None):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), **(extra_env or {}))
    run = subprocess.run(["/usr/bin/time", "-v"] + command, capture_output=True, text=True, env=env)
    if run.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{run.stdout}\n{run.stderr}")
    rate = float(re.search(r"images_per_s=([\d.]+)", run.stdout).group(1))
    rss_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr).group(1))
    share = re.search(r"peak_share=([\d.]+)", run.stdout)
    return rate, rss_kib / 1024.0, float(share.group(1)) if share else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ours", default=os.path.join(os.path.dirname(__file__), "..", "build", "benchmarks",
                                                       "convnet_step"))
    parser.add_argument("--quick", action="store_true", help="skip the paper network (minutes per case)")
    parser.add_argument("--configs", default="", help="comma-separated networks to run (default: all)")
    parser.add_argument("--cases", default="", help="comma-separated NETWORK:MODE:BATCH rows to run (default: all)")
    parser.add_argument("--worker", nargs=3, metavar=("CONFIG", "MODE", "BATCH"), help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=0, help="timed steps per process (default: by case)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "auto"], help="ours: the products' arithmetic")
    parser.add_argument("--torch-bf16", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        config, mode, batch = args.worker
        steps = args.steps or (3 if config == "paper" and mode == "train" else 8)
        torch_worker(config, mode, int(batch), steps, 1, args.threads, args.torch_bf16)
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

    variants = pytorch_variants()
    print(f"{args.threads} threads, {args.repeats} alternating runs per case, medians; PyTorch run with "
          f"{'; '.join(name for name, _, _ in variants)}: the fastest is the peer; ours at {args.precision}\n")
    header = f"| network | mode | batch | ours img/s | PyTorch img/s | peer | ours/PyTorch | ours MiB | " \
             f"PyTorch MiB | ours % of peak |"
    print(header)
    print("|---|---|---:|---:|---:|---|---:|---:|---:|---:|")
    for config, mode, batch in CASES:
        if args.quick and config == "paper":
            continue
        if args.configs and config not in args.configs.split(","):
            continue
        if args.cases and f"{config}:{mode}:{batch}" not in args.cases.split(","):
            continue
        steps = args.steps or (3 if config == "paper" and mode == "train" else 8)
        ours_cmd = [args.ours, "--config", config, "--mode", mode, "--batch", str(batch), "--steps", str(steps),
                    "--warmup", "1", "--threads", str(args.threads), "--precision", args.precision]
        theirs_cmd = [sys.executable, os.path.abspath(__file__), "--worker", config, mode, str(batch),
                      "--threads", str(args.threads), "--steps", str(steps)]
        ours, theirs = [], {name: [] for name, _, _ in variants}
        for _ in range(args.repeats):
            ours.append(measure(ours_cmd, args.threads))
            for name, env, bf16 in variants:
                theirs[name].append(measure(theirs_cmd + (["--torch-bf16"] if bf16 else []), args.threads, env))
        o_rate = statistics.median(r[0] for r in ours)
        o_mem = statistics.median(r[1] for r in ours)
        o_share = statistics.median(r[2] for r in ours)
        peer = max(theirs, key=lambda name: statistics.median(r[0] for r in theirs[name]))
        t_rate = statistics.median(r[0] for r in theirs[peer])
        t_mem = statistics.median(r[1] for r in theirs[peer])
        print(f"| {config} | {mode} | {batch} | {o_rate:.1f} | {t_rate:.1f} | {peer} | {o_rate / t_rate:.2f}x | "
              f"{o_mem:.0f} | {t_mem:.0f} | {100 * o_share:.0f}% |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
