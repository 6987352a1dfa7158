#!/usr/bin/env python3
"""Writes tests/golden/pytorch_parity.ckpt: what PyTorch computes, in double,
for every layer type with the tricky options and for the whole paper, cifar
and torchvision AlexNets, so that the C++ tests (tests/test_parity.cpp) can
check convnet against it without PyTorch.

    /usr/bin/python3 tools/make_golden.py            # needs torch and numpy
    /usr/bin/python3 tools/make_golden.py --fast-only   # pytorch_parity_fast.ckpt alone

Nothing big is stored. Inputs, weights and upstream gradients come from one
integer formula that both sides evaluate exactly:
    v(i, salt) = ((i * 7919 + salt * 104729) mod 2001 - 1000) / 1000
    input x[i] = v(i, 0);  upstream gradient g[i] = v(i, 999)
    parameter t (state_dict order, from 0): value[i] = v(i, t + 1) * scale,
      scale = 1 / sqrt(fan_in) for weights, 0.1 for biases
Each case runs forward, then backward of L = sum(output * g) (losses: their
own value), and stores the output and the gradients; for whole networks it
stores the logits and 32 entries of each parameter's gradient, at indices
(k * 2654435761 + 12345) mod size, k = 0..31.

The torchvision network's sampled conv1 gradient holds a max-pool near-tie whose routing
depends on the summation order of the CPU PyTorch runs on: regenerated elsewhere, that one
entry can differ from the committed one (which convnet matches); keep the committed value.

Also writes tests/golden/exported_tiny.ckpt through tools/export_pytorch.py:
a small cifar-layout model (width 0.0625) with the formula weights saved by
PyTorch as a state_dict and converted, plus its logits in the parity file,
so the tests check that an exported model loads and computes what PyTorch did.
"""
import collections
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import convnet_torch as ct  # noqa: E402

GOLDEN = os.path.join(os.path.dirname(HERE), "tests", "golden")
SAMPLES = 32


def v(n, salt):
    i = np.arange(n, dtype=np.int64)
    return ((i * 7919 + salt * 104729) % 2001 - 1000).astype(np.float64) / 1000.0


def formula(shape, salt, scale=1.0):
    return torch.from_numpy(v(int(np.prod(shape)), salt).reshape(shape) * scale)


def fill(module, buffers=True):
    """Parameters t = 0, 1, ... (named_parameters order) from the formula; with `buffers`,
    BatchNorm's running statistics j = 0, 1, ... (mean, variance, layer by layer) as
    0.1 v(i, 700 + j) and 1 + 0.5 v(i, 700 + j), so evaluation-mode normalisation is not the
    identity."""
    with torch.no_grad():
        for t, (name, p) in enumerate(module.named_parameters()):
            fan_in = int(np.prod(p.shape[1:])) if p.dim() > 1 else 0
            scale = 1.0 / np.sqrt(fan_in) if p.dim() > 1 else 0.1
            p.copy_(formula(tuple(p.shape), t + 1, scale))
        j = 0
        for name, b in module.named_buffers() if buffers else []:
            if name.endswith(ct.BUFFER_SUFFIXES):
                f = formula(tuple(b.shape), 700 + j)
                b.copy_(0.1 * f if name.endswith(".running_mean") else 1 + 0.5 * f)
                j += 1


def sample_indices(size):
    return [(k * 2654435761 + 12345) % size for k in range(SAMPLES)]


def layer_case(out, name, module, input_shape, input_scale=1.0, buffers=True):
    module = module.double()
    fill(module, buffers)
    x = formula(input_shape, 0, input_scale).requires_grad_(True)
    y = module(x)
    g = formula(tuple(y.shape), 999)
    (y * g).sum().backward()
    out[name + "/output"] = y.detach().numpy()
    out[name + "/grad_input"] = x.grad.numpy()
    for pname, p in module.named_parameters():
        out[name + "/grad/" + pname] = p.grad.numpy()
    return module, x


def batch_norm_case(out, name, module, input_shape):
    """Training mode from the initial running statistics (0 and 1, as convnet's): the output, the
    gradients and the running statistics after the step; then evaluation mode with those."""
    module, x = layer_case(out, name, module, input_shape, buffers=False)
    out[name + "/running_mean"] = module.running_mean.numpy().copy()
    out[name + "/running_var"] = module.running_var.numpy().copy()
    module.eval()
    out[name + "/eval_output"] = module(x).detach().numpy()


def loss_case(out, name, fn, classes=6, batch=4, scale=3.0):
    x = formula((batch, classes), 0, scale).requires_grad_(True)
    labels = torch.tensor([0, 5, 2, 2][:batch])
    value = fn(x, labels)
    value.backward()
    out[name + "/loss"] = np.array([value.item()])
    out[name + "/grad_input"] = x.grad.numpy()


def network_case(out, name, model, batch):
    model = model.double().eval()  # dropout off on both sides
    fill(model)
    side = ct.CONFIGS[name.split(":")[0]][0]
    x = formula((batch, 3, side, side), 0)
    y = model(x)
    g = formula(tuple(y.shape), 999)
    (y * g).sum().backward()
    out[name + "/output"] = y.detach().numpy()
    for pname, p in model.named_parameters():
        flat = p.grad.reshape(-1).numpy()
        out[name + "/grad_sample/" + pname] = flat[sample_indices(flat.size)].copy()
    return model


