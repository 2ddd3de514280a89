#!/usr/bin/env bash
# Checks that pyramidion-evaluate's ROUGE matches the rouge-score package (PyPI) to 1e-6, per
# document and per corpus, with and without stemming (scripts/check_rouge.py does the work).
# Installs rouge-score into the project venv when it is missing; needs PyPI, nothing else.
#
#   bash scripts/check_rouge.sh build/tools/pyramidion-evaluate
#
# Environment: PYRAMIDION_VENV  the virtual environment (default ~/.cache/pyramidion/venv)
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: bash scripts/check_rouge.sh <path to pyramidion-evaluate>" >&2
  exit 2
fi
TOOL="$1"
if [[ ! -x "$TOOL" ]]; then
  echo "check_rouge: '$TOOL' is not an executable (build the pyramidion-evaluate target first)" >&2
  exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PYRAMIDION_VENV:-$HOME/.cache/pyramidion/venv}"

if [[ ! -x "$VENV/bin/python" ]]; then
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import rouge_score, nltk" 2>/dev/null; then
  "$VENV/bin/pip" install --quiet rouge-score
fi
exec "$VENV/bin/python" "$ROOT/scripts/check_rouge.py" --tool "$TOOL"
