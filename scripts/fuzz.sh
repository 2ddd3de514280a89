#!/usr/bin/env bash
# Fuzzes every input reader of the library (tests/fuzz) for a bounded time each:
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s, every target)
#
# Builds the instrumented configuration (scripts/sanitize.sh --build-only: build-sanitize/ or
# $PYRAMIDION_SANITIZE_DIR), then runs each target under libFuzzer from a working corpus
# <build>/fuzz-corpus/<target>/ (seeded from tests/fuzz/corpus/<target>/ and kept between runs; the
# source tree is never written) plus the reproducers of tests/fuzz/regressions/<target>/. Findings
# (crash-*, timeout-*, oom-*, leak-*) go to <build>/fuzz-artifacts/<target>/, the output to
# <build>/fuzz-logs/<target>.log. Prints one line per target; exits 1 when anything was found.
#
# A finding: minimize it with
#   <build>/tests/fuzz/<target>_fuzz -minimize_crash=1 -runs=20000 -exact_artifact_path=min <artifact>
# and, once fixed, keep the minimized input in tests/fuzz/regressions/<target>/ (ctest replays it).
#
# Environment: PYRAMIDION_FUZZ_KEEP_GOING (1: libFuzzer's fork mode with -ignore_crashes,
# -ignore_timeouts and -ignore_ooms, so that a target goes on after a finding and one run collects
# several; for targets with a known, unfixed finding, e.g. those of tests/fuzz/known/),
# PYRAMIDION_FUZZ_ARGS (extra libFuzzer flags), PYRAMIDION_LSAN (1: leak checking with
# scripts/lsan.supp; default 0 here), and those of scripts/sanitize.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD="${PYRAMIDION_SANITIZE_DIR:-build-sanitize}"
SECONDS_PER_TARGET="${1:-60}"
shift || true
[[ $SECONDS_PER_TARGET =~ ^[0-9]+$ ]] || { echo "fuzz.sh: seconds per target must be a number, got '$SECONDS_PER_TARGET'" >&2; exit 2; }

# Largest input per target (-max_len): a few times its largest seed, so that mutations can grow it.
declare -A MAX_LEN=(
  [documents]=16384 [model_config]=4096 [train_config]=8192 [generation]=2048 [trainer_state]=8192
  [checkpoint]=65536 [tokenizer]=262144 [evaluate]=16384
)
declare -A DICT=(
  [documents]=json.dict [model_config]=json.dict [train_config]=json.dict [generation]=json.dict
  [trainer_state]=json.dict [evaluate]=json.dict
)
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=(documents model_config train_config generation trainer_state checkpoint tokenizer evaluate)
for t in "${TARGETS[@]}"; do
  [[ -n ${MAX_LEN[$t]:-} ]] || { echo "fuzz.sh: unknown target '$t' (known: ${!MAX_LEN[*]})" >&2; exit 2; }
done

bash scripts/sanitize.sh --build-only "${TARGETS[@]/%/_fuzz}"
BUILD=$(cd "$BUILD" && pwd)

# Leak checking off by default (scripts/sanitize.sh has it on): libFuzzer checks after every input
# whose mallocs and frees do not balance, and LibTorch and sentencepiece make caches on first use,
# which would be blamed on that input; PYRAMIDION_LSAN=1 turns it on, with scripts/lsan.supp. A
# sanitizer report ends the run and is saved as crash-*.
ASAN_OPTIONS="abort_on_error=0:detect_stack_use_after_return=1:allocator_may_return_null=0:handle_abort=1"
if [[ ${PYRAMIDION_LSAN:-0} == 1 ]]; then
  ASAN_OPTIONS+=":detect_leaks=1"
  export LSAN_OPTIONS="suppressions=$ROOT/scripts/lsan.supp:print_suppressions=0"
  leaks=1
else
  ASAN_OPTIONS+=":detect_leaks=0"
  leaks=0
fi
export ASAN_OPTIONS
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:report_error_type=1"

found=0
printf '%-14s %10s %8s %6s %8s %8s  %s\n' target executions exec/s secs files KB findings
for t in "${TARGETS[@]}"; do
  bin="$BUILD/tests/fuzz/${t}_fuzz"
  corpus="$BUILD/fuzz-corpus/$t"
  artifacts="$BUILD/fuzz-artifacts/$t"
  log="$BUILD/fuzz-logs/$t.log"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  cp -n "$ROOT/tests/fuzz/corpus/$t"/* "$corpus"/
  dirs=("$corpus")
  [[ -d $ROOT/tests/fuzz/regressions/$t ]] && dirs+=("$ROOT/tests/fuzz/regressions/$t")
  args=(-max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=4096 -max_len="${MAX_LEN[$t]}"
        -detect_leaks="$leaks" -print_final_stats=1 -artifact_prefix="$artifacts/" -error_exitcode=77)
  [[ -n ${DICT[$t]:-} ]] && args+=(-dict="$ROOT/tests/fuzz/${DICT[$t]}")
  if [[ ${PYRAMIDION_FUZZ_KEEP_GOING:-0} == 1 ]]; then
    args+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
  fi
  list_artifacts() { find "$artifacts" -type f ! -name 'slow-unit-*' -printf '%f\n' | sort; }
  before=$(list_artifacts)
  start=$SECONDS
  # shellcheck disable=SC2086  # PYRAMIDION_FUZZ_ARGS: several flags
  "$bin" "${args[@]}" ${PYRAMIDION_FUZZ_ARGS:-} "${dirs[@]}" >"$log" 2>&1 && rc=0 || rc=$?
  secs=$((SECONDS - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  if [[ -z $execs ]]; then  # fork mode: its last progress line, "#<execs>: cov: .. exec/s <rate> .."
    execs=$(sed -n 's/^#\([0-9]*\): cov:.*/\1/p' "$log" | tail -1)
    ((execs > 0 && secs > 0)) && rate=$((execs / secs))  # (its own exec/s is the last job's)
  fi
  files=$(find "$corpus" -type f | wc -l)
  kb=$(du -sk "$corpus" | cut -f1)
  new=$(comm -13 <(echo "$before") <(list_artifacts) | sed '/^$/d')
  what=none
  if ((rc != 0)) || [[ -n $new ]]; then
    found=1
    kinds=$(echo "$new" | sed -E '/^$/d; s/-.*//' | sort | uniq -c | awk '{printf "%s%s x%s", (NR > 1 ? ", " : ""), $2, $1}')
    what="FOUND (exit $rc${kinds:+; $kinds}): $(grep -m1 -E 'ERROR: |runtime error|property violated' "$log" | cut -c1-100) -> $artifacts/, $log"
  fi
  printf '%-14s %10s %8s %6s %8s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "$secs" "$files" "$kb" "$what"
done
exit $found
