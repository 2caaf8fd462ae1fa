#!/usr/bin/env bash
# ci/pipeline.sh [STAGE...] [-- JOB FLAGS]: the checks before a real multi-GPU job, as code, in the
# order a CI service (or a person) runs them. Each stage stops the pipeline when it fails.
#
#   tests      `tools/cf test`: unit and integration tests (bazel), the fuzzers' regressions, the
#              ASan + UBSan stage, and the two stages below (what `.ci/run` runs)
#   image      ci/stages/image.sh: the CPU image built twice from containers/lock/cpu.json (same
#              digest, same archive), then its container smoke (ci/stages/image_smoke.sh)
#   preflight  ci/stages/preflight.sh: `tools/cf preflight` on synthetic data, green and the
#              failures it must name
#   job        ci/stages/job.sh -- FLAGS: the job you are about to pay for: its recipe and flags for
#              3 steps on synthetic data in the CPU image, then `tools/cf preflight` with its real
#              data, hub repo and --hostfile
#   gpu        ci/gpu_bundle.sh, then ci/gpu_check.sh when this machine has an NVIDIA GPU
#              (otherwise the bundle is left for the GPU machine; see ci/README.md)
#
# Default: tests, then gpu. Example before a 4-node run:
#   ci/pipeline.sh job -- --recipe=imagenet1k_convnext_t --data_dir=/data/imagenet --hostfile=hosts
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

stages=() job=()
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; job=("$@"); break ;;
    tests|image|preflight|job|gpu) stages+=("$1"); shift ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "ci/pipeline.sh: unknown stage '$1' (tests image preflight job gpu)" >&2; exit 2 ;;
  esac
done
[ ${#stages[@]} -gt 0 ] || stages=(tests gpu)

for stage in "${stages[@]}"; do
  echo "== stage $stage"
  start=$(date +%s)
  case "$stage" in
    tests) tools/cf test ;;
    image) ci/stages/image.sh ;;
    preflight) ci/stages/preflight.sh ;;
    job)
      [ ${#job[@]} -gt 0 ] || { echo "stage job needs the job's flags after --" >&2; exit 2; }
      ci/stages/job.sh "${job[@]}" ;;
    gpu)
      ci/gpu_bundle.sh && if nvidia-smi -L >/dev/null 2>&1; then ci/gpu_check.sh; else
        echo "no NVIDIA GPU here: run ci/gpu_check.sh on the GPU machine with .cache/gpu_bundle.tar.xz (ci/README.md)"
      fi ;;
  esac
  rc=$?
  echo "== stage $stage: $([ $rc -eq 0 ] && echo passed || echo "FAILED (exit $rc)") in $(( $(date +%s) - start )) s"
  [ "$rc" -eq 0 ] || exit "$rc"
done
