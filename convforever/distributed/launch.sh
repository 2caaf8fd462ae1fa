#!/usr/bin/env bash
# tools/launch (this file, convforever/distributed/launch.sh): start the ranks of a distributed ConvForever job, the way torchrun would.
#
#   tools/launch -n N [options] -- CMD [ARGS...]
#
# Local (default): starts N copies of CMD on this machine, each with torchrun's variables
#   RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK, MASTER_ADDR=127.0.0.1 and
#   MASTER_PORT (a free port unless --master_port), prefixes every output line with "[rank K] ",
#   and when one rank fails stops the others and exits with the failed rank's exit code.
# --hostfile FILE  DeepSpeed format: one "HOST slots=N" per line, "#" comments. Ranks are
#   numbered host by host; the first host is MASTER_ADDR; hosts other than this one
#   (localhost, 127.0.0.1, $(hostname)) are reached over ssh, in the same directory. The world
#   size is the sum of the slots (-n, if given, must equal it).
# --slurm          writes an sbatch script for the job (--nodes K nodes x N tasks) to
#   --sbatch_out FILE (default launch.sbatch) instead of running it; srun starts the ranks and
#   cf::distributed::ReadLaunchEnv reads SLURM's variables.
# --tmux NAME      runs this same launch in a new detached tmux session NAME, logging to
#   NAME.log; attach with `tmux attach -t NAME`.
# --dry_run        prints each rank's command line (with its environment) instead of running.
# Exit codes: the failed rank's code; 2 for a usage or hostfile error; 130/143 when interrupted.
set -uo pipefail

usage() {  # usage [exit code]: --help prints it on stdout and exits 0, a usage error on stderr with 2
  if [[ "${1:-2}" == 0 ]]; then
    sed -n '2,/^# Exit codes/p' "$0" | sed 's/^# \{0,1\}//'
  else
    sed -n '2,/^# Exit codes/p' "$0" | sed 's/^# \{0,1\}//' >&2
  fi
  exit "${1:-2}"
}
die() {
  echo "tools/launch: $*" >&2
  exit 2
}

nprocs=""
hostfile=""
slurm=0
sbatch_out="launch.sbatch"
nodes=1
tmux_name=""
dry_run=0
master_addr=""
master_port=""
job_name="convforever"
while [[ $# -gt 0 ]]; do
  case "$1" in
    -n|--nproc_per_node|--nprocs) nprocs="${2:-}"; shift 2 || usage ;;
    --hostfile) hostfile="${2:-}"; shift 2 || usage ;;
    --slurm) slurm=1; shift ;;
    --sbatch_out) sbatch_out="${2:-}"; shift 2 || usage ;;
    --nodes) nodes="${2:-}"; shift 2 || usage ;;
    --job_name) job_name="${2:-}"; shift 2 || usage ;;
    --tmux) tmux_name="${2:-}"; shift 2 || usage ;;
    --dry_run) dry_run=1; shift ;;
    --master_addr) master_addr="${2:-}"; shift 2 || usage ;;
    --master_port) master_port="${2:-}"; shift 2 || usage ;;
    -h|--help) usage 0 ;;
    --) shift; break ;;
    *) die "unknown option '$1' (the command goes after --; see tools/launch --help)" ;;
  esac
