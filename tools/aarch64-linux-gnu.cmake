# Cross-compiling for aarch64 (arm64) with Debian's gcc-aarch64-linux-gnu against an arm64
# root made of Debian's packages (tools/ci-arm64.sh makes it with mmdebstrap): headers and
# libraries come from the root, programs from the host. Tests run under qemu-user.
#   cmake -DCMAKE_TOOLCHAIN_FILE=tools/aarch64-linux-gnu.cmake -DCKS_ARM64_ROOT=DIR ...
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES CKS_ARM64_ROOT)
if(NOT CKS_ARM64_ROOT)
  message(FATAL_ERROR "set CKS_ARM64_ROOT to the arm64 root (tools/ci-arm64.sh makes one)")
endif()
set(CMAKE_SYSROOT ${CKS_ARM64_ROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# pkg-config reads the root's .pc files and prefixes their paths with it
set(ENV{PKG_CONFIG_SYSROOT_DIR} ${CKS_ARM64_ROOT})
set(ENV{PKG_CONFIG_LIBDIR}
    "${CKS_ARM64_ROOT}/usr/lib/aarch64-linux-gnu/pkgconfig:${CKS_ARM64_ROOT}/usr/share/pkgconfig")
# HDF5: the host's h5cc wrapper would name the host's headers; the root's serial build
set(HDF5_C_COMPILER_EXECUTABLE "" CACHE FILEPATH "")
set(HDF5_C_INCLUDE_DIR ${CKS_ARM64_ROOT}/usr/include/hdf5/serial CACHE PATH "")
set(HDF5_C_LIBRARY_hdf5 ${CKS_ARM64_ROOT}/usr/lib/aarch64-linux-gnu/hdf5/serial/libhdf5.so
    CACHE FILEPATH "")
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64-static -L ${CKS_ARM64_ROOT})
