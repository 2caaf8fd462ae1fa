"""torchvision reads what we write: `models export NAME --format torchvision` loads strictly into
torchvision.models.NAME and gives our logits (1e-4).

Usage: torchvision_check.py MODELS_BINARY IMAGE_SIZE NAME [NAME ...]   (resnet18/34/50, convnext_tiny)
"""
import os
import sys

import torch
import torchvision
from safetensors.torch import load_file

import common


def main():
    models_bin, size, names = common.binary(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    torch.set_num_threads(2)
    for name in names:
        out = common.tmpdir(f"torchvision_{name}")
        common.run([models_bin, "export", name, "--out", out, "--format", "torchvision", "--seed", "5",
                    "--image_size", str(size)])
        model = getattr(torchvision.models, name)(weights=None, num_classes=1000).eval()
        model.load_state_dict(load_file(os.path.join(out, "model.safetensors")), strict=True)
        x = common.tensor(os.path.join(out, "input.safetensors"), "input")
        with torch.no_grad():
            theirs = model(x)
        ours = common.tensor(os.path.join(out, "logits.safetensors"), "logits")
        common.assert_close(ours, theirs, f"torchvision.models.{name} on our export")
    print(f"PASS: {len(names)} models")


if __name__ == "__main__":
    main()
