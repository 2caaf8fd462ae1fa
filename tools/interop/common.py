"""Helpers shared by the interop checks: run our binaries, compare tensors, temp dirs."""
import os
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import load_file


def binary(path):
    """A Bazel runfile path (relative to the test's working directory) made absolute."""
    return os.path.abspath(path)


def run(cmd, env=None, check=True, timeout=None):
    """Runs cmd, echoing it; returns (returncode, combined output). A timeout is a failure."""
    print("+", " ".join(cmd), flush=True)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full_env,
                           timeout=timeout)
    except subprocess.TimeoutExpired as e:
        sys.exit(f"FAIL: {cmd[0]} still running after {timeout} s:\n{(e.output or b'')[-3000:]}")
    if check and p.returncode != 0:
        sys.exit(f"FAIL: {cmd[0]} exited {p.returncode}:\n{p.stdout[-4000:]}")
    return p.returncode, p.stdout


def tmpdir(name):
    base = os.environ.get("TEST_TMPDIR") or tempfile.mkdtemp()
    d = os.path.join(base, name)
    os.makedirs(d, exist_ok=True)
    return d


def tensor(path, name):
    return load_file(path)[name]


def assert_close(ours, theirs, what, tol=1e-4):
    """Max |difference| <= tol (relative to the logits' scale when that is above 1)."""
    ours, theirs = ours.float(), theirs.float()
    if ours.shape != theirs.shape:
        sys.exit(f"FAIL: {what}: shapes differ, ours {tuple(ours.shape)} vs {tuple(theirs.shape)}")
    scale = max(1.0, float(theirs.abs().max()))
    diff = float((ours - theirs).abs().max())
    status = "ok" if diff <= tol * scale else "FAIL"
    print(f"{status}: {what}: max |diff| {diff:.3g} (tolerance {tol * scale:.3g})", flush=True)
    if status != "ok":
        sys.exit(1)


def perturb_(model, seed):
    """Moves norm/layer scales, biases and BatchNorm statistics off their init, as `models export`
    does for ours, so a misplaced tensor changes the logits."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith("gamma") or (t.dim() == 1 and name.endswith(".weight")):
                t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.5)
            elif name.endswith("bias") or name.endswith("running_mean"):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)


def hf_from_pretrained_strict(directory):
    """AutoModelForImageClassification.from_pretrained that fails on any missing, unexpected or
    mis-shaped weight (transformers only warns and initialises them randomly)."""
    from transformers import AutoModelForImageClassification
    model, info = AutoModelForImageClassification.from_pretrained(directory, output_loading_info=True)
    bad = {k: v for k, v in info.items() if k != "error_msgs" and v}
    if bad or info.get("error_msgs"):
        sys.exit(f"FAIL: from_pretrained({directory}) is not a strict load: {bad} {info.get('error_msgs')}")
    return model.eval()
