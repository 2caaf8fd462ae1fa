#!/usr/bin/env bash
# ci/stages/image.sh: the CPU image from its pinned inputs (containers/lock/cpu.json), built twice
# into two folders: the digests and the archives must be identical. Then the container smoke
# (image_smoke.sh) on the first. One line per check (lib.sh).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=ci/stages/lib.sh
source ci/stages/lib.sh
WORK="${CF_IMAGE_WORK:-$ROOT/.cache/ci/image}"
rm -rf "$WORK"; mkdir -p "$WORK"

start=$(date +%s)
check image-build tools/cf image build cpu --out="$WORK/a" || exit 1
echo "  first build: $(( $(date +%s) - start )) s" >&2
printf '%s\n' "$CHECK_OUT" | tail -8 >&2
start=$(date +%s)
check image-build-again tools/cf image build cpu --out="$WORK/b" || exit 1
echo "  second build: $(( $(date +%s) - start )) s" >&2
a=$(cat "$WORK/a/digest.txt" 2>/dev/null) b=$(cat "$WORK/b/digest.txt" 2>/dev/null)
if [ -n "$a" ] && [ "$a" = "$b" ]; then echo "ok image-same-digest-twice"; else
  fail_check image-same-digest-twice "first $a, second $b"
fi
if cmp -s "$WORK/a/cpu.oci.tar" "$WORK/b/cpu.oci.tar"; then echo "ok image-same-archive-twice"; else
  fail_check image-same-archive-twice "the two archives differ"
fi
rm -rf "$WORK/b"
ls -l "$WORK/a/cpu.oci.tar" | awk '{printf "  archive: %.0f MB\n", $5 / 1e6}' >&2

ci/stages/image_smoke.sh "$WORK/a/cpu.oci.tar" cpu || STAGE_FAILED=$((STAGE_FAILED + 1))
[ "$STAGE_FAILED" -eq 0 ]
