#!/usr/bin/env bash
# scripts/gpu_check.sh's deadline on a machine without a GPU: with --build-only and a deadline of
# 30 s, the environment stage passes (a stand-in bundle, this build's Python and nvcc), the build
# cannot fit (it expects 100 s) and is skipped with the time left, the rest is skipped for want of
# a build, the summary is still written, and the exit status is 3 (nothing failed, a stage skipped
# for time). Then a PyTorch whose CUDA major version differs from nvcc's is refused with both.
#
#   gpu_check_deadline_test.sh GPU_CHECK PYTHON WORKDIR
set -uo pipefail
check="$1" python="$2" work="$3"
rm -rf "$work"
b="$work/bundle"
for f in usr/include/CLI/CLI.hpp usr/include/nlohmann/json.hpp usr/include/sentencepiece_processor.h \
         usr/include/gtest/gtest.h usr/include/gloo/algorithm.h data/aclsum/train.jsonl; do
  mkdir -p "$(dirname "$b/$f")" && : >"$b/$f"
done
PYTHON="$python" bash "$check" --build-only --deadline 30 --bundle "$b" --build "$work/build" --out "$work/out"
echo "exit=$?"
echo "files: $(ls "$work/out" | tr '\n' ' ')"
# A stand-in python whose torch claims CUDA 99.
mkdir -p "$work/fake/torch"
printf "__version__ = '9.9.9'\ncuda: Optional[str] = '99.0'\n" >"$work/fake/torch/version.py"
printf "raise ImportError('stand-in')\n" >"$work/fake/torch/__init__.py"
PYTHONPATH="$work/fake" PYTHON="$python" bash "$check" --build-only --deadline 30 --bundle "$b" --build "$work/build" \
  --out "$work/out2" 2>&1 | grep -o "PyTorch 9.9.9 is built with CUDA 99.0, nvcc is [0-9.]*"
echo "exit2=${PIPESTATUS[0]}"
