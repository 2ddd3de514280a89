#!/usr/bin/env bash
# The selection task (docs/selection.md, issue 14): does the scorer learn what to read?
#
# Generates windows of the bundled papers with one marked passage each (scripts/make_selection.py),
# trains, on the same data for the same updates,
#   trained     DeepPyramidion pooling to 1/8 of the input by its last pooling layer
#   sixteenth   the same pooling to 1/16
#   frozen      the 1/8 model with its scorers frozen at their initialisation
#   detached    frozen, and the scorers read detached representations: pooling that learns nothing
#   blockwise   the blockwise baseline without pooling (the upper bound on copying)
# and, when named in PYRAMIDION_SELECTION_VARIANTS, the scorers' optimizer settings of issue 27:
#   slow-scorer     trained, its scorers at lr x 0.1 (scorer_lr_scale)
#   slower-scorer   trained, its scorers at lr x 0.01
#   scorer-no-decay trained, no weight decay on its scorers (scorer_weight_decay 0)
#   accumulated     trained (scale 1), its task phase at 4 micro-batches per update (16 windows, 4x the
#                   cost of an update; the copying phase as the others')
#   accumulated-frozen  frozen, its task phase at 16 windows per update as accumulated's (the control
#                   for accumulated: the same batch, scorers that learn nothing)
#   fixed-scorer    trained with scorer_lr_scale 0: frozen, but the
#                   scorers' gradients count in the gradient-norm clip
# and evaluates them side by side on the test windows with pyramidion-bench selection, the trained
# model also with hard top-k at inference, plus the curve of every model in the results folder over its
# checkpoints (every 500 updates, the first 50 test windows). Writes results/selection/<tokens>/: report.md (and .json), curve-<model>.md,
# curves.svg (the curves as a picture), train_speed.md (training cost), the highlight pages in pages/, and each run's directory.
#
# Training has two phases per model (docs/selection.md says why): PYRAMIDION_SELECTION_COPY_STEPS
# updates on 64-token windows (data/selection-copy), where the decoder learns to copy, then the
# task's training split (long windows with short ones mixed in) up to max_steps.
#
#   scripts/selection.sh                  # 2048-token windows
#   PYRAMIDION_SELECTION_TOKENS=4096 scripts/selection.sh
#
# Environment:
#   PYRAMIDION_SELECTION_TOKENS    window length: 2048 (configs/selection/*.json) or 4096 (*-4096.json)
#   PYRAMIDION_SELECTION_STEPS     updates per model (default: the train config's max_steps)
#   PYRAMIDION_SELECTION_COPY_STEPS  updates of the copying phase (default 500)
#   PYRAMIDION_SELECTION_SEED      the seed of the weights, the data order and dropout (default: the train
#                                  config's); a seed given writes results/selection/<tokens>-seed<N>/
#   PYRAMIDION_SELECTION_VARIANTS  which of trained, blockwise, frozen, sixteenth, detached to train, in
#                                  pairs side by side (default all five; at 4096 all but sixteenth)
#   PYRAMIDION_BUILD_DIR           the build (default build/)
set -euo pipefail
cd "$(dirname "$0")/.."
TOKENS="${PYRAMIDION_SELECTION_TOKENS:-2048}"
DEFAULT_VARIANTS="trained blockwise frozen sixteenth detached"
[ "$TOKENS" = 4096 ] && DEFAULT_VARIANTS="trained blockwise frozen detached"  # no 1/16 preset at 4096
VARIANTS="${PYRAMIDION_SELECTION_VARIANTS:-$DEFAULT_VARIANTS}"
BUILD="${PYRAMIDION_BUILD_DIR:-build}"
case "$TOKENS" in
  2048) suffix="" ;;
  4096) suffix="-4096" ;;
  *) echo "selection.sh: PYRAMIDION_SELECTION_TOKENS must be 2048 or 4096, got '$TOKENS'" >&2; exit 2 ;;
esac
bash scripts/build.sh >&2
VENV="${PYRAMIDION_VENV:-$HOME/.cache/pyramidion/venv}"
DATA="data/selection-$TOKENS"
SEED="${PYRAMIDION_SELECTION_SEED:-}"
[ -z "$SEED" ] || [[ "$SEED" =~ ^[0-9]+$ ]] ||
  { echo "selection.sh: PYRAMIDION_SELECTION_SEED must be a non-negative integer, got '$SEED'" >&2; exit 2; }
OUT="results/selection/$TOKENS${SEED:+-seed$SEED}"
seed=()
[ -z "$SEED" ] || seed=(--set "seed=$SEED")
TRAIN_CONFIG="configs/train/selection-$TOKENS.json"
log() { printf '[selection] %s\n' "$*" >&2; }

python3 scripts/make_selection.py --data data/aclsum --out "$DATA" --tokens "$TOKENS" --seed 1
# The copying phase's data: 64-token windows only (no pooling layer drops anything from them).
COPY="data/selection-copy"
python3 scripts/make_selection.py --data data/aclsum --out "$COPY" --tokens 64 --train 40000 --short-windows 0 \
  --valid 100 --test 0 --seed 1
