"""Golden values for convforever/data/decode.h's JPEG reduction rule: PIL's Image.draft.

For several image sizes and requested minimum sides, the size PIL's img.draft("RGB", (s, s))
decodes to; and one small JPEG with PIL's pixels, full size and drafted, to compare decoders.

Run: .venv/bin/python tools/golden/jpeg_draft_golden.py
Writes convforever/data/testdata/jpeg_draft_golden.json (read by decode_test.cc).
"""
import io
import json
import os

import numpy as np
import PIL
from PIL import Image

SIZES = [(500, 375), (375, 500), (448, 448), (447, 448), (896, 600), (1000, 800), (1792, 1800),
         (1800, 1791), (4000, 3000), (17, 9), (225, 224), (223, 500)]
MIN_SIDES = [224, 256, 100, 64, 8]


def jpeg(w, h, seed, quality=90):
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w]
    arr = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x + y) * 3) % 256], -1)
    arr = np.clip(arr + rng.randint(-20, 21, size=arr.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def drafted(data, s):
    img = Image.open(io.BytesIO(data))
    if s > 0:
        img.draft("RGB", (s, s))
    return img.convert("RGB")


def main():
    sizes = []
    for (w, h) in SIZES:
        data = jpeg(w, h, 1, quality=50)
        for s in MIN_SIDES:
            img = drafted(data, s)
            sizes.append({"w": w, "h": h, "min_side": s, "out_w": img.size[0], "out_h": img.size[1]})
    data = jpeg(67, 45, 2)
    pixels = {}
    for s in (0, 16):
        img = drafted(data, s)
        pixels[str(s)] = {"h": img.size[1], "w": img.size[0], "rgb": np.asarray(img).reshape(-1).tolist()}
    out = {"made_by": "tools/golden/jpeg_draft_golden.py (PIL %s)" % PIL.__version__, "sizes": sizes,
           "jpeg": list(data), "decoded": pixels}
    path = os.path.join(os.path.dirname(__file__), "..", "..", "convforever", "data", "testdata",
                        "jpeg_draft_golden.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print("wrote", os.path.normpath(path), len(sizes), "sizes")


if __name__ == "__main__":
    main()
