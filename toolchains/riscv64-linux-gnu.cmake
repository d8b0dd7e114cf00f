# CMake toolchain: Linux on 64-bit RISC-V (RV64GC, lp64d ABI; Debian riscv64), cross-compiled
# with Debian's gcc-riscv64-linux-gnu, g++-riscv64-linux-gnu and libc6-dev-riscv64-cross. An extra
# target: TFLite has no official riscv64 build; XNNPACK accepts CMAKE_SYSTEM_PROCESSOR "riscv64"
# (scalar kernels).
#   cmake -DCMAKE_TOOLCHAIN_FILE=toolchains/riscv64-linux-gnu.cmake ...

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR riscv64)

set(TFLITE_FORGE_TRIPLET riscv64-linux-gnu)
set(CMAKE_C_COMPILER ${TFLITE_FORGE_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${TFLITE_FORGE_TRIPLET}-g++)
set(CMAKE_ASM_COMPILER ${TFLITE_FORGE_TRIPLET}-gcc)

set(CMAKE_FIND_ROOT_PATH /usr/${TFLITE_FORGE_TRIPLET})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

set(CMAKE_CROSSCOMPILING_EMULATOR qemu-riscv64-static -L /usr/${TFLITE_FORGE_TRIPLET})
