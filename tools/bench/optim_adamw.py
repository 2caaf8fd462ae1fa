#!/usr/bin/env python3
"""Reference side of //convforever/optim:optim_benchmark: one torch.optim.AdamW step (--impl foreach
or fused, the two implementations torch offers on the CPU)
over ConvNeXt-T's parameter shapes (timm convnext_tiny: depths 3-3-9-3, dims 96-192-384-768,
1000 classes; 28,589,128 parameters), float32 on the CPU.

Usage: .venv/bin/python tools/bench/optim_adamw.py --threads N --steps S --impl foreach|fused
Prints one JSON line: {"ms_per_step": ..., "params": ...}.
"""
import argparse
import json
import time

import torch


def convnext_tiny_shapes():
    dims, depths = [96, 192, 384, 768], [3, 3, 9, 3]
    shapes = [[96, 3, 4, 4], [96], [96], [96]]  # stem conv + LayerNorm2d
    prev = 96
    for i, (d, n) in enumerate(zip(dims, depths)):
        if i > 0:
            shapes += [[prev], [prev], [d, prev, 2, 2], [d]]  # downsample norm + conv
        for _ in range(n):
            shapes += [[d, 1, 7, 7], [d], [d], [d], [4 * d, d], [4 * d], [d, 4 * d], [d], [d]]
        prev = d
    shapes += [[768], [768], [1000, 768], [1000]]  # head norm + fc
    return shapes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--impl", choices=["foreach", "fused"], default="foreach")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    params = [torch.randn(s, generator=g).requires_grad_(True) for s in convnext_tiny_shapes()]
    for p in params:
        p.grad = torch.randn(p.shape, generator=g) * 1e-3
    impl = {args.impl: True}
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.05, **impl)
    for _ in range(args.warmup):
        opt.step()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - t0)
    times.sort()
    print(json.dumps({"ms_per_step": 1e3 * times[len(times) // 2],
                      "params": sum(p.numel() for p in params)}))


if __name__ == "__main__":
    main()
