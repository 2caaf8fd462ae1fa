#!/usr/bin/env bash
# gpu_bundle.sh: builds what ci/gpu_check.sh runs on the GPU machine and packs it into one
# git-ignored file, .cache/gpu_bundle.tar.xz (the one path the device tool carries; <= 64 MiB).
#
#   ci/gpu_bundle.sh [--no-build]
#
# The GPU machine has no Bazel and none of Debian's libraries, and its glibc is unknown, so the
# bundle holds, besides our binaries (the trainer, `models`, `logits`, and every test tagged
# `cuda`), every shared library they load that is not LibTorch/CUDA — Debian's absl, glog,
# gflags, curl, OpenCV, image codecs, ... and Debian's own glibc: its loader, libc, libm,
# libstdc++ — so they run as
#   bundle/lib/ld-linux-x86-64.so.2 --library-path bundle/lib:<torch/lib>:<nvidia/*/lib> bundle/bin/X
# whatever the host's glibc is. LibTorch, CUDA, cuDNN and NCCL come from the GPU machine's own
# PyTorch wheel (the same torch version as our .venv: the bundle's MANIFEST names it and
# ci/gpu_check.sh refuses another); libgomp comes from that wheel's torch/lib too.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

STAGE=".cache/gpu_bundle"          # the unpacked tree (for inspection; not carried)
TARBALL=".cache/gpu_bundle.tar.xz"  # what travels
LIMIT_BYTES=$((60 * 1024 * 1024))   # the carry limit is 64 MiB; keep some room
BINARIES=(//convforever/train:train //convforever/models:models //convforever/models:logits)

die() { printf 'gpu_bundle: error: %s\n' "$*" >&2; exit 1; }
say() { printf 'gpu_bundle: %s\n' "$*" >&2; }

build=1
case "${1:-}" in
  "") ;;
  --no-build) build=0 ;;
  *) die "unknown argument '$1' (usage: ci/gpu_bundle.sh [--no-build])" ;;
esac

for tool in bazel ldd strip tar xz sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found on PATH"
done

# The torch wheel the build links (third_party/libtorch/libtorch.bzl's default: .venv).
SITE=$(ls -d "$ROOT"/.venv/lib/python3*/site-packages 2>/dev/null | head -1 || true)
[ -n "$SITE" ] && [ -d "$SITE/torch/lib" ] ||
  die "no torch wheel in .venv (run tools/cf setup); the bundle is built against it"
SITE=$(readlink -f "$SITE")
TORCH_VERSION=$(sed -n "s/^__version__ = '\(.*\)'.*/\1/p" "$SITE/torch/version.py")
[ -n "$TORCH_VERSION" ] || die "cannot read the torch version from $SITE/torch/version.py"

# Every test tagged `cuda` (Bazel tag), found by query so new ones join without editing this.
mapfile -t TESTS < <(bazel query --noshow_progress \
  'attr(tags, "\bcuda\b", tests(//convforever/...))' 2>/dev/null | sort)
[ "${#TESTS[@]}" -gt 0 ] || die "bazel query found no test tagged cuda under //convforever"
say "cuda-tagged tests: ${TESTS[*]}"

if [ "$build" -eq 1 ]; then
  # shellcheck disable=SC2086  # CF_BAZEL_ARGS is a list of flags
  bazel build ${CF_BAZEL_ARGS:-} "${BINARIES[@]}" "${TESTS[@]}" || die "bazel build failed"
fi

label_path() {  # //pkg:name -> bazel-bin/pkg/name
  local l="${1#//}"
  printf 'bazel-bin/%s/%s\n' "${l%%:*}" "${l#*:}"
}

rm -rf "$STAGE" "$TARBALL"
mkdir -p "$STAGE/bin" "$STAGE/tests" "$STAGE/lib"
for l in "${BINARIES[@]}"; do
  f=$(label_path "$l")
  [ -x "$f" ] || die "$f missing: build $l first (or drop --no-build)"
  cp -L "$f" "$STAGE/bin/"
done
for l in "${TESTS[@]}"; do
  f=$(label_path "$l")
  [ -x "$f" ] || die "$f missing: build $l first (or drop --no-build)"
  # The cuda tests read no runfiles (no `data` deps); refuse one that starts to, rather than ship
  # a test that cannot find its files.
  if [ -d "$f.runfiles" ] && [ -n "$(find -L "$f.runfiles" -type f ! -name MANIFEST \
        ! -name "$(basename "$f")" -print -quit)" ]; then
    die "$l has data files in its runfiles; teach ci/gpu_bundle.sh to carry them"
  fi
  cp -L "$f" "$STAGE/tests/"
