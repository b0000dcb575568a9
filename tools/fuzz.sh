#!/bin/sh
# Builds the libFuzzer targets (preset fuzz: clang, ASan + UBSan) and runs each for a bounded
# time, CKS_FUZZ_JOBS (default 2) at once, then prints a table: target, seconds, executions,
# coverage (libFuzzer's cov: edges and ft: features), corpus size, crashes. Exit status 1
# when any target crashed, leaked, hung or ran out of memory; the input that did it is kept
# under build-fuzz/fuzz-out/<target>/ (minimise it with --minimize, below).
#
#   tools/fuzz.sh [SECONDS] [TARGET...]    fuzz (default 30 s each, every target)
#   tools/fuzz.sh --seeds                  rewrite tests/fuzz/corpus with cks-fuzz-corpus
#   tools/fuzz.sh --minimize TARGET FILE   minimise a crashing input into
#                                          tests/fuzz/regressions/TARGET/ (commit it, then fix
#                                          the parser: ctest fuzz_replay_TARGET replays it)
#
# CKS_FUZZ_SEED=N fixes libFuzzer's random seed (tools/test.sh sets 1, so that what CI
# finds, it finds again; a longer campaign leaves it unset).
#
# The committed seeds (tests/fuzz/corpus/<target>) are read, never written: what a run
# discovers goes to build-fuzz/fuzz-out/<target>/corpus, kept between runs.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT="$ROOT/build-fuzz/fuzz-out"
TARGETS="safetensors shard_index config lfs torchbin spm hf_tokenizer tokenize lmeval runfile
hub_listing docfile trainset"

# Largest input per target: a little above the largest seed (speed falls with size; the
# run-file target's HDF5 files are kept small on purpose).
max_len() {
  case "$1" in
    runfile) echo 65536 ;;
    hf_tokenizer | torchbin) echo 16384 ;;
    spm | safetensors) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

# Allocation limits: 512 MiB (an input of at most 64 KiB that makes a parser allocate that
# much is a bug), except in the run-file target, where HDF5 itself allocates, and fills, the
# length a variable-length string declares (up to 4 GiB) before it finds the data missing
# (tests/fuzz/README.md); ckptscope's own reads there stay far below 512 MiB.
limits() {
  case "$1" in
    runfile) echo "-malloc_limit_mb=4608 -rss_limit_mb=6144" ;;
    *) echo "-malloc_limit_mb=512 -rss_limit_mb=2048" ;;
  esac
}

build() {
  tools/setup-deps.sh --fuzz >/dev/null
  cmake --preset fuzz >/dev/null
  cmake --build --preset fuzz -j "${CKS_FUZZ_JOBS:-2}" >/dev/null
}

# One target for $2 seconds; its log is $OUT/<target>/log.
run_one() {
  t=$1 secs=$2
  d="$OUT/$t"
  mkdir -p "$d/corpus" "$d/artifacts"
  # shellcheck disable=SC2046
  set -- "$ROOT/build-fuzz/tests/fuzz/fuzz_$t" -max_total_time="$secs" -max_len="$(max_len "$t")" \
    -timeout=10 $(limits "$t") -print_final_stats=1 ${CKS_FUZZ_SEED:+-seed="$CKS_FUZZ_SEED"} \
    -artifact_prefix="$d/artifacts/" -dict="$ROOT/tests/fuzz/dict/$t.dict" \
    "$d/corpus" "$ROOT/tests/fuzz/corpus/$t"
  # leaks fail an input like a crash; halt on the first UBSan report. HDF5 leaks on its own
  # error paths: tests/support/lsan-hdf5.supp names them (its frames need the slow unwinder).
  asan="detect_leaks=1"
  [ "$t" = runfile ] && asan="$asan:fast_unwind_on_malloc=0"
  ASAN_OPTIONS="$asan" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    LSAN_OPTIONS="suppressions=$ROOT/tests/support/lsan-hdf5.supp" "$@" >"$d/log" 2>&1 || true
}

row() {
  t=$1 d="$OUT/$1"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$d/log" | tail -n 1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$d/log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$d/log" | tail -n 1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$d/log" | tail -n 1 | cut -d' ' -f2)
  corp=$(find "$d/corpus" -type f | wc -l)
  crashes=$(find "$d/artifacts" -type f | wc -l)
  printf '%-14s %6s %12s %7s %7s %7s %8s\n' "$t" "${secs:--}" "${execs:--}" "${cov:--}" \
    "${ft:--}" "$corp" "$crashes"
}

case "${1:-}" in
  --one) # internal: xargs runs targets through this
    run_one "$2" "$3"
    exit 0 ;;
  --seeds)
    cmake --preset dev >/dev/null
    cmake --build --preset dev --target cks-fuzz-corpus >/dev/null
    rm -rf tests/fuzz/corpus
    build/tests/fuzz/cks-fuzz-corpus tests/fuzz/corpus "$ROOT"
    find tests/fuzz/corpus -type f | sort
    exit 0 ;;
  --minimize)
    [ $# -eq 3 ] || { echo "usage: tools/fuzz.sh --minimize TARGET FILE" >&2; exit 2; }
    build
    bin="$ROOT/build-fuzz/tests/fuzz/fuzz_$2"
    if "$bin" "$3" >/dev/null 2>&1; then
      echo "tools/fuzz.sh: $3 does not crash fuzz_$2: nothing to minimise" >&2
      exit 1
    fi
    mkdir -p "tests/fuzz/regressions/$2"
    dest="tests/fuzz/regressions/$2/$(basename "$3")"
    "$bin" -minimize_crash=1 -max_total_time=60 -exact_artifact_path="$dest" "$3" || true
    [ -f "$dest" ] || cp "$3" "$dest" # nothing smaller reproduced it: keep it whole
    echo "tools/fuzz.sh: $dest ($(wc -c <"$dest") bytes)"
    exit 0 ;;
esac

SECS=30
case "${1:-}" in
  '' | *[!0-9]*) ;;
  *) SECS=$1; shift ;;
esac
[ $# -gt 0 ] && TARGETS="$*"
build
for t in $TARGETS; do
  [ -x "build-fuzz/tests/fuzz/fuzz_$t" ] || { echo "tools/fuzz.sh: no target $t" >&2; exit 2; }
  rm -rf "$OUT/$t/artifacts"
done
echo "tools/fuzz.sh: $SECS s per target, ${CKS_FUZZ_JOBS:-2} at once: $TARGETS"
printf '%s\n' $TARGETS | xargs -P "${CKS_FUZZ_JOBS:-2}" -I{} "$0" --one {} "$SECS"
printf '%-14s %6s %12s %7s %7s %7s %8s\n' target seconds executions cov ft corpus crashes
status=0
for t in $TARGETS; do
  row "$t"
  if [ -n "$(find "$OUT/$t/artifacts" -type f)" ]; then
    status=1
    find "$OUT/$t/artifacts" -type f | sed 's/^/  crash input: /'
    grep -m 3 -E 'ERROR|SUMMARY|fuzz invariant|runtime error' "$OUT/$t/log" | sed 's/^/  /'
  fi
done
exit $status
