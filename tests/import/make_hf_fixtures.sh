#!/usr/bin/env bash
# The ctest fixture import.hf_fixtures: the peer environment (scripts/setup_peer.sh: transformers,
# sentencepiece), then make_hf_fixtures.py into OUT_DIR (made afresh).
#   tests/import/make_hf_fixtures.sh OUT_DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:?usage: make_hf_fixtures.sh OUT_DIR}"
python="$(bash "$here/../../scripts/setup_peer.sh")"
rm -rf "$out.tmp"
"$python" "$here/make_hf_fixtures.py" "$out.tmp"
rm -rf "$out"
mv "$out.tmp" "$out"
