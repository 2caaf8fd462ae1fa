"""Shards written by webdataset.TarWriter (PNG + .cls, the way users write them) train in our
trainer (--data=wds) with the default recipe's flags, and a checkpoint comes out.

The trainer takes integer .cls labels with a --class_list (the class count comes from it), counts
the shards' samples for its epoch length (nothing to pass), and evaluates on a separate held-out
shard (--eval_data_dir), written from Fashion-MNIST's test set; a timeout turns a hang into a failure.

Usage: wds_check.py TRAIN_BINARY RECIPE
"""
import glob
import gzip
import json
import os
import sys

import webdataset as wds
from PIL import Image

import common

FASHION = "/usr/share/datasets/fashion-mnist"
NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def write_shards(out, shards, per_shard, split="train", prefix="shard"):
    with gzip.open(os.path.join(FASHION, f"{'t10k' if split == 'test' else 'train'}-images-idx3-ubyte.gz")) as f:
        images = f.read()
    with gzip.open(os.path.join(FASHION, f"{'t10k' if split == 'test' else 'train'}-labels-idx1-ubyte.gz")) as f:
        labels = f.read()
    for s in range(shards):
        with wds.TarWriter(os.path.join(out, f"{prefix}-{s:06d}.tar")) as sink:
            for j in range(per_shard):
                i = s * per_shard + j
                img = Image.frombytes("L", (28, 28), images[16 + i * 784:16 + (i + 1) * 784])
                sink.write({"__key__": f"sample{i:06d}", "png": img, "cls": int(labels[8 + i])})


def main():
    train_bin, recipe = map(common.binary, sys.argv[1:3])
    base = common.tmpdir("wds")
    shards = common.tmpdir("wds/shards")
    write_shards(shards, shards=2, per_shard=192)
    write_shards(shards, shards=1, per_shard=64, split="test", prefix="test")
    class_list = os.path.join(base, "classes.txt")
    with open(class_list, "w") as f:
        f.write("\n".join(NAMES) + "\n")
    pattern = os.path.join(shards, "shard-{000000..000001}.tar")
    run_dir = os.path.join(base, "run")
    _, out = common.run([train_bin, f"--flagfile={recipe}", f"--run_dir={run_dir}", "--data=wds", f"--data_dir={pattern}",
                f"--eval_data_dir={os.path.join(shards, 'test-000000.tar')}", f"--class_list={class_list}",
                "--max_steps=4", "--warmup_steps=0"],  # the recipe's 200 warmup steps would not fit in 4
               timeout=300)
    if "test-000000.tar (--eval_data_dir)" not in out or "(64 images)" not in out:
        sys.exit(f"FAIL: the evaluation did not read the held-out shard:\n{out[-3000:]}")
    done = glob.glob(os.path.join(run_dir, "checkpoints", "step-*", "DONE"))
    if not done:
        sys.exit(f"FAIL: no complete checkpoint in {run_dir}")
    with open(os.path.join(os.path.dirname(sorted(done)[-1]), "config.json")) as f:
        config = json.load(f)
    if config.get("label_names") != NAMES:
        sys.exit(f"FAIL: checkpoint config.json label_names {config.get('label_names')}")
    print(f"PASS: trained on TarWriter shards; checkpoint {sorted(done)[-1]}")


if __name__ == "__main__":
    main()
