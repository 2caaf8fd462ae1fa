#!/usr/bin/env python3
"""Golden fixtures for convforever/optim (run with Debian's /usr/bin/python3, torch 1.13).

Writes, under convforever/optim/testdata/:
  optim_steps.json      20 steps of torch.optim.AdamW and SGD(momentum, nesterov=True) on fixed
                        parameters with fixed gradients (two param groups, a per-step lr, one step
                        where a parameter has no gradient) -> the parameters after every step.
  optim_schedules.json  learning rates of OneCycleLR (cos, linear, three_phase) and of
                        SequentialLR(LinearLR -> CosineAnnealingLR) at every optimizer step.
  optim_clip.json       torch.nn.utils.clip_grad_norm_: total norm and clipped gradients.
  optim_scaler.json     GradScaler's loss-scale sequence over planted infs (see below).

Usage: .venv/bin/python tools/golden/optim_golden.py
"""
import json
import math
import os

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "convforever", "optim",
                   "testdata")
SCRIPT = "tools/golden/optim_golden.py"
STEPS = 20
SHAPES = {"w1": [4, 3], "b1": [3], "w2": [2, 2, 2]}


def flat(t):
    return [float(x) for x in t.detach().reshape(-1).tolist()]


def make_problem():
    g = torch.Generator().manual_seed(1234)
    init = {k: torch.randn(s, generator=g) for k, s in SHAPES.items()}
    grads = []
    for step in range(STEPS):
        grads.append({k: torch.randn(s, generator=g) * (1.0 + 0.1 * step) for k, s in SHAPES.items()})
    return init, grads


def lr_at(step, base):
    return base * (1.0 - step / 40.0)


def run_optimizer(make, init, grads, base_lr):
    params = {k: v.clone().requires_grad_(True) for k, v in init.items()}
    opt = make([
        {"params": [params["w1"], params["w2"]], "weight_decay": 0.05},
        {"params": [params["b1"]], "weight_decay": 0.0},
    ])
    trace = []
    for step in range(STEPS):
        for k in SHAPES:
            # Step 5: w2 has no gradient (skipped, its step count does not advance).
            params[k].grad = None if (step == 5 and k == "w2") else grads[step][k].clone()
        for group in opt.param_groups:
            group["lr"] = lr_at(step, base_lr)
        opt.step()
        trace.append({k: flat(v) for k, v in params.items()})
    return trace


def steps_fixture():
    init, grads = make_problem()
    adamw = run_optimizer(
        lambda groups: torch.optim.AdamW(groups, lr=1e-2, betas=(0.9, 0.999), eps=1e-8,
                                         foreach=True), init, grads, 1e-2)
    sgd = run_optimizer(
        lambda groups: torch.optim.SGD(groups, lr=0.1, momentum=0.9, nesterov=True, foreach=True),
        init, grads, 0.1)
    return {
        "made_by": SCRIPT, "torch": torch.__version__, "steps": STEPS,
        "shapes": SHAPES, "groups": [["w1", "w2"], ["b1"]], "weight_decay": [0.05, 0.0],
        "lr": "base * (1 - step / 40)", "no_grad": {"step": 5, "param": "w2"},
        "init": {k: flat(v) for k, v in init.items()},
        "grads": [{k: flat(v) for k, v in gs.items()} for gs in grads],
        "adamw": {"lr": 1e-2, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "params": adamw},
        "sgd": {"lr": 0.1, "momentum": 0.9, "nesterov": True, "params": sgd},
    }


