# Shared by the ci/stages scripts: one line per check on stdout, "ok NAME" or "FAILED NAME: why",
# which `tools/cf test` counts; the output of a failed check goes to stderr.
STAGE_FAILED=0

# check NAME CMD [ARGS...]: runs CMD, output kept in $CHECK_OUT (stdout + stderr).
check() {
  local name="$1"; shift
  local rc=0
  CHECK_OUT=$("$@" 2>&1) || rc=$?
  if [ "$rc" -eq 0 ]; then
    echo "ok $name"
  else
    echo "FAILED $name: exit code $rc"
    printf '%s\n' "$CHECK_OUT" | tail -30 | sed "s/^/  [$name] /" >&2
    STAGE_FAILED=$((STAGE_FAILED + 1))
  fi
  return "$rc"
}

# expect NAME TEXT: the last check's output holds TEXT (fixed string).
expect() {
  local name="$1" text="$2"
  if grep -qF -- "$text" <<<"$CHECK_OUT"; then
    echo "ok $name"
  else
    echo "FAILED $name: the output has no '$text'"
    printf '%s\n' "$CHECK_OUT" | tail -30 | sed "s/^/  [$name] /" >&2
    STAGE_FAILED=$((STAGE_FAILED + 1))
  fi
}

# refute NAME TEXT: the last check's output does not hold TEXT.
refute() {
  local name="$1" text="$2"
  if grep -qF -- "$text" <<<"$CHECK_OUT"; then
    echo "FAILED $name: the output holds '$text'"
    STAGE_FAILED=$((STAGE_FAILED + 1))
  else
    echo "ok $name"
  fi
}

fail_check() {  # fail_check NAME WHY
  echo "FAILED $1: $2"
  STAGE_FAILED=$((STAGE_FAILED + 1))
}
