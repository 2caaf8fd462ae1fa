"""Writes WebDataset shards with the real `webdataset` library, for wds_count_test.

Usage: write_wds_shards.py OUT_DIR SHARDS SAMPLES_PER_SHARD
Writes OUT_DIR/py-%06d.tar: sample i of shard s has key "py_<s>_<i>", a PNG (8x8, PIL) under
"png" and its label (i + s) % 3 under "cls", written by webdataset's encoders. Prints one line
per sample, "<shard file name>:<key> <label>", in shard order.
"""
import io
import sys

import webdataset as wds
from PIL import Image


def main():
    out_dir, shards, per_shard = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    for s in range(shards):
        name = "py-%06d.tar" % s
        with wds.TarWriter("%s/%s" % (out_dir, name)) as sink:
            for i in range(per_shard):
                img = Image.new("RGB", (8, 8), ((i * 7) % 256, (s * 40) % 256, 128))
                label = (i + s) % 3
                sink.write({"__key__": "py_%d_%d" % (s, i), "png": img, "cls": label})
                print("%s:py_%d_%d %d" % (name, s, i, label))


if __name__ == "__main__":
    main()