def lrs_of(make_sched, steps, base_lr):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base_lr)
    sched = make_sched(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def schedules_fixture():
    S = torch.optim.lr_scheduler
    cases = []
    for name, kw in [("onecycle_cos", {}), ("onecycle_linear", {"anneal_strategy": "linear"}),
                     ("onecycle_three_phase", {"three_phase": True, "pct_start": 0.25}),
                     ("onecycle_custom", {"pct_start": 0.1, "div_factor": 10.0,
                                          "final_div_factor": 100.0})]:
        total = 100
        kw2 = dict(kw)
        lrs = lrs_of(lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=total, cycle_momentum=False,
                                            **kw2), total, 0.1)
        cases.append({"name": name, "type": "onecycle", "max_lr": 0.1, "total_steps": total,
                      "pct_start": kw.get("pct_start", 0.3),
                      "anneal": kw.get("anneal_strategy", "cos"),
                      "div_factor": kw.get("div_factor", 25.0),
                      "final_div_factor": kw.get("final_div_factor", 1e4),
                      "three_phase": kw.get("three_phase", False), "lrs": lrs})
    for warm, total, start, eta_min in [(10, 100, 0.01, 1e-5), (5, 37, 0.1, 0.0)]:
        lrs = lrs_of(lambda o: S.SequentialLR(o, [
            S.LinearLR(o, start_factor=start, end_factor=1.0, total_iters=warm),
            S.CosineAnnealingLR(o, T_max=total - warm, eta_min=eta_min)], milestones=[warm]),
            total, 0.1)
        cases.append({"name": "warmup_cosine_%d_%d" % (warm, total), "type": "cosine",
                      "base_lr": 0.1, "warmup_steps": warm, "total_steps": total,
                      "warmup_start_factor": start, "min_lr": eta_min, "lrs": lrs})
    lrs = lrs_of(lambda o: S.StepLR(o, step_size=7, gamma=0.5), 30, 0.1)
    cases.append({"name": "step", "type": "step", "base_lr": 0.1, "step_size": 7, "gamma": 0.5,
                  "total_steps": 30, "lrs": lrs})
    return {"made_by": SCRIPT, "torch": torch.__version__,
            "note": "lrs[i] is the lr the optimizer used at step i (0-based)", "cases": cases}


def clip_fixture():
    g = torch.Generator().manual_seed(7)
    grads = [torch.randn(s, generator=g) * 3 for s in ([5, 4], [7], [3, 3, 2])]
    out = {"made_by": SCRIPT, "torch": torch.__version__, "grads": [flat(x) for x in grads],
           "shapes": [list(x.shape) for x in grads], "cases": []}
    for max_norm in (1.0, 1e3):
        ps = [torch.zeros_like(x, requires_grad=True) for x in grads]
        for p, x in zip(ps, grads):
            p.grad = x.clone()
        total = torch.nn.utils.clip_grad_norm_(ps, max_norm)
        out["cases"].append({"max_norm": max_norm, "total_norm": float(total),
                             "clipped": [flat(p.grad) for p in ps]})
    return out


def scaler_fixture():
    # torch 1.13's GradScaler disables itself without CUDA, and its update op
    # (torch._amp_update_scale_) has no CPU kernel in 1.13 (checked: "Could not run
    # 'aten::_amp_update_scale_' with arguments from the 'CPU' backend"). So the sequence is made
    # from the documented algorithm of that kernel (aten/src/ATen/native/cuda/AmpKernels.cu),
    # in float32 like the kernel: on inf/NaN scale *= backoff and the growth tracker resets;
    # otherwise the tracker counts up and at growth_interval scale *= growth and it resets.
    try:
        s = torch.tensor([1.0]); t = torch.tensor([0], dtype=torch.int32)
        torch._amp_update_scale_(s, t, torch.tensor([0.0]), 2.0, 0.5, 3)
        source = "torch._amp_update_scale_ on CPU"
    except RuntimeError:
        source = "documented _amp_update_scale_ algorithm (no CPU kernel in torch 1.13), float32"
    init, growth, backoff, interval = 65536.0, 2.0, 0.5, 4
    infs = [False] * 9 + [True] + [False] * 3 + [True, True] + [False] * 10 + [True]
    scale = torch.tensor(init, dtype=torch.float32)
    tracker = 0
    scales, trackers = [], []
    for inf in infs:
        if inf:
            scale = scale * torch.tensor(backoff, dtype=torch.float32)
            tracker = 0
        else:
            tracker += 1
            if tracker == interval:
                scale = scale * torch.tensor(growth, dtype=torch.float32)
                tracker = 0
        scales.append(float(scale))
        trackers.append(tracker)
    return {"made_by": SCRIPT, "torch": torch.__version__, "source": source,
            "init_scale": init, "growth_factor": growth, "backoff_factor": backoff,
            "growth_interval": interval, "found_inf": infs,
            "scale_after_update": scales, "growth_tracker_after_update": trackers}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, fn in [("optim_steps.json", steps_fixture), ("optim_schedules.json", schedules_fixture),
                     ("optim_clip.json", clip_fixture), ("optim_scaler.json", scaler_fixture)]:
        with open(os.path.join(OUT, name), "w") as f:
            json.dump(fn(), f, indent=None)
        print("wrote", name)


if __name__ == "__main__":
    main()
