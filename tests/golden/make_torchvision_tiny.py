#!/usr/bin/python3
"""Writes tests/golden/torchvision_tiny.ckpt: what a user gets from a torchvision AlexNet state_dict.

A torchvision-layout AlexNet (tools/convnet_torch.py's "torchvision" configuration at width 1/16,
100 classes, so the file stays small), its state_dict saved under torchvision's own names
(features.0.weight ... classifier.6.bias) as torch.save writes it, then converted by
tools/export_pytorch.py as the docs tell users to. The fine-tuning tests start a 10-class
network from it: every layer but the head is transferred.

    /usr/bin/python3 tests/golden/make_torchvision_tiny.py
"""
import os
import subprocess
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(HERE, "..", "..", "tools")
sys.path.insert(0, TOOLS)
import convnet_torch as ct  # noqa: E402


def main():
    torch.manual_seed(0)
    model = ct.torch_alexnet("torchvision", classes=100, width=0.0625).eval()
    state = ct.to_torchvision_names(model.state_dict())
    assert "features.0.weight" in state and "classifier.6.bias" in state
    with tempfile.TemporaryDirectory() as tmp:
        pth = os.path.join(tmp, "alexnet_tiny.pth")
        torch.save(state, pth)
        out = os.path.join(HERE, "torchvision_tiny.ckpt")
        subprocess.check_call([sys.executable, os.path.join(TOOLS, "export_pytorch.py"), pth, out,
                               "--config", "torchvision", "--width", "0.0625", "--classes", "100"])
    print("wrote %s (%d bytes)" % (out, os.path.getsize(out)))


if __name__ == "__main__":
    main()
