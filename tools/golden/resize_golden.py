"""Golden values for convforever/data/resample.h: PIL's antialiased resize, as torchvision runs it.

torchvision's Resize / RandomResizedCrop / CenterCrop on a PIL image call img.crop(box) and then
img.resize(size, BILINEAR|BICUBIC): the crop is a sub-image, so the filter never reads pixels
outside the box (unlike Image.resize(..., box=...), which may). The cases here do the same:
integer crop boxes, down- and upscales, odd sizes, 1 and 3 channels, both filters.

Run: .venv/bin/python tools/golden/resize_golden.py
Writes convforever/data/testdata/resize_golden.json (read by resample_test.cc).
"""
import json
import os

import numpy as np
import PIL
from PIL import Image
import torchvision.transforms as T

rng = np.random.RandomState(11)


def picture(h, w, c):
    # Smooth ramps plus noise plus a hard edge: antialiasing and ringing both show.
    y, x = np.mgrid[0:h, 0:w]
    base = 40 + 150 * (x / max(w - 1, 1)) * (0.5 + 0.5 * np.sin(y / 3.0))
    base[h // 3:, w // 2:] = 245
    planes = [np.clip(base + rng.randint(-40, 41, size=(h, w)) + 30 * k, 0, 255) for k in range(c)]
    arr = np.stack(planes, axis=-1).astype(np.uint8)
    return arr if c == 3 else arr[:, :, 0]


FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}
# (input h, w, channels, crop box (y, x, h, w), output h, w)
CASES = [
    (37, 53, 3, (0, 0, 37, 53), 13, 17),   # down ~3x, odd sizes
    (37, 53, 3, (5, 7, 23, 31), 11, 9),    # crop then down
    (48, 80, 3, (0, 0, 48, 80), 7, 5),     # down ~11x / 16x: wide support
    (37, 53, 3, (0, 0, 37, 53), 37, 53),   # identity size
    (13, 11, 3, (0, 0, 13, 11), 29, 23),   # upscale (support 1x)
    (37, 53, 3, (3, 2, 19, 41), 30, 15),   # up in one axis, down in the other
    (37, 53, 1, (0, 0, 37, 53), 13, 17),   # gray down
    (13, 11, 1, (1, 1, 10, 9), 31, 20),    # gray up
    (50, 41, 1, (4, 3, 40, 37), 40, 19),   # gray: one axis unchanged, the other down
]


def main():
    cases = []
    for (ih, iw, c, (by, bx, bh, bw), oh, ow) in CASES:
        arr = picture(ih, iw, c)
        img = Image.fromarray(arr, "RGB" if c == 3 else "L")
        expected = {}
        for name, f in FILTERS.items():
            out = img.crop((bx, by, bx + bw, by + bh)).resize((ow, oh), f)
            expected[name] = np.asarray(out, dtype=np.uint8).reshape(-1).tolist()
        cases.append({"h": ih, "w": iw, "c": c, "box": [by, bx, bh, bw], "out_h": oh, "out_w": ow,
                      "input": arr.reshape(-1).tolist(), "expected": expected})
    # timm's eval transform at crop_pct 0.875 through torchvision: Resize(floor(14 / 0.875) = 16)
    # then CenterCrop(14), bilinear and bicubic, on the first case's RGB picture.
    ev = {"size": 14, "crop_pct": 0.875, "h": 37, "w": 53}
    arr = picture(37, 53, 3)
    ev["input"] = arr.reshape(-1).tolist()
    for name, mode in (("bilinear", T.InterpolationMode.BILINEAR), ("bicubic", T.InterpolationMode.BICUBIC)):
        tf = T.Compose([T.Resize(16, interpolation=mode), T.CenterCrop(14)])
        ev[name] = np.asarray(tf(Image.fromarray(arr, "RGB")), dtype=np.uint8).reshape(-1).tolist()
    path = os.path.join(os.path.dirname(__file__), "..", "..", "convforever", "data", "testdata",
                        "resize_golden.json")
    with open(path, "w") as f:
        json.dump({"made_by": "tools/golden/resize_golden.py (PIL %s)" % PIL.__version__, "cases": cases, "eval": ev}, f,
                  separators=(",", ":"))
    print("wrote", os.path.normpath(path), len(cases), "cases")


if __name__ == "__main__":
    main()
