#!/usr/bin/env bash
# ci/stages/preflight.sh: `tools/cf preflight` as a user runs it before a job, on synthetic data
# (what fits on a CPU build machine): a recipe's table all green, and a 2-host hostfile on this
# machine with its rendezvous and all-reduce. The failures it must name (unreachable data, a class
# list that disagrees with the labels, a micro-batch that does not fit, a bad token, an unreachable
# host) are //convforever/train:preflight_test's; inside the image, ci/stages/image_smoke.sh.
# One line per check (lib.sh).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=ci/stages/lib.sh
source ci/stages/lib.sh
WORK="${CF_PREFLIGHT_WORK:-$ROOT/.cache/ci/preflight}"
rm -rf "$WORK"; mkdir -p "$WORK"

SYNTHETIC=(--data=synthetic --data_dir= --synthetic_samples=512 --synthetic_classes=10 --image_size=28
  --run_dir="$WORK/run")
check preflight-synthetic-green tools/cf preflight --recipe=fashion_mnist_cnn "${SYNTHETIC[@]}"
printf '%s\n' "$CHECK_OUT" | grep -E '^(check|[a-z]+ +(ok|FAIL|warn|skip) )' >&2
expect preflight-synthetic-passed "preflight: passed"
expect preflight-synthetic-microbatch "--micro_batch_size=32 fits"

printf 'localhost slots=1\n127.0.0.1 slots=1\n' >"$WORK/hostfile"
check preflight-hostfile-allreduce tools/cf preflight --recipe=fashion_mnist_cnn "${SYNTHETIC[@]}" \
  --hostfile="$WORK/hostfile"
expect preflight-hostfile-allreduce-ok "allreduce   ok"

# A failure exits non-zero and names the check on the last line (the others still run).
if tools/cf preflight --recipe=fashion_mnist_cnn --data=idx --data_dir="$WORK/no-such-dir" \
    --run_dir="$WORK/run" >"$WORK/fail.log" 2>&1; then
  fail_check preflight-missing-data-fails "exit 0 for a missing data dir"
else
  CHECK_OUT=$(cat "$WORK/fail.log")
  expect preflight-missing-data-fails "preflight: FAILED: data"
  expect preflight-missing-data-others-ran "microbatch  ok"
fi
[ "$STAGE_FAILED" -eq 0 ]