done
chmod -R u+w "$STAGE"
strip --strip-debug "$STAGE"/bin/* "$STAGE"/tests/*

# Libraries: what ldd resolves for our binaries, plus what the torch wheel's own libraries
# (also those it dlopens: cuDNN, cuBLAS, NVRTC, ...) need from the system. Torch's and NVIDIA's
# come from the GPU machine's wheel; everything else from here.
is_wheel_lib() { case "$1" in "$SITE"/*) return 0 ;; *) return 1 ;; esac; }
declare -A COPIED=()
declare -A UNRESOLVED=()
collect() {  # collect <elf> [strict]: copies its non-wheel dependencies into $STAGE/lib
  local line name path
  while IFS= read -r line; do
    case "$line" in
      *"not found"*)
        name=$(awk '{print $1}' <<<"$line")
        # Our binaries must resolve everything here. The wheel's libraries may need the NVIDIA
        # driver (libcuda.so.1), which only the GPU machine has, or optional system pieces
        # (e.g. InfiniBand verbs for nvshmem) that ci/gpu_check.sh does not use: listed below.
        [ "${2:-}" = strict ] && die "$1: $name not found (install the Debian package that has it)"
        UNRESOLVED[$name]="${UNRESOLVED[$name]:-} $(basename "$1")"
        continue ;;
      *"=>"*) name=$(awk '{print $1}' <<<"$line"); path=$(awk '{print $3}' <<<"$line") ;;
      */ld-linux-x86-64.so.2*) name=ld-linux-x86-64.so.2; path=$(awk '{print $1}' <<<"$line") ;;
      *) continue ;;
    esac
    [ -n "$path" ] || continue
    path=$(readlink -f "$path")
    is_wheel_lib "$path" && continue
    [ "$name" = libgomp.so.1 ] && continue  # torch/lib ships its own
    [ -n "${COPIED[$name]:-}" ] && continue
    cp -L "$path" "$STAGE/lib/$name"
    COPIED[$name]=$path
  done < <(ldd "$1")
}
for f in "$STAGE"/bin/* "$STAGE"/tests/*; do collect "$f" strict; done
while IFS= read -r -d '' so; do
  collect "$so"
done < <(find "$SITE/torch/lib" "$SITE/nvidia" -name '*.so*' -type f -print0)
[ -f "$STAGE/lib/ld-linux-x86-64.so.2" ] || die "the loader was not among ldd's results"
[ "${#UNRESOLVED[@]}" -eq 0 ] ||
  say "left to the GPU machine (ldd of the wheel's own libraries does not resolve them here): $(printf '%s\n' "${!UNRESOLVED[@]}" | sort | paste -sd' ')"
chmod -R u+w "$STAGE/lib"
strip --strip-unneeded "$STAGE"/lib/*.so* 2>/dev/null || true

# Self-check: through the bundled loader, with the cache off and only the bundle and the wheel
# on the path, every binary resolves every library, and none from the system.
LIBPATH="$ROOT/$STAGE/lib:$SITE/torch/lib:$(ls -d "$SITE"/nvidia/*/lib | paste -sd:)"
for f in "$STAGE"/bin/* "$STAGE"/tests/*; do
  listing=$("$ROOT/$STAGE/lib/ld-linux-x86-64.so.2" --inhibit-cache --library-path "$LIBPATH" --list "$f") ||
    die "$f: the bundled loader cannot resolve its libraries: $listing"
  bad=$(awk '/=>/ {print $3}' <<<"$listing" | grep -v -e "^$ROOT/$STAGE/lib/" -e "^$SITE/" || true)
  [ -z "$bad" ] || die "$f loads libraries from outside the bundle and the wheel: $bad"
done

git_rev=$(git rev-parse --short=12 HEAD)
git diff --quiet HEAD -- convforever third_party || git_rev="$git_rev+dirty"
{
  echo "convforever_commit $git_rev"
  echo "built_at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "torch_version $TORCH_VERSION"
  echo "glibc $(ldd --version | head -1 | awk '{print $NF}')"
  echo "binaries $(cd "$STAGE/bin" && ls | paste -sd' ')"
  echo "tests $(cd "$STAGE/tests" && ls | paste -sd' ')"
  echo "libraries ${#COPIED[@]}"
} > "$STAGE/MANIFEST"
(cd "$STAGE" && find bin tests lib -type f -print0 | sort -z | xargs -0 sha256sum) > "$STAGE/SHA256SUMS"

XZ_OPT="-4 -T2" tar -C "$(dirname "$STAGE")" -cJf "$TARBALL" "$(basename "$STAGE")"
size=$(stat -c %s "$TARBALL")
say "$(du -sh "$STAGE" | cut -f1) unpacked ($(ls "$STAGE/lib" | wc -l) libraries), $TARBALL $((size / 1024 / 1024)) MiB ($size bytes)"
[ "$size" -le "$LIMIT_BYTES" ] || die "$TARBALL is $size bytes, over the $LIMIT_BYTES-byte budget (the device tool carries 64 MiB)"
cat "$STAGE/MANIFEST"
