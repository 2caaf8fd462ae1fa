#!/usr/bin/env bash
# gpu_check.sh: what only a GPU can show, in one short run on the GPU machine (<= 8 minutes).
#
#   ci/gpu_check.sh                 # on the GPU machine, from the repository root
#   ci/gpu_check.sh --cpu-dry-run   # here: the same script on the CPU (see below)
#
# Needs .cache/gpu_bundle.tar.xz (ci/gpu_bundle.sh) and a PyTorch venv (CF_TORCH_VENV, default
# /opt/torch/.venv) with the torch version the bundle was built against, timm and safetensors.
# Steps, each under a timeout drawn from one overall budget (CF_GPU_CHECK_BUDGET_S):
#   1. versions   bundle MANIFEST + checksums; host torch == the bundle's torch (else refuse);
#                 GPU, driver, glibc
#   2. libraries  every bundled binary resolves every library through the bundled loader from
#                 the bundle or the torch wheel only
#   3. cuda tests every test tagged `cuda` with CF_REQUIRE_CUDA=1 (a skip is a failure)
#   4. train      `train --model=convnext_tiny` 224px bf16 channels_last on synthetic data;
#                 images/s from metrics.jsonl, warm-up steps excluded
#   5. logits     our checkpoint's logits (`logits` binary) vs timm's strict load of it
#   6. timm       tools/bench/timm_train.py, eager and torch.compile, same batch/size/precision:
#                 images/s next to ours (informational: a failure here is a warning)
# Prints a report and writes it to $OUT/gpu_check.txt (with the step logs under
# $OUT/gpu_check_logs/) when OUT is set. Exit 0 when every required step passed.
#
# --cpu-dry-run runs the same steps on this machine, re-executed under `env -i` (PATH=/usr/bin:/bin
# only), with the project's .venv standing in for /opt/torch/.venv, --device=cpu, a 64px image
# and a few steps: every command line, path, library and parser above is exercised. The cuda tests
# skip there (no GPU; CF_REQUIRE_CUDA unset) and torch.compile is tried but may be skipped.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

die() { printf 'gpu_check: error: %s\n' "$*" >&2; exit 2; }

MODE=gpu
case "${1:-}" in
  "") ;;
  --cpu-dry-run) MODE=dry ;;
  *) die "unknown argument '$1' (usage: ci/gpu_check.sh [--cpu-dry-run])" ;;
esac

if [ "$MODE" = dry ] && [ -z "${CF_GPU_CHECK_CLEAN:-}" ]; then
  clean=(PATH=/usr/bin:/bin HOME="${HOME:-/root}" CF_GPU_CHECK_CLEAN=1
         CF_TORCH_VENV="${CF_TORCH_VENV:-$(readlink -f "$ROOT/.venv")}")
  [ -n "${OUT:-}" ] && clean+=(OUT="$OUT")
  [ -n "${CF_GPU_BUNDLE:-}" ] && clean+=(CF_GPU_BUNDLE="$CF_GPU_BUNDLE")
  [ -n "${CF_GPU_CHECK_BUDGET_S:-}" ] && clean+=(CF_GPU_CHECK_BUDGET_S="$CF_GPU_CHECK_BUDGET_S")
  exec env -i "${clean[@]}" bash "$ROOT/ci/gpu_check.sh" --cpu-dry-run
fi

TORCH_VENV="${CF_TORCH_VENV:-/opt/torch/.venv}"
PY="$TORCH_VENV/bin/python"
BUNDLE_TAR="${CF_GPU_BUNDLE:-$ROOT/.cache/gpu_bundle.tar.xz}"
[ -x "$PY" ] || die "no Python at $PY (set CF_TORCH_VENV to the venv with torch, timm, safetensors)"
[ -f "$BUNDLE_TAR" ] || die "no bundle at $BUNDLE_TAR: run ci/gpu_bundle.sh here and carry .cache/gpu_bundle.tar.xz"
for tool in timeout tar awk sed sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found on PATH"
done

