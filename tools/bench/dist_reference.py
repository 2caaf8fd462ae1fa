#!/usr/bin/env python3
"""PyTorch reference for //convforever/distributed:dist_benchmark: DistributedDataParallel over Gloo on
127.0.0.1 with the benchmark's model, per-rank batch and bucket size. Prints one JSON line
{"world": W, "step_ms": mean step time of rank 0}. Run with Debian's /usr/bin/python3 (torch 1.13).
"""
import argparse
import json
import os
import socket
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F


def make_model():
    # Same layers, in the same order, as BenchNet in convforever/distributed/dist_benchmark.cc.
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 8 * 8, 2048), nn.ReLU(),
        nn.Linear(2048, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))


def run(rank, args, port, out):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = make_model()
    if args.world > 1:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                world_size=args.world)
        model = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=args.bucket_mb)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(args.batch, 3, 32, 32)
    y = torch.randint(0, 10, (args.batch,))
    times = []
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
        times.append(time.perf_counter() - start)
    if rank == 0:
        with open(out, "w") as f:
            json.dump({"world": args.world, "step_ms": 1000 * sum(times[args.warmup:]) / args.steps}, f)
    if args.world > 1:
        dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--world", type=int, default=2)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--bucket_mb", type=float, default=25.0)
    p.add_argument("--out", default="/tmp/cf_dist_reference.json")
    args = p.parse_args()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    if args.world == 1:
        run(0, args, port, args.out)
    else:
        mp.spawn(run, args=(args, port, args.out), nprocs=args.world)
    with open(args.out) as f:
        print(f.read())


if __name__ == "__main__":
    main()
