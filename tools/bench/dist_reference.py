#!/usr/bin/env python3
"""PyTorch reference for //convforever/distributed:dist_benchmark: DistributedDataParallel over Gloo on
127.0.0.1 with the benchmark's model, per-rank batch, threads and buckets. Prints one JSON line
{"world": W, "step_ms": median step time of rank 0, "mean_ms": mean, "cpu_ms": median CPU time
of rank 0's process (all its threads) per step}. Run with the project venv's
python (the LibTorch our side links).

Configured as ConvForever's DataParallel works: buckets of --bucket_mb with a first bucket of
--first_bucket_mb (torch's own default pair, 25 MiB and 1 MiB, when given those), .grad as a
view into the bucket (gradient_as_bucket_view=True, as ours; --gradient_as_bucket_view=0 for
torch's default copy back), no unused-parameter search (torch's default).
"""
import argparse
import json
import os
import socket
import sys
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
        if args.first_bucket_mb == 1 and args.bucket_mb == 25:
            buckets = {}  # torch's default: 25 MiB buckets, the first of 1 MiB
        elif args.first_bucket_mb <= 0 or args.first_bucket_mb >= args.bucket_mb:
            buckets = {"bucket_cap_mb": args.bucket_mb}  # an explicit cap also caps the first bucket
        else:
            buckets = {"bucket_cap_mb_list": [args.first_bucket_mb, args.bucket_mb]}
        model = nn.parallel.DistributedDataParallel(
            model, gradient_as_bucket_view=bool(args.gradient_as_bucket_view),
            static_graph=bool(args.static_graph), **buckets)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(args.batch, 3, 32, 32)
    y = torch.randint(0, 10, (args.batch,))
    times = []
    phases = []  # per step: (name, wall s, process cpu s) for --phases
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        marks = [(start, time.process_time())]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        marks.append((time.perf_counter(), time.process_time()))
        loss.backward()  # DDP waits for its all-reduces at the end of backward
        marks.append((time.perf_counter(), time.process_time()))
        opt.step()
        marks.append((time.perf_counter(), time.process_time()))
        times.append(time.perf_counter() - start)
        phases.append([(n, b[0] - a[0], b[1] - a[1]) for n, a, b in
                       zip(("forward", "backward+sync wait", "update"), marks, marks[1:])])
    if rank == 0 and args.phases:
        kept = phases[args.warmup:]
        med = lambda v: sorted(v)[len(v) // 2]
        tw = tc = 0
        for i, (name, _, _) in enumerate(kept[0]):
            w, c = med([s[i][1] for s in kept]), med([s[i][2] for s in kept])
            tw, tc = tw + w, tc + c
            print(f"  phase {name}: wall {1000 * w:.2f} ms, cpu {1000 * c:.2f} ms", file=sys.stderr)
        print(f"  phases total: wall {1000 * tw:.2f} ms, cpu {1000 * tc:.2f} ms", file=sys.stderr)
    if rank == 0:
        with open(out, "w") as f:
            timed = sorted(times[args.warmup:])
            cpu = sorted(sum(c for _, _, c in step) for step in phases[args.warmup:])
            json.dump({"world": args.world, "step_ms": 1000 * timed[len(timed) // 2],
                       "mean_ms": 1000 * sum(timed) / len(timed),
                       "cpu_ms": 1000 * cpu[len(cpu) // 2]}, f)
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
    p.add_argument("--first_bucket_mb", type=float, default=1.0)
    p.add_argument("--gradient_as_bucket_view", type=int, default=1)
    p.add_argument("--static_graph", type=int, default=0)
    p.add_argument("--phases", type=int, default=0,
                   help="rank 0 prints the median time of each phase of its step to stderr")
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