# What each mode runs. GPU: ConvNeXt-T at 224, batch 128, 60 steps of which the first 10 are
# warm-up (cuDNN/cuBLAS set-up, allocator growth, data pipeline filling).
if [ "$MODE" = gpu ]; then
  DEVICE=cuda; SIZE=224; BATCH=128; STEPS=60; WARMUP=10; WORKERS=12; LOGIT_BATCH=8
  BUDGET_S="${CF_GPU_CHECK_BUDGET_S:-470}"
  T_TEST=150; T_TRAIN=180; T_LOGITS=90; T_EAGER=90; T_COMPILE=240
else
  DEVICE=cpu; SIZE=64; BATCH=4; STEPS=4; WARMUP=2; WORKERS=2; LOGIT_BATCH=2
  BUDGET_S="${CF_GPU_CHECK_BUDGET_S:-1200}"
  T_TEST=300; T_TRAIN=300; T_LOGITS=120; T_EAGER=180; T_COMPILE=150
fi
MODEL=convnext_tiny
CLASSES=10

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cf_gpu_check.XXXXXX")
LOGS="$WORK/logs"
mkdir -p "$LOGS"
REPORT=()
FAILED=0
WARNED=0
report() {  # report <step> <PASS|FAIL|SKIP|WARN|INFO> <text>
  local line
  line=$(printf '%-12s %-5s %s' "$1" "$2" "$3")
  REPORT+=("$line")
  printf '%s\n' "$line"
  case "$2" in FAIL) FAILED=$((FAILED + 1)) ;; WARN) WARNED=$((WARNED + 1)) ;; esac
}