def fast_cifar_cases():
    """tests/golden/pytorch_parity_fast.ckpt: GELU (both forms) and the fast CIFAR network (logits and
    sampled gradients in evaluation mode, and in training mode with the batch's statistics, where the
    running statistics after the step are stored too). A file of its own, so that adding these did not
    regenerate pytorch_parity.ckpt (see the torchvision note above)."""
    out = collections.OrderedDict()
    out["note"] = "written by tools/make_golden.py with torch " + torch.__version__
    layer_case(out, "gelu", nn.GELU(), (2, 3, 4, 4), 3.0)
    layer_case(out, "gelu_tanh", nn.GELU(approximate="tanh"), (2, 3, 4, 4), 3.0)
    for mode in ("eval", "train"):
        model = ct.torch_fast_cifar().double()
        fill(model)
        model.train(mode == "train")
        x = formula((4, 3, 32, 32), 0)
        y = model(x)
        g = formula(tuple(y.shape), 999)
        (y * g).sum().backward()
        name = "fast_cifar_" + mode
        out[name + "/output"] = y.detach().numpy()
        for pname, p in model.named_parameters():
            flat = p.grad.reshape(-1).numpy()
            out[name + "/grad_sample/" + pname] = flat[sample_indices(flat.size)].copy()
        if mode == "train":
            out[name + "/running_mean/bn6"] = model.bn6.running_mean.numpy().copy()
            out[name + "/running_var/bn6"] = model.bn6.running_var.numpy().copy()
    path = os.path.join(GOLDEN, "pytorch_parity_fast.ckpt")
    ct.write_checkpoint(path, out)
    print("wrote %s (%d entries, %d bytes)" % (path, len(out), os.path.getsize(path)))


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)  # PyTorch's parallel max-pool backward can route a tie either way
    os.makedirs(GOLDEN, exist_ok=True)
    fast_cifar_cases()
    if sys.argv[1:] == ["--fast-only"]:
        return
    out = collections.OrderedDict()
    out["note"] = "written by tools/make_golden.py with torch " + torch.__version__
    # Layers.
    layer_case(out, "conv_groups2", nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2), (2, 4, 7, 7))
    layer_case(out, "conv_stride_padding", nn.Conv2d(3, 4, 5, stride=3, padding=2), (1, 3, 11, 11))
    layer_case(out, "lrn_caffe", nn.LocalResponseNorm(5, alpha=0.5, beta=0.75, k=1.0), (2, 7, 3, 3), 2.0)
    layer_case(out, "lrn_paper", nn.LocalResponseNorm(5, alpha=0.1 * 5, beta=0.75, k=2.0), (2, 7, 3, 3), 2.0)
    layer_case(out, "maxpool_overlapping", nn.MaxPool2d(3, 2), (2, 3, 9, 9))
    layer_case(out, "dense", nn.Linear(12, 5), (3, 12))
    layer_case(out, "adaptive_avgpool_7to3", nn.AdaptiveAvgPool2d((3, 3)), (2, 2, 7, 7))
    layer_case(out, "adaptive_avgpool_13to6", nn.AdaptiveAvgPool2d((6, 6)), (1, 2, 13, 13))
    layer_case(out, "relu", nn.ReLU(), (2, 3, 4, 4))
    batch_norm_case(out, "batchnorm2d", nn.BatchNorm2d(3), (2, 3, 4, 5))
    batch_norm_case(out, "batchnorm2d_no_affine", nn.BatchNorm2d(3, affine=False, eps=0.1, momentum=0.3), (3, 3, 2, 2))
    batch_norm_case(out, "batchnorm1d", nn.BatchNorm1d(6), (5, 6))
    # Losses (PyTorch's multi-margin loss is convnet's hinge divided by the number of classes).
    loss_case(out, "cross_entropy", lambda x, y: F.cross_entropy(x, y))
    loss_case(out, "cross_entropy_smoothed", lambda x, y: F.cross_entropy(x, y, label_smoothing=0.1))
    loss_case(out, "hinge", lambda x, y: F.multi_margin_loss(x, y, p=1, margin=1.0) * x.shape[1])
    loss_case(out, "squared_hinge", lambda x, y: F.multi_margin_loss(x, y, p=2, margin=1.0) * x.shape[1])
    loss_case(out, "cosine", lambda x, y: (1 - F.cosine_similarity(F.softmax(x, 1), F.one_hot(y, x.shape[1]).double(),
                                                                    dim=1)).mean())
    # Whole networks.
    network_case(out, "paper", ct.torch_alexnet("paper"), 1)
    network_case(out, "cifar", ct.torch_alexnet("cifar"), 2)
    network_case(out, "torchvision", ct.torch_alexnet("torchvision"), 1)
    network_case(out, "cifar-bn", ct.torch_alexnet("cifar-bn"), 2)

    # An exported model: PyTorch state_dict -> tools/export_pytorch.py -> convnet checkpoint.
    tiny = ct.torch_alexnet("cifar", width=0.0625).double().eval()
    fill(tiny)
    x = formula((2, 3, 32, 32), 0)
    out["exported_tiny/output"] = tiny(x).detach().numpy()
    with tempfile.TemporaryDirectory() as tmp:
        pth = os.path.join(tmp, "tiny.pth")
        torch.save(tiny.float().state_dict(), pth)
        names = os.path.join(tmp, "names.txt")
        open(names, "w").write("\n".join("class%d" % i for i in range(10)) + "\n")
        subprocess.check_call([sys.executable, os.path.join(HERE, "export_pytorch.py"), pth,
                               os.path.join(GOLDEN, "exported_tiny.ckpt"), "--config", "cifar", "--width", "0.0625",
                               "--class-names", names, "--mean", "0", "0", "0", "--std", "1", "1", "1"])
    path = os.path.join(GOLDEN, "pytorch_parity.ckpt")
    ct.write_checkpoint(path, out)
    print("wrote %s (%d entries, %d bytes)" % (path, len(out), os.path.getsize(path)))


if __name__ == "__main__":
    main()
