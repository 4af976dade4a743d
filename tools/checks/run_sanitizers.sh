#!/usr/bin/env bash
# The unit tests, the multi-rank tests and the program's error paths (tests/cli/bad_input.sh) under
# AddressSanitizer + UndefinedBehaviorSanitizer (gcc, -DCIFAR_SANITIZE=ON, Debug) in build-asan.
# Any ASan, UBSan or LeakSanitizer report fails.
#   tools/checks/run_sanitizers.sh          # CI: ~5-6 min on 2 cores (build ~3, tests ~1.5-2, bad_input.sh ~0.5-1)
#   tools/checks/run_sanitizers.sh --all    # also the tests left out below for time (+2-4 min)
#
# Debug, not RelWithDebInfo: the build is the bulk of the time and -O0 compiles in ~40% of the CPU
# time of -O2 (user 162 s vs 430 s here); the tests' own loops run ~3x slower at -O0, which only
# matters for the few left out below (oneDNN's kernels are the same prebuilt library either way).
#
# Left out (unless --all), for time only; the code they run is run by kept tests:
#   TrainingOnCifar10.OneEpochReachesAtLeast45Percent  one real epoch: 18 s on an idle machine but
#       75-85 s when the 2 cores are shared (its 2 OpenMP threads need both). Its code is covered by
#       CifarDataset.RealDataSet* (the real files), CifarDataset.* + fuzz_cifar_loader (the reader),
#       Training.* (the loop on synthetic data).
#   ReferenceCnnFd.WholeModelGradientsMatchFiniteDifferences  ~75 s: thousands of forward passes of
#       the scalar reference model at batch 2; ReferenceCnnFd.<layer>Backward check each layer and
#       ForwardBackwardMatch/0,/1 run the whole reference forward/backward.
#   BatchSizes/SimpleCnnVsReference.ForwardBackwardMatch/2,/3  ~25 + ~30 s: batch 80 and 128, the
#       time is the scalar reference convolution; /0 and /1 (batch 1 and 7) run the same code.
#
# Sanitizer settings and why:
#   ASan/UBSan halt on the first report with a stack (UBSan would otherwise print and go on).
#   Leaks: checked in unit_tests, with tools/checks/lsan.supp for what Open MPI never frees
#   (all allocated under MPI_Init/MPI_Finalize or its progress thread; see that file).
#   fast_unwind_on_malloc=0 is needed for those suppressions to match (Open MPI has no frame
#   pointers). It costs ~25% in unit_tests but 3-8x in the oversubscribed mpiexec-launched ranks
#   (all of np 1-4 leak-checked: 103 s instead of 43 s), so the multi-rank tests check leaks at
#   np 2 (each reducer and the ring with a real peer) and run np 1, 3, 4 with ASan + UBSan
#   only (detect_leaks=0).
#   oneDNN's JIT kernels and libgomp are not instrumented: nothing to suppress (no false positives
#   seen), but a JIT kernel reading past one of our buffers would go unseen.
#   bad_input.sh runs the program ~40 times (bad data, options, weights, checkpoints, NaN/Inf,
#   2 ranks, MPMD): ASan + UBSan with detect_leaks=0 (the error paths leave by _Exit, which skips
#   the leak check anyway), reports to files (log_path) so that one from any rank or case fails
#   the run even where the case itself only looks for its error line.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

all=0
case "${1:-}" in
  -h | --help) cifar_usage; exit 0 ;;
  --all) all=1; shift ;;
