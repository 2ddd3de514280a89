#!/usr/bin/env bash
# The CUDA path, proven on a machine with an NVIDIA GPU, nvcc, CMake and a PyTorch 2.x installation
# but no network and no package manager (a cluster node, a cloud image). Builds the library, the
# tests and the benchmarks against that PyTorch's LibTorch, for the GPU's architecture only, with
# the build dependencies that scripts/gpu_bundle.sh gathered beforehand, then runs:
#
#   1. every CUDA test: the operator CUDA = CPU for every dtype, forward and backward (the
#      tournament bit for bit), the kernels' edge cases, the models' forward and generation on CUDA
#      = CPU, short bf16 / fp16 training runs on CUDA whose loss falls, data parallelism on CUDA;
#   2. pyramidion-bench topk on the GPU at b=16, n=8192, k=512, d=512 against a device-to-device
#      copy of x (target: soft within 3x of the copy);
#   3. pyramidion-bench model on the GPU: training step and beam-4 generation, DeepPyramidion
#      against blockwise at source 8192, fp32 and bf16 (targets in bf16: training >= 2x, beam-4
#      generation >= 4.5x);
#   4. from Python: python/benchmarks/topk_bench.py on the GPU (torch.ops against the C++ API and
#      pure PyTorch, gradients checked equal first), and the Python tests where pytest is installed;
#
# and prints a summary table. Everything it writes goes to OUT (default results/gpu): the logs,
# the benchmarks' markdown and JSON, summary.md (the figures for docs/benchmarks/gpu.md).
#
#   scripts/gpu_check.sh [--bundle DIR] [--out DIR] [--build DIR] [--arch NN] [--jobs N]
#                        [--dry-run | --build-only]
#
#   --bundle DIR  scripts/gpu_bundle.sh's folder (default .gpu-bundle)
#   --arch NN     the architecture to build for (default: the GPU's, from nvidia-smi; else 90)
#   --dry-run     check the machine and the bundle, print what would run, run nothing
#   --build-only  configure and build as on the GPU node and check the kernels' SASS, then stop:
#                 the part a machine without a GPU can check
#
# Environment: PYTHON (default python3) must import torch; CUDA_HOME or nvcc on PATH.
# Exit status: 0 all ran and every test passed; 1 a test, a build or a benchmark failed (the
# summary says which); 2 bad arguments or a missing prerequisite.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUNDLE="$ROOT/.gpu-bundle"
OUT_DIR="$ROOT/results/gpu"
BUILD="$ROOT/build-gpu"
ARCH=""
JOBS="$(nproc)"
DRY=0
BUILD_ONLY=0
PYTHON="${PYTHON:-python3}"
# The CUDA tests by name (tests/ops/topk_cuda_test.cpp, tests/models/model_cuda_test.cpp, the
# CUDA cases of tests/training/*) and the build's SASS check.
CUDA_TESTS='Cuda|CUDA|build\.library_carries'

usage() { sed -n '2,32p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { printf '[gpu_check] %s\n' "$*" >&2; exit 2; }
log() { printf '[gpu_check] %s\n' "$*" >&2; }

while (($#)); do
  case "$1" in
    --bundle) BUNDLE="$(cd "${2:?--bundle needs a folder}" && pwd)" || die "no folder $2"; shift 2 ;;
    --out) OUT_DIR="${2:?--out needs a folder}"; shift 2 ;;
    --build) BUILD="${2:?--build needs a folder}"; shift 2 ;;
    --arch) ARCH="${2:?--arch needs a number like 90}"; shift 2 ;;
    --jobs) JOBS="${2:?--jobs needs a number}"; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    --build-only) BUILD_ONLY=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[[ -z "$ARCH" || "$ARCH" =~ ^[0-9]{2,3}$ ]] || die "--arch must be a number like 90, got '$ARCH'"
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || die "--jobs must be a positive number, got '$JOBS'"

# ---- the machine ------------------------------------------------------------------------------
missing=()
GPU="none"; DRIVER="-"
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  GPU="$(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | head -1)"
  DRIVER="$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1)"
  [ -n "$ARCH" ] || ARCH="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '. ')"
elif ((!BUILD_ONLY)); then
  missing+=("an NVIDIA GPU (nvidia-smi finds none; --build-only builds without one)")
