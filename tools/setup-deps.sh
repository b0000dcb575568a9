#!/bin/sh
# Installs the Debian 12 packages ckptscope needs to build, test and run, skipping those
# already installed. Run as root (or with sudo available). No other network is used.
set -eu

PACKAGES="build-essential cmake pkg-config git git-lfs clang-format
libgit2-dev libhdf5-dev hdf5-tools libgsl-dev libopenblas-dev liblapacke-dev libdnnl-dev ocl-icd-opencl-dev
libjansson-dev zlib1g-dev libzstd-dev zstd libcurl4-openssl-dev curl libcmocka-dev gnuplot-nox
python3 python3-numpy python3-h5py python3-scipy python3-torch python3-sentencepiece
libpcre2-dev unicode-data"

# (ocl-icd-opencl-dev: oneDNN's CMake package requires OpenCL::OpenCL to be findable;
# zstd, the program: the tests compress held-out files with it.)
# (libpcre2-dev: the byte-level tokenizers' split patterns; unicode-data: the NFC tables'
# source and Unicode's NormalizationTest, tools/make_unicode_tables.py.)
# Extra groups: "--mpi" adds OpenMPI, "--browser" Chromium (HTML report test),
# "--fuzz" clang and its runtime (libFuzzer), "--arm64" the aarch64 cross compilers, qemu
# and mmdebstrap (tools/ci-arm64.sh), "--train" the public-domain Jargon File that
# tools/train_tiny.py trains the demo run on (only needed to remake examples/).
# The MPI build writes the run file from rank 0 with the serial libhdf5 above
# (analyze/engine/drive_mpi.c says why), so it needs no parallel HDF5 package.
for arg in "$@"; do
  case "$arg" in
    --mpi) PACKAGES="$PACKAGES libopenmpi-dev openmpi-bin" ;;
    --browser) PACKAGES="$PACKAGES chromium" ;;
    --fuzz) PACKAGES="$PACKAGES clang libclang-rt-14-dev libomp-dev" ;;
    --arm64) PACKAGES="$PACKAGES gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user-static mmdebstrap file" ;;
    --train) PACKAGES="$PACKAGES jargon-text" ;;
    *) echo "setup-deps.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

# node and npm run the reference tokenizers (npm's tokenizers and tiktoken, installed into
# the build folder by tools/make_bpe_refs.py). Debian's nodejs + npm unless some node with
# npm is installed already (a newer nodejs package ships npm itself and conflicts with
# Debian's npm).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  PACKAGES="$PACKAGES nodejs npm"
fi

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
