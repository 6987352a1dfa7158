#!/usr/bin/env python3
"""PyTorch's side of the accuracy-against-minutes comparison: the same network
and recipe as `make train` (`convnet train`'s defaults), trained by PyTorch on
the same CIFAR-10 files, the same number of threads and the same wall-clock
budget, writing validation accuracy against wall minutes after every epoch
and the test accuracy at the end.

    /usr/bin/python3 benchmarks/pytorch_cifar_time.py --data ../shared/data/cifar-10-batches-bin \
        --minutes 45 --threads 2 --out runs/pytorch_cifar

The recipe, as convnet's default: `--config` (cifar-half-bn) built by
tools/convnet_torch.py layer for layer (BatchNorm as PyTorch's; LRN in the
paper's convention for the LRN networks), He initialisation, cross-entropy
with label smoothing 0.1, SGD with Nesterov momentum 0.9, weight decay 5e-4 on weights
only, one-cycle peaking at 0.05 after 25% of the steps, batch 128, random
crops with 4 pixels of padding and horizontal flips, per-channel
normalisation, the last 5,000 training pictures held out for validation.
One-cycle needs its length up front, so the script first times 30 training
steps and plans as many whole epochs as fit in the budget (--epochs sets
them instead). The clock runs from before the data is read to the end of the
test evaluation, as convnet's run is timed. The test set is read on the
centre view and averaged with its mirror (convnet's first two --eval views).
Writes OUT/curve.csv (epoch, minutes, train loss, validation accuracy) and
OUT/summary.json. Needs torch
and numpy; only reads the data.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools"))


def read_cifar(folder, names):
    records = []
    for name in names:
        raw = np.fromfile(os.path.join(folder, name), dtype=np.uint8)
        if raw.size % 3073:
            sys.exit("pytorch_cifar_time: %s is not whole 3,073-byte records" % name)
        records.append(raw.reshape(-1, 3073))
    data = np.concatenate(records)
    return data[:, 1:].reshape(-1, 3, 32, 32), data[:, 0].astype(np.int64)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=os.environ.get("CIFAR10_DIR", "data/cifar-10-batches-bin"))
    p.add_argument("--config", default="cifar-half-bn")
    p.add_argument("--minutes", type=float, default=45)
    p.add_argument("--epochs", type=int, default=0, help="epochs to plan (0: as many as fit in --minutes)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="runs/pytorch_cifar")
    p.add_argument("--max-batches", type=int, default=0, help="training batches per epoch (0: all; smoke runs)")
    a = p.parse_args()

    start = time.time()
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import convnet_torch as ct

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    images, labels = read_cifar(a.data, ["data_batch_%d.bin" % i for i in range(1, 6)])
    test_images, test_labels = read_cifar(a.data, ["test_batch.bin"])
    order = rng.permutation(len(labels))
    val_idx, train_idx = order[:5000], order[5000:]
    train_x = torch.from_numpy(images[train_idx]).float()
    mean = train_x.mean(dim=(0, 2, 3), keepdim=True)
    std = train_x.std(dim=(0, 2, 3), keepdim=True)
    normalise = lambda x: (torch.from_numpy(x).float() - mean) / std
    train_x, train_y = (train_x - mean) / std, torch.from_numpy(labels[train_idx])
    val_x, val_y = normalise(images[val_idx]), torch.from_numpy(labels[val_idx])
    test_x, test_y = normalise(test_images), torch.from_numpy(test_labels)

    net = ct.torch_alexnet(a.config)
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    decay = [q for n, q in net.named_parameters() if n.endswith("weight") and q.dim() > 1]
    no_decay = [q for n, q in net.named_parameters() if not (n.endswith("weight") and q.dim() > 1)]
    batch = 128
    steps_per_epoch = len(train_y) // batch
    if a.max_batches:
        steps_per_epoch = min(steps_per_epoch, a.max_batches)

    def augmented(index):
        x = F.pad(train_x[index], (4, 4, 4, 4))
        out = torch.empty(len(index), 3, 32, 32)
        dx, dy = rng.integers(0, 9, len(index)), rng.integers(0, 9, len(index))
        flip = rng.random(len(index)) < 0.5
        for i in range(len(index)):
            crop = x[i, :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32]
            out[i] = crop.flip(2) if flip[i] else crop
        return out, train_y[index]

    def accuracy(x, y, mirror=False):
        """Top-1 on the centre view, or on the softmax averaged with the mirrored view."""
        net.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, len(y), 500):
                scores = F.softmax(net(x[i:i + 500]), 1)
                if mirror:
                    scores = scores + F.softmax(net(x[i:i + 500].flip(3)), 1)
                correct += (scores.argmax(1) == y[i:i + 500]).sum().item()
        net.train()
        return correct / len(y)

    def make_optimizer(epochs):
        opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0}],
                              lr=a.lr, momentum=0.9, nesterov=True)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=epochs * steps_per_epoch,
                                                    pct_start=0.25)
        return opt, sched

    epochs = a.epochs
    if epochs == 0:  # time 30 steps (after 5 of warm-up) on a throw-away optimizer, then plan
        opt, _ = make_optimizer(1)
        state = {k: v.clone() for k, v in net.state_dict().items()}
        for s in range(35):
            if s == 5:
                probe = time.time()
            x, y = augmented(rng.integers(0, len(train_y), batch))
            opt.zero_grad()
            F.cross_entropy(net(x), y, label_smoothing=a.label_smoothing).backward()
            opt.step()
        per_step = (time.time() - probe) / 30
        net.load_state_dict(state)
        per_epoch = per_step * steps_per_epoch * 1.05  # validation
        left = a.minutes * 60 - (time.time() - start) - 2 * per_step * len(test_y) / batch / 3
        epochs = max(1, int(left // per_epoch))
        print("planned %d epochs (%.1f s a step, %.0f s an epoch)" % (epochs, per_step, per_epoch), flush=True)

    opt, sched = make_optimizer(epochs)
    os.makedirs(a.out, exist_ok=True)
    curve = open(os.path.join(a.out, "curve.csv"), "w")
    curve.write("epoch,minutes,train_loss,val_accuracy\n")
    best = (-1.0, None)
    for epoch in range(epochs):
        perm = torch.from_numpy(rng.permutation(len(train_y)))
        loss_sum = 0.0
        for s in range(steps_per_epoch):
            x, y = augmented(perm[s * batch:(s + 1) * batch].numpy())
            opt.zero_grad()
            loss = F.cross_entropy(net(x), y, label_smoothing=a.label_smoothing)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item()
        val = accuracy(val_x, val_y)
        if val > best[0]:
            best = (val, {k: v.clone() for k, v in net.state_dict().items()})
        minutes = (time.time() - start) / 60
        curve.write("%d,%.2f,%.4f,%.4f\n" % (epoch + 1, minutes, loss_sum / steps_per_epoch, val))
        curve.flush()
        print("epoch %d: %.1f min, train loss %.4f, validation %.2f%%" % (epoch + 1, minutes,
                                                                         loss_sum / steps_per_epoch, 100 * val),
              flush=True)
    net.load_state_dict(best[1])
    test, test_mirror = accuracy(test_x, test_y), accuracy(test_x, test_y, mirror=True)
    summary = {"config": a.config, "label_smoothing": a.label_smoothing, "threads": a.threads, "epochs": epochs,
               "best_validation": best[0], "test_top1": test, "test_top1_flip": test_mirror,
               "minutes": (time.time() - start) / 60, "torch": torch.__version__}
    json.dump(summary, open(os.path.join(a.out, "summary.json"), "w"), indent=1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
