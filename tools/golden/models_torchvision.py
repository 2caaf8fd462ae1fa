#!/usr/bin/env python3
"""Golden fixtures for convforever/models: torchvision's ConvNeXt and ResNet-50 logits and input
gradients (fp32, CPU, eval mode).

Weights are not stored (ConvNeXt-T alone is 110 MB): every tensor of the torchvision state dict is
filled from a closed form of its name and shape (`det_tensor`, mirrored in C++ by
golden_test.cc's DetTensor), so the C++ side rebuilds the same weights through its torchvision
name map. Each fixture stores the input, the output gradient, the logits and the input gradient.

Run with the project venv:  .venv/bin/python tools/golden/models_torchvision.py
Writes convforever/models/testdata/golden_<name>.safetensors (a few tens of KB each).
"""
import json
import math
import os
import struct

import torch
import torchvision
from torchvision.models.convnext import CNBlockConfig, ConvNeXt

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "convforever", "models", "testdata")


def name_key(name):
    """Small integer from the name's bytes (same as NameKey in golden_test.cc)."""
    return sum((j + 1) * b for j, b in enumerate(name.encode())) % 9973


def det_tensor(name, shape):
    n = 1
    for s in shape:
        n *= s
    i = torch.arange(n, dtype=torch.float64)
    # A shader-style hash: uniform-looking values in [-1, 1) with no structure across channels.
    h = torch.sin(i * 12.9898 + name_key(name) * 78.233) * 43758.5453
    v = 2.0 * (h - torch.floor(h)) - 1.0
    if name in ("input", "grad_output"):
        return v.to(torch.float32).reshape(shape)
    if name.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.int64)
    if name.endswith("running_var"):
        v = 1.0 + 0.25 * (v + 1.0)
    elif name.endswith("running_mean"):
        v = 0.1 * v
    elif name.endswith("layer_scale"):
        v = 0.5 + 0.25 * v
    elif len(shape) >= 2:
        v = v * math.sqrt(3.0 / (n // shape[0]))
    elif name.endswith("weight"):
        v = 1.0 + 0.2 * v
    else:
        v = 0.1 * v
    return v.to(torch.float32).reshape(shape)


def write_safetensors(path, tensors, metadata):
    """Minimal safetensors writer (the format of huggingface/safetensors), independent of ours."""
    dtypes = {torch.float32: ("F32", 4), torch.int64: ("I64", 8)}
    header = {"__metadata__": metadata}
    offset = 0
    blobs = []
    for name, t in tensors.items():
        t = t.detach().contiguous()
        code, size = dtypes[t.dtype]
        nbytes = t.numel() * size
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
        blobs.append(t.numpy().tobytes())
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


def make_fixture(tag, model, shape, description):
    with torch.no_grad():
        for name, t in model.state_dict().items():
            t.copy_(det_tensor(name, list(t.shape)))
    model.eval()
    x = det_tensor("input", shape).requires_grad_(True)
    logits = model(x)
    grad_out = det_tensor("grad_output", list(logits.shape))
    logits.backward(grad_out)
    write_safetensors(
        os.path.join(OUT, f"golden_{tag}.safetensors"),
        {"input": x.detach(), "grad_output": grad_out, "logits": logits.detach(), "input_grad": x.grad},
        {"format": "pt", "made_by": "tools/golden/models_torchvision.py", "model": description,
         "torch": torch.__version__, "torchvision": torchvision.__version__},
    )
    print(tag, tuple(logits.shape), float(logits.abs().mean()), float(x.grad.abs().mean()))


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    make_fixture("convnext_tiny", torchvision.models.convnext_tiny(), [2, 3, 32, 32],
                 "torchvision.models.convnext_tiny(), input 2x3x32x32")
    small = ConvNeXt([CNBlockConfig(16, 32, 2), CNBlockConfig(32, 48, 1), CNBlockConfig(48, None, 2)],
                     num_classes=10)
    make_fixture("convnext_small_custom", small, [3, 3, 32, 32],
                 "torchvision ConvNeXt depths (2,1,2) dims (16,32,48), 10 classes, input 3x3x32x32")
    make_fixture("resnet50", torchvision.models.resnet50(), [2, 3, 32, 32],
                 "torchvision.models.resnet50(), input 2x3x32x32")


if __name__ == "__main__":
    main()
