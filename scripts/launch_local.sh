#!/usr/bin/env bash
# Launches N processes of one command on this machine as a data-parallel job (what torchrun
# --standalone --nproc-per-node N does), for pyramidion::ProcessGroup::from_environment
# (include/pyramidion/distributed.h).
#
# Usage: scripts/launch_local.sh N -- COMMAND [ARGS...]
#   e.g. scripts/launch_local.sh 2 -- build/tools/pyramidion-train --config configs/tiny-vanilla.json
#
# Each process i in 0 .. N-1 gets, on top of this environment:
#   RANK=i  LOCAL_RANK=i  WORLD_SIZE=N  MASTER_ADDR=127.0.0.1 (or $MASTER_ADDR)
#   MASTER_PORT=$MASTER_PORT, or a port that is free when the script starts
# Every line a process prints is prefixed with "[rank i] " (stdout stays stdout, stderr stderr).
#
# The script waits for all of them. When one exits with a non-zero status, the others are sent
# SIGTERM (SIGKILL 10 s later) and the script exits with that first failure's status; otherwise it
# exits 0. SIGINT, SIGTERM and SIGHUP (a closed terminal or ssh session) to the script are passed on
# to every process as SIGTERM (pyramidion-train then checkpoints and exits). Each rank runs in a
# session of its own (setsid), so a COMMAND that is itself a wrapper is stopped with all its
# children. A launcher that dies without a word (SIGKILL, an OOM kill) takes its ranks with it:
# each is started with a parent-death signal (setpriv --pdeathsig TERM, util-linux), so that no
# orphan goes on training and holding its output directory's lock.
set -euo pipefail

usage() {
  echo "usage: $0 N -- COMMAND [ARGS...]   (N >= 1 processes on this machine)" >&2
  exit 2
}

[[ $# -ge 3 && "$2" == "--" ]] || usage
nprocs="$1"
shift 2
[[ "$nprocs" =~ ^[1-9][0-9]*$ ]] || { echo "$0: N = \"$nprocs\" must be an integer >= 1" >&2; exit 2; }

# A port the kernel hands out for port 0 on loopback: free at this moment (rank 0 binds it soon
# after; another program could take it in between, as with torchrun --standalone).
free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    return
  fi
  local port
  for _ in $(seq 100); do
    port=$((20000 + RANDOM % 40000))
    # Nobody answering on it: taken as free.
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  echo "$0: found no free port; set MASTER_PORT" >&2
  exit 1
}

export WORLD_SIZE="$nprocs"
export MASTER_ADDR="${MASTER_ADDR:-127.0.0.1}"
export MASTER_PORT="${MASTER_PORT:-$(free_port)}"
[[ "$MASTER_PORT" =~ ^[0-9]+$ ]] || { echo "$0: MASTER_PORT = \"$MASTER_PORT\" is not a port number" >&2; exit 2; }

# Every rank in a process group of its own (setsid: a new session), so that kill -- -PID reaches
# the children of a COMMAND that is a wrapper too.
setsid=()
if command -v setsid >/dev/null 2>&1; then setsid=(setsid); fi
# The parent-death signal: the kernel sends SIGTERM to a rank when this script ends, however it
# ends. setpriv sets it and execs COMMAND, so the rank stays this script's child.
pdeath=()
if setpriv --pdeathsig TERM true >/dev/null 2>&1; then
  pdeath=(setpriv --pdeathsig TERM --)
else
  echo "$0: warning: no 'setpriv --pdeathsig' (util-linux): ranks outlive a launcher that is killed" >&2
fi
pids=()
declare -A alive=()
for ((i = 0; i < nprocs; i++)); do
  # The output filters ignore SIGHUP, so that a closed terminal does not cut the ranks' output
  # pipes (a write to a pipe without a reader kills the writer) before they have checkpointed.
  RANK="$i" LOCAL_RANK="$i" "${setsid[@]}" "${pdeath[@]}" "$@" \
    > >(trap '' HUP; exec sed -u "s/^/[rank $i] /") \
    2> >(trap '' HUP; exec sed -u "s/^/[rank $i] /" >&2) &
  pids+=("$!")
  alive[$!]=1
done

# Signals every rank that is still running.
signal_all() {
  local sig="$1" pid
  for pid in "${pids[@]}"; do
    kill "-$sig" -- "-$pid" 2>/dev/null || kill "-$sig" "$pid" 2>/dev/null || true
  done
}
trap 'signal_all TERM' INT TERM HUP

first_failure=0
killer=""
# Polls rather than `wait -n`: a signal trapped during `wait -n` can leave it waiting on ranks that
# bash has meanwhile reaped. `wait PID` of a rank that has ended returns its status at once.
while ((${#alive[@]} > 0)); do
  for pid in "${!alive[@]}"; do
    kill -0 "$pid" 2>/dev/null && continue  # still running
    status=0
    wait "$pid" 2>/dev/null || status=$?
    unset "alive[$pid]"
    if ((status != 0 && first_failure == 0)); then
      first_failure=$status
      echo "$0: a rank exited with status $status; stopping the others" >&2
      signal_all TERM
      (sleep 10 && signal_all KILL) &
      killer=$!
    fi
  done
  ((${#alive[@]} == 0)) || sleep 0.2
done
if [[ -n "$killer" ]]; then kill "$killer" 2>/dev/null || true; fi
wait 2>/dev/null || true  # the output filters
exit "$first_failure"
