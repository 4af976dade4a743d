#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) in build-fuzz and fuzzes each for a bounded
# time on a copy of its seed corpus (tests/fuzz/corpus/<name>). Exits non-zero if either finds a
# crash, a sanitizer report, a leak, a timeout or an exception other than cifar::Error.
#   tools/checks/run_fuzz.sh [seconds per target, default 30]
# Needs clang, libclang-rt-14-dev (libFuzzer) and llvm (llvm-symbolizer): tools/install_deps.sh.
# A finding is saved as build-fuzz/fuzz-run/<target>/crash-* ; replay it with
#   build-fuzz/tests/fuzz/<target> <file>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

case "${1:-}" in -h | --help) cifar_usage; exit 0 ;; esac
seconds="${1:-30}"
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [seconds per target]" >&2; exit 2; }
BUILD="${CIFAR_FUZZ_BUILD:-$CIFAR_ROOT/build-fuzz}"
for tool in clang clang++; do
  command -v "$tool" >/dev/null || { echo "run_fuzz: $tool not found (tools/install_deps.sh installs it)" >&2; exit 1; }
done
if [[ ! -e "$(clang++ -print-file-name=libclang_rt.fuzzer-x86_64.a)" && \
      ! -e "$(clang++ -print-runtime-dir 2>/dev/null)/libclang_rt.fuzzer-x86_64.a" ]]; then
  echo "run_fuzz: libFuzzer runtime missing (Debian: libclang-rt-14-dev)" >&2
  exit 1
fi
# Symbolised stacks in the reports need llvm-symbolizer (unversioned in PATH, or llvm-14's).
if ! command -v llvm-symbolizer >/dev/null; then
  for s in /usr/bin/llvm-symbolizer-*; do
    if [[ -x "$s" ]]; then export ASAN_SYMBOLIZER_PATH="$s"; fi
  done
fi

t0=$SECONDS
cmake -S "$CIFAR_ROOT" -B "$BUILD" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCIFAR_FUZZ=ON -DBUILD_TESTING=OFF >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target fuzz_cifar_loader fuzz_config
t_build=$((SECONDS - t0))

export ASAN_OPTIONS="halt_on_error=1:print_stacktrace=1:detect_leaks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
# target  seed-corpus-folder  extra libFuzzer flags
targets=(
  "fuzz_cifar_loader cifar -max_len=16384"
  "fuzz_config config -max_len=4096 -dict=$CIFAR_ROOT/tests/fuzz/config.dict"
)
fail=0
for entry in "${targets[@]}"; do
  read -r name seeds flags <<<"$entry"
  work="$BUILD/fuzz-run/$name"
  rm -rf "$work" && mkdir -p "$work/corpus" "$work/tmp"
  cp "$CIFAR_ROOT/tests/fuzz/corpus/$seeds"/* "$work/corpus/"
  log="$work/fuzz.log"
  t=$SECONDS
  # -max_total_time bounds the fuzzing; `timeout` bounds a hang in start-up or shut-down too.
  # TMPDIR: the targets' scratch files (per pid) stay in $work, which the next run removes.
  # shellcheck disable=SC2086  # $flags is a list of flags
  if (cd "$work" && TMPDIR="$work/tmp" timeout --signal=KILL $((seconds + 120)) "$BUILD/tests/fuzz/$name" corpus \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$work/" $flags) >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -Eo 'DONE +cov: [0-9]+' "$log" | grep -Eo '[0-9]+$' || echo '?')
    echo "fuzz: $name ok: ${runs:-?} runs in $((SECONDS - t))s, coverage ${cov} edges," \
         "corpus $(find "$work/corpus" -type f | wc -l) files"
  else
    fail=1
    artifact=$(find "$work" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
                 -o -name 'oom-*' \) | head -n 1)
    echo "fuzz: $name FAILED after $((SECONDS - t))s: ${artifact:-no artifact (see $log)}"
    grep -E -m 1 -A 40 '^==[0-9]+==|runtime error|unexpected exception|deadly signal' "$log" >&2 || tail -n 60 "$log" >&2
  fi
done
echo "fuzz: build ${t_build}s, ${seconds}s per target, total $((SECONDS - t0))s;" \
     "$( ((fail)) && echo FAILED || echo 'no crash')"
exit "$fail"
