#!/usr/bin/env bash
# The CUDA path, proven on a GPU node within a deadline: a node with an NVIDIA GPU, nvcc, CMake and
# a PyTorch 2.x installation but no network and no package manager (a cluster's debug queue, a
# cloud image), reached for one command of at most ~10 minutes that must build and test.
#
# Stages, in order of value; each starts only if the time left holds its expected duration (else it
# is skipped, with the reason), runs under a timeout that ends at the deadline, and is recorded:
#
#   env         the environment report; refuses (status 2) a GPU that PyTorch cannot see, a
#               PyTorch whose CUDA major version is not nvcc's, a missing nvcc, CMake or bundle
#   build       configure (TORCH_CUDA_ARCH_LIST unset: --arch decides) and build, with every core,
#               the library and the CUDA tests' own small binary; the kernels' SASS and registers
#   op_tests    the operator's CUDA tests (CUDA = CPU for every dtype, the tournament bit for bit)
#   sanitizers  compute-sanitizer memcheck, racecheck and synccheck over the operator at small sizes
#   build_all   the rest that the later stages run: the whole test binary, the tools, the Python
#               test module
#   op_bench    pyramidion-bench topk at b=16, n=8192, k=512, d=512 against a device copy of x
#   model       the models' CUDA tests, then pyramidion-bench model (DeepPyramidion vs blockwise)
#   training    the CUDA training tests (fp16 and bf16 runs, data parallelism over NCCL)
#   python      python/benchmarks/topk_bench.py and the Python tests (with the bundle's pytest)
#
# A skipped CUDA test counts as a failure here. The summary (scripts/gpu_summary.py) is always
# written and printed, also when a stage fails or is cut. Everything goes to OUT, 8 files at most:
# environment.txt, stages.tsv, build.log, tests.log, sanitizers.log, benchmarks.log, figures.json
# (the benchmarks' JSON reports) and summary.md.
#
#   scripts/gpu_check.sh [--deadline SECONDS] [--skip STAGE,...] [--out DIR] [--bundle DIR]
#                        [--build DIR] [--arch NN] [--jobs N] [--dry-run | --build-only]
#
#   --deadline S  seconds for everything, summary included (default 540)
#   --skip LIST   stages not to run (e.g. --skip sanitizers,python)
#   --bundle DIR  scripts/gpu_bundle.sh's folder (default .gpu-bundle)
#   --arch NN     the architecture to build for (default: the GPU's, from nvidia-smi; else 90)
#   --dry-run     check the machine and the bundle, print the stages, budgets and commands; run nothing
#   --build-only  env (without a GPU) and build, then stop: the part a machine without a GPU can check
#
# Environment: PYTHON (default python3) must import torch; CUDA_HOME or nvcc on PATH.
# Exit status: 0 every stage ran and passed; 1 a stage failed; 2 bad arguments or a missing
# prerequisite; 3 nothing failed, but a stage was skipped for time (a stage cut at the deadline is 1).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUNDLE="$ROOT/.gpu-bundle"
OUT_DIR="$ROOT/results/gpu"
BUILD="$ROOT/build-gpu"
ARCH=""
JOBS="$(nproc)"
DEADLINE=540
SKIP=","
DRY=0
BUILD_ONLY=0
PYTHON="${PYTHON:-python3}"
STAGES=(env build op_tests sanitizers build_all op_bench model training python)
# Expected seconds of each stage on the node the check is written for (an H100 with 16 cores):
# a stage starts only when the time left holds it. The builds' figures come from the rehearsal on
# 2 cores (docs/benchmarks/gpu.md: 517 CPU-seconds for the library and the CUDA tests' binary,
# 739 for the rest) spread over 16 cores, plus the longest chain of steps (a precompiled header,
# the slowest file, the links).
declare -A EXPECTED=([env]=10 [build]=100 [op_tests]=45 [sanitizers]=60 [build_all]=120 [op_bench]=25
                     [model]=80 [training]=60 [python]=60)
RESERVE=15  # kept for the summary

