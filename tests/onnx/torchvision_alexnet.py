#!/usr/bin/python3
"""Test data: torchvision's alexnet() as PyTorch's own exporter writes it, and PyTorch's logits.

    torchvision_alexnet.py DIR

Writes DIR/alexnet.onnx (torch.onnx.export, opset 13, random weights from seed 0, evaluation mode),
DIR/alexnet.input (two 3 x 224 x 224 pictures, float32) and DIR/alexnet.logits (PyTorch's output,
float32). Exit 77 when python3-torch or python3-torchvision is missing.
"""
import os
import sys

try:
    import torch
    import torchvision
except ImportError as e:
    print("missing: %s (apt-get install python3-torch python3-torchvision)" % e)
    sys.exit(77)


def main(folder):
    torch.manual_seed(0)
    model = torchvision.models.alexnet().eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        logits = model(x)
    torch.onnx.export(model, x, os.path.join(folder, "alexnet.onnx"), opset_version=13,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
    x.numpy().tofile(os.path.join(folder, "alexnet.input"))
    logits.numpy().tofile(os.path.join(folder, "alexnet.logits"))
    print("torch %s, torchvision %s: alexnet.onnx written" % (torch.__version__, torchvision.__version__))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