fi
NVCC="$(command -v nvcc || true)"
[ -z "$NVCC" ] && [ -n "${CUDA_HOME:-}" ] && [ -x "$CUDA_HOME/bin/nvcc" ] && NVCC="$CUDA_HOME/bin/nvcc"
[ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
NVCC_VERSION="-"
if [ -n "$NVCC" ]; then
  NVCC_VERSION="$("$NVCC" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')"
else
  missing+=("nvcc (put it on PATH or set CUDA_HOME)")
fi
command -v cmake >/dev/null || missing+=("cmake")
GENERATOR="Unix Makefiles"
command -v ninja >/dev/null && GENERATOR="Ninja"
TORCH_INFO="$("$PYTHON" - 2>/dev/null <<'EOF'
import torch
print(torch.__version__, torch.version.cuda, torch.utils.cmake_prefix_path, torch.cuda.is_available())
EOF
)" || TORCH_INFO=""
if [ -n "$TORCH_INFO" ]; then
  read -r TORCH_VERSION TORCH_CUDA TORCH_PREFIX TORCH_SEES_GPU <<<"$TORCH_INFO"
  [ "$TORCH_CUDA" = "None" ] && missing+=("a CUDA build of PyTorch ($PYTHON has torch $TORCH_VERSION without CUDA)")
else
  TORCH_VERSION="-"; TORCH_CUDA="-"; TORCH_PREFIX=""; TORCH_SEES_GPU="-"
  missing+=("PyTorch ($PYTHON cannot import torch; set PYTHON)")
fi
for f in usr/include/CLI/CLI.hpp usr/include/nlohmann/json.hpp usr/include/sentencepiece_processor.h \
         usr/include/gtest/gtest.h usr/include/gloo/algorithm.h data/aclsum/train.jsonl; do
  [ -e "$BUNDLE/$f" ] || { missing+=("$BUNDLE/$f (run scripts/gpu_bundle.sh on a Debian machine, copy its folder here)"); break; }
done
[ -n "$ARCH" ] || ARCH=90

log "GPU: $GPU; driver $DRIVER; architecture sm_$ARCH"
log "nvcc ${NVCC:-none} ($NVCC_VERSION); PyTorch $TORCH_VERSION (CUDA $TORCH_CUDA, sees a GPU: $TORCH_SEES_GPU)"
log "bundle $BUNDLE; build $BUILD ($GENERATOR, $JOBS jobs); output $OUT_DIR"

# No pkg-config on such a node: sentencepiece is found under CMAKE_PREFIX_PATH (the bundle first).
CONFIGURE=(cmake -S "$ROOT" -B "$BUILD" -G "$GENERATOR" -DCMAKE_BUILD_TYPE=Release
           -DCMAKE_DISABLE_FIND_PACKAGE_PkgConfig=ON
           "-DCMAKE_PREFIX_PATH=$TORCH_PREFIX;$BUNDLE/usr" "-DCMAKE_CUDA_COMPILER=${NVCC:-nvcc}"
           -DPYRAMIDION_WITH_CUDA=ON "-DPYRAMIDION_CUDA_ARCHITECTURES=$ARCH" -DPYRAMIDION_CUDA_PTX=OFF
           "-DPYRAMIDION_GLOO_INCLUDE_DIR=$BUNDLE/usr/include" -DPYRAMIDION_BUILD_TESTS=ON
           -DPYRAMIDION_BUILD_TOOLS=ON)
BUILD_CMD=(cmake --build "$BUILD" -j "$JOBS")
TESTS=(ctest --test-dir "$BUILD" -R "$CUDA_TESTS" --output-on-failure --timeout 300)
BENCH="$BUILD/tools/pyramidion-bench"
TOPK=("$BENCH" topk --device cuda -b 16 -n 8192 -k 512 -d 512 --methods soft,copy,hard,naive --warmup 3
      --reps 20 --markdown "$OUT_DIR/topk.md" --json "$OUT_DIR/topk.json")
MODEL=("$BENCH" model --device cuda --precisions fp32,bf16 --warmup 1 --reps 3
       --markdown "$OUT_DIR/model.md" --json "$OUT_DIR/model.json")
# From Python (docs/python.md): the operator through torch.ops against the C++ API and the pure-PyTorch
# formulation on the GPU (it first checks that the three give the same gradients), and the Python
# tests, CUDA ones included, with the bundle's pytest (or the node's own).
PYPATH="$ROOT/python"
[ -d "$BUNDLE/python" ] && PYPATH="$PYPATH:$BUNDLE/python"  # pytest, from scripts/gpu_bundle.sh
PYENV=(env "PYRAMIDION_BUILD_DIR=$BUILD" "PYTHONPATH=$PYPATH")
PYBENCH=("${PYENV[@]}" "$PYTHON" "$ROOT/python/benchmarks/topk_bench.py" --device cuda --warmup 3 --reps 20
         --json "$OUT_DIR/python_topk.json")
