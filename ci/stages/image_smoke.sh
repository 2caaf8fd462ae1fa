#!/usr/bin/env bash
# ci/stages/image_smoke.sh ARCHIVE [cpu|cuda]: loads a built image (`tools/cf image build`) into a
# podman storage of its own and runs it the way users will, with no shell in the image:
#   - the entrypoint's help, `models`, `train --help`; no /bin/sh; runs as the non-root user;
#   - every recipe for 3 steps on synthetic data (the overrides of //convforever/train:train_test);
#   - the preflight: green on synthetic data, and unreachable data named;
#   - 2 ranks over Gloo: `launch -n 2` in one container (DDP, PowerSGD, DiLoCo), and one container
#     per rank joined by MASTER_ADDR/MASTER_PORT as a multi-node job is;
#   - classify against the fake OpenAI-compatible endpoint on the host, the key from the
#     environment and never in the output;
#   - a checkpoint written by the container, resumed outside it by this checkout's trainer.
# One line per check (ci/stages/lib.sh); exits non-zero when one failed. Podman runs with runc, vfs
# storage and no ulimits (what works on these build machines, containers/README.md).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=ci/stages/lib.sh
source ci/stages/lib.sh

archive="${1:?usage: image_smoke.sh ARCHIVE [cpu|cuda]}"
flavor="${2:-cpu}"
[ -f "$archive" ] || { echo "FAILED image-archive: no $archive (tools/cf image build $flavor)"; exit 1; }
WORK="${CF_SMOKE_WORK:-$ROOT/.cache/ci/smoke-$flavor}"
rm -rf "$WORK"; mkdir -p "$WORK/runs" "$WORK/classify"
chown 1000:1000 "$WORK/runs" "$WORK/classify" 2>/dev/null || chmod 0777 "$WORK/runs" "$WORK/classify"
podman_setup "$WORK"
cleanup() {
  [ -z "${fake_pid:-}" ] || kill "$fake_pid" 2>/dev/null || true
  podman_reset
}
trap cleanup EXIT

IMAGE="localhost/convforever:$flavor"
if check image-load "${PODMAN[@]}" load -i "$archive"; then
  loaded=$(sed -nE 's/^Loaded image(\(s\))?: *//p' <<<"$CHECK_OUT" | tail -1)
  [ -z "$loaded" ] || [ "$loaded" = "$IMAGE" ] || "${PODMAN[@]}" tag "$loaded" "$IMAGE" >/dev/null
else
  exit 1
fi
run() { "${PODMAN[@]}" run --rm --network none "$@"; }

check image-help run "$IMAGE" && expect image-help-lists-preflight "preflight"
check image-models run "$IMAGE" models && expect image-models-registry "convnext_tiny"
check image-train-help run "$IMAGE" train --help && expect image-train-help-own-flags "--lr ("
check image-user run --entrypoint /opt/convforever/bin/cf "$IMAGE" help >/dev/null
user=$("${PODMAN[@]}" image inspect --format '{{.Config.User}}' "$IMAGE" 2>&1)
[ "$user" = "1000:1000" ] && echo "ok image-non-root-user" || fail_check image-non-root-user "User is '$user'"
if run --entrypoint /bin/sh "$IMAGE" -c true >/dev/null 2>&1; then
  fail_check image-no-shell "/bin/sh ran inside the image"
else
  echo "ok image-no-shell"
fi

# Every recipe, 3 steps on synthetic data (as //convforever/train:train_test runs them).
SMOKE=(--data=synthetic --data_dir= --synthetic_samples=64 --synthetic_classes=10 --image_size=32
  --progressive_resize= --micro_batch_size=4 --max_steps=3 --num_workers=1 --warmup_epochs=0
  --warmup_steps=1 --onecycle_pct_start=0.5 --log_every_steps=1 --keep_checkpoints=1)
