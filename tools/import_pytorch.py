#!/usr/bin/env python3
"""Converts a convnet checkpoint's weights into a PyTorch state_dict (.pth),
the reverse of export_pytorch.py.

    /usr/bin/python3 tools/import_pytorch.py runs/cifar10/best.ckpt best.pth

The state_dict loads (strictly) into tools/convnet_torch.torch_alexnet() of the
checkpoint's configuration, which this tool checks before saving; for the
torchvision configuration --torchvision-names writes torchvision's names so
that torchvision.models.alexnet().load_state_dict() takes it. Optimizer state
and dropout random state are not converted: they mean nothing to PyTorch.
"""
import argparse
import collections
import sys

import convnet_torch as ct


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("output")
    p.add_argument("--torchvision-names", action="store_true", help="features.N / classifier.N names")
    a = p.parse_args()

    import torch
    entries = ct.read_checkpoint(a.checkpoint)
    if "config" not in entries:
        sys.exit("import_pytorch: %s does not say which network it holds (no 'config' entry)" % a.checkpoint)
    fields = dict(f.split("=", 1) for f in entries["config"].split())
    name = fields["name"]
    if name not in ct.CONFIGS:
        sys.exit("import_pytorch: unknown configuration '%s'" % name)
    lrn = fields["lrn"].split(",")
    model = ct.torch_alexnet(name, int(fields["classes"]), int(fields["groups"]), float(fields["width"]),
                             lrn_alpha=float(lrn[1]) if lrn[4] == "paper" else float(lrn[1]) / 5)
    state = collections.OrderedDict(
        (k.split("/", 1)[1], torch.from_numpy(v.copy())) for k, v in entries.items()
        if k.startswith("param/") or k.startswith("buffer/"))
    for key, value in model.state_dict().items():  # PyTorch's batch counters, which convnet does not keep
        if key.endswith(ct.COUNTER_SUFFIX):
            state[key] = value
    model.load_state_dict(state, strict=True)  # raises naming what is missing or mismatched
    if a.torchvision_names:
        if name != "torchvision":
            sys.exit("import_pytorch: --torchvision-names needs a torchvision checkpoint, this one is '%s'" % name)
        state = ct.to_torchvision_names(state)
    torch.save(state, a.output)
    print("wrote %s: %d tensors of AlexNet '%s'" % (a.output, len(state), name))


if __name__ == "__main__":
    main()
