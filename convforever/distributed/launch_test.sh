#!/usr/bin/env bash
# Tests tools/launch with `env`, `false` and small shell commands as the ranks: the environment
# each rank gets, output prefixes, failure propagation, hostfile parsing (and its errors),
# the sbatch script, and tmux dispatch (through a stand-in tmux that records its arguments).
set -uo pipefail
LAUNCH="$PWD/convforever/distributed/launch.sh"
T="${TEST_TMPDIR:-$(mktemp -d)}"
cd "$T"
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
expect_contains() {  # file pattern description
  grep -qE -- "$2" "$1" || { fail "$3: no line matching '$2' in:"; cat "$1" >&2; }
}

# --- environment of each rank --------------------------------------------------------------
"$LAUNCH" -n 3 -- env >out.txt 2>err.txt; rc=$?
[[ $rc -eq 0 ]] || fail "env ranks exited $rc"
for r in 0 1 2; do
  expect_contains out.txt "^\[rank $r\] RANK=$r$" "rank $r RANK"
  expect_contains out.txt "^\[rank $r\] LOCAL_RANK=$r$" "rank $r LOCAL_RANK"
  expect_contains out.txt "^\[rank $r\] WORLD_SIZE=3$" "rank $r WORLD_SIZE"
  expect_contains out.txt "^\[rank $r\] LOCAL_WORLD_SIZE=3$" "rank $r LOCAL_WORLD_SIZE"
  expect_contains out.txt "^\[rank $r\] MASTER_ADDR=127.0.0.1$" "rank $r MASTER_ADDR"
done
ports=$(grep -oE 'MASTER_PORT=[0-9]+' out.txt | sort -u | wc -l)
[[ $ports -eq 1 ]] || fail "ranks got $ports different MASTER_PORTs"
grep -v '^\[rank [0-9]\] ' out.txt | grep -q . && fail "a line without rank prefix: $(grep -v '^\[rank' out.txt | head -1)"

"$LAUNCH" -n 2 --master_port 4321 -- env >out.txt 2>&1
expect_contains out.txt '^\[rank 1\] MASTER_PORT=4321$' "--master_port"

# --- failure propagation -------------------------------------------------------------------
"$LAUNCH" -n 2 -- false >out.txt 2>&1; rc=$?
[[ $rc -eq 1 ]] || fail "false ranks: exit $rc, want 1"
start=$SECONDS
# The sleep's argument is unique to this run, so a concurrent run of this test is not mistaken
# for a survivor of this one.
marker="100.$$"
timeout 60 "$LAUNCH" -n 3 -- sh -c "if [ \"\$RANK\" = 1 ]; then exit 7; fi; sleep $marker" >out.txt 2>&1; rc=$?
[[ $rc -eq 7 ]] || fail "one failing rank: exit $rc, want 7"
((SECONDS - start < 40)) || fail "the other ranks were not stopped ($((SECONDS - start)) s)"
expect_contains out.txt 'rank 1 exited with code 7' "failure message"
# Killed processes may take a moment to exit and be reaped: give them up to 5 s.
for _ in $(seq 50); do pgrep -f "sleep $marker" >/dev/null || break; sleep 0.1; done
pgrep -f "sleep $marker" >/dev/null && fail "a rank's process survived"

# --- hostfile ------------------------------------------------------------------------------
printf '# two local hosts\nlocalhost slots=2\n\n127.0.0.1 slots=1  # comment\n' >hosts.txt
"$LAUNCH" --hostfile hosts.txt -- env >out.txt 2>&1; rc=$?
[[ $rc -eq 0 ]] || { fail "hostfile run exited $rc"; cat out.txt >&2; }
expect_contains out.txt '^\[rank 2\] WORLD_SIZE=3$' "hostfile world size"
expect_contains out.txt '^\[rank 2\] LOCAL_RANK=0$' "hostfile local rank"
expect_contains out.txt '^\[rank 2\] LOCAL_WORLD_SIZE=1$' "hostfile local world size"
expect_contains out.txt '^\[rank 2\] GROUP_RANK=1$' "hostfile group rank"
expect_contains out.txt '^\[rank 0\] MASTER_ADDR=localhost$' "hostfile master is the first host"

