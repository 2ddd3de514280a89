#!/usr/bin/env bash
# The PEGASUS benchmark of docs/benchmarks/pegasus.md. It runs pyramidion (fp32; fp32-plain, the
# same without the prepacked decoder weights; bf16; int8)
# against transformers (fp32) and CTranslate2 (float32, int8) on the same weights: a
# PEGASUS-large-shaped model (d 1024, 16 + 16 layers, 16 heads, FFN 4096, vocabulary 96103) with
# random weights made by transformers, imported with pyramidion-import and converted with
# CTranslate2's own converter. The same work on every side: documents of S = 1024 tokens, beam 4,
# exactly 128 new tokens, no repeated trigram; batch 1, and the batch the token budget allows.
#
# The peers come from the peer environment (scripts/setup_peer.sh ctranslate2), never from the
# library. The models (about 8 GB) are made once in $PYRAMIDION_PEGASUS_DIR
# (default /tmp/pegasus-large).
#
#   scripts/bench_pegasus.sh [extra pyramidion-bench summarize flags, e.g. --reps 5]
#   PYRAMIDION_PEGASUS_WEIGHTS=fp32,fp32-plain,int8 scripts/bench_pegasus.sh   # fewer of pyramidion's rows
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${PYRAMIDION_BUILD_DIR:-build}"
DIR="${PYRAMIDION_PEGASUS_DIR:-/tmp/pegasus-large}"
PY="$(bash scripts/setup_peer.sh ctranslate2)"
[ -x "$BUILD/tools/pyramidion-bench" ] || { echo "bench_pegasus.sh: build first (scripts/build.sh)" >&2; exit 1; }
if [ ! -f "$DIR/ct2-int8/model.bin" ]; then
  echo "bench_pegasus.sh: making the model in $DIR (transformers, then CTranslate2's converter)" >&2
  "$PY" scripts/pegasus_peer.py make --out "$DIR" >&2
fi
if [ ! -f "$DIR/pyramidion/weights.pt" ]; then
  "$BUILD/tools/pyramidion-import" hf "$DIR/hf" --out "$DIR/pyramidion" --max-target-length 256
fi
mkdir -p docs/benchmarks
"$BUILD/tools/pyramidion-bench" summarize --checkpoints "$DIR/pyramidion" --weights "${PYRAMIDION_PEGASUS_WEIGHTS:-fp32,fp32-plain,bf16,int8}" \
    --peer hf,ct2 --peer-model "$DIR" --peer-python "$PY" \
    --source-length 1024 --target-length 128 --beam 4 --max-tokens 6144 --modes one,budget \
    --warmup 1 --reps 3 --markdown docs/benchmarks/pegasus.md --json docs/benchmarks/pegasus.json "$@"
