"""One real training run of the default recipe (its own flags; only --run_dir and --max_steps
changed, plus the output flags; 210 steps, as the recipe warms up for 200), then the tools users run read its outputs:

  * TensorBoard's EventAccumulator: every scalar, steps and values equal to metrics.jsonl's;
  * Trackio's SQLiteStorage: the project, the run, its metrics (= metrics.jsonl), config and
    system metrics (the dashboard's System tab);
  * transformers: AutoModelForImageClassification.from_pretrained(hub/step-N) gives our logits and
    Fashion-MNIST's class names; AutoImageProcessor.from_pretrained(hub/step-N) turns test images
    into the tensor our eval pipeline gives (eval_batch), and the logits on it agree.

The snapshot needs --hub_repo; the Hub here is a local server that refuses every request (401),
so the upload fails at once and training goes on, as in an outage.

Usage: run_outputs_check.py TRAIN_BINARY MODELS_BINARY EVAL_BATCH_BINARY RECIPE
"""
import glob
import gzip
import http.server
import json
import math
import os
import sys
import threading

import common

FASHION = "/usr/share/datasets/fashion-mnist"
NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


class Refuse(http.server.BaseHTTPRequestHandler):
    def _refuse(self):
        body = b'{"error":"Invalid credentials"}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _refuse

    def log_message(self, *args):
        pass


def train(train_bin, recipe, run_dir, trackio_dir):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {"TRACKIO_DIR": trackio_dir, "HF_ENDPOINT": f"http://127.0.0.1:{server.server_port}",
           "HF_TOKEN": "hf_interop_test_token"}
    common.run([train_bin, f"--flagfile={recipe}", f"--run_dir={run_dir}", "--max_steps=210",
                "--log_every_steps=50", "--tensorboard", "--trackio_project=cf_interop",
                "--hub_repo=convforever/interop-check"], env=env)
    server.shutdown()


def jsonl_series(run_dir):
    """({metric: [(step, value)]}, {system metric: [value]}) from metrics.jsonl."""
    series, system = {}, {}
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            rec = json.loads(line)
            if rec.get("kind") not in ("metrics", "system"):
                continue
            for k, v in rec.items():
                if k in ("kind", "step", "wall_time"):
                    continue
                if rec["kind"] == "metrics":
                    series.setdefault(k, []).append((rec["step"], float(v)))
                else:
                    system.setdefault(k, []).append(float(v))
    if not series or not system:
        sys.exit("FAIL: metrics.jsonl lacks metrics or system records")
    return series, system


def same_series(what, got, want):
    if [s for s, _ in got] != [s for s, _ in want]:
        sys.exit(f"FAIL: {what}: steps {[s for s, _ in got]} != metrics.jsonl's {[s for s, _ in want]}")
    for (s, a), (_, b) in zip(got, want):
        if not (math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-7) or (math.isnan(a) and math.isnan(b))):
            sys.exit(f"FAIL: {what} at step {s}: {a} != metrics.jsonl's {b}")


