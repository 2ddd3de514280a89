#!/usr/bin/env bash
# Puts the bundled real data in place: the 250 ACL papers of the PyPI package `aclsum` (0.1.2),
# converted to the arXiv/PubMed JSON-lines format that DocumentReader reads (docs/data.md):
#   data/aclsum/{train,valid,test}.jsonl      (100 / 50 / 100 papers)
# Idempotent: does nothing when the three files exist and are newer than this script and the
# converter. The converter writes each file atomically (temporary file, then rename).
#
# Environment:
#   PYRAMIDION_VENV   the virtual environment of scripts/setup.sh (default ~/.cache/pyramidion/venv);
#                     `aclsum` is installed into it when missing
#   PYRAMIDION_DATA   output directory (default <source tree>/data/aclsum)
set -euo pipefail

ACLSUM_VERSION=0.1.2
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PYRAMIDION_VENV:-$HOME/.cache/pyramidion/venv}"
OUT="${PYRAMIDION_DATA:-$ROOT/data/aclsum}"
CONVERTER="$ROOT/scripts/convert_aclsum.py"

log() { printf '[get_data] %s\n' "$*" >&2; }

up_to_date=1
for split in train valid test; do
  f="$OUT/$split.jsonl"
  if [ ! -s "$f" ] || [ "$f" -ot "$CONVERTER" ] || [ "$f" -ot "${BASH_SOURCE[0]}" ]; then up_to_date=0; fi
done
if ((up_to_date)); then
  log "$OUT: up to date ($(cat "$OUT"/{train,valid,test}.jsonl | wc -l) documents)"
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  log "no virtual environment at $VENV: run scripts/setup.sh first (or set PYRAMIDION_VENV)"
  exit 1
fi
have=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("aclsum"))' 2>/dev/null || true)
if [ "$have" != "$ACLSUM_VERSION" ]; then
  # --no-deps: we read the package's data files, not its loader, which alone needs `sienna`.
  log "installing aclsum==$ACLSUM_VERSION into $VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps "aclsum==$ACLSUM_VERSION"
fi

"$VENV/bin/python" "$CONVERTER" --out "$OUT"
