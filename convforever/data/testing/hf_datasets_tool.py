"""The real `datasets` / `webdataset` libraries on both sides of convforever/data's Parquet and pack tests.

  hf_datasets_tool.py write-fixtures OUT   writes Hugging Face Parquet fixtures with datasets
                                           (Dataset.from_dict, Image(), ClassLabel, to_parquet) and
                                           OUT/manifest.json: per file, each row's image bytes (hex)
                                           and label, and the class names
  hf_datasets_tool.py read-parquet DIR     datasets.load_dataset("parquet", data_dir=DIR): prints
                                           JSON {split: {"names": [...], "rows": [[hex, label]...]}}
  hf_datasets_tool.py read-wds TAR...      webdataset reads the tars: prints JSON [[key, ext, hex, cls]...]
Run by the C++ tests with the project venv's python (see parquet_source_test.cc).
"""
import io
import json
import os
import sys

NAMES = ["cat", "dog", "bird", "fish"]


def _png(w, h, seed):
    from PIL import Image as PilImage
    img = PilImage.new("RGB", (w, h))
    img.putdata([((x * 7 + seed * 13) % 256, (y * 11 + seed) % 256, (x * y + seed * 3) % 256)
                 for y in range(h) for x in range(w)])
    buf = io.BytesIO()
    img.save(buf, format="JPEG" if seed % 3 == 0 else "PNG")
    return buf.getvalue()


def _dataset(n, seed, none_at=()):
    from datasets import ClassLabel, Dataset, Features, Image
    images, labels = [], []
    for i in range(n):
        s = seed * 1000 + i
        images.append(None if i in none_at else {"bytes": _png(8 + s % 5, 6 + s % 7, s), "path": f"img{s}.png"})
        labels.append((s * 3 + 1) % len(NAMES))
    features = Features({"image": Image(), "label": ClassLabel(names=NAMES)})
    return Dataset.from_dict({"image": images, "label": labels}, features=features)


def _rows(ds):
    from datasets import Image
    ds = ds.cast_column("image", Image(decode=False))
    return [[None if r["image"] is None else r["image"]["bytes"].hex(), r["label"]] for r in ds]


def write_fixtures(out):
    manifest = {"names": NAMES, "files": {}}

    def put(rel, ds, batch_size):
        path = os.path.join(out, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        ds.to_parquet(path, batch_size=batch_size)  # one row group per batch
        manifest["files"][rel] = _rows(ds)

    # The Hub's `data/<split>-NNNNN-of-NNNNN.parquet` layout: two train files, several row groups.
    put("hub/data/train-00000-of-00002.parquet", _dataset(23, 1, none_at=(5,)), 4)
    put("hub/data/train-00001-of-00002.parquet", _dataset(17, 2), 5)
    put("hub/data/test-00000-of-00001.parquet", _dataset(9, 3), 4)
    # The Parquet converter's `<config>/<split>/NNNN.parquet` layout.
    put("convert/default/train/0000.parquet", _dataset(12, 4), 5)
    put("convert/default/validation/0000.parquet", _dataset(6, 5), 5)
    # Two configs holding a train split: ambiguous.
    put("twoconfigs/a/train/0000.parquet", _dataset(3, 6), 5)
    put("twoconfigs/b/train/0000.parquet", _dataset(3, 7), 5)

    import pyarrow as pa
    import pyarrow.parquet as pq
    # Not the Image feature: the images in a column named `img`.
    pq.write_table(pa.table({"img": [b"x"], "label": [0]}), os.path.join(out, "no_image.parquet"))
    # A string label column.
    pq.write_table(pa.table({"image": pa.array([{"bytes": b"x", "path": "p"}]), "label": ["cat"]}),
                   os.path.join(out, "string_label.parquet"))
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f)


def read_parquet(data_dir):
    from datasets import load_dataset
    dd = load_dataset("parquet", data_dir=data_dir)
    out = {}
    for split, ds in dd.items():
        out[split] = {"names": ds.features["label"].names, "image_type": ds.features["image"]._type,
                      "rows": _rows(ds)}
    print(json.dumps(out))


def read_wds(tars):
    import webdataset as wds
    rows = []
    for s in wds.WebDataset(tars, shardshuffle=False):
        ext = next(k for k in ("png", "jpg", "webp") if k in s)
        rows.append([s["__key__"], ext, s[ext].hex(), int(s["cls"])])
    print(json.dumps(rows))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"write-fixtures": lambda: write_fixtures(args[0]), "read-parquet": lambda: read_parquet(args[0]),
     "read-wds": lambda: read_wds(args)}[cmd]()
