#!/usr/bin/env bash
# Preprocessing and training start-up at arXiv size (docs/data.md, "Measured at arXiv size").
#
#   scripts/bench_data.sh [--sizes 20000,200000] [--work DIR] [--reps N] [--vocab-size V]
#
# For each size N: writes an arXiv-format file of N documents made of the bundled papers' real
# sentences (scripts/make_arxiv_like.py; ~55 KB a record), trains a V-piece tokenizer on a bounded
# sample of it (timed), preprocesses it with 1 and 2 workers (interleaved: 1 2 1 2 ..., --reps pairs;
# above 20,000 documents once with 2 workers only; the ratio is the median of the per-pair ratios), and
# times pyramidion-train from process start to the end of its first update (and the final
# checkpoint), with its peak resident memory, from the JSON lines and from the dataset, against
# the same run on the bundled 100 papers. The files go to --work (default
# /tmp/pyramidion-bench-data: ~11 GB at 200,000 documents); the table to stdout and
# --work/report.md. Run on a quiet machine: nothing else should compete for the cores.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=20000,200000
WORK=/tmp/pyramidion-bench-data
REPS=3
VOCAB=8000
while [ $# -gt 0 ]; do
  case "$1" in
    --sizes) SIZES="$2"; shift 2 ;;
    --work) WORK="$2"; shift 2 ;;
    --reps) REPS="$2"; shift 2 ;;
    --vocab-size) VOCAB="$2"; shift 2 ;;
    *) echo "bench_data.sh: unknown argument '$1' (see the top of the script)" >&2; exit 2 ;;
  esac
done
BIN="${PYRAMIDION_BUILD_DIR:-build}/tools"
for tool in pyramidion-preprocess pyramidion-train; do
  [ -x "$BIN/$tool" ] || { echo "bench_data.sh: $BIN/$tool is missing: build first (scripts/build.sh)" >&2; exit 1; }
done
mkdir -p "$WORK"
REPORT="$WORK/report.md"
: >"$REPORT"
say() { echo "$*" | tee -a "$REPORT"; }

# Wall seconds and peak resident MB of a command: "SECONDS MB" on stdout; its log in $1.
measure() {
  local log="$1"; shift
  /usr/bin/time -f "%e %M" -o "$log.time" "$@" >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
  awk '{printf "%s %.0f\n", $1, $2 / 1024}' "$log.time"
}

# pyramidion-train for one update: train_once TOKENIZER --train F (JSON lines) or train_once "" --data D.
train_once() {
  local out="$WORK/train-out" tokenizer="$1"; shift; rm -rf "$out"
  measure "$WORK/train.log" "$BIN/pyramidion-train" "$@" --model configs/small-deep-pyramidion.json --out "$out" \
    --max-steps 1 --set max_tokens=8960 threads=2 log_every=1 validate_every=0 checkpoint_every=0 \
    ${tokenizer:+tokenizer=$tokenizer}
}

median() { python3 -c 'import statistics,sys; print("%.2f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

say "# Data at arXiv size: $(date -u +%Y-%m-%d), $(nproc) cores, $(git rev-parse --short HEAD)"
say ""
IFS=, read -r -a sizes <<<"$SIZES"
TOKENIZER=""
for n in "${sizes[@]}"; do
  file="$WORK/arxiv-$n.jsonl"
  [ -s "$file" ] || python3 scripts/make_arxiv_like.py --docs "$n" --out "$file" >&2
  mb=$(python3 -c "import os,sys; print('%.0f' % (os.path.getsize(sys.argv[1]) / 1e6))" "$file")
  say "## $n documents ($mb MB of JSON lines)"
  # The tokenizer: trained once, on the first size, on a bounded sample.
  if [ -z "$TOKENIZER" ]; then
    rm -rf "$WORK/tokenizer-ds"
    "$BIN/pyramidion-preprocess" --tokenizer-sample "$file" --vocab-size "$VOCAB" --out "$WORK/tokenizer-ds" \
      --valid data/aclsum/valid.jsonl 2>"$WORK/tokenizer.log" >/dev/null
    TOKENIZER="$WORK/tokenizer-ds/tokenizer.model"
    say "- tokenizer ($VOCAB pieces, sample of at most 256 MB spread over the file): $(grep -o 'trained in [0-9.]* s' "$WORK/tokenizer.log")"
  fi
  # Above 20,000 documents, 2 workers only (the ratio is measured at the smaller sizes).
  reps=$REPS; workers="1 2"; [ "$n" -gt 20000 ] && { reps=1; workers=2; }
  ratios=()
  for ((r = 0; r < reps; r++)); do
    t1=""
    for w in $workers; do
      rm -rf "$WORK/ds-$n"
      read -r secs rss < <(measure "$WORK/pre.log" "$BIN/pyramidion-preprocess" --train "$file" \
        --tokenizer "$TOKENIZER" --out "$WORK/ds-$n" --workers "$w")
      if [ "$w" = 1 ]; then
        t1=$secs
      elif [ -n "$t1" ]; then  # a pair: 1 worker, then 2
        ratios+=("$(python3 -c "print($t1 / $secs)")")
      fi
      say "- preprocess, $w worker(s), pair $((r + 1)): $secs s, $(python3 -c "print('%.0f documents/s, %.1f MB/s' % ($n / $secs, $mb / $secs))"), peak RSS $rss MB"
    done
  done
  [ ${#ratios[@]} -gt 0 ] && say "- **2 workers / 1 worker: $(median "${ratios[@]}")x faster** (median of ${#ratios[@]} interleaved pairs)"
  say "- dataset on disk: $(du -sm "$WORK/ds-$n" | cut -f1) MB"
  read -r js jr < <(train_once "$TOKENIZER" --train "$file")
  say "- training start-up from the JSON lines: $js s to the end of the first update, peak RSS $jr MB"
  read -r ds dr < <(train_once "" --data "$WORK/ds-$n")
  say "- training start-up from the dataset: **$ds s**, peak RSS **$dr MB**"
  say ""
done
say "## The bundled 100 papers (the reference for memory)"
rm -rf "$WORK/ds-bundled"
"$BIN/pyramidion-preprocess" --train data/aclsum/train.jsonl --tokenizer "$TOKENIZER" --out "$WORK/ds-bundled" \
  >/dev/null 2>&1
read -r bs br < <(train_once "$TOKENIZER" --train data/aclsum/train.jsonl)
say "- from the JSON lines: $bs s, peak RSS $br MB"
read -r bs br < <(train_once "" --data "$WORK/ds-bundled")
say "- from the dataset: $bs s, peak RSS $br MB"
