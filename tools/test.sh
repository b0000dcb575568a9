#!/bin/sh
# Sets up, builds and runs the whole test suite (the README's second command and CI).
# Then the same suite under AddressSanitizer + UndefinedBehaviorSanitizer.
set -eu
cd "$(dirname "$0")/.."
tools/setup-deps.sh --browser  # Chromium: the HTML trends page test (label browser)
cmake --preset dev >/dev/null
cmake --build --preset dev -j "$(nproc)"
ctest --preset dev
if [ "${CKS_SKIP_ASAN:-0}" != 1 ]; then
  cmake --preset asan >/dev/null
  cmake --build --preset asan -j "$(nproc)"
  ctest --preset asan --label-exclude slow
fi
echo "test.sh: all tests passed"