done
[[ $# -gt 0 ]] || die "no command given: tools/launch -n N -- CMD [ARGS...]"
cmd=("$@")
is_count() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }
[[ -z "$nprocs" ]] || is_count "$nprocs" || die "-n must be a positive integer, got '$nprocs'"
is_count "$nodes" || die "--nodes must be a positive integer, got '$nodes'"
[[ -z "$master_port" ]] || { is_count "$master_port" && ((master_port <= 65535)); } ||
  die "--master_port must be in 1..65535, got '$master_port'"

# --- tmux: re-run this launch, minus --tmux, inside a detached session ------------------------
if [[ -n "$tmux_name" ]]; then
  command -v tmux >/dev/null || die "--tmux needs tmux (apt-get install tmux)"
  [[ "$tmux_name" =~ ^[A-Za-z0-9_.-]+$ ]] || die "--tmux NAME may use letters, digits, . _ - only"
  inner=("$(cd "$(dirname "$0")" && pwd)/$(basename "$0")")
  [[ -n "$nprocs" ]] && inner+=(-n "$nprocs")
  [[ -n "$hostfile" ]] && inner+=(--hostfile "$(realpath "$hostfile")")
  [[ -n "$master_addr" ]] && inner+=(--master_addr "$master_addr")
  [[ -n "$master_port" ]] && inner+=(--master_port "$master_port")
  inner+=(-- "${cmd[@]}")
  log="$PWD/$tmux_name.log"
  script="cd $(printf %q "$PWD") && $(printf '%q ' "${inner[@]}") 2>&1 | tee $(printf %q "$log"); echo \"[launch] exit code \${PIPESTATUS[0]}\" | tee -a $(printf %q "$log")"
  tmux new-session -d -s "$tmux_name" "bash -c $(printf %q "$script")" ||
    die "tmux could not start session '$tmux_name' (does it exist already?)"
  echo "tools/launch: dispatched into tmux session '$tmux_name' (log: $log); attach: tmux attach -t $tmux_name"
  exit 0
fi

# --- hostfile ---------------------------------------------------------------------------------
hosts=()
slots=()
if [[ -n "$hostfile" ]]; then
  [[ -r "$hostfile" ]] || die "cannot read hostfile '$hostfile'"
  lineno=0
  while IFS= read -r line || [[ -n "$line" ]]; do
    lineno=$((lineno + 1))
    line="${line%%#*}"
    read -r -a fields <<<"$line"
    [[ ${#fields[@]} -eq 0 ]] && continue
    if [[ ${#fields[@]} -ne 2 || ! "${fields[1]}" =~ ^slots=([1-9][0-9]*)$ ]]; then
      die "$hostfile:$lineno: expected 'HOSTNAME slots=N' (N >= 1), got '${line}'"
    fi
    for h in "${hosts[@]}"; do
      [[ "$h" == "${fields[0]}" ]] && die "$hostfile:$lineno: host '${fields[0]}' is listed twice"
    done
    hosts+=("${fields[0]}")
    slots+=("${BASH_REMATCH[1]}")
  done <"$hostfile"
  [[ ${#hosts[@]} -gt 0 ]] || die "$hostfile: no hosts (lines 'HOSTNAME slots=N')"
  total=0
  for s in "${slots[@]}"; do total=$((total + s)); done
  [[ -z "$nprocs" || "$nprocs" -eq "$total" ]] ||
    die "-n $nprocs disagrees with the $total slots in $hostfile (leave -n out)"
  nprocs=$total
  [[ -n "$master_addr" ]] || master_addr="${hosts[0]}"
else
  [[ -n "$nprocs" ]] || die "-n N is required (or --hostfile)"
  hosts=(127.0.0.1)
  slots=("$nprocs")
fi
[[ -n "$master_addr" ]] || master_addr=127.0.0.1

free_port() {
  local py
  for py in /usr/bin/python3 python3; do
    if command -v "$py" >/dev/null; then
      "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' &&
        return
    fi
  done
  echo $((20000 + RANDOM % 40000))
}
[[ -n "$master_port" ]] || master_port=$(free_port)

# --- slurm ------------------------------------------------------------------------------------
if ((slurm)); then
  {
    echo "#!/bin/bash"
    echo "# Written by tools/launch on $(date -u +%Y-%m-%dT%H:%M:%SZ). Submit with: sbatch $sbatch_out"
    echo "#SBATCH --job-name=$job_name"
    echo "#SBATCH --nodes=$nodes"
    echo "#SBATCH --ntasks-per-node=$nprocs"
    echo "#SBATCH --output=%x-%j.out"
    echo "set -euo pipefail"
    echo "cd $(printf %q "$PWD")"
    echo "# The first node of the allocation serves the rendezvous store (cf::distributed::ReadLaunchEnv"
    echo "# reads SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID and these two)."
    echo 'export MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)'
    echo "export MASTER_PORT=$master_port"
    echo "srun --label $(printf '%q ' "${cmd[@]}")"
  } >"$sbatch_out" || die "cannot write $sbatch_out"
  chmod +x "$sbatch_out"
  echo "tools/launch: wrote $sbatch_out ($nodes node(s) x $nprocs task(s)); submit with: sbatch $sbatch_out"
  exit 0
fi

# --- run --------------------------------------------------------------------------------------
is_local_host() {
  [[ "$1" == localhost || "$1" == 127.0.0.1 || "$1" == "$(hostname)" || "$1" == "$(hostname -f 2>/dev/null)" ]]
}

pids=()
stop_all() {
  local sig="$1" pid
  for pid in "${pids[@]}"; do kill "-$sig" -- "-$pid" 2>/dev/null; done
}
on_signal() {
  exec 2>/dev/null
  stop_all TERM
  wait
  exit "$1"
}
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

set -m  # every rank in its own process group, so stopping a rank stops all it started
rank=0
for ((h = 0; h < ${#hosts[@]}; h++)); do
  for ((local_rank = 0; local_rank < slots[h]; local_rank++)); do
    vars=(RANK=$rank WORLD_SIZE=$nprocs LOCAL_RANK=$local_rank LOCAL_WORLD_SIZE=${slots[h]}
      GROUP_RANK=$h MASTER_ADDR=$master_addr MASTER_PORT=$master_port)
    if is_local_host "${hosts[h]}"; then
      line=(env "${vars[@]}" "${cmd[@]}")
    else
      line=(ssh -o BatchMode=yes "${hosts[h]}"
        "cd $(printf %q "$PWD") && env ${vars[*]} $(printf '%q ' "${cmd[@]}")")
    fi
    if ((dry_run)); then
      echo "[rank $rank] $(printf '%q ' "${line[@]}")"
    else
      (
        "${line[@]}" 2>&1 | awk -v p="[rank $rank] " '{ print p $0; fflush() }'
        exit "${PIPESTATUS[0]}"
      ) &
      pids+=($!)
    fi
    rank=$((rank + 1))
  done
done
((dry_run)) && exit 0

remaining=${#pids[@]}
while ((remaining > 0)); do
  wait -n -p done_pid
  rc=$?
  remaining=$((remaining - 1))
  if ((rc != 0)); then
    failed_rank="?"
    for i in "${!pids[@]}"; do [[ "${pids[i]}" == "$done_pid" ]] && failed_rank=$i; done
    echo "tools/launch: rank $failed_rank exited with code $rc; stopping the other ranks" >&2
    exec 2>/dev/null  # the shell's own "Terminated" job notices
    stop_all TERM
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      jobs -pr | grep -q . || break
      sleep 0.5
    done
    stop_all KILL
    wait
    exit "$rc"
  fi
done
exit 0
