#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite (GoogleTest via ctest, the README example, and an
# application built outside the tree against the installed package), the Python package installed
# by pip and tested there, then a short fuzzing pass
# (docs/reliability.md). CI runs exactly this.
#
# Environment: PYRAMIDION_FUZZ_SECONDS (default 20: seconds per fuzzed reader; 0 skips the pass),
# and those of scripts/build.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
bash scripts/build.sh "$@"
cd "${PYRAMIDION_BUILD_DIR:-build}"
ctest --output-on-failure -j "${PYRAMIDION_JOBS:-2}" --timeout 900

# The Python package as pip installs it (docs/python.md "Installing"): a fresh environment,
# `pip install --no-build-isolation .` (the operator's library alone), the Python tests against the
# installed copy, an sdist and a wheel built from it, `pip uninstall` leaving nothing.
(cd "$ROOT" && bash scripts/test_pip_install.sh)

# The fuzzing pass, in the instrumented build (clang, ASan + UBSan: build-sanitize/): the readers
# without a known finding fuzzed for a bounded time each, and the checkpoint and tokenizer readers
# (whose known findings are inside LibTorch and sentencepiece: tests/fuzz/known/) replayed on their
# seeds and regressions. The whole suite under the sanitizers (scripts/sanitize.sh, ~21 min) is
# not run here: it would take CI past its 30 minutes.
FUZZ_SECONDS="${PYRAMIDION_FUZZ_SECONDS:-20}"
if [[ $FUZZ_SECONDS != 0 ]]; then
  cd "$ROOT"
  bash scripts/sanitize.sh --build-only checkpoint_fuzz tokenizer_fuzz
  SANITIZE="${PYRAMIDION_SANITIZE_DIR:-build-sanitize}"
  for t in checkpoint tokenizer; do
    ASAN_OPTIONS=detect_leaks=0 bash tests/fuzz/replay.sh "$SANITIZE/tests/fuzz/${t}_fuzz" \
      "tests/fuzz/corpus/$t" "tests/fuzz/regressions/$t" >"$SANITIZE/replay-$t.log" 2>&1 ||
      { cat "$SANITIZE/replay-$t.log"; echo "test.sh: the $t fuzz target failed on its seeds or regressions" >&2; exit 1; }
  done
  bash scripts/fuzz.sh "$FUZZ_SECONDS" documents model_config train_config generation trainer_state evaluate
fi
