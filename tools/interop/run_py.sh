#!/bin/bash
# Runs tools/interop/<script> with the project venv's python (torch, timm, transformers, ...).
# Usage (from a Bazel test): run_py.sh SCRIPT [args...]. The workspace root is found through this
# file's real path (a source file: Bazel's runfiles link to it; .bazelrc runs tests locally).
# A missing venv fails the test under CI=true and skips it otherwise.
set -euo pipefail
script="$1"
shift
root="$(cd "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/../.." && pwd)"
python="$root/.venv/bin/python"
if [[ ! -x "$python" ]]; then
  if [[ "${CI:-}" == "true" ]]; then
    echo "FAIL: no project venv at $root/.venv (tools/cf setup creates it)" >&2
    exit 1
  fi
  echo "SKIPPED: no project venv at $root/.venv (run tools/cf setup); this check needs the real packages"
  exit 0
fi
export PYTHONDONTWRITEBYTECODE=1
exec "$python" "$root/tools/interop/$script" "$@"
