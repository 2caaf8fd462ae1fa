"""Reference for //convforever/train:train_benchmark: the default recipe's training step in
Debian's python3-torch/torchvision, as equivalent as the libraries allow.

Same data (Debian's Fashion-MNIST, normalized (x/255 - 0.5) / 0.5, shuffled, batch 128, one
loader worker), same model (torchvision's ConvNeXt blocks: stride-4 patchify stem from 1 channel,
3 stages of widths 48/96/192 with 2 blocks each), same optimizer (AdamW lr 1e-3, wd 0.05, the fused single-pass CPU implementation as our
trainer's), same
intra-op threads. Prints `images_per_sec <value>` measured between --warmup and --steps, data
loading included. With `--profile_steps A:B --profile_out F`, torch.profiler records steps [A, B)
and F gets the per-op table in the trainer's `--profile_steps` ops.json format (self and total CPU
time per op name, as key_averages() reports them). Run with /usr/bin/python3.
"""
import argparse
import gzip
import json
import time

import numpy as np
import torch
from torch import nn
from torchvision.models.convnext import CNBlockConfig, ConvNeXt

DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


class FashionMnist(torch.utils.data.Dataset):
    def __init__(self, hflip):
        self.images = read_idx(f"{DATA}/train-images-idx3-ubyte.gz")
        self.labels = read_idx(f"{DATA}/train-labels-idx1-ubyte.gz")
        self.hflip = hflip

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        x = torch.from_numpy(self.images[i].astype(np.float32) / 255.0).unsqueeze(0)
        if self.hflip and torch.rand(()) < 0.5:
            x = x.flip(-1)
        return (x - 0.5) / 0.5, int(self.labels[i])


def write_ops(profiler, steps, wall_us, path):
    ops = [{"name": e.key, "calls": e.count, "self_us": e.self_cpu_time_total,
            "total_us": e.cpu_time_total} for e in profiler.key_averages()]
    ops.sort(key=lambda o: -o["self_us"])
    with open(path, "w") as f:
        json.dump({"steps": steps, "wall_us": wall_us, "ops": ops}, f, indent=1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--channels_last", action="store_true")
    p.add_argument("--stem_stride", type=int, default=4)
    p.add_argument("--widths", default="48,96,192")
    p.add_argument("--hflip", action="store_true")
    p.add_argument("--label_smoothing", type=float, default=0.0)
    p.add_argument("--profile_steps", default="")
    p.add_argument("--profile_out", default="")
    a = p.parse_args()
    profile_first, profile_end = (int(v) for v in a.profile_steps.split(":")) if a.profile_steps else (-1, -1)
    profiler, profile_start = None, 0.0
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(FashionMnist(a.hflip), batch_size=a.batch, shuffle=True,
                                         num_workers=1, drop_last=True, persistent_workers=True)
    w = [int(x) for x in a.widths.split(",")]
    model = ConvNeXt([CNBlockConfig(w[0], w[1], 2), CNBlockConfig(w[1], w[2], 2),
                      CNBlockConfig(w[2], None, 2)], layer_scale=1.0, num_classes=10)
    model.features[0][0] = nn.Conv2d(1, w[0], kernel_size=a.stem_stride, stride=a.stem_stride)
    memory_format = torch.channels_last if a.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05, fused=True)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=a.label_smoothing)
    step, start = 0, None
    while step < a.steps:
        batches = iter(loader)
        while True:
            if step == profile_first and profiler is None:
                profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
                profiler.__enter__()
                profile_start = time.perf_counter()
            try:
                with torch.profiler.record_function("next_batch"):
                    x, y = next(batches)
            except StopIteration:
                break
            loss = loss_fn(model(x.contiguous(memory_format=memory_format)), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step == profile_end:
                wall_us = (time.perf_counter() - profile_start) * 1e6
                profiler.__exit__(None, None, None)
                write_ops(profiler, profile_end - profile_first, wall_us, a.profile_out)
            if step == a.warmup:
                start = time.perf_counter()
            if step == a.steps:
                break
    elapsed = time.perf_counter() - start
    print(f"images_per_sec {(a.steps - a.warmup) * a.batch / elapsed:.1f}", flush=True)


if __name__ == "__main__":
    main()
