#!/usr/bin/env bash
# The selection task's whole pipeline on a tiny setting (docs/selection.md): generate windows of the
# bundled papers, train the tiny DeepPyramidion with the markers reserved and, as the ablation, with
# its scorers frozen, then evaluate both (and the first with hard top-k) with pyramidion-bench
# selection, highlight pages included; the report is checked by check_selection_report.py.
#
#   tests/scripts/selection_pipeline.sh BUILD_DIR PYTHON WORK_DIR
set -euo pipefail
BUILD=$1 PYTHON=$2 WORK=$3
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
rm -rf "$WORK" && mkdir -p "$WORK"
"$PYTHON" "$ROOT/scripts/make_selection.py" --data "$ROOT/data/aclsum" --out "$WORK/data" --tokens 64 \
  --short-tokens 24 --train 40 --short-windows 40 --valid 4 --test 6 --max-words 12 --seed 3
common=(--model "$ROOT/configs/tiny-deep-pyramidion.json" --train "$WORK/data/train.jsonl"
        --valid "$WORK/data/valid.jsonl" --max-steps 4
        --set vocab_size=300 'reserved_symbols=["⟦", "⟧"]' max_tokens=576 warmup_steps=1 lr=0.003 log_every=2
              validate_every=0 checkpoint_every=0 valid_rouge_docs=0 threads=1)
"$BUILD/tools/pyramidion-train" "${common[@]}" --out "$WORK/trained" --set scorer_lr_scale=1 2>"$WORK/trained.log"
"$BUILD/tools/pyramidion-train" "${common[@]}" --out "$WORK/frozen" \
  --set tokenizer="$WORK/trained/tokenizer.model" 'freeze=["encoder_poolers."]' 2>"$WORK/frozen.log"
grep -q "frozen at their initial values: 66 weights" "$WORK/frozen.log"
"$BUILD/tools/pyramidion-bench" selection --threads 1 --model trained="$WORK/trained/latest" \
  --model hard="$WORK/trained/latest@hard" --model frozen="$WORK/frozen/latest" --input "$WORK/data/test.jsonl" \
  --chunk 4 --json "$WORK/report.json" --markdown "$WORK/report.md" --highlight-dir "$WORK/pages" \
  --highlight-docs 2 >/dev/null 2>"$WORK/bench.log"
"$PYTHON" "$ROOT/tests/scripts/check_selection_report.py" "$WORK/report.json" "$WORK/data/test.jsonl" "$WORK/pages"
echo "selection pipeline: ok"
