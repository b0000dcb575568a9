#!/bin/sh
# Installs the Debian 12 packages ckptscope needs to build, test and run, skipping those
# already installed. Run as root (or with sudo available). No other network is used.
set -eu

PACKAGES="build-essential cmake pkg-config git git-lfs clang-format
libgit2-dev libhdf5-dev hdf5-tools libgsl-dev libopenblas-dev liblapacke-dev libdnnl-dev ocl-icd-opencl-dev
libjansson-dev zlib1g-dev libzstd-dev zstd libcmocka-dev gnuplot-nox
python3 python3-numpy python3-h5py python3-scipy python3-torch python3-sentencepiece"

# (ocl-icd-opencl-dev: oneDNN's CMake package requires OpenCL::OpenCL to be findable;
# zstd, the program: the tests compress held-out files with it.)
# Extra groups: "--mpi" adds OpenMPI, "--browser" Chromium (HTML report test),
# "--fuzz" clang and its runtime (libFuzzer), "--train" the public-domain Jargon File that
# tools/train_tiny.py trains the demo run on (only needed to remake examples/).
# The MPI build writes the run file from rank 0 with the serial libhdf5 above
# (analyze/scan_mpi.c says why), so it needs no parallel HDF5 package.
for arg in "$@"; do
  case "$arg" in
    --mpi) PACKAGES="$PACKAGES libopenmpi-dev openmpi-bin" ;;
    --browser) PACKAGES="$PACKAGES chromium" ;;
    --fuzz) PACKAGES="$PACKAGES clang libclang-rt-14-dev libomp-dev" ;;
    --train) PACKAGES="$PACKAGES jargon-text" ;;
    *) echo "setup-deps.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

missing=""
for p in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
if [ -z "$missing" ]; then
  echo "setup-deps: all packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "setup-deps: installing$missing"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
