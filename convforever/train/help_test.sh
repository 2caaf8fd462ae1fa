#!/bin/bash
# `<command> --help` for every user-facing binary: exit 0, the command's own flags only (no glog or
# gflags flags), every flag named in a group that exists (no "(unknown flag)"), and for the trainer
# every flag inside one of the README's groups (no "Other flags").
set -u
fail=0
check() {  # check BINARY FLAG_IT_MUST_LIST
  local bin="$1" want="$2" out rc
  out=$("$bin" --help 2>&1); rc=$?
  [ "$rc" -eq 0 ] || { echo "FAIL: $bin --help exited $rc"; fail=1; }
  grep -q -- "--$want (" <<<"$out" || { echo "FAIL: $bin --help does not list --$want"; fail=1; }
  ! grep -q -- "--logtostderr\|--flagfile (\|--helpxml" <<<"$out" || { echo "FAIL: $bin --help lists glog/gflags flags"; fail=1; }
  ! grep -q "(unknown flag)" <<<"$out" || { echo "FAIL: $bin --help groups an unknown flag"; fail=1; }
  printf '%s' "$out"
}
check convforever/caption/classify base_url >/dev/null
check convforever/data/pack format >/dev/null
check convforever/hub/hub repo >/dev/null
check convforever/models/models weights >/dev/null
check convforever/report/report out >/dev/null
check convforever/sweep/sweep parallel >/dev/null
train=$(check convforever/train/train lr)
grep -q "^Other flags:" <<<"$train" && { echo "FAIL: train flags outside the README's groups:"; sed -n '/^Other flags:/,$p' <<<"$train"; fail=1; }
for group in Model Data Augmentation Optimization "Slow links" "Planning (--estimate)"; do
  grep -q "^$group:" <<<"$train" || { echo "FAIL: train --help has no group '$group'"; fail=1; }
done
# -h works too, and a flag after -- is not a request for help.
convforever/train/train -h >/dev/null 2>&1 || { echo "FAIL: train -h"; fail=1; }
# The container image's entrypoint: its help, and a command's help is the command's own.
containers/entrypoint/cf help | grep -q "^  preflight" || { echo "FAIL: cf help does not list preflight"; fail=1; }
CF_BIN_DIR="$PWD/convforever/sweep" containers/entrypoint/cf sweep --help | grep -q -- "--parallel (" \
  || { echo "FAIL: cf sweep --help is not sweep's own help"; fail=1; }
[ "$fail" -eq 0 ] && echo "PASS"
exit "$fail"
