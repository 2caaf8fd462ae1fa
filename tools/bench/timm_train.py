"""Reference for ci/gpu_check.sh: timm's model trained the way our trainer trains it, for an
images/s figure measured on the same machine in the same run.

Same work as `train --model=M --data=synthetic --image_size=S --micro_batch_size=B
--precision=bf16 --channels_last` does per step: a batch of float32 NCHW->channels_last images
copied from (pinned) host memory to the device, forward under bf16 autocast, cross-entropy,
backward, AdamW (lr 1e-3, weight decay 0.05 on weights, none on norms, biases and layer-scale
gammas, as convforever/optim/param_groups does), zero_grad, and the loss read back every step
(our trainer logs it every step). Images come from a fixed pool of host batches made up front
(our trainer makes its synthetic images on CPU threads while the GPU works).

Modes: eager, or `--compile` (torch.compile of the model, default inductor). Prints one line
`images_per_sec <value>` measured over --steps after --warmup steps (compilation happens in the
warm-up), then a JSON line with the details.
"""
import argparse
import json
import sys
import time

import timm
import torch
import torch.nn.functional as F


def param_groups(model, weight_decay):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.ndim <= 1 or name.endswith(".gamma") or name.endswith(".bias"):
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="convnext_tiny")
    p.add_argument("--num_classes", type=int, default=10)
    p.add_argument("--image_size", type=int, default=224)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--device", default="cuda")
    p.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    p.add_argument("--compile", action="store_true")
    p.add_argument("--threads", type=int, default=0, help="CPU intra-op threads (0: torch default)")
    a = p.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("timm_train.py: --device=cuda but torch.cuda.is_available() is False")
    torch.manual_seed(0)

    model = timm.create_model(a.model, num_classes=a.num_classes, drop_path_rate=0.0)
    model = model.to(device).to(memory_format=torch.channels_last).train()
    opt = torch.optim.AdamW(param_groups(model, 0.05), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    step_model = torch.compile(model) if a.compile else model

    pin = device.type == "cuda"
    pool = []
    for _ in range(4):
        x = torch.randn(a.batch, 3, a.image_size, a.image_size).contiguous(
            memory_format=torch.channels_last)
        y = torch.randint(0, a.num_classes, (a.batch,))
        pool.append((x.pin_memory() if pin else x, y.pin_memory() if pin else y))

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def step(i):
        x, y = pool[i % len(pool)]
        x = x.to(device, non_blocking=True)
        y = y.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            logits = step_model(x)
        loss = F.cross_entropy(logits.float(), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    t0 = time.perf_counter()
    for i in range(a.warmup):
        step(i)
    sync()
    t_warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    last = 0.0
    for i in range(a.steps):
        last = step(a.warmup + i)
    sync()
    elapsed = time.perf_counter() - t0
    ips = a.steps * a.batch / elapsed
    print(f"images_per_sec {ips:.1f}")
    print(json.dumps({"mode": "compile" if a.compile else "eager", "model": a.model,
                      "batch": a.batch, "image_size": a.image_size, "steps": a.steps,
                      "warmup": a.warmup, "warmup_s": round(t_warm, 2),
                      "measured_s": round(elapsed, 3), "last_loss": round(last, 4),
                      "torch": torch.__version__, "timm": timm.__version__,
                      "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu"}))


if __name__ == "__main__":
    main()
