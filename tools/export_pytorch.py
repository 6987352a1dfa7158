#!/usr/bin/env python3
"""Converts a PyTorch AlexNet (a state_dict, or a whole pickled model) into a
convnet checkpoint that `convnet predict` and restore_training_state() read.

    /usr/bin/python3 tools/export_pytorch.py alexnet-owt-7be5be79.pth alexnet.ckpt --config torchvision

Names: torchvision's (features.0 ... classifier.6) are mapped to convnet's
(conv1 ... fc8); a model built with convnet's names (tools/convnet_torch.py)
passes through. Layouts need no change (convnet stores PyTorch's). Every
parameter of the configuration must be present with the right shape, and
nothing else may be; the checkpoint records the configuration, the input
normalisation (ImageNet's for --config torchvision unless --mean/--std say
otherwise) and the class names (--class-names FILE, one per line).
"""
import argparse
import collections
import sys

import numpy as np

import convnet_torch as ct


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a .pth file: a state_dict or a pickled nn.Module")
    p.add_argument("output", help="the convnet checkpoint to write")
    p.add_argument("--config", default="torchvision", choices=sorted(ct.CONFIGS))
    p.add_argument("--classes", type=int, default=None, help="output classes (default: the configuration's)")
    p.add_argument("--groups", type=int, default=1)
    p.add_argument("--width", type=float, default=None, help="width multiplier (default: the configuration's)")
    p.add_argument("--class-names", help="text file with one class name per line")
    p.add_argument("--mean", type=float, nargs=3, help="per-channel mean on the 0-255 scale")
    p.add_argument("--std", type=float, nargs=3, help="per-channel standard deviation on the 0-255 scale")
    a = p.parse_args()

    import torch
    loaded = torch.load(a.model, map_location="cpu")
    state = loaded.state_dict() if hasattr(loaded, "state_dict") else loaded
    if not isinstance(state, dict):
        sys.exit("export_pytorch: %s holds neither a state_dict nor a model" % a.model)
    state = ct.to_convnet_names(collections.OrderedDict(state))

    reference = ct.torch_alexnet(a.config, a.classes, a.groups, a.width).state_dict()
    missing = [k for k in reference if k not in state]
    extra = [k for k in state if k not in reference]
    if missing or extra:
        sys.exit("export_pytorch: %s does not fit AlexNet '%s':%s%s" % (
            a.model, a.config, (" missing " + ", ".join(missing)) if missing else "",
            (" unexpected " + ", ".join(extra)) if extra else ""))
    entries = collections.OrderedDict()
    entries["config"] = ct.config_text(a.config, a.classes, a.groups, a.width)
    for key, ref in reference.items():
        if key.endswith(ct.COUNTER_SUFFIX):
            continue
        value = state[key].detach().cpu().numpy().astype(np.float32)
        if tuple(value.shape) != tuple(ref.shape):
            sys.exit("export_pytorch: %s has shape %s in %s but AlexNet '%s' needs %s" % (
                key, list(value.shape), a.model, a.config, list(ref.shape)))
        entries[("buffer/" if key.endswith(ct.BUFFER_SUFFIXES) else "param/") + key] = value
    mean, std = a.mean, a.std
    if a.config == "torchvision":
        mean = mean or ct.IMAGENET_MEAN_255
        std = std or ct.IMAGENET_STD_255
    if mean:
        entries["data/mean"] = ("f64s", list(mean))
        entries["data/std"] = ("f64s", list(std or [1.0, 1.0, 1.0]))
    if a.class_names:
        names = [l.strip() for l in open(a.class_names) if l.strip()]
        entries["data/classes"] = "".join(n + "\n" for n in names)
    entries["source"] = "exported from PyTorch: " + a.model
    ct.write_checkpoint(a.output, entries)
    params = sum(int(np.prod(v.shape)) for k, v in entries.items() if k.startswith("param/"))
    print("wrote %s: AlexNet '%s', %d parameters in %d tensors" % (a.output, a.config, params,
                                                                  sum(k.startswith("param/") for k in entries)))


if __name__ == "__main__":
    main()
