#!/usr/bin/env bash
# The main job: set up, build, get the bundled real data (ACLSum, data/aclsum), then train a small
# DeepPyramidion and its blockwise baseline on the same data for the same number of updates,
# summarize the test split with both, score them with ROUGE, and print training and inference
# speed and ROUGE side by side. Writes results/main/ (checkpoints, summaries, ROUGE reports,
# results/main/report.md) and results/main/highlight.html (what DeepPyramidion's pooling kept).
#
# Environment: PYRAMIDION_MAIN_STEPS (updates per model, default 400), PYRAMIDION_MAIN_TEST_DOCS
# (test documents summarized, default 100 = all), PYRAMIDION_BUILD_DIR (default build).
# Rerunning continues where a previous run stopped (each training resumes from its checkpoints).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
BIN="${PYRAMIDION_BUILD_DIR:-build}/tools"
STEPS="${PYRAMIDION_MAIN_STEPS:-400}"
DOCS="${PYRAMIDION_MAIN_TEST_DOCS:-100}"
OUT=results/main
mkdir -p "$OUT"
head -n "$DOCS" data/aclsum/test.jsonl >"$OUT/test.jsonl"

for variant in deep-pyramidion blockwise; do
  dir="$OUT/$variant"
  resume=()
  # A complete checkpoint: continue from it (a run stopped earlier, or one with fewer steps).
  if compgen -G "$dir/checkpoints/step-*/trainer_state.json" >/dev/null; then resume=(--resume); fi
  done_steps=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["step"])' \
    "$dir/latest/trainer_state.json" 2>/dev/null || echo 0)
  if [ "$done_steps" -ge "$STEPS" ] && [ -s "$dir/train_ms.txt" ]; then
    echo "== $variant: already trained for $done_steps updates ($dir)" >&2
  else
    echo "== training $variant ($STEPS updates) -> $dir" >&2
    start=$(date +%s%N)
    "$BIN/pyramidion-train" --config configs/train/aclsum-small.json --model "configs/small-$variant.json" \
      --out "$dir" --max-steps "$STEPS" --set validate_every=100 checkpoint_every=100 "${resume[@]}"
    # Wall time of this invocation (a resumed run counts only its own part).
    echo $((($(date +%s%N) - start) / 1000000)) >"$dir/train_ms.txt"
  fi

  echo "== summarizing $DOCS test papers with $variant" >&2
  highlight=()
  [ "$variant" = deep-pyramidion ] && highlight=(--highlight "$OUT/highlight.html" --highlight-max-docs 20)
  start=$(date +%s%N)
  "$BIN/pyramidion-summarize" --checkpoint "$dir/latest" --input "$OUT/test.jsonl" \
    --output "$dir/summaries.jsonl" --beam 4 "${highlight[@]}"
  echo $((($(date +%s%N) - start) / 1000000)) >"$dir/summarize_ms.txt"

  "$BIN/pyramidion-evaluate" --predictions "$dir/summaries.jsonl" --references "$OUT/test.jsonl" \
    --json "$dir/rouge.json"
done

python3 scripts/main_report.py "$OUT" | tee "$OUT/report.md"
