"""Hugging Face Parquet end to end, through our binaries, with the real `datasets` on the other side:

  1. `datasets` writes a Fashion-MNIST slice as a Hub dataset repo (data/train-*.parquet,
     data/test-*.parquet: an Image() column and a ClassLabel with the class names), and the trainer
     trains on it with the default recipe's flags (--data=parquet, no class list: the names come
     from the files' "huggingface" metadata) and evaluates on its test split; the checkpoint's
     config.json carries the names;
  2. `pack` turns Fashion-MNIST (IDX) into Parquet that datasets.load_dataset("parquet") loads
     with the same labels and class names, and into WebDataset tars that webdataset reads.

Usage: parquet_check.py TRAIN_BINARY RECIPE PACK_BINARY
"""
import glob
import gzip
import io
import json
import os
import sys

from PIL import Image as PilImage

import common

FASHION = "/usr/share/datasets/fashion-mnist"
NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def fashion(prefix, n):
    with gzip.open(os.path.join(FASHION, f"{prefix}-images-idx3-ubyte.gz")) as f:
        images = f.read()
    with gzip.open(os.path.join(FASHION, f"{prefix}-labels-idx1-ubyte.gz")) as f:
        labels = f.read()
    out = []
    for i in range(n):
        buf = io.BytesIO()
        PilImage.frombytes("L", (28, 28), images[16 + i * 784:16 + (i + 1) * 784]).save(buf, format="PNG")
        out.append((buf.getvalue(), labels[8 + i]))
    return out


def write_repo(root):
    from datasets import ClassLabel, Dataset, Features, Image
    features = Features({"image": Image(), "label": ClassLabel(names=NAMES)})
    for split, prefix, n in [("train", "train", 384), ("test", "t10k", 128)]:
        rows = fashion(prefix, n)
        ds = Dataset.from_dict({"image": [{"bytes": b, "path": None} for b, _ in rows],
                                "label": [l for _, l in rows]}, features=features)
        os.makedirs(os.path.join(root, "data"), exist_ok=True)
        ds.to_parquet(os.path.join(root, "data", f"{split}-00000-of-00001.parquet"), batch_size=100)


def check_train(train_bin, recipe, base):
    repo = common.tmpdir("parquet/repo")
    write_repo(repo)
    run_dir = os.path.join(base, "run")
    common.run([train_bin, f"--flagfile={recipe}", f"--run_dir={run_dir}", "--data=parquet", f"--data_dir={repo}",
                "--max_steps=4", "--warmup_steps=0"], timeout=300)
    done = glob.glob(os.path.join(run_dir, "checkpoints", "step-*", "DONE"))
    if not done:
        sys.exit(f"FAIL: no complete checkpoint in {run_dir}")
    with open(os.path.join(os.path.dirname(sorted(done)[-1]), "config.json")) as f:
        config = json.load(f)
    if config.get("label_names") != NAMES:
        sys.exit(f"FAIL: checkpoint config.json label_names {config.get('label_names')}")
    print(f"ok: trained on a datasets-written Parquet repo; checkpoint {sorted(done)[-1]}", flush=True)


def check_pack(pack_bin, base):
    from datasets import Image, load_dataset
    import webdataset as wds
    out = os.path.join(base, "packed")
    _, text = common.run([pack_bin, "--data=fashion_mnist", "--split=test", "--subset=300", f"--out={out}",
                          "--format=parquet", "--shard_size=128"], timeout=120)
    if "300 samples in 3 parquet shards" not in text:
        sys.exit(f"FAIL: pack summary: {text}")
    ds = load_dataset("parquet", data_dir=out, split="test")
    if ds.features["label"].names != NAMES or len(ds) != 300:
        sys.exit(f"FAIL: datasets read {len(ds)} rows, names {ds.features['label'].names}")
    # --subset=300 of 10000 strides by 10000/300: rows i * 10000 // 300.
    labels = ds["label"]
    all_labels = [l for _, l in fashion("t10k", 10000)]
    expect = [all_labels[i * 10000 // 300] for i in range(300)]
    if labels != expect:
        sys.exit("FAIL: datasets read other labels than pack wrote")
    img = ds.cast_column("image", Image(decode=True))[0]["image"]
    if img.size != (28, 28):
        sys.exit(f"FAIL: first image is {img.size}")
    tars = os.path.join(base, "tars")
    common.run([pack_bin, "--data=fashion_mnist", "--split=test", "--subset=300", f"--out={tars}",
                "--format=wds", "--shard_size=128"], timeout=120)
    shards = sorted(glob.glob(os.path.join(tars, "test-*.tar")))
    got = [int(s["cls"]) for s in wds.WebDataset(shards, shardshuffle=False)]
    if got != expect:
        sys.exit(f"FAIL: webdataset read {len(got)} samples / other labels from {shards}")
    print(f"ok: pack -> parquet read by datasets, -> wds read by webdataset ({len(shards)} shards)", flush=True)


def main():
    train_bin, recipe, pack_bin = map(common.binary, sys.argv[1:4])
    base = common.tmpdir("parquet")
    os.environ["HF_HOME"] = common.tmpdir("parquet/hf_home")  # datasets' cache, inside the sandbox
    check_pack(pack_bin, base)
    check_train(train_bin, recipe, base)
    print("PASS")


if __name__ == "__main__":
    main()
