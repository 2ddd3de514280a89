#!/usr/bin/env bash
# The main job (for now): set up, build, and run the soft top-k benchmark side by side with its
# baselines at the paper's pooling sizes (b=16, n=8192, k=512, d=512), writing
# results/topk.md and results/topk.json. Extra arguments go to `pyramidion-bench topk`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
mkdir -p results
"${PYRAMIDION_BUILD_DIR:-build}/tools/pyramidion-bench" topk --markdown results/topk.md --json results/topk.json "$@"
