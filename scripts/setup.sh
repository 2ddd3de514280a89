#!/usr/bin/env bash
# Installs everything pyramidion's build needs on a fresh Debian 12 machine, idempotently:
# a second run checks, finds everything in place, and changes nothing.
#
#   - Debian packages: compilers (clang too, for scripts/fuzz.sh and scripts/sanitize.sh), CMake,
#     GoogleTest, CLI11, nlohmann_json, sentencepiece.
#   - LibTorch: the PyPI `torch` wheel (pinned below) in a virtual environment outside the
#     source tree, so that clones and CI runs on the same machine share it; pytest beside it
#     (the Python package's tests) and scikit-build-core (pip install of the package).
#
# Environment:
#   PYRAMIDION_VENV   where the virtual environment lives (default ~/.cache/pyramidion/venv)
#   PYRAMIDION_TORCH  the torch version to install (default 2.15.0, see README "Why this LibTorch")
set -euo pipefail

TORCH_VERSION="${PYRAMIDION_TORCH:-2.15.0}"
VENV="${PYRAMIDION_VENV:-$HOME/.cache/pyramidion/venv}"
APT_PACKAGES=(build-essential cmake ninja-build pkg-config python3-venv libgtest-dev libgmock-dev libgloo-dev
              libcli11-dev nlohmann-json3-dev libsentencepiece-dev sentencepiece
              clang libclang-rt-14-dev libomp-14-dev)  # clang: the fuzzing and sanitizer builds

log() { printf '[setup] %s\n' "$*" >&2; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
else
  log "Debian packages: all present"
fi

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment $VENV"
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV"
fi
have=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null || true)
if [ "${have%%+*}" != "$TORCH_VERSION" ]; then
  log "installing torch==$TORCH_VERSION into $VENV (a few GB, once)"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "torch==$TORCH_VERSION"
else
  log "torch $have: present"
fi
# pytest: the Python package's tests (python/tests), which the README's test command runs.
if ! "$VENV/bin/python" -c 'import pytest' 2>/dev/null; then
  log "installing pytest into $VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "pytest>=7,<10"
else
  log "pytest: present"
fi
# scikit-build-core: the build backend of `pip install --no-build-isolation .` (pyproject.toml), which
# the test command exercises (scripts/test_pip_install.sh).
if ! "$VENV/bin/python" -c 'import scikit_build_core' 2>/dev/null; then
  log "installing scikit-build-core into $VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "scikit-build-core>=0.10,<2"
else
  log "scikit-build-core: present"
fi
