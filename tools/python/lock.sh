#!/usr/bin/env bash
# Regenerates requirements.lock (exact versions + sha256 of every wheel, for CPython 3.11 on
# x86-64 Linux) from requirements.in, with uv in a throwaway venv. Run after editing
# requirements.in, then `tools/cf setup` installs the new lock.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet --disable-pip-version-check uv
cd "$here"
"$tmp/venv/bin/uv" pip compile --quiet --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
  --generate-hashes --no-header requirements.in -o requirements.lock
echo "wrote $here/requirements.lock"
