#!/usr/bin/env bash
# replay.sh FUZZ_TARGET DIR...: runs the target once on every file of the directories (its seed
# corpus and its regressions; a missing directory is skipped), as ctest's fuzz.*_replays_corpus.
set -euo pipefail
target=$1
shift
files=()
for dir in "$@"; do
  [[ -d $dir ]] || continue
  while IFS= read -r -d '' f; do files+=("$f"); done < <(find "$dir" -type f ! -name '.*' -print0 | sort -z)
done
if ((${#files[@]} == 0)); then
  echo "replay.sh: no input in $*" >&2
  exit 1
fi
# Given files (not directories), libFuzzer runs each once and exits; -error_exitcode: a finding
# fails the test.
exec "$target" -error_exitcode=77 "${files[@]}"
