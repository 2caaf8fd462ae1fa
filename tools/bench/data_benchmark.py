"""torchvision reference for //convforever/data:data_benchmark.

ImageFolder + RandomResizedCrop(224) + RandomHorizontalFlip + ToTensor + Normalize, batched by
DataLoader(num_workers=N, shuffle=True). Prints one JSON line {"images": n, "seconds": s,
"images_per_sec": r}, timing from the first batch's arrival to the last (worker start-up excluded,
as on the C++ side). Run with Debian's /usr/bin/python3 (python3-torchvision).
"""
import argparse
import json
import time

import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--size", type=int, default=224)
    a = p.parse_args()
    torch.manual_seed(0)
    tf = transforms.Compose([
        transforms.RandomResizedCrop(a.size),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    ])
    ds = datasets.ImageFolder(a.dir, transform=tf)
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