PYTEST=("${PYENV[@]}" "PYRAMIDION_CPP_API=$BUILD/tests/libpyramidion_cpp_api.so" "$PYTHON" -m pytest -q
        -p no:cacheprovider "$ROOT/python/tests")
HAVE_PYTEST=0
PYTHONPATH="$PYPATH" "$PYTHON" -c 'import pytest' 2>/dev/null && HAVE_PYTEST=1

show() { printf '  '; printf '%q ' "$@"; echo; }
if ((DRY)); then
  echo "would run, in $ROOT:"
  show "${CONFIGURE[@]}"
  show "${BUILD_CMD[@]}"
  show "${TESTS[@]}"
  show "${TOPK[@]}"
  show "${MODEL[@]}"
  show "${PYBENCH[@]}"
  if ((HAVE_PYTEST)); then show "${PYTEST[@]}"; else echo "  (no pytest in $PYTHON: the Python tests would not run)"; fi
  echo "  then the summary table: scripts/gpu_summary.py $OUT_DIR > $OUT_DIR/summary.md"
  if ((${#missing[@]})); then
    printf 'missing here:\n'; printf '  - %s\n' "${missing[@]}"
    exit 2
  fi
  echo "everything it needs is here"
  exit 0
fi
if ((${#missing[@]})); then
  printf '[gpu_check] missing: %s\n' "${missing[@]}" >&2
  exit 2
fi

# ---- build, tests, benchmarks -------------------------------------------------------------------
mkdir -p "$OUT_DIR"
[ -s "$ROOT/data/aclsum/train.jsonl" ] || { mkdir -p "$ROOT/data" && cp -r "$BUNDLE/data/aclsum" "$ROOT/data/"; }
export LD_LIBRARY_PATH="$BUNDLE/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
start=$SECONDS
status=0
step() {  # step NAME LOG COMMAND...: runs it, its output to LOG (and the terminal), records the time
  local name="$1" logf="$2"; shift 2
  local t0=$SECONDS
  log "$name: $*"
  "$@" 2>&1 | tee "$logf"
  local rc=${PIPESTATUS[0]}
  echo "$name $rc $((SECONDS - t0))" >>"$OUT_DIR/steps.txt"
  ((rc == 0)) || { log "$name failed (status $rc): $logf"; status=1; }
  return "$rc"
}
: >"$OUT_DIR/steps.txt"
{
  echo "gpu $GPU"; echo "driver $DRIVER"; echo "arch sm_$ARCH"; echo "nvcc $NVCC_VERSION"
  echo "torch $TORCH_VERSION"; echo "torch_cuda $TORCH_CUDA"
} >"$OUT_DIR/machine.txt"
if ((BUILD_ONLY)); then
  TESTS=(ctest --test-dir "$BUILD" -R 'build\.(library_carries|fatbin_check)' --output-on-failure)
  step configure "$OUT_DIR/configure.log" "${CONFIGURE[@]}" && step build "$OUT_DIR/build.log" "${BUILD_CMD[@]}" &&
    step tests "$OUT_DIR/tests.log" "${TESTS[@]}"
  log "build only: done in $((SECONDS - start)) s; status $status"
  exit "$status"
fi
if step configure "$OUT_DIR/configure.log" "${CONFIGURE[@]}" && step build "$OUT_DIR/build.log" "${BUILD_CMD[@]}"; then
  step tests "$OUT_DIR/tests.log" "${TESTS[@]}"
  step topk "$OUT_DIR/topk.log" "${TOPK[@]}"
  step model "$OUT_DIR/model.log" "${MODEL[@]}"
  step python_topk "$OUT_DIR/python_topk.log" "${PYBENCH[@]}"
  if ((HAVE_PYTEST)); then step python_tests "$OUT_DIR/python_tests.log" "${PYTEST[@]}"
  else log "no pytest in $PYTHON: the Python tests do not run here"; fi
fi
"$PYTHON" "$ROOT/scripts/gpu_summary.py" "$OUT_DIR" | tee "$OUT_DIR/summary.md"
log "done in $((SECONDS - start)) s; status $status"
exit "$status"
