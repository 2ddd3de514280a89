#!/usr/bin/env bash
# The peer environment of the benchmarks and of the tests that compare with other implementations:
# Hugging Face transformers (LED for `pyramidion-bench summarize --peer led`; PEGASUS and
# BigBird-PEGASUS for tests/import) with sentencepiece and protobuf (PegasusTokenizer built from
# spiece.model), never a dependency of the library. Installs it into its own virtual environment,
# ~/.cache/pyramidion/peer-venv (PYRAMIDION_PEER_VENV), which sees the project's PyTorch (the
# environment of scripts/setup.sh, PYRAMIDION_VENV) through a .pth file instead of a second copy.
# Prints the environment's python on stdout. Needs scripts/setup.sh to have run.
#
#   scripts/setup_peer.sh              # then: build/tools/pyramidion-bench summarize --peer led
#   scripts/setup_peer.sh ctranslate2  # also CTranslate2, for the PEGASUS benchmark (scripts/pegasus_peer.py)
set -euo pipefail
case "${1:-}" in
  "") ;;
  ctranslate2) ;;
  *) echo "setup_peer.sh: unknown extra '$1' (the only one: ctranslate2)" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
MAIN="${PYRAMIDION_VENV:-$HOME/.cache/pyramidion/venv}"
PEER="${PYRAMIDION_PEER_VENV:-$HOME/.cache/pyramidion/peer-venv}"
[ -x "$MAIN/bin/python" ] || { echo "setup_peer.sh: $MAIN has no python: run scripts/setup.sh first" >&2; exit 1; }
MAIN_SITE="$("$MAIN/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
if [ ! -x "$PEER/bin/python" ]; then
  "$MAIN/bin/python" -m venv --without-pip "$PEER" >&2 || "$MAIN/bin/python" -m venv "$PEER" >&2
fi
PEER_SITE="$("$PEER/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$MAIN_SITE" >"$PEER_SITE/pyramidion-main-venv.pth"   # torch and numpy from the project's environment
if ! "$PEER/bin/python" -c 'import transformers, sentencepiece, google.protobuf' 2>/dev/null; then
  # pip of the project's environment, installing into the peer's site-packages.
  "$MAIN/bin/python" -m pip install --quiet --disable-pip-version-check --prefix "$PEER" \
      --no-warn-script-location "transformers>=4.40" sentencepiece protobuf >&2
fi
if [[ "${1:-}" == ctranslate2 ]] && ! "$PEER/bin/python" -c 'import ctranslate2' 2>/dev/null; then
  "$MAIN/bin/python" -m pip install --quiet --disable-pip-version-check --prefix "$PEER" \
      --no-warn-script-location ctranslate2 >&2
fi
"$PEER/bin/python" -c 'import torch, transformers, sentencepiece; from transformers import LEDConfig, PegasusTokenizer' >&2
echo "$PEER/bin/python"