usage() { sed -n '2,38p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { printf '[gpu_check] %s\n' "$*" >&2; exit 2; }
log() { printf '[gpu_check] %s\n' "$*" >&2; }

while (($#)); do
  case "$1" in
    --bundle) BUNDLE="$(cd "${2:?--bundle needs a folder}" && pwd)" || die "no folder $2"; shift 2 ;;
    --out) OUT_DIR="${2:?--out needs a folder}"; shift 2 ;;
    --build) BUILD="${2:?--build needs a folder}"; shift 2 ;;
    --arch) ARCH="${2:?--arch needs a number like 90}"; shift 2 ;;
    --jobs) JOBS="${2:?--jobs needs a number}"; shift 2 ;;
    --deadline) DEADLINE="${2:?--deadline needs seconds}"; shift 2 ;;
    --skip) SKIP=",${2:?--skip needs stage names},"; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    --build-only) BUILD_ONLY=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[[ -z "$ARCH" || "$ARCH" =~ ^[0-9]{2,3}$ ]] || die "--arch must be a number like 90, got '$ARCH'"
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || die "--jobs must be a positive number, got '$JOBS'"
[[ "$DEADLINE" =~ ^[1-9][0-9]*$ ]] || die "--deadline must be a positive number of seconds, got '$DEADLINE'"
for s in $(tr ',' ' ' <<<"$SKIP"); do
  [[ " ${STAGES[*]} " == *" $s "* && $s != env ]] || die "--skip: no stage '$s' (stages: ${STAGES[*]:1})"
done
START=$SECONDS
left() { echo $((DEADLINE - (SECONDS - START))); }
WORK="${TMPDIR:-/tmp}/gpu_check.XXXXXX"  # the benchmarks' reports, merged into figures.json at the end
if ((!DRY)); then
  mkdir -p "$OUT_DIR" || die "cannot create $OUT_DIR"
  OUT_DIR="$(cd "$OUT_DIR" && pwd)"
  WORK="$(mktemp -d "$WORK")"
fi
# The summary, whatever happens: the benchmarks' JSON merged into figures.json, then summary.md.
finish() {
  "$PYTHON" - "$WORK" "$OUT_DIR/figures.json" <<'EOF' 2>/dev/null || true
import json, os, sys
work, out = sys.argv[1], sys.argv[2]
figures = {}
for name in ("topk", "model", "python_topk"):
    path = os.path.join(work, name + ".json")
    if os.path.exists(path):
        try:
            figures[name] = json.load(open(path))
        except ValueError:
            figures[name] = None
json.dump(figures, open(out, "w"), indent=1)
EOF
  "$PYTHON" "$ROOT/scripts/gpu_summary.py" "$OUT_DIR" >"$OUT_DIR/summary.md" 2>&1 ||
    printf '## GPU check\n\n(scripts/gpu_summary.py failed; see stages.tsv)\n' >"$OUT_DIR/summary.md"
  cat "$OUT_DIR/summary.md"
  rm -rf "$WORK"
}
if ((!DRY)); then
  : >"$OUT_DIR/stages.tsv"; : >"$OUT_DIR/tests.log"; : >"$OUT_DIR/sanitizers.log"; : >"$OUT_DIR/benchmarks.log"
  rm -f "$OUT_DIR/build.log" "$OUT_DIR/figures.json" "$OUT_DIR/summary.md"
  trap finish EXIT
fi
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$OUT_DIR/stages.tsv"; }  # stage status seconds note

# ---- env: the machine -----------------------------------------------------------------------------
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
SANITIZER="$(command -v compute-sanitizer || true)"
[ -z "$SANITIZER" ] && [ -n "$NVCC" ] && [ -x "$(dirname "$NVCC")/compute-sanitizer" ] && SANITIZER="$(dirname "$NVCC")/compute-sanitizer"
command -v cmake >/dev/null || missing+=("cmake")
GENERATOR="Unix Makefiles"
command -v ninja >/dev/null && GENERATOR="Ninja"
# torch imported (a GPU node), or only located (--build-only on a machine whose torch cannot load
# its CUDA libraries): the version, its CUDA, the CMake prefix, whether it sees a GPU.
TORCH_INFO="$("$PYTHON" - 2>/dev/null <<'EOF'
import importlib.util, os, re
try:
    import torch
    print(torch.__version__, torch.version.cuda, torch.utils.cmake_prefix_path, torch.cuda.is_available(), "imported")
