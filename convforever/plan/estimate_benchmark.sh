#!/usr/bin/env bash
# Acceptance check of the estimator on this machine: `train --estimate --calibrate --gpu=local`
# predicts the wall time of the default recipe (fashion_mnist) for --max_steps=300 (steps, the
# final evaluation on the 10,000 test images, startup), then the real `train` runs with the same
# flags and the two are printed side by side. Target: predicted within 15% of measured.
#   bazel run -c opt //convforever/plan:estimate_benchmark [-- extra train flags]
# or, after `bazel build //convforever/train:train`: convforever/plan/estimate_benchmark.sh
set -euo pipefail

# The repository root: bazel run's workspace, else the current directory when it is the root
# (tools/cf runs bazel-bin/... from there), else two folders above this script.
if [ -n "${BUILD_WORKSPACE_DIRECTORY:-}" ]; then
  ROOT="$BUILD_WORKSPACE_DIRECTORY"
elif [ -f WORKSPACE ] && [ -d convforever/train ]; then
  ROOT="$PWD"
else
  ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
fi
cd "$ROOT"
TRAIN="$ROOT/bazel-bin/convforever/train/train"
[ -x "$TRAIN" ] || { echo "estimate_benchmark: build //convforever/train:train first" >&2; exit 1; }
WORK=$(mktemp -d /tmp/cf-estimate-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

FLAGS=(--flagfile=convforever/train/recipes/fashion_mnist.flags --max_steps=300 --tensorboard=false "$@")

echo "estimate_benchmark: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
# The estimate runs before and after the real run and the two predictions are averaged: on a
# shared machine the load drifts over a run's minute, and bracketing halves its effect.
estimate() {  # estimate <name>: prints the predicted wall seconds
  "$TRAIN" "${FLAGS[@]}" --run_dir="$WORK/$1" --estimate --calibrate --calibrate_steps=20 \
    --gpu=local --estimate_json="$WORK/$1.json" >"$WORK/$1.txt" 2>"$WORK/$1.log" \
    || { cat "$WORK/$1.log" >&2; exit 1; }
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rows"][0]["wall_hours"] * 3600)' "$WORK/$1.json"
}
before=$(estimate before)
sed -n 's/^throughput: //p' "$WORK/before.txt"

start=$(date +%s.%N)
"$TRAIN" "${FLAGS[@]}" --run_dir="$WORK/run" >"$WORK/train.log" 2>&1 || { tail -20 "$WORK/train.log" >&2; exit 1; }
end=$(date +%s.%N)
after=$(estimate after)

python3 - "$before" "$after" "$start" "$end" "$WORK/run/metrics.jsonl" <<'PY'
import json, sys
before, after, start, end = map(float, sys.argv[1:5])
measured = end - start
predicted = (before + after) / 2
rates = [r["train/images_per_sec"] for r in map(json.loads, open(sys.argv[5]))
         if r.get("kind") == "metrics" and "train/images_per_sec" in r]
print(f"real run: {measured:.1f} s wall; training images/s at each log line: "
      + ", ".join(f"{x:.0f}" for x in rates))
ratio = predicted / measured
print(f"predicted {predicted:.1f} s (before {before:.1f}, after {after:.1f})   measured {measured:.1f} s   "
      f"predicted/measured {ratio:.3f}   ({'within' if abs(ratio - 1) <= 0.15 else 'OUTSIDE'} 15%)")
PY
