#!/usr/bin/env bash
# Runs the whole test suite (CTest + GoogleTest) on the Release build, then the unit tests
# again under ASan+UBSan when scripts/setup.sh made build-asan/. Extra args go to ctest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export MASKWATCH_NO_PROGRESS=1
[[ -d "$root/build" ]] || { echo "test: no build/ - run scripts/setup.sh first" >&2; exit 1; }
echo "== Release tests"
ctest --test-dir "$root/build" --output-on-failure -j 2 "$@"
if [[ -d "$root/build-asan" ]]; then
  echo "== ASan+UBSan unit tests"
  # detect_leaks=0: LibTorch and OpenCV keep global caches alive at exit by design.
  ASAN_OPTIONS="detect_leaks=0:detect_odr_violation=0:halt_on_error=1" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    ctest --test-dir "$root/build-asan" --output-on-failure -j 2 -L unit "$@"
fi
