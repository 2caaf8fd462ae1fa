"""timm reads what we write, and we read what timm writes.

For each registry entry given: `models export NAME --format timm` -> timm.create_model() from our
config.json (architecture + model_args + num_classes + in_chans) loads model.safetensors with
strict=True and gives our logits (1e-4). Then the other way: a timm model's state dict, saved with
safetensors and with torch.save (plain, and under 'state_dict' / 'model'), gives timm's logits in
`models forward`.

Usage: timm_check.py MODELS_BINARY IMAGE_SIZE NAME [NAME ...]
"""
import json
import os
import sys

import timm
import torch
from safetensors.torch import load_file, save_file

import common

# The largest entries (200M and 350M parameters) are checked in the export direction only: the
# import direction runs the same loader as for every other ConvNeXt, at twice the cost.
EXPORT_ONLY = ("convnext_large", "convnext_xlarge")


def timm_model(config):
    args = dict(config.get("model_args", {}))
    args["num_classes"] = config["num_classes"]
    return timm.create_model(config["architecture"], pretrained=False, **args).eval()


def check_export(models_bin, name, size):
    out = common.tmpdir(f"export_{name}")
    common.run([models_bin, "export", name, "--out", out, "--format", "timm", "--seed", "7",
                "--image_size", str(size)])
    with open(os.path.join(out, "config.json")) as f:
        config = json.load(f)
    model = timm_model(config)
    model.load_state_dict(load_file(os.path.join(out, "model.safetensors")), strict=True)
    x = common.tensor(os.path.join(out, "input.safetensors"), "input")
    with torch.no_grad():
        theirs = model(x)
    ours = common.tensor(os.path.join(out, "logits.safetensors"), "logits")
    common.assert_close(ours, theirs, f"{name}: timm.create_model({config['architecture']}) on our export")
    return config, x


def check_import(models_bin, name, config, x):
    model = timm_model(config)
    common.perturb_(model, seed=11)
    with torch.no_grad():
        theirs = model(x)
    out = common.tmpdir(f"import_{name}")
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    files = {"safetensors": os.path.join(out, "timm.safetensors"), "pth": os.path.join(out, "timm.pth")}
    save_file(sd, files["safetensors"])
    torch.save(model.state_dict(), files["pth"])
    if name in ("resnet18", "convforever"):  # the checkpoint shapes training scripts save
        files["pth_state_dict"] = os.path.join(out, "timm_state_dict.pth")
        torch.save({"state_dict": model.state_dict(), "epoch": 3}, files["pth_state_dict"])
        files["pth_model"] = os.path.join(out, "timm_model.pth")
        torch.save({"model": model.state_dict(), "optimizer": {}}, files["pth_model"])
    input_file = os.path.join(out, "input.safetensors")
    save_file({"input": x.contiguous()}, input_file)
    in_chans = config.get("model_args", {}).get("in_chans", 3)
    for kind, path in files.items():
        logits = os.path.join(out, f"logits_{kind}.safetensors")
        common.run([models_bin, "forward", name, "--weights", path, "--input", input_file, "--out", logits,
                    "--num_classes", str(config["num_classes"]), "--in_chans", str(in_chans),
                    "--image_size", str(x.shape[-1])])
        common.assert_close(common.tensor(logits, "logits"), theirs, f"{name}: our forward on timm's {kind}")


def main():
    models_bin, size, names = common.binary(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    torch.set_num_threads(2)
    for name in names:
        config, x = check_export(models_bin, name, size)
        if name not in EXPORT_ONLY:
            check_import(models_bin, name, config, x)
    print(f"PASS: {len(names)} models")


if __name__ == "__main__":
    main()
