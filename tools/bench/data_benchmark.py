"""torchvision reference for //convforever/data:data_benchmark: the same per-image work as the C++ side.

ImageFolder with a loader that opens the JPEG, applies PIL's Image.draft("RGB", (s, s)) when
--draft-min-side s > 0 (the rule the C++ decoder uses for that side; 0 = full size, as ImageFolder's
default loader) and converts to RGB; then RandomResizedCrop(224) (antialiased bilinear: PIL's
resize), RandomHorizontalFlip, ToTensor, Normalize(ImageNet mean/std), batched by
DataLoader(num_workers=N, shuffle=True). Prints one JSON line {"images": n, "seconds": s,
"images_per_sec": r}, timing from the first batch's arrival to the last (worker start-up excluded,
as on the C++ side). --profile first prints the per-stage CPU time (thread time: other processes
share the cores) of the same work, one image at a
time in this process. Run with the project venv's python (data_benchmark passes --python).
"""
import argparse
import functools
import glob
import json
import os
import time

import torch
from PIL import Image
from torch.utils.data import DataLoader, default_collate
from torchvision import datasets, transforms


def load(path, draft_min_side):
    with open(path, "rb") as f:
        img = Image.open(f)
        if draft_min_side > 0:
            img.draft("RGB", (draft_min_side, draft_min_side))
        return img.convert("RGB")


def profile(a, tf_crop, tf_flip, tf_tensor):
    files = sorted(glob.glob(os.path.join(a.dir, "*", "*.jpg")))[:500]
    t = {"decode": 0.0, "rrc": 0.0, "flip": 0.0, "to_tensor+normalize": 0.0, "collate": 0.0}
    pending = []
    for path in files:
        t0 = time.thread_time()
        img = load(path, a.draft_min_side)
        t1 = time.thread_time()
        img = tf_crop(img)
        t2 = time.thread_time()
        img = tf_flip(img)
        t3 = time.thread_time()
        x = tf_tensor(img)
        t4 = time.thread_time()
        pending.append((x, 0))
        if len(pending) == a.batch:
            default_collate(pending)
            pending = []
        t5 = time.thread_time()
        for k, dt in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
            t[k] += dt
    n = len(files) / 1e6
    print("torchvision stages (CPU us/image, 1 thread, %d images): %s, total %.0f" % (
        len(files), ", ".join("%s %.0f" % (k, v / n) for k, v in t.items()), sum(t.values()) / n))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--draft-min-side", type=int, default=0)
    p.add_argument("--profile", action="store_true")
    a = p.parse_args()
    torch.manual_seed(0)
    crop = transforms.RandomResizedCrop(a.size, interpolation=transforms.InterpolationMode.BILINEAR, antialias=True)
    flip = transforms.RandomHorizontalFlip()
    to_tensor = transforms.Compose([
        transforms.ToTensor(),
        transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    ])
    if a.profile:
        torch.set_num_threads(1)
        profile(a, crop, flip, to_tensor)
    tf = transforms.Compose([crop, flip, to_tensor])
    ds = datasets.ImageFolder(a.dir, transform=tf, loader=functools.partial(load, draft_min_side=a.draft_min_side))
    dl = DataLoader(ds, batch_size=a.batch, shuffle=True, num_workers=a.workers, drop_last=False)
    n, t0 = 0, None
    for images, _ in dl:
        if t0 is None:
            t0 = time.perf_counter()
            continue
        n += images.shape[0]
    dt = time.perf_counter() - t0
    print(json.dumps({"images": n, "seconds": dt, "images_per_sec": n / dt}))


if __name__ == "__main__":
    main()
