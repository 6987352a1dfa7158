#!/usr/bin/python3
"""Independent consumers of the ONNX files convnet writes: ONNX's own checker and OpenCV's dnn.

    check_consumers.py DIR

For every DIR/<name>.onnx, with <name>.input (float32, its shape on the first line of <name>.shape)
and <name>.logits (convnet's output for that input, float32): onnx.checker.check_model(full_check=True)
must pass and OpenCV's readNetFromONNX must give logits within 1e-4 of convnet's, relative to their
largest magnitude. Exit 0 when all hold, 1 when one does not, 77 when python3-onnx or python3-opencv
is missing (tools/install-deps.sh test installs them).
"""
import glob
import os
import sys

try:
    import numpy as np
    import onnx
    import cv2
except ImportError as e:
    print("missing: %s (apt-get install python3-onnx python3-opencv)" % e)
    sys.exit(77)


def main(folder):
    models = sorted(glob.glob(os.path.join(folder, "*.onnx")))
    if not models:
        print("no .onnx files in " + folder)
        return 1
    failed = 0
    for path in models:
        name = path[:-len(".onnx")]
        shape = [int(v) for v in open(name + ".shape").read().split()]
        x = np.fromfile(name + ".input", dtype=np.float32).reshape(shape)
        ours = np.fromfile(name + ".logits", dtype=np.float32)
        model = onnx.load(path)
        onnx.checker.check_model(model, full_check=True)
        net = cv2.dnn.readNetFromONNX(path)
        net.setInput(x)
        theirs = net.forward().reshape(-1)
        if theirs.shape != ours.shape:
            print("%s: OpenCV gives %d values, convnet %d" % (os.path.basename(path), theirs.size, ours.size))
            failed += 1
            continue
        relative = float(np.max(np.abs(theirs - ours)) / max(float(np.max(np.abs(ours))), 1e-30))
        ok = relative <= 1e-4
        failed += not ok
        print("%s: onnx.checker (full) passed; OpenCV %s dnn: %d logits, largest difference %.2e of the largest logit%s"
              % (os.path.basename(path), cv2.__version__, ours.size, relative, "" if ok else "  > 1e-4: FAILED"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