esac
if (($#)); then echo "usage: $0 [--all]" >&2; exit 2; fi

BUILD="${CIFAR_ASAN_BUILD:-$CIFAR_ROOT/build-asan}"
SUPP="$CIFAR_ROOT/tools/checks/lsan.supp"
common_asan="halt_on_error=1:abort_on_error=0:print_stacktrace=1:check_initialization_order=1:strict_init_order=1:detect_odr_violation=2"
# Exported for the build too: gtest_discover_tests runs unit_tests --gtest_list_tests at build time,
# which initialises (and leaks) MPI.
export ASAN_OPTIONS="$common_asan:detect_leaks=1:fast_unwind_on_malloc=0"
export LSAN_OPTIONS="suppressions=$SUPP:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:report_error_type=1"

excluded="TrainingOnCifar10.*:ReferenceCnnFd.WholeModelGradientsMatchFiniteDifferences"
excluded+=":BatchSizes/SimpleCnnVsReference.ForwardBackwardMatch/2:BatchSizes/SimpleCnnVsReference.ForwardBackwardMatch/3"
filter="-$excluded"
((all)) && filter="*"

mpi_tests=()
for src in "$CIFAR_ROOT"/tests/mpi/*.cpp; do mpi_tests+=("$(basename "$src" .cpp)"); done

t0=$SECONDS
cmake -S "$CIFAR_ROOT" -B "$BUILD" -DCIFAR_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target unit_tests cifar_mpi "${mpi_tests[@]}"
t_build=$((SECONDS - t0))

fail=0
# unit_tests runs outside ctest here, so make its PyTorch fixture first (ctest's set-up test: a
# no-op when the shared one is there).
(cd "$BUILD" && ctest -R '^fixture\.simplecnn$' --output-on-failure) ||
  { echo "sanitizers: making the PyTorch fixture failed (ctest -R fixture.simplecnn in $BUILD)" >&2; fail=1; }
log_unit="$BUILD/sanitizers-unit_tests.log"
t1=$SECONDS
if (cd "$BUILD/tests" && ./unit_tests --gtest_filter="$filter" --gtest_brief=1) >"$log_unit" 2>&1; then
  unit="passed"
else
  unit="FAILED"; fail=1
  echo "---- unit_tests under ASan/UBSan failed; last lines of $log_unit:" >&2
  tail -n 120 "$log_unit" >&2
fi
t_unit=$((SECONDS - t1))
echo "sanitizers: unit_tests $unit ($(grep -Eo '[0-9]+ tests? from [0-9]+ test suites? ran' "$log_unit" || echo '?'))" \
     "in ${t_unit}s; filter: $filter"

t2=$SECONDS
mpi_names="$(IFS='|'; echo "${mpi_tests[*]}")"
mpi="passed"
(cd "$BUILD" && ctest -R "^($mpi_names)\\.np2\$" --output-on-failure --timeout 600) || { mpi="FAILED"; fail=1; }
(cd "$BUILD" && ASAN_OPTIONS="$common_asan:detect_leaks=0" ctest -R "^($mpi_names)\\.np[134]\$" --output-on-failure --timeout 600) ||
  { mpi="FAILED"; fail=1; }
t_mpi=$((SECONDS - t2))
echo "sanitizers: multi-rank tests (${mpi_tests[*]} at np 1-4) $mpi in ${t_mpi}s"

t3=$SECONDS
reports="$BUILD/sanitizers-cli-reports"
log_cli="$BUILD/sanitizers-bad_input.log"
rm -rf "$reports" && mkdir -p "$reports"
if ASAN_OPTIONS="$common_asan:detect_leaks=0:log_path=$reports/asan" \
   UBSAN_OPTIONS="$UBSAN_OPTIONS:log_path=$reports/ubsan" \
   bash "$CIFAR_ROOT/tests/cli/bad_input.sh" "$BUILD/cifar_mpi" "$CIFAR_ROOT" "" >"$log_cli" 2>&1 &&
   [[ -z $(ls -A "$reports") ]]; then
  cli="passed"
else
  cli="FAILED"; fail=1
  echo "---- tests/cli/bad_input.sh under ASan/UBSan failed; failed cases and reports:" >&2
  grep -A4 '^FAIL' "$log_cli" >&2 || tail -n 20 "$log_cli" >&2
  for r in "$reports"/*; do
    if [[ -e $r ]]; then { echo "== $r"; head -n 40 "$r"; } >&2; fi
  done
fi
t_cli=$((SECONDS - t3))
echo "sanitizers: tests/cli/bad_input.sh ($(grep -c '^PASS' "$log_cli" || true) cases passed) $cli in ${t_cli}s"
echo "sanitizers: build ${t_build}s + unit ${t_unit}s + multi-rank ${t_mpi}s + cli ${t_cli}s = $((SECONDS - t0))s;" \
     "$( ((fail)) && echo FAILED || echo 'no sanitizer reports')"
exit "$fail"
