"""Our checkpoint judged by the peer: timm loads `model.safetensors` (strict) and runs the same
images as our `logits` binary; the logits must agree. Used by ci/gpu_check.sh.

  compare_logits.py make-input --out IN.safetensors [--batch 8] [--image_size 224]
  compare_logits.py compare --checkpoint DIR --model convnext_tiny --num_classes K \
      --input IN.safetensors --ours OURS.safetensors [--device cuda] [--tol 1e-3]

Both sides run in float32 with TF32 off (convforever/models/logits_main.cc does the same), in
eval mode. Pass: every row's top-1 agrees and max |ours - timm| <= tol * max(1, max |timm|).
"""
import argparse
import sys

import torch
from safetensors.torch import load_file, save_file


def make_input(a):
    g = torch.Generator().manual_seed(a.seed)
    images = torch.randn(a.batch, 3, a.image_size, a.image_size, generator=g)
    save_file({"images": images.contiguous()}, a.out)
    print(f"compare_logits: wrote {a.out} images {list(images.shape)}")


def compare(a):
    import timm

    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("compare_logits.py: --device=cuda but torch.cuda.is_available() is False")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model = timm.create_model(a.model, num_classes=a.num_classes)
    state = load_file(f"{a.checkpoint}/model.safetensors")
    model.load_state_dict(state, strict=True)  # raises on any missing, unexpected or mis-shaped name
    model = model.to(device).eval()
    images = load_file(a.input)["images"].to(device)
    with torch.no_grad():
        theirs = model(images).float().cpu()
    ours = load_file(a.ours)["logits"].float()
    if ours.shape != theirs.shape:
        sys.exit(f"compare_logits: shape mismatch: ours {list(ours.shape)} timm {list(theirs.shape)}")
    diff = (ours - theirs).abs().max().item()
    scale = max(1.0, theirs.abs().max().item())
    agree = int((ours.argmax(1) == theirs.argmax(1)).sum().item())
    ok = diff <= a.tol * scale and agree == ours.shape[0]
    print(f"logits vs timm ({a.model}, strict load of {len(state)} tensors, {device.type}): "
          f"max |diff| {diff:.3g}, max |logit| {scale:.3g}, top-1 agree {agree}/{ours.shape[0]}, "
          f"tolerance {a.tol:g} x max(1, max |logit|) -> {'PASS' if ok else 'FAIL'}")
    sys.exit(0 if ok else 1)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make-input")
    m.add_argument("--out", required=True)
    m.add_argument("--batch", type=int, default=8)
    m.add_argument("--image_size", type=int, default=224)
    m.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("compare")
    c.add_argument("--checkpoint", required=True)
    c.add_argument("--model", required=True)
    c.add_argument("--num_classes", type=int, required=True)
    c.add_argument("--input", required=True)
    c.add_argument("--ours", required=True)
    c.add_argument("--device", default="cuda")
    c.add_argument("--tol", type=float, default=1e-3)
    a = p.parse_args()
    make_input(a) if a.cmd == "make-input" else compare(a)


if __name__ == "__main__":
    main()
