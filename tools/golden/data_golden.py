"""Golden values for convforever/data's uint8 kernels, from PIL and torchvision.

Run: .venv/bin/python tools/golden/data_golden.py
Writes convforever/data/testdata/data_golden.json (read by image_ops_test.cc).
"""
import json
import os

import numpy as np
import torch
import torchvision.transforms.functional as F
from PIL import Image, ImageOps

rng = np.random.RandomState(7)
H, W = 9, 11
arr = rng.randint(0, 256, size=(H, W, 3), dtype=np.uint8)
# Leave headroom at both ends so autocontrast has something to stretch.
arr = (arr.astype(np.int32) * 180 // 255 + 30).astype(np.uint8)
img = Image.fromarray(arr, "RGB")


def flat(im):
    return np.asarray(im, dtype=np.uint8).reshape(-1).tolist()


mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
out = {
    "made_by": "tools/golden/data_golden.py (PIL + torchvision 0.14)",
    "h": H,
    "w": W,
    "input": flat(img),
    "gray": flat(img.convert("L")),
    "hflip": flat(F.hflip(img)),
    "pad_crop": {"pad": 2, "y": 1, "x": 3, "h": 8, "w": 10,
                 "out": flat(F.crop(F.pad(img, 2), 1, 3, 8, 10))},
    "center_crop": {"h": 4, "w": 5, "out": flat(F.center_crop(img, [4, 5]))},
    "brightness": {"f": 1.3, "out": flat(F.adjust_brightness(img, 1.3))},
    "contrast": {"f": 0.7, "out": flat(F.adjust_contrast(img, 0.7))},
    "saturation": {"f": 1.5, "out": flat(F.adjust_saturation(img, 1.5))},
    "autocontrast": flat(ImageOps.autocontrast(img)),
    "equalize": flat(ImageOps.equalize(img)),
    "invert": flat(ImageOps.invert(img)),
    "posterize3": flat(ImageOps.posterize(img, 3)),
    "solarize100": flat(ImageOps.solarize(img, 100)),
    "normalize": {"mean": mean, "std": std,
                  "out": F.normalize(F.to_tensor(img), mean, std).reshape(-1).tolist()},
}
path = os.path.join(os.path.dirname(__file__), "..", "..", "convforever", "data", "testdata", "data_golden.json")
with open(path, "w") as f:
    json.dump(out, f)
print("wrote", os.path.normpath(path))
