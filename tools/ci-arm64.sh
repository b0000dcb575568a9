#!/bin/sh
# CI: the libraries, ckptscope and the tests cross-compiled for aarch64 (arm64), then the
# unit tests run under qemu-user. Debian 12's libhdf5-dev and libgsl-dev cannot be
# installed for two architectures at once, so the arm64 headers and libraries come from a
# root of Debian's arm64 packages that mmdebstrap unpacks (variant extract: nothing is
# configured, so no emulation is needed to make it). update-alternatives would have made
# the generic BLAS/LAPACK and HDF5 names point at OpenBLAS and serial HDF5; those links
# are made here. Cross-compiling (tools/aarch64-linux-gnu.cmake) takes about as long as
# the native build; compiling inside the root under qemu would take several times longer.
#
# Environment: CKS_ARM64_ROOT (default build-arm64-root; kept between runs),
# CKS_ARM64_TESTS (a ctest -R regex, default: every unit test but the slow ones).
set -eu
cd "$(dirname "$0")/.."
tools/setup-deps.sh --arm64
root=$(pwd)/${CKS_ARM64_ROOT:-build-arm64-root}
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
# the arm64 packages; a root made from another list is made again
pkgs=libc6-dev,libgit2-dev,libhdf5-dev,libgsl-dev,libopenblas-dev,liblapacke-dev,libdnnl-dev
pkgs=$pkgs,ocl-icd-opencl-dev,libjansson-dev,libcmocka-dev,libcurl4-openssl-dev,libpcre2-dev
pkgs=$pkgs,zlib1g-dev,libzstd-dev
if [ "$(cat "$root/.cks-root-complete" 2>/dev/null)" != "$pkgs" ]; then
  $SUDO rm -rf "$root"
  $SUDO mmdebstrap --variant=extract --arch=arm64 \
    --include="$pkgs" \
    bookworm "$root"
  lib=$root/usr/lib/aarch64-linux-gnu inc=$root/usr/include/aarch64-linux-gnu
  for f in libblas.so.3 libblas.so liblapack.so.3 liblapack.so libopenblas.so.0 libopenblas.so; do
    $SUDO ln -sfn "openblas-pthread/$f" "$lib/$f"
  done
  $SUDO ln -sfn ../openblas-pthread/pkgconfig/blas-openblas.pc "$lib/pkgconfig/blas.pc"
  $SUDO ln -sfn ../openblas-pthread/pkgconfig/lapack-openblas.pc "$lib/pkgconfig/lapack.pc"
  $SUDO ln -sfn ../openblas-pthread/pkgconfig/openblas.pc "$lib/pkgconfig/openblas.pc"
  $SUDO ln -sfn hdf5-serial.pc "$lib/pkgconfig/hdf5.pc"
  for h in cblas.h f77blas.h openblas_config.h; do
    $SUDO ln -sfn "openblas-pthread/$h" "$inc/$h"
  done
  echo "$pkgs" | $SUDO tee "$root/.cks-root-complete" >/dev/null
fi
cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=tools/aarch64-linux-gnu.cmake \
  -DCKS_ARM64_ROOT="$root" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCKS_WERROR=ON \
  -DCKS_BUILD_BENCH=OFF >/dev/null
cmake --build build-arm64 -j "$(nproc)"
file build-arm64/analyze/ckptscope | grep -q "ARM aarch64" || {
  echo "ci-arm64.sh: build-arm64/analyze/ckptscope is not an aarch64 executable" >&2
  exit 1
}
# the unit tests under qemu-user (CMAKE_CROSSCOMPILING_EMULATOR); a skip fails in CI
junit=$(mktemp "${TMPDIR:-/tmp}/cks-ctest.XXXXXX")
trap 'rm -f "$junit"' EXIT
ctest --test-dir build-arm64 -L unit --label-exclude slow -j "$(nproc)" \
  ${CKS_ARM64_TESTS:+-R "$CKS_ARM64_TESTS"} --output-on-failure --output-junit "$junit"
if [ "${CI:-}" = true ] && grep -q "<skipped" "$junit"; then
  echo "ci-arm64.sh: tests skipped in CI"
  exit 1
fi
echo "ci-arm64.sh: aarch64 build and its unit tests (qemu) passed"
