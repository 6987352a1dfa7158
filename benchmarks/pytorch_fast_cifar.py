#!/usr/bin/env python3
"""PyTorch's side of the fast-recipe comparison (docs/fast.md, issue 42): the fast CIFAR network
(tools/convnet_torch.py's torch_fast_cifar, layer for layer convnet's models/fast_cifar.hpp) and the
recipe of `convnet train --recipe fast` (include/convnet/train/fast_recipe.hpp), written for
PyTorch by us, trained on the CPU on the same CIFAR-10 files with the same threads, writing the
validation accuracy against wall minutes after every epoch and the test accuracy at the end.

    /usr/bin/python3 benchmarks/pytorch_fast_cifar.py --data ../shared/data/cifar-10-batches-bin \\
        --threads 2 --precision auto --out runs/pytorch_fast

The recipe, as convnet's: the first 49,000 training pictures train and the last 1,000 validate;
per-channel normalisation; the whitening layer from the first 5,000 training pictures' 2 x 2 patches
(eigenvectors over sqrt(eigenvalue + 5e-4), and their negatives), frozen; Dirac starts; Nesterov SGD
with momentum 0.85 at 11.5 per 1,024 examples over 1 + 1 / (1 - momentum), the batch norms' biases
at 64 times the rate, weight decay 0.0153 per 1,024 examples (decoupled: the same shrinking per step
whatever the rate); the triangle from 0.2 to 1 at 23% of the steps and down to 0.07; cross-entropy
with label smoothing 0.2; lookahead every 5 steps with decay 0.95^5 (t / T)^3 and the slow weights
taken at each epoch's end; random translations of up to 2 pixels (crops of the zero-padded picture)
and alternating flips; at test, the average of the softmax over the picture, its mirror, and both
moved a pixel up-left and down-right (zero filled), as convnet's flip-translate views.

--precision: fp32, bf16 (torch.autocast on the CPU), or auto (bf16 where the CPU has AMX, as
convnet's default). --layout: channels_last or nchw for the network and its inputs; auto takes
channels_last (oneDNN's blocked convolutions without reorders): what the bf16 peer always used, and
measured faster in fp32 too (benchmarks/results/fast_recipe/fp32/pytorch_ways.txt). The clock runs
from before the data is read to the end of the test evaluation. Writes OUT/curve.csv (epoch,
minutes, train loss, validation accuracy) and OUT/summary.json. Needs torch and numpy; only reads
the data.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools"))
sys.path.insert(0, HERE)
from pytorch_cifar_time import read_cifar  # noqa: E402  (the binary files as uint8 arrays, checked)


def has_amx():
    try:
        return "amx_bf16" in open("/proc/cpuinfo").read()
    except OSError:
        return False


def whitening_filters(torch, pictures, eps=5e-4):
    """2 x 2 patches' second moment, eigenvectors / sqrt(eigenvalue + eps), largest first, then negated."""
    patches = pictures.unfold(2, 2, 1).unfold(3, 2, 1)               # N, C, 31, 31, 2, 2
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, 12).double()  # channel, row, column
    moment = patches.T @ patches / patches.shape[0]
    values, vectors = torch.linalg.eigh(moment)
    order = torch.argsort(values, descending=True)
    filters = (vectors[:, order] / torch.sqrt(values[order].clamp(min=0) + eps)).T.reshape(12, 3, 2, 2)
    return torch.cat([filters, -filters]).float()


def start_weights(torch, model, pictures):
    """The recipe's start: the whitening layer from `pictures` (normalised, N x 3 x 32 x 32), frozen,
    and the first in_channels filters of each block convolution as the identity (Dirac)."""
    with torch.no_grad():
        model.whiten.weight.copy_(whitening_filters(torch, pictures))
        for name, m in model.named_modules():
            if name.startswith("conv"):
                torch.nn.init.dirac_(m.weight[:m.weight.shape[1]])
    model.whiten.weight.requires_grad_(False)


def recipe_sgd(torch, model, batch, momentum=0.85):
    """Nesterov SGD at 11.5 per 1,024 examples over 1 + 1 / (1 - momentum) for a summed loss, the batch
    norms' biases at 64 times the rate, weight decay 0.0153 per 1,024 examples (the same shrinking
    per step in every group, whatever its rate)."""
    per_kilo = 1024 * (1 + 1 / (1 - momentum))
    lr, decay = 11.5 / per_kilo, 0.0153 * batch / per_kilo
    biases = [q for name, q in model.named_parameters() if name.startswith("bn")]
    others = [q for name, q in model.named_parameters() if not name.startswith("bn") and q.requires_grad]
    return torch.optim.SGD([dict(params=biases, lr=64 * lr, weight_decay=decay / (64 * lr)),
                            dict(params=others, lr=lr, weight_decay=decay / lr)], momentum=momentum, nesterov=True)


