"""What convnet's Python tools share: the checkpoint file format, the AlexNet
configurations built in PyTorch with convnet's layer names, and the mapping
between torchvision's parameter names and convnet's.

The checkpoint format (include/convnet/checkpoint.hpp, version 1, little-endian):
    "CNVNCKPT", u32 version, u32 entry count, u64 payload size, u64 FNV-1a of
    the payload; then per entry: u32 key length, key, u8 kind, and by kind
    1 text (u64 length, bytes), 2 u64s / 3 f64s (u64 count, values),
    4 f32 tensor / 5 f64 tensor (u32 rank, rank x u64 extents, values).

Parameter layouts are the same on both sides (convnet stores PyTorch's):
    conv weight [out, in / groups, kh, kw], dense weight [out, in], biases [out];
    flattening is NCHW in both, so fc6 needs no permutation.

Needs numpy; the PyTorch parts need torch (imported only where used).
"""
import collections
import os
import struct
import tempfile

import numpy as np

MAGIC = b"CNVNCKPT"
VERSION = 1
TEXT, U64S, F64S, F32_TENSOR, F64_TENSOR = 1, 2, 3, 4, 5

# name: (input side, [(channels, kernel, stride, padding, grouped)], fc width, classes, width multiplier,
#        lrn, adaptive pool, dropout first)
CONFIGS = {
    "paper": (227, [(96, 11, 4, 0, False), (256, 5, 1, 2, True), (384, 3, 1, 1, False), (384, 3, 1, 1, True),
                    (256, 3, 1, 1, True)], 4096, 1000, 1.0, True, 0, False),
    "cifar": (32, [(64, 5, 1, 2, False), (192, 5, 1, 2, True), (384, 3, 1, 1, False), (256, 3, 1, 1, True),
                   (256, 3, 1, 1, True)], 1024, 10, 1.0, True, 0, False),
    "cifar-half": (32, [(64, 5, 1, 2, False), (192, 5, 1, 2, True), (384, 3, 1, 1, False), (256, 3, 1, 1, True),
                        (256, 3, 1, 1, True)], 1024, 10, 0.5, True, 0, False),
    "cifar-bn": (32, [(64, 5, 1, 2, False), (192, 5, 1, 2, True), (384, 3, 1, 1, False), (256, 3, 1, 1, True),
                      (256, 3, 1, 1, True)], 1024, 10, 1.0, False, 0, False),
    "cifar-half-bn": (32, [(64, 5, 1, 2, False), (192, 5, 1, 2, True), (384, 3, 1, 1, False), (256, 3, 1, 1, True),
                           (256, 3, 1, 1, True)], 1024, 10, 0.5, False, 0, False),
    "torchvision": (224, [(64, 11, 4, 2, False), (192, 5, 1, 2, False), (384, 3, 1, 1, False),
                          (256, 3, 1, 1, False), (256, 3, 1, 1, False)], 4096, 1000, 1.0, False, 6, True),
}

# Configurations with BatchNorm2d after every convolution (whose bias it replaces).
BATCH_NORM = {"cifar-bn", "cifar-half-bn"}
# What a state_dict holds besides parameters: running statistics (convnet's buffers) and
# PyTorch's batch counter, which convnet does not keep (its momentum is fixed, as PyTorch's default).
BUFFER_SUFFIXES = (".running_mean", ".running_var")
COUNTER_SUFFIX = ".num_batches_tracked"

# torchvision.models.alexnet's module indices -> convnet's layer names.
TORCHVISION_NAMES = {"features.0": "conv1", "features.3": "conv2", "features.6": "conv3", "features.8": "conv4",
                     "features.10": "conv5", "classifier.1": "fc6", "classifier.4": "fc7", "classifier.6": "fc8"}

# torchvision's published weights expect 0-1 pixels normalised with these; convnet's pixels are 0-255.
IMAGENET_MEAN_255 = [0.485 * 255, 0.456 * 255, 0.406 * 255]
IMAGENET_STD_255 = [0.229 * 255, 0.224 * 255, 0.225 * 255]


def fnv1a(data):
    """FNV-1a 64 of the payload. Sequential by nature: about 20 s for a 250 MB model in plain Python."""
    h = 0xcbf29ce484222325
    prime, mask = 0x100000001b3, 0xFFFFFFFFFFFFFFFF
    for b in memoryview(data):
        h = ((h ^ b) * prime) & mask
    return h