except Exception as e:
    spec = importlib.util.find_spec("torch")
    folder = os.path.dirname(spec.origin)
    text = open(os.path.join(folder, "version.py")).read()
    version = re.search(r"__version__ = '([^']+)'", text).group(1)
    cuda = re.search(r"cuda: Optional\[str\] = '([^']+)'", text)
    print(version, cuda.group(1) if cuda else None, os.path.join(folder, "share", "cmake"), False,
          "located-not-importable:" + type(e).__name__)
EOF
)" || TORCH_INFO=""
if [ -n "$TORCH_INFO" ]; then
  read -r TORCH_VERSION TORCH_CUDA TORCH_PREFIX TORCH_SEES_GPU TORCH_HOW <<<"$TORCH_INFO"
  if [ "$TORCH_CUDA" = "None" ]; then
    missing+=("a CUDA build of PyTorch ($PYTHON has torch $TORCH_VERSION without CUDA)")
  elif [ -n "$NVCC" ] && [ "${TORCH_CUDA%%.*}" != "${NVCC_VERSION%%.*}" ]; then
    missing+=("nvcc and PyTorch of one CUDA major version: PyTorch $TORCH_VERSION is built with CUDA $TORCH_CUDA, nvcc is $NVCC_VERSION")
  fi
  if ((!BUILD_ONLY)) && [ "$TORCH_SEES_GPU" != "True" ]; then
    missing+=("a GPU that PyTorch sees (torch.cuda.is_available() is $TORCH_SEES_GPU; torch $TORCH_HOW): the CUDA tests would skip")
  fi
else
  TORCH_VERSION="-"; TORCH_CUDA="-"; TORCH_PREFIX=""; TORCH_SEES_GPU="-"; TORCH_HOW="-"
  missing+=("PyTorch ($PYTHON cannot find torch; set PYTHON)")
fi
for f in usr/include/CLI/CLI.hpp usr/include/nlohmann/json.hpp usr/include/sentencepiece_processor.h \
         usr/include/gtest/gtest.h usr/include/gloo/algorithm.h data/aclsum/train.jsonl; do
  [ -e "$BUNDLE/$f" ] || { missing+=("$BUNDLE/$f (run scripts/gpu_bundle.sh on a Debian machine, copy its folder here)"); break; }
done
[ -n "$ARCH" ] || ARCH=90
if ((!DRY)); then
  {
    echo "gpu $GPU"; echo "driver $DRIVER"; echo "arch sm_$ARCH"; echo "nvcc $NVCC_VERSION"
    echo "torch $TORCH_VERSION"; echo "torch_cuda $TORCH_CUDA"; echo "torch_sees_gpu $TORCH_SEES_GPU ($TORCH_HOW)"
    echo "compute_sanitizer ${SANITIZER:-none}"; echo "cores $(nproc)"; echo "jobs $JOBS"; echo "deadline $DEADLINE s"
    echo "bundle $BUNDLE ($(du -sh "$BUNDLE" 2>/dev/null | cut -f1))"; echo "source $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '-')"
    for m in "${missing[@]}"; do echo "missing $m"; done
  } >"$OUT_DIR/environment.txt"
fi
log "GPU: $GPU; driver $DRIVER; architecture sm_$ARCH"
log "nvcc ${NVCC:-none} ($NVCC_VERSION); PyTorch $TORCH_VERSION (CUDA $TORCH_CUDA, sees a GPU: $TORCH_SEES_GPU)"
log "bundle $BUNDLE; build $BUILD ($GENERATOR, $JOBS jobs); output $OUT_DIR; deadline $DEADLINE s"

# ---- the stages' commands ------------------------------------------------------------------------
# No pkg-config on such a node: sentencepiece is found under CMAKE_PREFIX_PATH (the bundle first).
# TORCH_CUDA_ARCH_LIST, common on cluster images, would override --arch: unset for the configure.
CONFIGURE=(env -u TORCH_CUDA_ARCH_LIST cmake -S "$ROOT" -B "$BUILD" -G "$GENERATOR" -DCMAKE_BUILD_TYPE=Release
           -DCMAKE_DISABLE_FIND_PACKAGE_PkgConfig=ON
           "-DCMAKE_PREFIX_PATH=$TORCH_PREFIX;$BUNDLE/usr" "-DCMAKE_CUDA_COMPILER=${NVCC:-nvcc}"
           -DPYRAMIDION_WITH_CUDA=ON "-DPYRAMIDION_CUDA_ARCHITECTURES=$ARCH" -DPYRAMIDION_CUDA_PTX=OFF
           "-DPYRAMIDION_GLOO_INCLUDE_DIR=$BUNDLE/usr/include" -DPYRAMIDION_BUILD_TESTS=ON
           -DPYRAMIDION_BUILD_TOOLS=ON -DPYRAMIDION_FUZZ=OFF)
