"""The trainer fine-tunes from weights people have (--init_from), through the real entry point
with the default recipe's flags:

  * a transformers ConvNextForImageClassification saved with save_pretrained (same classes): with
    lr 0 the run's checkpoint gives transformers' logits, so the weights were really used;
  * the same with 1000 classes: the head is re-initialised, with a log line naming it;
  * a timm resnet18 saved with torch.save (--model=resnet18, 1000 -> 10 classes);
  * a timm state dict for another architecture: a clear error naming the file;
  * --resume=DIR: --init_from is ignored, and the log says so.

Usage: init_from_check.py TRAIN_BINARY MODELS_BINARY RECIPE
"""
import glob
import os
import sys

import timm
import torch
from safetensors.torch import save_file
from transformers import ConvNextConfig, ConvNextForImageClassification

import common

HEAD_NOTE = "re-initialised: the file has 1000 classes, the model 10"


def hf_convnext(num_labels):
    config = ConvNextConfig(num_channels=1, patch_size=2, num_stages=3, hidden_sizes=[32, 64, 128],
                            depths=[2, 2, 2], layer_scale_init_value=0.0, layer_norm_eps=1e-6,
                            num_labels=num_labels)
    model = ConvNextForImageClassification(config).eval()
    common.perturb_(model, seed=21)
    return model


def train(train_bin, recipe, run_dir, *flags, check=True):
    # A few steps only: the recipe's 200 warmup steps would not fit.
    return common.run([train_bin, f"--flagfile={recipe}", f"--run_dir={run_dir}", "--warmup_steps=0", *flags],
                      check=check)


def latest_checkpoint(run_dir):
    done = sorted(glob.glob(os.path.join(run_dir, "checkpoints", "step-*", "DONE")))
    if not done:
        sys.exit(f"FAIL: no complete checkpoint in {run_dir}")
    return os.path.dirname(done[-1])


def check_weights_used(train_bin, models_bin, recipe, base):
    model = hf_convnext(10)
    src = os.path.join(base, "hf10")
    model.save_pretrained(src)
    run_dir = os.path.join(base, "run_hf10")
    _, log = train(train_bin, recipe, run_dir, f"--init_from={src}", "--max_steps=1", "--lr=1e-12", "--min_lr=1e-12",
                   "--weight_decay=0")
    if "init_from:" not in log or "transformers names" not in log:
        sys.exit(f"FAIL: no init_from log line:\n{log[-3000:]}")
    x = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    save_file({"input": x}, os.path.join(base, "x.safetensors"))
    out = os.path.join(base, "logits.safetensors")
    common.run([models_bin, "forward", "convnext_nano_fmnist", "--weights", latest_checkpoint(run_dir),
                "--input", os.path.join(base, "x.safetensors"), "--out", out, "--layer_scale_init=0"])
    with torch.no_grad():
        theirs = model(pixel_values=x).logits
    common.assert_close(common.tensor(out, "logits"), theirs, "checkpoint after --init_from (lr 1e-12) vs transformers")
    return run_dir


def check_head(train_bin, recipe, base):
    src = os.path.join(base, "hf1000")
    hf_convnext(1000).save_pretrained(src)
    _, log = train(train_bin, recipe, os.path.join(base, "run_hf1000"), f"--init_from={src}", "--max_steps=2")
    if "'classifier' " + HEAD_NOTE not in log:
        sys.exit(f"FAIL: no head re-initialisation note:\n{log[-3000:]}")
    print("ok: transformers 1000-class head re-initialised", flush=True)


def check_timm_pth(train_bin, recipe, base):
    model = timm.create_model("resnet18", pretrained=False, in_chans=1, num_classes=1000)
    src = os.path.join(base, "timm_resnet18.pth")
    torch.save(model.state_dict(), src)
    run_dir = os.path.join(base, "run_timm")
    _, log = train(train_bin, recipe, run_dir, "--model=resnet18", "--widths=64,128,256,512", "--stem_stride=4",
                   f"--init_from={src}", "--max_steps=2")
    if "'fc' " + HEAD_NOTE not in log:
        sys.exit(f"FAIL: no head re-initialisation note for timm resnet18:\n{log[-3000:]}")
    latest_checkpoint(run_dir)
    print("ok: timm resnet18 .pth starts the trainer", flush=True)
    rc, log = train(train_bin, recipe, os.path.join(base, "run_wrong"), f"--init_from={src}", "--max_steps=1",
                    check=False)
    if rc == 0 or src not in log or "missing" not in log:
        sys.exit(f"FAIL: a resnet18 file into a ConvNeXt did not fail clearly (rc {rc}):\n{log[-3000:]}")
    print("ok: wrong architecture is an error naming the file", flush=True)


def check_resume(train_bin, recipe, run_dir):
    ckpt = latest_checkpoint(run_dir)
    _, log = train(train_bin, recipe, run_dir, f"--resume={ckpt}", "--init_from=/nonexistent/weights.pth",
                   "--max_steps=2")
    if "init_from: ignored" not in log:
        sys.exit(f"FAIL: --resume did not say --init_from is ignored:\n{log[-3000:]}")
    print("ok: --init_from ignored on --resume", flush=True)


def main():
    train_bin, models_bin, recipe = map(common.binary, sys.argv[1:4])
    torch.set_num_threads(2)
    base = common.tmpdir("init_from")
    run_dir = check_weights_used(train_bin, models_bin, recipe, base)
    check_head(train_bin, recipe, base)
    check_timm_pth(train_bin, recipe, base)
    check_resume(train_bin, recipe, run_dir)
    print("PASS")


if __name__ == "__main__":
    main()
