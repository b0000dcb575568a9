#!/bin/sh
# Sets up, builds and runs the whole test suite (the README's second command and CI).
# Then the same suite under AddressSanitizer + UndefinedBehaviorSanitizer.
# Then the MPI build (preset mpi: ckptscope with -DCKPTSCOPE_MPI=ON) and its mpirun tests
# (ctest label mpi); CKS_SKIP_MPI=1 leaves it out.
set -eu
cd "$(dirname "$0")/.."
# --browser: Chromium for the HTML trends page test (label browser); --mpi: OpenMPI for
# the MPI build below
if [ "${CKS_SKIP_MPI:-0}" != 1 ]; then
  tools/setup-deps.sh --browser --mpi
else
  tools/setup-deps.sh --browser
fi
cmake --preset dev >/dev/null
cmake --build --preset dev -j "$(nproc)"
ctest --preset dev
if [ "${CKS_SKIP_ASAN:-0}" != 1 ]; then
  cmake --preset asan >/dev/null
  cmake --build --preset asan -j "$(nproc)"
  ctest --preset asan --label-exclude slow
fi
if [ "${CKS_SKIP_MPI:-0}" != 1 ]; then
  cmake --preset mpi >/dev/null
  cmake --build --preset mpi -j "$(nproc)"
  ctest --preset mpi
fi
echo "test.sh: all tests passed"
