#!/usr/bin/env bash
# ROUGE of the main job's two models (scripts/run.sh: results/main) with fp32, bf16 and int8 weights
# on the 100 ACLSum test papers, beam 4, and how many summaries stay identical to fp32's; then the
# logits against fp32 (pyramidion-bench logits). docs/benchmarks/summarize.md, "Quality".
#
#   scripts/bench_quantized_rouge.sh [--work DIR]     (default /tmp/pyramidion-quantized-rouge)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=/tmp/pyramidion-quantized-rouge
[ "${1:-}" = --work ] && WORK="$2"
BIN="${PYRAMIDION_BUILD_DIR:-build}/tools"
MAIN=results/main
[ -d "$MAIN/deep-pyramidion/latest" ] || { echo "bench_quantized_rouge.sh: run the main job first (scripts/run.sh)" >&2; exit 1; }
mkdir -p "$WORK"
for model in deep-pyramidion blockwise; do
  for weights in fp32 bf16 int8; do
    flags=(--precision fp32)
    [ "$weights" = bf16 ] && flags=(--precision bf16)
    [ "$weights" = int8 ] && flags=(--quantize int8)
    start=$(date +%s%N)
    "$BIN/pyramidion-summarize" --checkpoint "$MAIN/$model/latest" --input "$MAIN/test.jsonl" \
      --output "$WORK/$model-$weights.jsonl" --beam 4 "${flags[@]}" 2>"$WORK/$model-$weights.log"
    ms=$((($(date +%s%N) - start) / 1000000))
    "$BIN/pyramidion-evaluate" --predictions "$WORK/$model-$weights.jsonl" --references "$MAIN/test.jsonl" \
      --json "$WORK/$model-$weights.rouge.json" >/dev/null
    echo "$model $weights ${ms} ms"
  done
  "$BIN/pyramidion-bench" logits --checkpoint "$MAIN/$model/latest" --input "$MAIN/test.jsonl" --documents 100 \
    --json "$WORK/$model-logits.json" >/dev/null 2>&1
done
python3 - "$WORK" "$MAIN" <<'PY'
import json, sys
work, main = sys.argv[1], sys.argv[2]
def summaries(path):
    return {j["id"]: j["summary"] for j in map(json.loads, open(path))}
def rouge(path):
    return json.load(open(path))
print("| model | weights | ROUGE-1 | ROUGE-2 | ROUGE-L | ROUGE-Lsum | identical to fp32 | identical to results/main |")
print("|:---|:---|---:|---:|---:|---:|---:|---:|")
for model in ("deep-pyramidion", "blockwise"):
    base = summaries(f"{work}/{model}-fp32.jsonl")
    main_run = summaries(f"{main}/{model}/summaries.jsonl")
    for w in ("fp32", "bf16", "int8"):
        s = summaries(f"{work}/{model}-{w}.jsonl")
        r = rouge(f"{work}/{model}-{w}.rouge.json")
        cells = []
        for key in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
            m = r[key]["f1"]
            cells.append(f"{100*m['mid']:.2f} [{100*m['low']:.2f}, {100*m['high']:.2f}]")
        same = sum(s[k] == base[k] for k in base)
        same_main = sum(s[k] == main_run.get(k) for k in s)
        print(f"| {model} | {w} | " + " | ".join(cells) + f" | {same} of {len(base)} | {same_main} of {len(s)} |")
PY