printf 'gpu-a slots=1\ngpu-b slots=2\n' >remote.txt
"$LAUNCH" --hostfile remote.txt --dry_run -- train --flag >out.txt 2>&1
expect_contains out.txt '^\[rank 2\] ssh -o BatchMode=yes gpu-b .*RANK=2\\ WORLD_SIZE=3\\ LOCAL_RANK=1\\ .*MASTER_ADDR=gpu-a.*train\\ --flag' "ssh line"

check_bad_hostfile() {  # contents expected-message
  printf "$1" >bad.txt
  "$LAUNCH" --hostfile bad.txt -- env >out.txt 2>&1; rc=$?
  [[ $rc -eq 2 ]] || fail "bad hostfile '$1': exit $rc, want 2"
  expect_contains out.txt "$2" "bad hostfile '$1'"
}
check_bad_hostfile 'a slots=1\n\nb slots=two\n' 'bad.txt:3: expected .HOSTNAME slots=N'
check_bad_hostfile 'a slots=0\n' 'bad.txt:1: expected'
check_bad_hostfile 'a\n' 'bad.txt:1: expected'
check_bad_hostfile 'a slots=1\na slots=2\n' "bad.txt:2: host 'a' is listed twice"
check_bad_hostfile '# nothing\n' 'no hosts'
"$LAUNCH" --hostfile missing.txt -- env >out.txt 2>&1; rc=$?
[[ $rc -eq 2 ]] || fail "missing hostfile: exit $rc"
expect_contains out.txt "cannot read hostfile 'missing.txt'" "missing hostfile"

# --- usage errors --------------------------------------------------------------------------
"$LAUNCH" -n 2 >out.txt 2>&1; [[ $? -eq 2 ]] || fail "no command accepted"
expect_contains out.txt 'no command given' "no command"
"$LAUNCH" -n two -- env >out.txt 2>&1; [[ $? -eq 2 ]] || fail "-n two accepted"
expect_contains out.txt "-n must be a positive integer, got 'two'" "-n two"
"$LAUNCH" --bogus -- env >out.txt 2>&1; [[ $? -eq 2 ]] || fail "--bogus accepted"

# --- slurm ---------------------------------------------------------------------------------
"$LAUNCH" -n 4 --nodes 2 --slurm --sbatch_out job.sbatch -- train --recipe=x >out.txt 2>&1; rc=$?
[[ $rc -eq 0 ]] || fail "--slurm exited $rc"
expect_contains job.sbatch '^#SBATCH --nodes=2$' "sbatch nodes"
expect_contains job.sbatch '^#SBATCH --ntasks-per-node=4$' "sbatch tasks"
expect_contains job.sbatch '^export MASTER_ADDR=\$\(scontrol show hostnames' "sbatch master"
expect_contains job.sbatch '^srun --label train --recipe=x' "sbatch srun"
bash -n job.sbatch || fail "sbatch script is not valid bash"

# --- tmux (a stand-in records how it was called) -------------------------------------------
mkdir -p fakebin
printf '#!/bin/sh\nprintf "%%s\\n" "$@" > "%s/tmux_args"\n' "$T" >fakebin/tmux
chmod +x fakebin/tmux
PATH="$T/fakebin:$PATH" "$LAUNCH" -n 2 --tmux myjob -- env >out.txt 2>&1; rc=$?
[[ $rc -eq 0 ]] || fail "--tmux exited $rc"
expect_contains tmux_args '^new-session$' "tmux new-session"
expect_contains tmux_args '^-d$' "tmux detached"
expect_contains tmux_args '^myjob$' "tmux session name"
expect_contains tmux_args 'launch\.sh\\ -n\\ 2\\ --\\ env' "tmux runs the same launch"
expect_contains tmux_args 'myjob\.log' "tmux log file"
"$LAUNCH" -n 2 --tmux 'bad name' -- env >out.txt 2>&1; [[ $? -eq 2 ]] || fail "bad tmux name accepted"

if ((failures)); then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all launch checks passed"