BUILD_CMD=(cmake --build "$BUILD" -j "$JOBS" --target pyramidion_cuda_tests)
# pyramidion_tests brings the tools its tests run; the Python module is the Python stage's.
BUILD_ALL_CMD=(cmake --build "$BUILD" -j "$JOBS" --target pyramidion_tests pyramidion-bench pyramidion_cpp_api)
SASS_CHECK=(ctest --test-dir "$BUILD" -R 'build\.(library_carries|fatbin_check|kernel_registers)' --output-on-failure)
CUDA_TESTS_BIN="$BUILD/tests/pyramidion_cuda_tests"
TESTS_BIN="$BUILD/tests/pyramidion_tests"
OP_FILTER='TopKCuda*:*TopKCudaMatchesCpu*'
MODEL_FILTER='ModelCuda.*:SummarizerLibrary.BFloat16WeightsSummarizeAndFloat16NeedsCuda'
TRAIN_FILTER='TrainRun.*OnCuda*:DistributedTwoProcesses.*OnCuda*'
SANITIZER_FILTER='TopKCuda.SmallShapesForTheSanitizers'
BENCH="$BUILD/tools/pyramidion-bench"
TOPK=("$BENCH" topk --device cuda -b 16 -n 8192 -k 512 -d 512 --methods soft,copy,hard,naive --warmup 3
      --reps 20 --markdown "$WORK/topk.md" --json "$WORK/topk.json")
MODEL=("$BENCH" model --device cuda --precisions fp32,bf16 --warmup 1 --reps 3
       --markdown "$WORK/model.md" --json "$WORK/model.json")
PYPATH="$ROOT/python"
[ -d "$BUNDLE/python" ] && PYPATH="$PYPATH:$BUNDLE/python"  # pytest, from scripts/gpu_bundle.sh
PYENV=(env "PYRAMIDION_BUILD_DIR=$BUILD" "PYTHONPATH=$PYPATH")
PYBENCH=("${PYENV[@]}" "$PYTHON" "$ROOT/python/benchmarks/topk_bench.py" --device cuda --warmup 3 --reps 20
         --json "$WORK/python_topk.json")
PYTEST=("${PYENV[@]}" "PYRAMIDION_CPP_API=$BUILD/tests/libpyramidion_cpp_api.so" "$PYTHON" -m pytest -q
        -p no:cacheprovider "$ROOT/python/tests")
HAVE_PYTEST=0
PYTHONPATH="$PYPATH" "$PYTHON" -c 'import pytest' 2>/dev/null && HAVE_PYTEST=1

