#!/usr/bin/env bash
# The long-document half of docs/benchmarks/pegasus.md: a BigBird-PEGASUS-large-shaped model
# (google/bigbird-pegasus-large-arxiv's configuration: d 1024, 16 + 16 layers, 16 heads, FFN 4096,
# vocabulary 96103, 4096 learned positions, block-sparse attention in blocks of 64) with random
# weights made by transformers, imported twice with pyramidion-import:
#   blockwise   encoder attention within blocks of 512 tokens, no pooling;
#   pooled      the same blocks, and the encoder pooled to 2048, 1024 and 512 tokens after its
#               layers 4, 8 and 12 (a DeepPyramidion: the decoder reads 512 rows);
# and run at S = 4096 and 8192 (the learned position table repeated, as LED did for BART) against
# transformers' own BigBird-PEGASUS (block-sparse attention) at 4096, its longest input; at 8192 it
# is reported as failed (its table has 4096 rows). Batch 1, beam 4, exactly 128 new tokens.
#
# The peer comes from the peer environment (scripts/setup_peer.sh), never from the
# library. The model (about 5 GB with both imports) is made once in $PYRAMIDION_BIGBIRD_DIR
# (default /tmp/bigbird-pegasus-large).
#
#   scripts/bench_pegasus_long.sh [extra pyramidion-bench summarize flags, e.g. --reps 5]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${PYRAMIDION_BUILD_DIR:-build}"
DIR="${PYRAMIDION_BIGBIRD_DIR:-/tmp/bigbird-pegasus-large}"
PY="$(bash scripts/setup_peer.sh)"
[ -x "$BUILD/tools/pyramidion-bench" ] || { echo "bench_pegasus_long.sh: build first (scripts/build.sh)" >&2; exit 1; }
if [ ! -f "$DIR/hf/config.json" ]; then
  echo "bench_pegasus_long.sh: making the model in $DIR (transformers)" >&2
  "$PY" scripts/pegasus_peer.py make --architecture bigbird-pegasus --out "$DIR" >&2
fi
# Pooling after layers 4, 8 and 12 of 16 (0 = none after that layer).
POOLED=0,0,0,2048,0,0,0,1024,0,0,0,512,0,0,0,0
[ -f "$DIR/blockwise/weights.pt" ] ||
  "$BUILD/tools/pyramidion-import" hf "$DIR/hf" --out "$DIR/blockwise" --block-size 512 --max-target-length 256
[ -f "$DIR/pooled/weights.pt" ] ||
  "$BUILD/tools/pyramidion-import" hf "$DIR/hf" --out "$DIR/pooled" --block-size 512 --max-target-length 256 \
      --pooled-lengths "$POOLED"
mkdir -p docs/benchmarks
"$BUILD/tools/pyramidion-bench" summarize --checkpoints "$DIR/blockwise,$DIR/pooled" --weights fp32 \
    --peer hf --peer-model "$DIR" --peer-python "$PY" \
    --source-length 4096 --target-length 128 --beam 4 --modes "" --sweep 4096,8192 \
    --warmup 1 --reps 3 --markdown docs/benchmarks/pegasus_long.md --json docs/benchmarks/pegasus_long.json "$@"