mkdir -p "$OUT"
steps=()
[ -n "${PYRAMIDION_SELECTION_STEPS:-}" ] && steps=(--max-steps "$PYRAMIDION_SELECTION_STEPS")
COPY_STEPS="${PYRAMIDION_SELECTION_COPY_STEPS:-500}"

# One tokenizer for every run (the markers reserved), trained by a one-update run on the training split.
if [ ! -f "$OUT/tokenizer.model" ]; then
  log "training the tokenizer"
  rm -rf "$OUT/tokenizer-run"
  "$BUILD/tools/pyramidion-train" --config "$TRAIN_CONFIG" --out "$OUT/tokenizer-run" --max-steps 1 \
    --set validate_every=0 2>"$OUT/tokenizer-run.log" || { tail -5 "$OUT/tokenizer-run.log" >&2; exit 1; }
  cp "$OUT/tokenizer-run/tokenizer.model" "$OUT/tokenizer.model.tmp"
  mv "$OUT/tokenizer.model.tmp" "$OUT/tokenizer.model"
  rm -rf "$OUT/tokenizer-run"
fi

# train NAME MODEL_CONFIG [--set ...]: two phases into $OUT/NAME, one intra-op thread (two runs go
# side by side): COPY_STEPS updates on the copying windows, then (--resume: the same optimizer and
# schedule) on the task's training split up to max_steps. A run that exists is resumed. TASK_ARGS
# (an array, set by the caller) go to the task phase only.
TASK_ARGS=()
train() {
  local name=$1 model=$2
  shift 2
  local task=("${TASK_ARGS[@]}")
  local common=(--config "$TRAIN_CONFIG" --model "$model" --out "$OUT/$name" --set "tokenizer=$OUT/tokenizer.model"
                --set threads=1 "${seed[@]}" "$@")
  if [ ! -e "$OUT/$name/latest" ]; then
    log "training $name ($model): copying phase, $COPY_STEPS updates on $COPY"
    "$BUILD/tools/pyramidion-train" "${common[@]}" --max-steps "$COPY_STEPS" --set "train=$COPY/train.jsonl" \
      --set "valid=$COPY/valid.jsonl" 2>"$OUT/$name.copy.log" || { tail -5 "$OUT/$name.copy.log" >&2; return 1; }
  fi
  log "training $name: task phase on $DATA"
  "$BUILD/tools/pyramidion-train" "${common[@]}" "${task[@]}" "${steps[@]}" --resume 2>>"$OUT/$name.log" ||
    { tail -5 "$OUT/$name.log" >&2; return 1; }
}

# train_variant NAME: the variant's model config and settings.
train_variant() {
  case "$1" in
    trained) train trained "configs/selection/deep-pyramidion-8$suffix.json" --set scorer_lr_scale=1 ;;
    sixteenth)
      [ -z "$suffix" ] || { echo "selection.sh: no 1/16 preset for $TOKENS-token windows" >&2; return 2; }
      train sixteenth "configs/selection/deep-pyramidion-16.json" --set scorer_lr_scale=1 ;;
    frozen) train frozen "configs/selection/deep-pyramidion-8$suffix.json" --set 'freeze=["encoder_poolers."]' ;;
    detached)
      train detached "configs/selection/deep-pyramidion-8$suffix.json" --set 'freeze=["encoder_poolers."]' \
        --set detach_scorer_input=true ;;
    blockwise) train blockwise "configs/selection/blockwise$suffix.json" ;;
    slow-scorer) train slow-scorer "configs/selection/deep-pyramidion-8$suffix.json" --set scorer_lr_scale=0.1 ;;
    slower-scorer) train slower-scorer "configs/selection/deep-pyramidion-8$suffix.json" --set scorer_lr_scale=0.01 ;;
    scorer-no-decay)
      train scorer-no-decay "configs/selection/deep-pyramidion-8$suffix.json" --set scorer_lr_scale=1 \
        --set scorer_weight_decay=0 ;;
    accumulated)
      local TASK_ARGS=(--set update_freq=4)  # seen by train (bash scopes dynamically)
      train accumulated "configs/selection/deep-pyramidion-8$suffix.json" --set scorer_lr_scale=1 ;;
    accumulated-frozen)
      local TASK_ARGS=(--set update_freq=4)
      train accumulated-frozen "configs/selection/deep-pyramidion-8$suffix.json" --set 'freeze=["encoder_poolers."]' ;;
    fixed-scorer) train fixed-scorer "configs/selection/deep-pyramidion-8$suffix.json" --set scorer_lr_scale=0 ;;
    *) echo "selection.sh: unknown variant '$1'" >&2; return 2 ;;
  esac
}