show() { printf '      '; printf '%q ' "$@"; echo; }
if ((DRY)); then
  echo "would run, in $ROOT, within $DEADLINE s (a stage starts only if the time left holds its expected"
  total=0; for s in "${STAGES[@]}"; do total=$((total + EXPECTED[$s])); done
  echo "seconds plus $RESERVE for the summary; the sum of the stages below is $total s):"
  t=0
  for s in "${STAGES[@]}"; do
    t=$((t + EXPECTED[$s]))
    skip=""; [[ $SKIP == *",$s,"* ]] && skip=" (skipped: --skip)"
    ((BUILD_ONLY)) && [[ $s != env && $s != build && $s != build_all ]] && skip=" (not with --build-only)"
    ((t + RESERVE > DEADLINE)) && [ -z "$skip" ] && skip=" (would not fit the deadline if the stages before it took their expected time)"
    printf '  %-10s %4d s, done by %4d s%s\n' "$s" "${EXPECTED[$s]}" "$t" "$skip"
    case $s in
      build) show "${CONFIGURE[@]}"; show "${BUILD_CMD[@]}"; show "${SASS_CHECK[@]}" ;;
      op_tests) show "$CUDA_TESTS_BIN" "--gtest_filter=$OP_FILTER" ;;
      sanitizers)
        for tool in memcheck racecheck synccheck; do
          show "${SANITIZER:-compute-sanitizer}" --tool "$tool" --error-exitcode 1 "$CUDA_TESTS_BIN" "--gtest_filter=$SANITIZER_FILTER"
        done ;;
      build_all) show "${BUILD_ALL_CMD[@]}" ;;
      op_bench) show "${TOPK[@]}" ;;
      model) show "$TESTS_BIN" "--gtest_filter=$MODEL_FILTER"; show "${MODEL[@]}" ;;
      training) show "$TESTS_BIN" "--gtest_filter=$TRAIN_FILTER" ;;
      python) show "${PYBENCH[@]}"
        if ((HAVE_PYTEST)); then show "${PYTEST[@]}"; else echo "      (no pytest in $PYTHON: the Python tests would not run)"; fi ;;
    esac
  done
  echo "  then the summary: scripts/gpu_summary.py $OUT_DIR > $OUT_DIR/summary.md"
  if ((${#missing[@]})); then
    printf 'missing here:\n'; printf '  - %s\n' "${missing[@]}"
    exit 2
  fi
  echo "everything it needs is here"
  exit 0
fi
if ((${#missing[@]})); then
  printf '[gpu_check] missing: %s\n' "${missing[@]}" >&2
  record env missing 0 "$(printf '%s; ' "${missing[@]}")"
  exit 2
fi
record env ok $((SECONDS - START)) "$GPU, sm_$ARCH, torch $TORCH_VERSION (CUDA $TORCH_CUDA), nvcc $NVCC_VERSION"

# ---- running the stages ---------------------------------------------------------------------------
[ -s "$ROOT/data/aclsum/train.jsonl" ] || { mkdir -p "$ROOT/data" && cp -r "$BUNDLE/data/aclsum" "$ROOT/data/"; }
export LD_LIBRARY_PATH="$BUNDLE/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export OMP_WAIT_POLICY=PASSIVE
status=0
cut=0
built=0
built_all=0

# run LOG COMMAND...: the command under a timeout that ends at the deadline, its output appended to
# LOG (and shown); returns its status (124: cut at the deadline).
run() {
  local logf="$1"; shift
  local budget=$(($(left) - RESERVE))
  ((budget > 0)) || return 124
  printf '\n$ %s\n' "$*" >>"$logf"
  timeout --kill-after=5 "$budget" "$@" 2>&1 | tee -a "$logf"
  return "${PIPESTATUS[0]}"
}
# gtests LOG BINARY FILTER: the tests of the filter; a skipped one is a failure (a CUDA test must run here).
gtests() {
  local logf="$1" binary="$2" filter="$3" before rc skipped
  before=$(wc -l <"$logf")
  run "$logf" "$binary" "--gtest_filter=$filter"
  rc=$?
  skipped=$(tail -n +"$((before + 1))" "$logf" | sed -n 's/^\[  SKIPPED \] \([0-9]*\) tests\{0,1\},.*/\1/p' | tail -1)
  NOTE="$(tail -n +"$((before + 1))" "$logf" | grep -E '^\[  (PASSED|FAILED)  \] [0-9]+ test' | tr '\n' ' ')${skipped:+, $skipped skipped}"
  ((rc == 0 && ${skipped:-0} > 0)) && return 3
  return "$rc"
}
# stage NAME: whether to run it; says why not (and records it) otherwise.
stage() {
  local name="$1" t
  t=$(left)
  if [[ $SKIP == *",$name,"* ]]; then record "$name" skipped 0 "--skip"; log "$name: skipped (--skip)"; return 1; fi
  if [[ $name != build ]] && ((!built)); then record "$name" skipped 0 "no build"; log "$name: skipped (no build)"; return 1; fi
  if [[ $name =~ ^(op_bench|model|training|python)$ ]] && ((!built_all)); then
    record "$name" skipped 0 "no build_all"; log "$name: skipped (build_all did not complete)"; return 1
  fi
  if ((t < EXPECTED[$name] + RESERVE)); then
    record "$name" skipped 0 "${t} s left, expected ${EXPECTED[$name]} s + ${RESERVE} s for the summary"
    log "$name: skipped, $t s left of $DEADLINE (it needs about ${EXPECTED[$name]} s)"
    cut=1
    return 1
  fi
  log "$name: starting with $t s left (expected ${EXPECTED[$name]} s)"
  STAGE_START=$SECONDS
  NOTE=""
  return 0
}
# done_stage NAME STATUS...: the stage's result from its commands' statuses.
done_stage() {
  local name="$1" worst=0 rc; shift
  for rc in "$@"; do
    if ((rc == 124 || rc == 137)); then worst=124; elif ((rc != 0 && worst != 124)); then worst=$rc; fi
  done
  local secs=$((SECONDS - STAGE_START))
  case $worst in
    0) record "$name" ok "$secs" "$NOTE" ;;
    124) record "$name" cut "$secs" "cut at the deadline; $NOTE"; cut=1; status=1 ;;
    3) record "$name" failed "$secs" "a CUDA test skipped; $NOTE"; status=1 ;;
    *) record "$name" failed "$secs" "status $worst; $NOTE"; status=1 ;;
  esac
  log "$name: $(tail -1 "$OUT_DIR/stages.tsv" | cut -f2,3,4 | tr '\t' ' ')"
}

if stage build; then
  run "$OUT_DIR/build.log" "${CONFIGURE[@]}"; c=$?
  b=1; s=1
  if ((c == 0)); then run "$OUT_DIR/build.log" "${BUILD_CMD[@]}"; b=$?; fi
  if ((b == 0)); then built=1; run "$OUT_DIR/build.log" "${SASS_CHECK[@]}"; s=$?; fi
  NOTE="configure $c, build $b, SASS and registers $s"
  done_stage build "$c" "$b" "$s"
fi
build_all() {
  if stage build_all; then
    run "$OUT_DIR/build.log" "${BUILD_ALL_CMD[@]}"; b=$?
    ((b == 0)) && built_all=1
    NOTE="build $b"
    done_stage build_all "$b"
  fi
}
if ((BUILD_ONLY)); then
  build_all
  ((status == 0 && cut)) && status=3
  log "build only: done in $((SECONDS - START)) s; status $status"
  exit "$status"
fi
if stage op_tests; then
  gtests "$OUT_DIR/tests.log" "$CUDA_TESTS_BIN" "$OP_FILTER"; done_stage op_tests $?
fi
if stage sanitizers; then
  if [ -z "$SANITIZER" ]; then
    record sanitizers skipped 0 "no compute-sanitizer beside nvcc"; log "sanitizers: no compute-sanitizer"
  else
    rcs=()
    for tool in memcheck racecheck synccheck; do
      # Without PyTorch's caching allocator, so that memcheck sees each tensor's own bounds.
      run "$OUT_DIR/sanitizers.log" env PYTORCH_NO_CUDA_MEMORY_CACHING=1 "$SANITIZER" --tool "$tool" \
        --error-exitcode 1 "$CUDA_TESTS_BIN" "--gtest_filter=$SANITIZER_FILTER"
      rcs+=($?)
    done
    NOTE="memcheck ${rcs[0]}, racecheck ${rcs[1]}, synccheck ${rcs[2]}"
    done_stage sanitizers "${rcs[@]}"
  fi
fi
build_all
if stage op_bench; then
  run "$OUT_DIR/benchmarks.log" "${TOPK[@]}"; done_stage op_bench $?
fi
if stage model; then
  gtests "$OUT_DIR/tests.log" "$TESTS_BIN" "$MODEL_FILTER"; t=$?; tests_note="$NOTE"
  run "$OUT_DIR/benchmarks.log" "${MODEL[@]}"; m=$?
  NOTE="tests: $tests_note; benchmark $m"
  done_stage model "$t" "$m"
fi
if stage training; then
  gtests "$OUT_DIR/tests.log" "$TESTS_BIN" "$TRAIN_FILTER"; done_stage training $?
fi
if stage python; then
  run "$OUT_DIR/benchmarks.log" "${PYBENCH[@]}"; p=$?
  if ((HAVE_PYTEST)); then
    run "$OUT_DIR/tests.log" "${PYTEST[@]}"; q=$?; NOTE="benchmark $p, pytest $q"
  else
    q=0; NOTE="benchmark $p; no pytest in $PYTHON (the Python tests did not run)"
  fi
  done_stage python "$p" "$q"
fi
for f in topk model; do [ -s "$WORK/$f.md" ] && cat "$WORK/$f.md" >>"$OUT_DIR/benchmarks.log"; done
log "done in $((SECONDS - START)) s of $DEADLINE; status $status"
((status == 0 && cut)) && status=3
exit "$status"
