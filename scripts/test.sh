#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite (GoogleTest via ctest, the README example, and an
# application built outside the tree against the installed package). CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh "$@"
cd "${PYRAMIDION_BUILD_DIR:-build}"
ctest --output-on-failure -j "${PYRAMIDION_JOBS:-2}" --timeout 900
