#!/usr/bin/env bash
# The selection task (docs/selection.md, issue 14): does the scorer learn what to read?
#
# Generates windows of the bundled papers with one marked passage each (scripts/make_selection.py),
# trains, on the same data for the same updates,
#   trained     DeepPyramidion pooling to 1/8 of the input by its last pooling layer
#   sixteenth   the same pooling to 1/16
#   frozen      the 1/8 model with its scorers frozen at their initialisation (pooling without learning)
#   blockwise   the blockwise baseline without pooling (the upper bound on copying)
# and evaluates them side by side on the test windows with pyramidion-bench selection, the trained
# model also with hard top-k at inference, plus its recall curve over its checkpoints. Writes
# results/selection/<tokens>/: report.md (and .json), curve.md, train_times.json, the highlight
# pages in pages/, and each run's directory.
#
#   scripts/selection.sh                  # 2048-token windows
#   PYRAMIDION_SELECTION_TOKENS=4096 scripts/selection.sh
#
# Environment:
#   PYRAMIDION_SELECTION_TOKENS    window length: 2048 (configs/selection/*.json) or 4096 (*-4096.json)
#   PYRAMIDION_SELECTION_STEPS     updates per model (default: the train config's max_steps)
#   PYRAMIDION_SELECTION_VARIANTS  which of trained, sixteenth, frozen, blockwise to train (default all)
#   PYRAMIDION_BUILD_DIR           the build (default build/)
set -euo pipefail
cd "$(dirname "$0")/.."
TOKENS="${PYRAMIDION_SELECTION_TOKENS:-2048}"
VARIANTS="${PYRAMIDION_SELECTION_VARIANTS:-trained sixteenth frozen blockwise}"
BUILD="${PYRAMIDION_BUILD_DIR:-build}"
case "$TOKENS" in
  2048) suffix="" ;;
  4096) suffix="-4096" ;;
  *) echo "selection.sh: PYRAMIDION_SELECTION_TOKENS must be 2048 or 4096, got '$TOKENS'" >&2; exit 2 ;;
esac
bash scripts/build.sh >&2
VENV="${PYRAMIDION_VENV:-$HOME/.cache/pyramidion/venv}"
DATA="data/selection-$TOKENS"
OUT="results/selection/$TOKENS"
TRAIN_CONFIG="configs/train/selection-$TOKENS.json"
log() { printf '[selection] %s\n' "$*" >&2; }

python3 scripts/make_selection.py --data data/aclsum --out "$DATA" --tokens "$TOKENS" --seed 1
mkdir -p "$OUT"
steps=()
[ -n "${PYRAMIDION_SELECTION_STEPS:-}" ] && steps=(--max-steps "$PYRAMIDION_SELECTION_STEPS")

# train NAME MODEL_CONFIG [--set ...]: one run into $OUT/NAME, its wall time recorded. The first run
# trains the tokenizer (markers reserved); the others read it, so that all see the same ids.
train() {
  local name=$1 model=$2
  shift 2
  local tokenizer=()
  [ -f "$OUT/tokenizer.model" ] && tokenizer=(--set "tokenizer=$OUT/tokenizer.model")
  if [ -e "$OUT/$name/latest" ]; then
    log "$name: $OUT/$name exists; resuming it (delete it to train afresh)"
    resume=(--resume)
  else
    resume=()
  fi
  log "training $name ($model)"
  local start end
  start=$(date +%s.%N)
  "$BUILD/tools/pyramidion-train" --config "$TRAIN_CONFIG" --model "$model" --out "$OUT/$name" "${steps[@]}" \
    "${tokenizer[@]}" "${resume[@]}" "$@" 2>"$OUT/$name.log" || { tail -5 "$OUT/$name.log" >&2; exit 1; }
  end=$(date +%s.%N)
  [ -f "$OUT/tokenizer.model" ] || cp "$OUT/$name/tokenizer.model" "$OUT/tokenizer.model"
  python3 - "$OUT/train_times.json" "$name" "$start" "$end" <<'EOF'
import json, os, sys
path, name, start, end = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
times = json.load(open(path)) if os.path.exists(path) else {}
times[name] = round(end - start, 1)
json.dump(times, open(path + ".tmp", "w"), indent=2)
os.replace(path + ".tmp", path)
EOF
}

for v in $VARIANTS; do
  case "$v" in
    trained) train trained "configs/selection/deep-pyramidion-8$suffix.json" ;;
    sixteenth) train sixteenth "configs/selection/deep-pyramidion-16$suffix.json" ;;
    frozen) train frozen "configs/selection/deep-pyramidion-8$suffix.json" --set 'freeze=["encoder_poolers."]' ;;
    blockwise) train blockwise "configs/selection/blockwise$suffix.json" ;;
    *) echo "selection.sh: unknown variant '$v'" >&2; exit 2 ;;
  esac
done

models=()
for v in blockwise trained sixteenth frozen; do
  [ -e "$OUT/$v/latest" ] && models+=(--model "$v=$OUT/$v/latest")
done
[ -e "$OUT/trained/latest" ] && models+=(--model "trained-hard=$OUT/trained/latest@hard")
log "evaluating ${#models[@]} models on $DATA/test.jsonl"
"$BUILD/tools/pyramidion-bench" selection "${models[@]}" --input "$DATA/test.jsonl" --chunk 25 \
  --json "$OUT/report.json" --markdown "$OUT/report.md" --highlight-dir "$OUT/pages" --highlight-docs 6 >&2

# The trained model's recall and exact match against updates: every checkpoint on 50 test windows.
if [ -d "$OUT/trained/checkpoints" ]; then
  curve=()
  for c in "$OUT"/trained/checkpoints/step-*; do curve+=(--model "$(basename "$c")=$c"); done
  "$BUILD/tools/pyramidion-bench" selection "${curve[@]}" --input "$DATA/test.jsonl" --max-docs 50 --chunk 50 \
    --json "$OUT/curve.json" --markdown "$OUT/curve.md" >&2
fi
cat "$OUT/report.md"
log "training times (s, sequential runs): $(cat "$OUT/train_times.json" | tr -d '\n ')"
