#!/usr/bin/env bash
# lowband_benchmark: what each synchronisation mode costs in bytes, accuracy and time, measured in
# one run on this machine (`tools/cf bench lowband`).
#
# Quality at equal samples seen: the default recipe (Fashion-MNIST, convforever/train/recipes/
# fashion_mnist.flags) on 2 Gloo ranks launched by launch.sh, each mode for the same epochs and
# micro-batch: DDP, DiLoCo (H=50, int8 pseudo-gradients), PowerSGD (rank 4). Each row: held-out
# top-1, the payload bytes rank 0 sent (summary.json's byte ledger) and their ratio to DDP's.
# Wall clock under an emulated 100 Mbit/s, 20 ms link (--dist_link_mbps/--dist_link_latency_ms):
# seconds per step of each mode over a fixed number of steps, beside one rank alone.
#
# Seconds per step come from metrics.jsonl's wall times between the first and the last logged
# training step (start-up and the final evaluation excluded). Both ranks share this machine's
# cores, so the 2-rank rows also pay for sharing them; "ddp, no link" shows that cost alone.
#
# Environment: LOWBAND_EPOCHS (default 2), LOWBAND_LINK_STEPS (default 110), LOWBAND_OUT (default
# a temporary directory; run dirs and logs are kept there). Run from the repository root after
# `bazel build //convforever/train:train`.
set -euo pipefail

train="bazel-bin/convforever/train/train"
launch="convforever/distributed/launch.sh"
recipe="--flagfile=convforever/train/recipes/fashion_mnist.flags"
epochs="${LOWBAND_EPOCHS:-2}"
link_steps="${LOWBAND_LINK_STEPS:-110}"
out="${LOWBAND_OUT:-$(mktemp -d /tmp/lowband.XXXXXX)}"
[ -x "$train" ] || { echo "lowband_benchmark: build //convforever/train:train first ($train missing)" >&2; exit 2; }
mkdir -p "$out"

# Both ranks share the 2 cores: one intra-op thread and one loader thread each.
common=("$recipe" --micro_batch_size=64 --num_workers=1 --threads=1 --tensorboard=false
        --log_every_steps=10)

declare -A mode_flags=(
  [ddp]="--sync=ddp"
  [diloco]="--sync=diloco --diloco_inner_steps=50 --diloco_dtype=int8"
  [powersgd]="--sync=powersgd --powersgd_rank=4"
)
modes=(ddp diloco powersgd)

run2() {  # run2 NAME [flags...]: 2 ranks, output to $out/NAME.log
  local name="$1"; shift
  rm -rf "${out:?}/$name"
  if ! "$launch" -n 2 -- "$train" "${common[@]}" --run_dir="$out/$name" "$@" >"$out/$name.log" 2>&1; then
    echo "lowband_benchmark: $name failed; the end of $out/$name.log:" >&2
    tail -20 "$out/$name.log" >&2
    exit 1
  fi
}

field() {  # field RUN_DIR PYTHON_EXPR_ON_s: a number from summary.json
  python3 -c "import json,sys; s=json.load(open(sys.argv[1]+'/summary.json')); print($2)" "$1"
}

step_seconds() {  # step_seconds RUN_DIR: wall seconds per step between the first and last train log
  python3 - "$1" <<'PY'
import json, sys
points = []
for line in open(sys.argv[1] + "/metrics.jsonl"):
    r = json.loads(line)
    if r.get("kind") == "metrics" and "train/loss" in r:
        points.append((r["step"], r["wall_time"]))
(s0, t0), (s1, t1) = points[0], points[-1]
print((t1 - t0) / (s1 - s0))
PY
}

echo "CPU: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores)"
echo
echo "== quality at equal samples: 2 ranks x micro-batch 64, $epochs epoch(s) of Fashion-MNIST =="
printf '%-9s %9s %16s %11s  %s\n' mode top-1 "payload sent" "vs DDP" command
ddp_bytes=""
for m in "${modes[@]}"; do
  # shellcheck disable=SC2086
  run2 "quality-$m" --epochs="$epochs" ${mode_flags[$m]}
  dir="$out/quality-$m"
  top1=$(field "$dir" "'%.2f' % (100*s['final_eval']['top1'])")
  bytes=$(field "$dir" "s['communication']['payload_sent_bytes']")
  [ -n "$ddp_bytes" ] || ddp_bytes="$bytes"
  ratio=$(python3 -c "print('%.1fx fewer' % ($ddp_bytes / max(1, $bytes)))")
  printf '%-9s %8s%% %13.1f MB %11s  %s\n' "$m" "$top1" "$(python3 -c "print($bytes/1e6)")" "$ratio" \
    "launch.sh -n 2 -- train $recipe ${common[*]:1} --epochs=$epochs ${mode_flags[$m]}"
done

echo
echo "== wall clock under an emulated 100 Mbit/s, 20 ms link: $link_steps steps =="
link=(--dist_link_mbps=100 --dist_link_latency_ms=20)
# A fixed number of steps, shorter than the recipe's 200 warmup steps: the trainer refuses a warmup
# longer than the run, and only the step time is read here.
common+=(--warmup_steps=10)
rm -rf "$out/link-one"
"$train" "${common[@]}" --max_steps="$link_steps" --run_dir="$out/link-one" >"$out/link-one.log" 2>&1
one=$(step_seconds "$out/link-one")
printf '%-14s %10s %10s\n' mode "s/step" "vs 1 rank"
printf '%-14s %10.3f %10s\n' "1 rank" "$one" "1.00x"
run2 "link-ddp-nolink" --max_steps="$link_steps" --sync=ddp
t=$(step_seconds "$out/link-ddp-nolink")
printf '%-14s %10.3f %9.2fx\n' "ddp, no link" "$t" "$(python3 -c "print($t/$one)")"
for m in "${modes[@]}"; do
  # shellcheck disable=SC2086
  run2 "link-$m" --max_steps="$link_steps" "${link[@]}" ${mode_flags[$m]}
  t=$(step_seconds "$out/link-$m")
  printf '%-14s %10.3f %9.2fx\n' "$m" "$t" "$(python3 -c "print($t/$one)")"
done
echo
echo "run directories and logs: $out"
