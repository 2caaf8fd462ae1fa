#!/usr/bin/env bash
# ci/stages/job.sh [--recipe=NAME] FLAGS...: the checks for one job before it is started on paid
# GPUs. 1) the job's recipe and flags for 3 steps on synthetic data inside the CPU image (built if
# missing): the flags parse, the model builds, a step runs, a checkpoint is written; only the
# data and the length are swapped, everything else is the job's. 2) `tools/cf preflight` with the
# job's own flags: its real data, class list, held-out set, micro-batch, disk, Hub token and
# --hostfile. One line per check (lib.sh).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=ci/stages/lib.sh
source ci/stages/lib.sh
[ $# -gt 0 ] || { echo "usage: ci/stages/job.sh [--recipe=NAME] FLAGS..." >&2; exit 2; }

archive="$ROOT/.cache/image/cpu/cpu.oci.tar"
[ -f "$archive" ] || check job-image-build tools/cf image build cpu || exit 1
WORK="$ROOT/.cache/ci/job"
rm -rf "$WORK"; mkdir -p "$WORK/runs"
chown 1000:1000 "$WORK/runs" 2>/dev/null || chmod 0777 "$WORK/runs"
podman_setup "$WORK"
trap podman_reset EXIT
check job-image-load "${PODMAN[@]}" load -i "$archive" || exit 1
image=$(sed -nE 's/^Loaded image(\(s\))?: *//p' <<<"$CHECK_OUT" | tail -1)

# The job's flags minus what only the real run has (hosts are the preflight's business).
flags=()
for a in "$@"; do
  case "$a" in --hostfile=*|--hub_repo=*|--run_dir=*|--resume=*) ;; *) flags+=("$a") ;; esac
done
check job-synthetic-3-steps "${PODMAN[@]}" run --rm --network none -v "$WORK/runs:/runs" "$image" train \
  "${flags[@]}" --data=synthetic --data_dir= --eval_data_dir= --eval_fraction=0 --max_steps=3 \
  --warmup_steps=1 --warmup_epochs=0 --run_dir=/runs/job --keep_checkpoints=1 &&
  expect job-synthetic-finished "finished after 3 steps"
check job-preflight tools/cf preflight "$@"
printf '%s\n' "$CHECK_OUT" >&2
[ "$STAGE_FAILED" -eq 0 ]
