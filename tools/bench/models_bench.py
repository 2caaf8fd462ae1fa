#!/usr/bin/env python3
"""Reference side of //convforever/models:models_benchmark: the same forward+backward steps in
Debian's python3-torch (torchvision's convnext_tiny / resnet50, and a port of our small
Fashion-MNIST ConvNeXt), same threads, batch, size. Prints one JSON object: {name: ms_per_step}.

/usr/bin/python3 tools/bench/models_bench.py --threads 2 --iters 5
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


class LayerNorm2d(nn.LayerNorm):
    def forward(self, x):
        return F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps).permute(0, 3, 1, 2)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv_dw = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = nn.LayerNorm(c, eps=1e-6)
        self.fc1 = nn.Linear(c, 4 * c)
        self.fc2 = nn.Linear(4 * c, c)
        self.gamma = nn.Parameter(torch.full((c,), 1e-6))

    def forward(self, x):
        y = self.conv_dw(x).permute(0, 2, 3, 1)
        y = self.fc2(F.gelu(self.fc1(self.norm(y)))) * self.gamma
        return y.permute(0, 3, 1, 2) + x


class SmallConvNeXt(nn.Module):
    """Same layers as our convnext_{nano,pico}_fmnist: stem 2x2/2, depths (2,2,2) or (1,1,1), dims (32,64,128)."""

    def __init__(self, in_chans=1, num_classes=10, depths=(2, 2, 2), dims=(32, 64, 128), stem=2):
        super().__init__()
        layers = [nn.Conv2d(in_chans, dims[0], stem, stride=stem), LayerNorm2d(dims[0], eps=1e-6)]
        for i, (d, c) in enumerate(zip(depths, dims)):
            if i > 0:
                layers += [LayerNorm2d(dims[i - 1], eps=1e-6), nn.Conv2d(dims[i - 1], c, 2, stride=2)]
            layers += [Block(c) for _ in range(d)]
        self.features = nn.Sequential(*layers)
        self.norm = LayerNorm2d(dims[-1], eps=1e-6)
        self.fc = nn.Linear(dims[-1], num_classes)

    def forward(self, x):
        x = self.features(x).mean((2, 3), keepdim=True)
        return self.fc(self.norm(x).flatten(1))


def time_steps(model, x, target, iters, warmup=2):
    model.train()
    times = []
    for i in range(warmup + iters):
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(x), target)
        model.zero_grad(set_to_none=True)
        loss.backward()
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--models", default="convnext_tiny,resnet50,convnext_nano_fmnist,convnext_pico_fmnist")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    out = {}
    for name in a.models.split(","):
        if name.endswith("_fmnist"):
            depths = (2, 2, 2) if name == "convnext_nano_fmnist" else (1, 1, 1)
            model, x = SmallConvNeXt(depths=depths), torch.randn(128, 1, 28, 28)
            classes = 10
        else:
            model = getattr(torchvision.models, name)()
            x, classes = torch.randn(32, 3, 64, 64), 1000
        target = torch.randint(0, classes, (x.shape[0],))
        out[name] = time_steps(model, x, target, a.iters)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