for flagfile in convforever/train/recipes/*.flags; do
  recipe=$(basename "$flagfile" .flags)
  check "image-recipe-$recipe" run -v "$WORK/runs:/runs" "$IMAGE" train --recipe="$recipe" "${SMOKE[@]}" \
    --run_dir="/runs/$recipe" && expect "image-recipe-$recipe-3-steps" "finished after 3 steps"
done

# The preflight inside the image: green on synthetic data; unreachable data named, exit 1.
PREFLIGHT=(--recipe=fashion_mnist_cnn --data=synthetic --data_dir= --synthetic_samples=256
  --synthetic_classes=10 --image_size=28 --run_dir=/runs/preflight)
check image-preflight-green run -v "$WORK/runs:/runs" "$IMAGE" preflight "${PREFLIGHT[@]}" &&
  expect image-preflight-passed "preflight: passed"
if run -v "$WORK/runs:/runs" "$IMAGE" preflight "${PREFLIGHT[@]}" --data=wds \
    --data_dir='http://127.0.0.1:9/shard-{000000..000003}.tar' --train_samples=1000 --eval_fraction=0.1 \
    >"$WORK/preflight-fail.log" 2>&1; then
  fail_check image-preflight-unreachable-data "exit 0 with unreachable data"
else
  CHECK_OUT=$(cat "$WORK/preflight-fail.log")
  expect image-preflight-unreachable-data "FAILED: data"
fi

# The checkpoint the container wrote, resumed by this checkout's trainer.
host_log=$(mktemp /tmp/cf-smoke-build.XXXXXX)
if bazel build --config=ci //convforever/train:train //convforever/caption:fake_openai_server >"$host_log" 2>&1; then
  check image-checkpoint-resumed-outside bazel-bin/convforever/train/train \
    --flagfile=convforever/train/recipes/fashion_mnist_cnn.flags "${SMOKE[@]}" --max_steps=6 --resume=auto \
    --run_dir="$WORK/runs/fashion_mnist_cnn" && {
    expect image-checkpoint-resumed-at-3 "resumed at step 3"
    expect image-checkpoint-resumed-to-6 "finished after 6 steps"
  }
else
  tail -20 "$host_log" >&2
  fail_check image-checkpoint-resumed-outside "could not build this checkout's trainer"
fi
rm -f "$host_log"

# Two ranks over Gloo: a local launch in one container, then one container per rank on the host's
# network, as a multi-node job runs (each node one container with RANK/WORLD_SIZE/MASTER_*).
check image-launch-2-ranks run -v "$WORK/runs:/runs" "$IMAGE" launch -n 2 -- --recipe=fashion_mnist_cnn \
  "${SMOKE[@]}" --dist_backend=gloo --run_dir=/runs/launch2 &&
  expect image-launch-2-ranks-rank1 "[rank 1]" && expect image-launch-2-ranks-3-steps "finished after 3 steps"
# The slow-link modes inside the image (what a cloud job over a slow link runs).
check image-launch-powersgd run -v "$WORK/runs:/runs" "$IMAGE" launch -n 2 -- --recipe=fashion_mnist_cnn \
  "${SMOKE[@]}" --max_steps=4 --dist_backend=gloo --sync=powersgd --powersgd_start_iter=1 \
  --powersgd_min_compression_rate=0 --run_dir=/runs/powersgd && expect image-launch-powersgd-4-steps "finished after 4 steps"
check image-launch-diloco run -v "$WORK/runs:/runs" "$IMAGE" launch -n 2 -- --recipe=fashion_mnist_cnn \
  "${SMOKE[@]}" --max_steps=4 --dist_backend=gloo --sync=diloco --diloco_inner_steps=2 \
  --run_dir=/runs/diloco && expect image-launch-diloco-4-steps "finished after 4 steps"
port=$((20000 + RANDOM % 20000))
rank_env() { echo -e "RANK=$1\nLOCAL_RANK=0\nWORLD_SIZE=2\nLOCAL_WORLD_SIZE=1\nGROUP_RANK=$1\nMASTER_ADDR=127.0.0.1\nMASTER_PORT=$port"; }
rank_env 0 >"$WORK/rank0.env"; rank_env 1 >"$WORK/rank1.env"
pids=()
for r in 0 1; do
  "${PODMAN[@]}" run --rm --network host --env-file "$WORK/rank$r.env" -v "$WORK/runs:/runs" "$IMAGE" \
    train --recipe=fashion_mnist_cnn "${SMOKE[@]}" --dist_backend=gloo --run_dir=/runs/two_containers \
    >"$WORK/rank$r.log" 2>&1 &
  pids+=($!)
done
codes=""
for p in "${pids[@]}"; do wait "$p"; codes+="$? "; done
CHECK_OUT=$(cat "$WORK/rank0.log" "$WORK/rank1.log")
if [ "$codes" = "0 0 " ]; then echo "ok image-2-containers-gloo"; else
  fail_check image-2-containers-gloo "exit codes $codes"; tail -20 "$WORK/rank0.log" "$WORK/rank1.log" >&2
fi
expect image-2-containers-gloo-3-steps "finished after 3 steps"
expect image-2-containers-world-2 "rank 0 of 2"

# classify against the fake OpenAI-compatible endpoint on the host; the key comes from the
# environment and must not be printed.
key="sk-smoke-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
url_file="$WORK/fake_openai.url"
FAKE_OPENAI_API_KEY="$key" bazel-bin/convforever/caption/fake_openai_server --url_file="$url_file" &
fake_pid=$!
for _ in $(seq 100); do [ -s "$url_file" ] && break; sleep 0.1; done
printf '{"id": "%d", "caption": "caption number %d"}\n' 1 1 2 2 3 3 4 4 5 5 >"$WORK/classify/captions.jsonl"
chown 1000:1000 "$WORK/classify/captions.jsonl" 2>/dev/null || true
if [ -s "$url_file" ]; then
  check image-classify "${PODMAN[@]}" run --rm --network host -e OPENROUTER_API_KEY="$key" \
    -v "$WORK/classify:/data" "$IMAGE" classify --input=/data/captions.jsonl --output=/data/labeled.jsonl \
    --base_url="$(cat "$url_file")" --requests_per_minute=0 --progress=false
  refute image-classify-key-not-printed "$key"
  n=$(wc -l <"$WORK/classify/labeled.jsonl" 2>/dev/null || echo 0)
  [ "$n" -eq 5 ] && echo "ok image-classify-5-labeled" || fail_check image-classify-5-labeled "$n lines in labeled.jsonl"
else
  fail_check image-classify "the fake endpoint did not start"
fi

[ "$STAGE_FAILED" -eq 0 ]
