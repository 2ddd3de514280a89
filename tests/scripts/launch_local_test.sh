#!/usr/bin/env bash
# scripts/launch_local.sh: its ranks stop when the launcher goes (issue 24, item 5). They used to
# go on as orphans, holding their output directory's lock, after the launcher died of SIGHUP (a
# closed terminal) or SIGKILL.
#
#   tests/scripts/launch_local_test.sh <pyramidion-train> <scratch dir>
#
# 1. SIGHUP to the launcher: every rank gets SIGTERM (as for SIGINT/SIGTERM) and the launcher waits.
# 2. SIGKILL to the launcher: every rank gets SIGTERM from the kernel (the parent-death signal).
# 3. The same with pyramidion-train ranks: they checkpoint and exit, the lock goes with them, and a
#    --resume run on the same directory is not refused.
# Prints "launch_local: ok" at the end.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TRAIN=$1
DIR=$2
rm -rf "$DIR"
mkdir -p "$DIR"
LAUNCH="$ROOT/scripts/launch_local.sh"

fail() {
  echo "launch_local test: $*" >&2
  exit 1
}

# Waits up to $2 seconds for the shell condition $1.
wait_for() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    if eval "$1"; then return 0; fi
    sleep 0.1
  done
  return 1
}

# A rank that records its pid, says when SIGTERM comes, and otherwise waits.
cat >"$DIR/rank.sh" <<'EOF'
echo $$ >"$OUT/pid.$RANK"
trap 'echo term >"$OUT/term.$RANK"; exit 0' TERM
while :; do sleep 0.1; done
EOF

alive() { kill -0 "$(cat "$1")" 2>/dev/null; }

for signal in HUP KILL; do
  out="$DIR/$signal"
  mkdir -p "$out"
  OUT="$out" bash "$LAUNCH" 2 -- bash "$DIR/rank.sh" >"$out/launcher.log" 2>&1 &
  launcher=$!
  wait_for '[[ -s $out/pid.0 && -s $out/pid.1 ]]' 30 || fail "$signal: the ranks did not start"
  kill "-$signal" "$launcher"
  wait "$launcher" 2>/dev/null || true
  for rank in 0 1; do
    if ! wait_for "! alive $out/pid.$rank" 15; then
      kill -KILL "$(cat "$out/pid.$rank")" 2>/dev/null || true
      fail "SIG$signal to the launcher left rank $rank running (an orphan)"
    fi
    [[ -f $out/term.$rank ]] || fail "SIG$signal to the launcher: rank $rank ended without SIGTERM"
  done
  echo "launch_local: SIG$signal to the launcher stopped both ranks with SIGTERM"
done

# pyramidion-train under the launcher, which is then killed: the ranks checkpoint and exit, and
# the output directory can be resumed at once.
head -n 12 "$ROOT/data/aclsum/train.jsonl" >"$DIR/train.jsonl"
head -n 4 "$ROOT/data/aclsum/valid.jsonl" >"$DIR/valid.jsonl"
args=(--model "$ROOT/configs/tiny-deep-pyramidion.json" --train "$DIR/train.jsonl" --valid "$DIR/valid.jsonl"
      --out "$DIR/run" --set vocab_size=300 max_tokens=576 warmup_steps=2 log_every=1 validate_every=0
      checkpoint_every=1000 threads=1)
bash "$LAUNCH" 2 -- "$TRAIN" "${args[@]}" --max-steps 100000 >"$DIR/train.log" 2>&1 &
launcher=$!
wait_for 'grep -q "\"loss\"" "$DIR/run/metrics.jsonl" 2>/dev/null' 180 || { cat "$DIR/train.log"; fail "training did not start"; }
kill -KILL "$launcher"
wait "$launcher" 2>/dev/null || true
wait_for '! pgrep -f -- "--out $DIR/run" >/dev/null' 60 || {
  pkill -KILL -f -- "--out $DIR/run" || true
  cat "$DIR/train.log"
  fail "SIGKILL to the launcher left pyramidion-train ranks running"
}
[[ -L $DIR/run/latest ]] || { cat "$DIR/train.log"; fail "the ranks did not checkpoint on their SIGTERM"; }
step=$(basename "$(readlink "$DIR/run/latest")")
step=$((10#${step#step-}))
"$TRAIN" "${args[@]}" --max-steps $((step + 1)) --resume >"$DIR/resume.log" 2>&1 ||
  { cat "$DIR/resume.log"; fail "--resume after the launcher's death was refused"; }
grep -q "resumed from" "$DIR/resume.log" || fail "the rerun did not resume"
echo "launch_local: pyramidion-train ranks checkpointed at step $step and released the lock"
echo "launch_local: ok"