class Lookahead:
    """The slow weights (every float of the state, running statistics included): a call moves them
    towards the network by 1 - decay and sets the network to them; decay 1 just takes them."""

    def __init__(self, torch, model):
        self.model = model
        self.slow = {k: v.detach().clone() for k, v in model.state_dict().items() if v.dtype == torch.float32}

    def __call__(self, decay):
        state = self.model.state_dict()
        for k, v in self.slow.items():
            v.lerp_(state[k], 1 - decay)
            state[k].copy_(v)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=os.environ.get("CIFAR10_DIR", "data/cifar-10-batches-bin"))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")
    p.add_argument("--layout", choices=["auto", "channels_last", "nchw"], default="auto")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max-batches", type=int, default=0, help="stop each epoch after N batches (a smoke test)")
    p.add_argument("--out", default="runs/pytorch_fast")
    a = p.parse_args()

    start = time.time()
    import torch
    import torch.nn.functional as F
    import convnet_torch as ct

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    bf16 = a.precision == "bf16" or (a.precision == "auto" and has_amx())
    x, y = read_cifar(a.data, ["data_batch_%d.bin" % i for i in range(1, 6)])
    tx, ty = read_cifar(a.data, ["test_batch.bin"])
    x = torch.from_numpy(x.astype(np.float32))
    mean = x[:49000].mean(dim=(0, 2, 3), keepdim=True)
    std = x[:49000].std(dim=(0, 2, 3), keepdim=True)
    normalise = lambda t: (t - mean) / std  # noqa: E731
    train_x, train_y = normalise(x[:49000]), torch.from_numpy(y[:49000])
    val_x, val_y = normalise(x[49000:]), torch.from_numpy(y[49000:])
    test_x, test_y = normalise(torch.from_numpy(tx.astype(np.float32))), torch.from_numpy(ty)

    model = ct.torch_fast_cifar()
    start_weights(torch, model, train_x[:5000])
    channels_last = a.layout != "nchw"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)

    batch = a.batch_size
    optimizer = recipe_sgd(torch, model, batch)
    batches = len(train_x) // batch + (1 if len(train_x) % batch else 0)
    if a.max_batches:
        batches = min(batches, a.max_batches)
    total = a.epochs * batches

    def triangle(step):
        peak = 0.23 * total
        return 0.2 + 0.8 * step / peak if step < peak else 1 + (0.07 - 1) * (step - peak) / (total - peak)

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, triangle)
    lookahead = Lookahead(torch, model)

    def logits(inputs):
        if channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        if bf16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return model(inputs).float()
        return model(inputs)

    def evaluate(images, labels, views):
        model.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, len(images), 1000):
                chunk = images[i:i + 1000]
                shown = [chunk]
                if views == "flip-translate":
                    padded = F.pad(chunk, (1, 1, 1, 1))
                    shown += [padded[:, :, 2:34, 2:34], padded[:, :, 0:32, 0:32]]
                shown += [v.flip(-1) for v in shown]
                probabilities = sum(F.softmax(logits(v), 1) for v in shown) / len(shown)
                correct += (probabilities.argmax(1) == labels[i:i + 1000]).sum().item()
        model.train()
        return correct / len(images)

    os.makedirs(a.out, exist_ok=True)
    curve = open(os.path.join(a.out, "curve.csv"), "w")
    curve.write("epoch,minutes,train_loss,val_accuracy\n")
    generator = torch.Generator().manual_seed(a.seed)
    first_flip = torch.rand(len(train_x), generator=generator) < 0.5
    step = 0
    model.train()
    for epoch in range(a.epochs):
        order = torch.randperm(len(train_x), generator=generator)
        flip = first_flip ^ bool(epoch % 2)  # alternating flips
        shifts = torch.randint(0, 5, (len(train_x), 2), generator=generator)
        loss_sum, seen = 0.0, 0
        for b in range(batches):
            idx = order[b * batch:(b + 1) * batch]
            padded = F.pad(train_x[idx], (2, 2, 2, 2))
            images = torch.empty(len(idx), 3, 32, 32)
            for k in range(len(idx)):
                dy, dx = int(shifts[idx[k], 0]), int(shifts[idx[k], 1])
                images[k] = padded[k, :, dy:dy + 32, dx:dx + 32]
            images = torch.where(flip[idx].view(-1, 1, 1, 1), images.flip(-1), images)
            loss = F.cross_entropy(logits(images), train_y[idx], label_smoothing=0.2, reduction="sum")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            if step % 5 == 0:
                lookahead(0.95 ** 5 * (step / total) ** 3)
            loss_sum += loss.item()
            seen += len(idx)
        lookahead(1.0)  # the slow weights at the epoch's end
        val = evaluate(val_x, val_y, "centre")
        minutes = (time.time() - start) / 60
        curve.write("%d,%.3f,%.4f,%.4f\n" % (epoch + 1, minutes, loss_sum / seen, val))
        curve.flush()
        print("epoch %d/%d  train loss %.4f  validation %.2f%%  %.2f min" % (epoch + 1, a.epochs, loss_sum / seen, 100 * val,
                                                                            minutes), flush=True)
    tta = evaluate(test_x, test_y, "flip-translate")
    centre = evaluate(test_x, test_y, "centre")
    minutes = (time.time() - start) / 60
    summary = dict(test_accuracy_flip_translate=tta, test_accuracy_centre=centre, minutes=minutes, epochs=a.epochs,
                   batch_size=batch, threads=a.threads, precision="bf16" if bf16 else "fp32",
                   layout="channels_last" if channels_last else "nchw", seed=a.seed,
                   torch=torch.__version__)
    json.dump(summary, open(os.path.join(a.out, "summary.json"), "w"), indent=1)
    print("test top-1 (flip-translate, 6 views): %.2f%%  (centre %.2f%%)  %.2f min" % (100 * tta, 100 * centre, minutes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
