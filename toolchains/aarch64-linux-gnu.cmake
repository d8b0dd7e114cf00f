# CMake toolchain: Linux on 64-bit ARM (aarch64, Debian arm64), cross-compiled with Debian's
# crossbuild-essential-arm64 (aarch64-linux-gnu-gcc/g++).
#   cmake -DCMAKE_TOOLCHAIN_FILE=toolchains/aarch64-linux-gnu.cmake ...
# CMAKE_SYSTEM_PROCESSOR must be exactly "aarch64": XNNPACK maps it to its arm64 kernels.
# No -mfpu here: -mfpu is a 32-bit ARM option and aarch64 GCC rejects it (tensorflow#17001).

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(TFLITE_FORGE_TRIPLET aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${TFLITE_FORGE_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${TFLITE_FORGE_TRIPLET}-g++)
set(CMAKE_ASM_COMPILER ${TFLITE_FORGE_TRIPLET}-gcc)

# The official aarch64 flags (tensorflow/lite/tools/cmake/download_toolchains.sh).
set(CMAKE_C_FLAGS_INIT "-funsafe-math-optimizations")
set(CMAKE_CXX_FLAGS_INIT "-funsafe-math-optimizations")

# Look for libraries and headers in the target's tree only; programs run on the host.
set(CMAKE_FIND_ROOT_PATH /usr/${TFLITE_FORGE_TRIPLET})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# try_run, add_test and ctest run target programs through qemu-user, with the target's
# libc from Debian's cross packages.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64-static -L /usr/${TFLITE_FORGE_TRIPLET})
