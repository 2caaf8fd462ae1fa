"""transformers reads what we write: `models export NAME --format transformers` (ConvNeXt
entries, including the Fashion-MNIST ones that timm's ConvNeXt cannot express: 3 stages and a
stride-2 stem) loads with AutoModelForImageClassification.from_pretrained and gives our logits.

Usage: transformers_check.py MODELS_BINARY IMAGE_SIZE NAME [NAME ...]   (0 = native size)
"""
import os
import sys

import torch

import common


def main():
    models_bin, size, names = common.binary(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    torch.set_num_threads(2)
    for name in names:
        out = common.tmpdir(f"transformers_{name}")
        common.run([models_bin, "export", name, "--out", out, "--format", "transformers", "--seed", "3",
                    "--image_size", str(size)])
        model = common.hf_from_pretrained_strict(out)
        x = common.tensor(os.path.join(out, "input.safetensors"), "input")
        with torch.no_grad():
            theirs = model(pixel_values=x).logits
        ours = common.tensor(os.path.join(out, "logits.safetensors"), "logits")
        common.assert_close(ours, theirs, f"{name}: AutoModelForImageClassification on our export")
    print(f"PASS: {len(names)} models")

if __name__ == "__main__":
    main()