def check_tensorboard(run_dir, series, system):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(os.path.join(run_dir, "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    if tags != set(series) | set(system):
        sys.exit(f"FAIL: TensorBoard tags {sorted(tags)} != metrics.jsonl's {sorted(set(series) | set(system))}")
    for tag in sorted(series):
        same_series(f"TensorBoard '{tag}'", [(e.step, e.value) for e in acc.Scalars(tag)], series[tag])
    for tag in sorted(system):  # system records carry no step in metrics.jsonl: compare the values
        got = [(i, e.value) for i, e in enumerate(acc.Scalars(tag))]
        same_series(f"TensorBoard system '{tag}'", got, list(enumerate(system[tag])))
    print(f"ok: EventAccumulator reads {len(tags)} scalars equal to metrics.jsonl", flush=True)


def check_trackio(run_name, series):
    from trackio.sqlite_storage import SQLiteStorage
    if "cf_interop" not in SQLiteStorage.get_projects():
        sys.exit(f"FAIL: trackio projects {SQLiteStorage.get_projects()} lack cf_interop")
    runs = SQLiteStorage.get_runs("cf_interop")
    if run_name not in runs:
        sys.exit(f"FAIL: trackio runs {runs} lack {run_name}")
    logs = SQLiteStorage.get_logs("cf_interop", run_name)
    for key, want in series.items():
        got = [(r["step"], float(r[key])) for r in logs if key in r]
        same_series(f"trackio '{key}'", got, want)
    config = SQLiteStorage.get_run_config("cf_interop", run_name) or {}
    if config.get("model") != "convnext_nano_fmnist":
        sys.exit(f"FAIL: trackio config lacks model=convnext_nano_fmnist: {sorted(config)[:20]}")
    system = SQLiteStorage.get_system_logs("cf_interop", run_name)
    keys = sorted({k for r in system for k in r if "/" in k})
    if not system or not any(k.startswith("cpu/") or k.startswith("memory/") for k in keys):
        sys.exit(f"FAIL: trackio system metrics missing: {system[:2]}")
    print(f"ok: trackio reads the run: {len(logs)} metric rows, config, system metrics {keys[:6]}", flush=True)


def fashion_test_images(n):
    from PIL import Image
    with gzip.open(os.path.join(FASHION, "t10k-images-idx3-ubyte.gz")) as f:
        data = f.read()
    return [Image.frombytes("L", (28, 28), data[16 + i * 784:16 + (i + 1) * 784]) for i in range(n)]


def check_transformers(run_dir, models_bin, eval_bin):
    import torch
    from transformers import AutoImageProcessor
    snapshots = sorted(glob.glob(os.path.join(run_dir, "hub", "step-*")))
    checkpoints = sorted(glob.glob(os.path.join(run_dir, "checkpoints", "step-*")))
    if not snapshots or not checkpoints:
        sys.exit(f"FAIL: no hub snapshot ({snapshots}) or checkpoint ({checkpoints}) in {run_dir}")
    snap, ckpt = snapshots[-1], checkpoints[-1]
    model = common.hf_from_pretrained_strict(snap)
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    if labels != NAMES:
        sys.exit(f"FAIL: id2label {labels} != Fashion-MNIST's names")
    ours_input = os.path.join(run_dir, "eval_batch.safetensors")
    common.run([eval_bin, "--data=fashion_mnist", f"--data_dir={FASHION}", "--count=8", f"--out={ours_input}"])
    x = common.tensor(ours_input, "input")
    processor = AutoImageProcessor.from_pretrained(snap)
    pixels = processor(fashion_test_images(8), return_tensors="pt")["pixel_values"]
    common.assert_close(x, pixels, f"{type(processor).__name__} vs our eval pipeline", tol=1e-3)
    logits_file = os.path.join(run_dir, "our_logits.safetensors")
    common.run([models_bin, "forward", "convnext_nano_fmnist", "--weights", ckpt, "--input", ours_input,
                "--out", logits_file, "--layer_scale_init=0"])
    with torch.no_grad():
        theirs = model(pixel_values=pixels).logits
    common.assert_close(common.tensor(logits_file, "logits"), theirs,
                        "from_pretrained(snapshot) on the processor's tensor vs our checkpoint")


def main():
    train_bin, models_bin, eval_bin, recipe = map(common.binary, sys.argv[1:5])
    base = common.tmpdir("run_outputs")
    run_dir, trackio_dir = os.path.join(base, "fmnist_interop"), os.path.join(base, "trackio")
    os.environ["TRACKIO_DIR"] = trackio_dir  # trackio reads it when imported
    train(train_bin, recipe, run_dir, trackio_dir)
    series, system = jsonl_series(run_dir)
    check_tensorboard(run_dir, series, system)
    check_trackio("fmnist_interop", series)
    check_transformers(run_dir, models_bin, eval_bin)
    print("PASS")


if __name__ == "__main__":
    main()