finish() {
  local verdict=PASS
  [ "$FAILED" -eq 0 ] || verdict=FAIL
  {
    echo
    echo "== ConvForever GPU check ($MODE): $verdict ($FAILED failed, $WARNED warnings) in ${SECONDS}s =="
    printf '%s\n' "${REPORT[@]}"
  } | tee "$WORK/gpu_check.txt"
  if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT/gpu_check_logs"
    cp "$WORK/gpu_check.txt" "$OUT/gpu_check.txt"
    cp "$LOGS"/* "$OUT/gpu_check_logs/" 2>/dev/null || true
    [ -f "$WORK/run/metrics.jsonl" ] && cp "$WORK/run/metrics.jsonl" "$OUT/gpu_check_logs/"
    echo "report: $OUT/gpu_check.txt (logs in $OUT/gpu_check_logs/)"
  fi
  [ "$FAILED" -eq 0 ]
}

# run_step <name> <timeout_s> cmd...: runs cmd with its output in $LOGS/<name>.log, under the
# smaller of its timeout and what is left of the budget. Returns cmd's status (124: timed out,
# 125: no time left).
run_step() {
  local name="$1" limit="$2" left rc=0
  shift 2
  left=$((BUDGET_S - SECONDS - 5))
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -lt 10 ]; then
    echo "no time left in the ${BUDGET_S}s budget" > "$LOGS/$name.log"
    return 125
  fi
  printf -- '-- %s (timeout %ss): %s\n' "$name" "$limit" "$*" > "$LOGS/$name.log"
  timeout --kill-after=10 "$limit" "$@" >> "$LOGS/$name.log" 2>&1 || rc=$?
  return "$rc"
}
why() {  # why <rc> <log>: a short reason for a failed step
  case "$1" in
    124|137) echo "timed out (log: $(basename "$2"))" ;;
    125) echo "skipped: no time left in the budget" ;;
    *) echo "exit $1: $(grep -v '^-- ' "$2" | grep -iE 'error|fail|refus|not found|Traceback|what\(\)' | tail -2 | tr '\n' ' ' | cut -c1-300)" ;;
  esac
}

echo "gpu_check: mode $MODE, torch venv $TORCH_VENV, bundle $BUNDLE_TAR, work $WORK, budget ${BUDGET_S}s"

# ---- 1. versions -------------------------------------------------------------------------------
if command -v xz >/dev/null 2>&1; then
  tar -C "$WORK" -xJf "$BUNDLE_TAR"
else  # a bare machine may lack xz; Python's tarfile reads .tar.xz
  "$PY" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$BUNDLE_TAR" "$WORK"
fi
B="$WORK/gpu_bundle"
[ -f "$B/MANIFEST" ] || die "$BUNDLE_TAR has no gpu_bundle/MANIFEST: rebuild it with ci/gpu_bundle.sh"
manifest() { awk -v k="$1" '$1 == k {$1 = ""; sub(/^ /, ""); print}' "$B/MANIFEST"; }
if (cd "$B" && sha256sum -c --quiet SHA256SUMS) > "$LOGS/checksums.log" 2>&1; then
  sums=ok
else
  sums="MISMATCH (see checksums.log)"
fi
"$PY" - > "$LOGS/torch.log" 2>&1 <<'PYEOF' || true
import torch
print("torch_version", torch.__version__)
print("torch_cuda", torch.version.cuda)
print("cuda_available", torch.cuda.is_available())
print("device", torch.cuda.get_device_name() if torch.cuda.is_available() else "none")
print("site", torch.__file__.rsplit("/torch/", 1)[0])
PYEOF
tv() { awk -v k="$1" '$1 == k {$1 = ""; sub(/^ /, ""); print}' "$LOGS/torch.log"; }
host_torch=$(tv torch_version)
bundle_torch=$(manifest torch_version)
SITE=$(tv site)
glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null || echo unknown)
gpu_info=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1 || true)
versions="bundle $(manifest convforever_commit) (torch $bundle_torch, glibc $(manifest glibc)), checksums $sums; host torch ${host_torch:-none} (CUDA $(tv torch_cuda)), device $(tv device)${gpu_info:+ [$gpu_info]}, host $glibc"
if [ -z "$host_torch" ]; then
  report versions FAIL "torch does not import with $PY: $(tail -1 "$LOGS/torch.log")"
  finish; exit 1
elif [ "$host_torch" != "$bundle_torch" ]; then
  report versions FAIL "refusing: the bundle was built against torch $bundle_torch but $PY has torch $host_torch (LibTorch's C++ ABI changes between versions; rebuild the bundle against $host_torch)"
  finish; exit 1
elif [ "$sums" != ok ]; then
  report versions FAIL "$versions"
  finish; exit 1
elif [ "$MODE" = gpu ] && [ "$(tv cuda_available)" != True ]; then
  report versions FAIL "torch.cuda.is_available() is False on the GPU machine: $versions"
  finish; exit 1
fi
report versions PASS "$versions"

# ---- 2. libraries ------------------------------------------------------------------------------
LIBPATH="$B/lib:$SITE/torch/lib"
for d in "$SITE"/nvidia/*/lib; do [ -d "$d" ] && LIBPATH="$LIBPATH:$d"; done
LOADER=("$B/lib/ld-linux-x86-64.so.2")
if [ "$MODE" = gpu ]; then
  # The NVIDIA driver's libcuda.so.1 lives outside the wheel; find it the way Python does.
  driver_dir=$("$PY" -c 'import ctypes, os
ctypes.CDLL("libcuda.so.1")
print(next(os.path.dirname(l.split()[-1]) for l in open("/proc/self/maps") if "libcuda.so" in l))' 2>"$LOGS/driver.log") ||
    { report libraries FAIL "libcuda.so.1 (NVIDIA driver) cannot be loaded: $(tail -1 "$LOGS/driver.log")"; finish; exit 1; }
  LIBPATH="$LIBPATH:$driver_dir"
else
  LOADER+=(--inhibit-cache)  # here: prove nothing comes from /etc/ld.so.cache (Debian's libraries)
fi
LOADER+=(--library-path "$LIBPATH")
lib_bad=""
for f in "$B"/bin/* "$B"/tests/*; do
  if ! listing=$("${LOADER[@]}" --list "$f" 2>&1); then
    lib_bad="$lib_bad $(basename "$f"): $(grep -m1 'not found\|error' <<<"$listing")"
    continue
  fi
  printf '%s\n%s\n' "== $(basename "$f")" "$listing" >> "$LOGS/libraries.log"
  outside=$(awk '/=>/ {print $3}' <<<"$listing" | grep -v -e "^$B/lib/" -e "^$SITE/" || true)
  [ -z "$outside" ] || lib_bad="$lib_bad $(basename "$f") loads $(echo $outside)"
done
n_libs=$(awk '/=>/ {print $3}' "$LOGS/libraries.log" 2>/dev/null | sort -u | wc -l)
if [ -n "$lib_bad" ]; then
  report libraries FAIL "$lib_bad"
  finish; exit 1
fi
report libraries PASS "$(ls "$B/bin" "$B/tests" | grep -vc ':$\|^$') binaries resolve $n_libs libraries, all from the bundle ($(ls "$B/lib" | wc -l)) or $SITE (torch/nvidia)"

# ---- 3. cuda tests -----------------------------------------------------------------------------
t_pass=0; t_skip=0; t_fail=0; t_notes=""
for f in "$B"/tests/*; do
  name=$(basename "$f")
  mkdir -p "$WORK/tests/$name"
  rc=0
  if [ "$MODE" = gpu ]; then
    (cd "$WORK/tests/$name" && TEST_TMPDIR="$WORK/tests/$name" CF_REQUIRE_CUDA=1 \
       run_step "test_$name" "$T_TEST" "${LOADER[@]}" "$f") || rc=$?
  else
    (cd "$WORK/tests/$name" && TEST_TMPDIR="$WORK/tests/$name" \
       run_step "test_$name" "$T_TEST" "${LOADER[@]}" "$f") || rc=$?
  fi
  log="$LOGS/test_$name.log"
  p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
  s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
  x=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
  t_pass=$((t_pass + ${p:-0})); t_skip=$((t_skip + ${s:-0})); t_fail=$((t_fail + ${x:-0}))
  if [ "$rc" -ne 0 ]; then
    [ -n "$x" ] || t_fail=$((t_fail + 1))
    t_notes="$t_notes; $name $(why "$rc" "$log")"
  fi
done
tests_line="$t_pass passed, $t_skip skipped, $t_fail failed ($(ls "$B/tests" | paste -sd' '))$t_notes"
if [ "$t_fail" -gt 0 ]; then
  report "cuda tests" FAIL "$tests_line"
elif [ "$MODE" = gpu ] && [ "$t_skip" -gt 0 ]; then
  report "cuda tests" FAIL "$tests_line: a cuda test skipped on the GPU machine"
elif [ "$MODE" = dry ]; then
  reason=$(grep -h -m1 -o 'needs a CUDA GPU ([^)]*)' "$LOGS"/test_*.log | head -1)
  report "cuda tests" SKIP "$tests_line; no GPU here: ${reason:-no skip message found}"
else
  report "cuda tests" PASS "$tests_line"
fi

# ---- 4. train ----------------------------------------------------------------------------------
RUN="$WORK/run"
ours_ips=""
rc=0
run_step train "$T_TRAIN" "${LOADER[@]}" "$B/bin/train" --model="$MODEL" --data=synthetic \
  --synthetic_samples=$(((STEPS + 1) * BATCH)) --synthetic_classes=$CLASSES --image_size=$SIZE \
  --channels=3 --precision=bf16 --channels_last --device=$DEVICE --micro_batch_size=$BATCH \
  --max_steps=$STEPS --log_every_steps=$WARMUP --num_workers=$WORKERS --lr=1e-3 \
  --weight_decay=0.05 --run_dir="$RUN" --tensorboard=false --seed=1 || rc=$?
if [ "$rc" -ne 0 ]; then
  report train FAIL "$(why "$rc" "$LOGS/train.log")"
else
  # Steps WARMUP+1..STEPS, timed between the metrics records of steps WARMUP and STEPS.
  if train_line=$("$PY" - "$RUN/metrics.jsonl" "$WARMUP" "$STEPS" "$BATCH" 2>"$LOGS/train_parse.log" <<'PYEOF'
import json, math, sys
path, warm, steps, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
recs = {}
for line in open(path):
    r = json.loads(line)
    if r.get("kind") == "metrics" and "train/step_loss" in r:  # not the eval records
        recs[r["step"]] = r
if warm not in recs or steps not in recs:
    sys.exit(f"metrics.jsonl lacks step {warm} or {steps} (has {sorted(recs)})")
a, b = recs[warm], recs[steps]
ips = (steps - warm) * batch / (b["wall_time"] - a["wall_time"])
loss = b.get("train/step_loss", float("nan"))
if not math.isfinite(loss):
    sys.exit(f"final loss is {loss}")
print(f"{ips:.1f} {b.get('data/images_per_sec', 0):.0f} {loss:.4f} {b.get('train/skipped_steps', 0):.0f}")
PYEOF
  ); then
    read -r ours_ips data_ips last_loss skipped <<<"$train_line"
    report train PASS "$MODEL ${SIZE}px bf16 channels_last batch $BATCH on $DEVICE: $ours_ips images/s (steps $((WARMUP + 1))-$STEPS), data pipeline $data_ips images/s, loss $last_loss, $skipped skipped"
  else
    report train FAIL "metrics: $(tail -1 "$LOGS/train_parse.log")"
  fi
fi

# ---- 5. logits vs timm -------------------------------------------------------------------------
CKPT=$(sed -n 's/^checkpoint: //p' "$LOGS/train.log" | tail -1)
if [ -z "$CKPT" ] || [ ! -f "$CKPT/model.safetensors" ]; then
  report logits FAIL "no checkpoint with model.safetensors (train printed '${CKPT:-no checkpoint: line}')"
else
  rc=0
  run_step logits_input 60 "$PY" ci/compare_logits.py make-input --out "$WORK/images.safetensors" \
    --batch $LOGIT_BATCH --image_size $SIZE || rc=$?
  [ "$rc" -ne 0 ] || run_step logits_ours "$T_LOGITS" "${LOADER[@]}" "$B/bin/logits" \
    --model=$MODEL --num_classes=$CLASSES --weights="$CKPT" --input="$WORK/images.safetensors" \
    --output="$WORK/ours.safetensors" --device=$DEVICE --image_size=$SIZE || rc=$?
  [ "$rc" -ne 0 ] || run_step logits_compare "$T_LOGITS" "$PY" ci/compare_logits.py compare \
    --checkpoint "$CKPT" --model $MODEL --num_classes $CLASSES --input "$WORK/images.safetensors" \
    --ours "$WORK/ours.safetensors" --device $DEVICE || rc=$?
  if [ "$rc" -eq 0 ]; then
    report logits PASS "$(grep '^logits vs timm' "$LOGS/logits_compare.log")"
  else
    log=$(ls -t "$LOGS"/logits_*.log | head -1)
    report logits FAIL "$(grep '^logits vs timm' "$log" || why "$rc" "$log")"
  fi
fi

# ---- 6. timm eager and torch.compile -----------------------------------------------------------
bench() {  # bench <name> <timeout> [--compile]
  local name="$1" limit="$2" rc=0 ips
  shift 2
  run_step "$name" "$limit" "$PY" tools/bench/timm_train.py --model $MODEL --num_classes $CLASSES \
    --image_size $SIZE --batch $BATCH --steps $((STEPS - WARMUP)) --warmup $WARMUP \
    --device $DEVICE "$@" || rc=$?
  ips=$(sed -n 's/^images_per_sec \([0-9.]*\)$/\1/p' "$LOGS/$name.log")
  if [ "$rc" -eq 0 ] && [ -n "$ips" ]; then
    local ratio=""
    [ -n "$ours_ips" ] && ratio=$(awk -v o="$ours_ips" -v t="$ips" 'BEGIN {printf "; ours/timm %.2f", o / t}')
    report "$name" INFO "$ips images/s$ratio"
  elif [ "$MODE" = dry ] && [ "$name" = timm_compile ]; then
    report "$name" SKIP "torch.compile on the CPU here: $(why "$rc" "$LOGS/$name.log")"
  else
    report "$name" WARN "$(why "$rc" "$LOGS/$name.log")"
  fi
}
bench timm_eager "$T_EAGER"
bench timm_compile "$T_COMPILE" --compile

finish