# Two runs at a time. Same seed, same data: both runs of a pair take the same batches in the same
# order, so their update times, logged side by side over the same minutes, compare like for like.
set -- $VARIANTS
while [ $# -gt 0 ]; do
  first=$1
  shift
  if [ $# -gt 0 ]; then
    second=$1
    shift
    train_variant "$first" & a=$!
    train_variant "$second" & b=$!
    wait $a || exit 1
    wait $b || exit 1
  else
    train_variant "$first" || exit 1
  fi
done

# Training cost: for each pair of runs trained side by side, the median over their log intervals
# (25 updates of the task phase) of the ratio of the intervals' durations (the same batches in both).
# A run of a single variant has no pair: the earlier train_speed.md stays.
python3 - "$OUT" "$COPY_STEPS" $VARIANTS <<'EOF'
import json, os, statistics, sys
out, copy_steps, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def intervals(name):
    """{step: seconds of the log interval ending at step} over the task phase."""
    path = os.path.join(out, name, "metrics.jsonl")
    if not os.path.exists(path):
        return {}
    rows = [json.loads(l) for l in open(path)]
    rows = [r for r in rows if "elapsed_s" in r and "loss" in r]
    result, last = {}, None
    for r in rows:  # elapsed_s restarts with the resumed task phase: a drop starts a new run
        if last is not None and r["step"] > last["step"] and r["elapsed_s"] > last["elapsed_s"]:
            result[r["step"]] = r["elapsed_s"] - last["elapsed_s"]
        last = r
    return result
rows = []
for i in range(0, len(names) - 1, 2):
    a, b = intervals(names[i]), intervals(names[i + 1])
    common = sorted(s for s in set(a) & set(b) if s > copy_steps)
    if common:
        ratio = statistics.median(b[s] / a[s] for s in common)
        rows.append(f"| {names[i + 1]} / {names[i]} | {len(common)} | {ratio:.2f}x |")
if rows:
    path = os.path.join(out, "train_speed.md")
    with open(path + ".tmp", "w") as f:
        f.write("| pair trained side by side (1 thread each) | log intervals compared | median ratio of interval times |\n")
        f.write("|:---|---:|---:|\n" + "\n".join(rows) + "\n")
    os.replace(path + ".tmp", path)
EOF

# Every model at the same update: PYRAMIDION_SELECTION_STEPS, or the train config's max_steps
# (a run trained further, e.g. for its curve, is evaluated at that checkpoint, not its latest).
EVAL_STEP="${PYRAMIDION_SELECTION_STEPS:-$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["max_steps"])' "$TRAIN_CONFIG")}"
at_step() { printf '%s/checkpoints/step-%06d' "$OUT/$1" "$((10#$EVAL_STEP))"; }
# Every variant train_variant knows, blockwise first (the report's speed-ups are over the first model).
ALL_VARIANTS="blockwise trained sixteenth frozen detached slow-scorer slower-scorer scorer-no-decay accumulated accumulated-frozen fixed-scorer"
models=()
for v in $ALL_VARIANTS; do
  if [ -d "$(at_step "$v")" ]; then
    models+=(--model "$v=$(at_step "$v")")
  elif [ -e "$OUT/$v/latest" ]; then
    log "$v has no checkpoint at update $EVAL_STEP: not evaluated"
  fi
done
[ -d "$(at_step trained)" ] && models+=(--model "trained-hard=$(at_step trained)@hard")
log "evaluating ${#models[@]} models at update $EVAL_STEP on $DATA/test.jsonl"
"$BUILD/tools/pyramidion-bench" selection "${models[@]}" --input "$DATA/test.jsonl" --chunk 25 \
  --json "$OUT/report.json" --markdown "$OUT/report.md" --highlight-dir "$OUT/pages" --highlight-docs 6 >&2

# Recall, exact match, token F1 and the scorers' drift against updates, of every model trained (blockwise: the upper
# bound on copying): their checkpoints every 500 updates, on the first 50 test windows.
for v in $ALL_VARIANTS; do
  [ -d "$OUT/$v/checkpoints" ] || continue
  curve=()
  for c in "$OUT/$v"/checkpoints/step-*; do
    step=$((10#${c##*step-}))
    [ $((step % 500)) -eq 0 ] && curve+=(--model "$v-$step=$c")
  done
  [ ${#curve[@]} -gt 0 ] || continue
  log "curve of $v: $((${#curve[@]} / 2)) checkpoints"
  "$BUILD/tools/pyramidion-bench" selection "${curve[@]}" --input "$DATA/test.jsonl" --max-docs 50 --chunk 50 \
    --json "$OUT/curve-$v.json" --markdown "$OUT/curve-$v.md" >&2
done
# The curves as a picture: recall per pooling layer against updates, one line per model (docs/selection.md).
curves=()
for v in $ALL_VARIANTS; do
  case $v in blockwise | sixteenth) continue ;; esac  # the 1/8 models only (one chance line)
  [ -f "$OUT/curve-$v.json" ] && curves+=("$OUT/curve-$v.json")
done
[ ${#curves[@]} -eq 0 ] || python3 scripts/plot_selection.py --out "$OUT/curves.svg" "${curves[@]}" >&2
cat "$OUT/report.md"
if [ -f "$OUT/train_speed.md" ]; then cat "$OUT/train_speed.md"; fi
