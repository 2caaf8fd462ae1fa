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

# podman_setup WORK: a podman with a storage of its own under WORK (vfs, runc, no ulimits, no
# systemd or journald: what works on the build machines), in the array PODMAN. podman_reset
# removes that storage (vfs keeps a full copy per layer: never leave it behind).
podman_setup() {
  local work="$1"
  PODMAN_WORK="$work"
  PODMAN_RUN="/tmp/cf-podman-$(printf '%s' "$work" | md5sum | cut -c1-12)"
  cat >"$work/containers.conf" <<'CONF'
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  export CONTAINERS_CONF="$work/containers.conf"
  PODMAN=(podman --root "$work/storage" --runroot "$PODMAN_RUN" --storage-driver vfs)
}

podman_reset() {
  "${PODMAN[@]}" rm -af >/dev/null 2>&1 || true
  "${PODMAN[@]}" system reset -f >/dev/null 2>&1 || true
  rm -rf "$PODMAN_WORK/storage" "$PODMAN_RUN"
}
