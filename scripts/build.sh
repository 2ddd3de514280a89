#!/usr/bin/env bash
# Configures and builds pyramidion into build/ (or $PYRAMIDION_BUILD_DIR), after scripts/setup.sh.
# Extra arguments go to the CMake configure step, e.g. -DPYRAMIDION_WITH_CUDA=OFF.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/get_data.sh  # the bundled real data (data/aclsum), which tests and the main job read
VENV="${PYRAMIDION_VENV:-$HOME/.cache/pyramidion/venv}"
BUILD="${PYRAMIDION_BUILD_DIR:-build}"
# (torch's import warns on stderr about NumPy, which it does not need here: keep stderr only on failure)
TORCH_PREFIX=$("$VENV/bin/python" -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/tmp/pyramidion-torch-import.$$) || {
  cat /tmp/pyramidion-torch-import.$$ >&2
  rm -f /tmp/pyramidion-torch-import.$$
  echo "build.sh: cannot import torch from $VENV (run scripts/setup.sh)" >&2
  exit 1
}
rm -f /tmp/pyramidion-torch-import.$$
mkdir -p "$BUILD"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release "-DCMAKE_PREFIX_PATH=$TORCH_PREFIX" "$@" >"$BUILD/configure.log" 2>&1 ||
  { cat "$BUILD/configure.log"; exit 1; }
grep -E "^-- pyramidion:" "$BUILD/configure.log" >&2 || true
# Two parallel jobs: a LibTorch translation unit takes about 1 GB and 20-60 s to compile.
cmake --build "$BUILD" -j "${PYRAMIDION_JOBS:-2}"