def write_checkpoint(path, entries):
    """entries: ordered mapping key -> str (text), ('u64s', list), ('f64s', list) or a numpy array
    (float32 -> f32 tensor, float64 -> f64 tensor). Written to path + '.tmp' and renamed."""
    out = bytearray()
    for key, value in entries.items():
        k = key.encode()
        out += struct.pack("<I", len(k)) + k
        if isinstance(value, str):
            b = value.encode()
            out += struct.pack("<BQ", TEXT, len(b)) + b
        elif isinstance(value, tuple) and value[0] in ("u64s", "f64s"):
            kind, values = value
            out += struct.pack("<BQ", U64S if kind == "u64s" else F64S, len(values))
            out += np.asarray(values, dtype="<u8" if kind == "u64s" else "<f8").tobytes()
        else:
            a = np.ascontiguousarray(value)
            if a.dtype == np.float32:
                kind, dtype = F32_TENSOR, "<f4"
            elif a.dtype == np.float64:
                kind, dtype = F64_TENSOR, "<f8"
            else:
                raise TypeError("entry %s: tensors must be float32 or float64, not %s" % (key, a.dtype))
            out += struct.pack("<BI", kind, a.ndim) + struct.pack("<%dQ" % a.ndim, *a.shape)
            out += a.astype(dtype).tobytes()
    payload = bytes(out)
    header = MAGIC + struct.pack("<IIQQ", VERSION, len(entries), len(payload), fnv1a(payload))
    # A temporary name of our own, created exclusively (as the C++ writer does): two writers never
    # share it and a link planted there is never followed.
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".tmp.", dir=os.path.dirname(path) or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(header + payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_checkpoint(path):
    """Returns an ordered dict key -> value (str, list of ints, list of floats, or numpy array)."""
    data = open(path, "rb").read()
    if len(data) < 32 or data[:8] != MAGIC:
        raise ValueError("%s is not a convnet checkpoint (no CNVNCKPT magic)" % path)
    version, count, size, checksum = struct.unpack_from("<IIQQ", data, 8)
    if version != VERSION:
        raise ValueError("%s: format version %d, this tool reads %d" % (path, version, VERSION))
    payload = data[32:]
    if size != len(payload):
        raise ValueError("%s: header announces %d payload bytes, file holds %d" % (path, size, len(payload)))
    if fnv1a(payload) != checksum:
        raise ValueError("%s: checksum mismatch (corrupted file)" % path)
    entries = collections.OrderedDict()
    pos = 0
    for _ in range(count):
        (klen,) = struct.unpack_from("<I", payload, pos)
        pos += 4
        key = payload[pos:pos + klen].decode()
        pos += klen
        kind = payload[pos]
        pos += 1
        if kind == TEXT:
            (n,) = struct.unpack_from("<Q", payload, pos)
            pos += 8
            entries[key] = payload[pos:pos + n].decode()
            pos += n
        elif kind in (U64S, F64S):
            (n,) = struct.unpack_from("<Q", payload, pos)
            pos += 8
            a = np.frombuffer(payload, dtype="<u8" if kind == U64S else "<f8", count=n, offset=pos)
            entries[key] = a.tolist()
            pos += 8 * n
        elif kind in (F32_TENSOR, F64_TENSOR):
            (rank,) = struct.unpack_from("<I", payload, pos)
            pos += 4
            shape = struct.unpack_from("<%dQ" % rank, payload, pos)
            pos += 8 * rank
            dtype = "<f4" if kind == F32_TENSOR else "<f8"
            n = int(np.prod(shape)) if rank else 1
            entries[key] = np.frombuffer(payload, dtype=dtype, count=n, offset=pos).reshape(shape).copy()
            pos += n * np.dtype(dtype).itemsize
        else:
            raise ValueError("%s: entry %s has unknown kind %d" % (path, key, kind))
    return entries


def config_text(name, classes=None, groups=1, width=None, lrn_convention="paper"):
    """The AlexNetConfig::str() line convnet stores under 'config'."""
    side, _, _, default_classes, default_width, lrn, _, _ = CONFIGS[name]
    return ("name=%s input=%d classes=%d groups=%d width=%s dropout=0.5 init=paper lrn=%s"
            % (name, side, classes or default_classes, groups, repr(float(width or default_width)),
               "5,0.0001,0.75,2," + lrn_convention if lrn else "none"))


def scaled(base, width, groups):
    v = int(round(base * width))
    return max(groups, (v + groups - 1) // groups * groups)


def torch_alexnet(name, classes=None, groups=1, width=None, lrn_alpha=1e-4):
    """convnet's AlexNet configuration `name` in PyTorch, layer for layer and with convnet's layer names
    (state_dict keys 'conv1.weight', ... 'fc8.bias'). LRN follows convnet's paper convention: its alpha
    multiplies the sum of squares, so PyTorch gets alpha * size."""
    import torch.nn as nn
    side, convs, fc, default_classes, default_width, lrn, adaptive, dropout_first = CONFIGS[name]
    classes = classes or default_classes
    width = default_width if width is None else width
    layers = collections.OrderedDict()
    channels, size = 3, side
    for i, (out, k, s, p, grouped) in enumerate(convs):
        n = str(i + 1)
        out = scaled(out, width, groups)
        layers["conv" + n] = nn.Conv2d(channels, out, k, s, p, groups=groups if grouped else 1,
                                       bias=name not in BATCH_NORM)
        if name in BATCH_NORM:
            layers["bn" + n] = nn.BatchNorm2d(out)
        layers["relu" + n] = nn.ReLU()
        if lrn and i < 2:
            layers["lrn" + n] = nn.LocalResponseNorm(5, alpha=lrn_alpha * 5, beta=0.75, k=2.0)
        size = (size + 2 * p - k) // s + 1
        if i in (0, 1, 4):
            layers["pool" + n] = nn.MaxPool2d(3, 2)
            size = (size - 3) // 2 + 1
        channels = out
    if adaptive:
        layers["avgpool"] = nn.AdaptiveAvgPool2d((adaptive, adaptive))
        size = adaptive
    layers["flatten"] = nn.Flatten()
    fcw = scaled(fc, width, groups)
    features = channels * size * size
    for n, fan_in in (("6", features), ("7", fcw)):
        if dropout_first:
            layers["drop" + n] = nn.Dropout(0.5)
        layers["fc" + n] = nn.Linear(fan_in, fcw)
        layers["relu" + n] = nn.ReLU()
        if not dropout_first:
            layers["drop" + n] = nn.Dropout(0.5)
    layers["fc8"] = nn.Linear(fcw, classes)
    return nn.Sequential(layers)


def torch_fast_cifar(classes=10, widths=(64, 256, 256), bn_momentum=0.4, bn_eps=1e-5, logit_scale=1.0 / 9):
    """convnet's fast CIFAR network (include/convnet/models/fast_cifar.hpp) in PyTorch, layer for layer
    and with its layer names: a 2x2 whitening convolution (24 filters, no bias), GELU, three blocks of
    conv -> max-pool(2) -> batch norm -> GELU -> conv -> batch norm -> GELU, max-pool(3), a bias-free
    linear layer and the logits times 1/9. The batch normalisations learn their bias alone (their
    weight is None: gamma held at 1), as BatchNormOptions().weight(false)."""
    import torch
    import torch.nn as nn

    class Multiply(nn.Module):
        def __init__(self, factor):
            super().__init__()
            self.factor = factor

        def forward(self, x):
            return x * self.factor

    def batch_norm(c):
        bn = nn.BatchNorm2d(c, eps=bn_eps, momentum=bn_momentum)
        bn.register_parameter("weight", None)  # gamma held at 1
        return bn

    layers = collections.OrderedDict()
    layers["whiten"] = nn.Conv2d(3, 24, 2, bias=False)
    layers["gelu0"] = nn.GELU()
    channels, n = 24, 0
    for block, out in enumerate(widths):
        for half in range(2):
            n += 1
            layers["conv%d" % n] = nn.Conv2d(channels, out, 3, padding=1, bias=False)
            if half == 0:
                layers["pool%d" % (block + 1)] = nn.MaxPool2d(2)
            layers["bn%d" % n] = batch_norm(out)
            layers["gelu%d" % n] = nn.GELU()
            channels = out
    layers["pool4"] = nn.MaxPool2d(3)
    layers["flatten"] = nn.Flatten()
    layers["fc"] = nn.Linear(channels, classes, bias=False)
    layers["scale"] = Multiply(logit_scale)
    return nn.Sequential(layers)


def to_convnet_names(state_dict):
    """Maps torchvision's alexnet names (features.0.weight, ...) to convnet's; convnet names pass through."""
    out = collections.OrderedDict()
    for key, value in state_dict.items():
        module, _, param = key.rpartition(".")
        out[TORCHVISION_NAMES.get(module, module) + "." + param] = value
    return out


def to_torchvision_names(state_dict):
    back = {v: k for k, v in TORCHVISION_NAMES.items()}
    out = collections.OrderedDict()
    for key, value in state_dict.items():
        module, _, param = key.rpartition(".")
        if module not in back:
            raise KeyError("%s has no torchvision counterpart" % key)
        out[back[module] + "." + param] = value
    return out
