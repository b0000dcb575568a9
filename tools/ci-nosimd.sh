#!/bin/sh
# CI: the portable build (-DCKS_SIMD=OFF, preset nosimd: no target_clones, no CPU tests)
# and its unit tests, among them simd_equal, which compares its norms, drift and widening
# with the dev build's (tests/check_simd_equal.py: within the rounding the kernels state).
# Run after tools/test.sh, which builds the dev preset. With CI=true a skip fails.
set -eu
cd "$(dirname "$0")/.."
[ -x build/tests/support/cks-kernels ] || {
  echo "ci-nosimd.sh: build the dev preset first (tools/test.sh)" >&2
  exit 1
}
cmake --preset nosimd >/dev/null
cmake --build --preset nosimd -j "$(nproc)"
junit=$(mktemp "${TMPDIR:-/tmp}/cks-ctest.XXXXXX")
trap 'rm -f "$junit"' EXIT
ctest --preset nosimd --output-junit "$junit"
if [ "${CI:-}" = true ] && grep -q "<skipped" "$junit"; then
  echo "ci-nosimd.sh: tests skipped in CI"
  exit 1
fi
echo "ci-nosimd.sh: portable build passed its unit tests and equals the SIMD build"
