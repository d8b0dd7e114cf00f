# CMake toolchain: Linux on 32-bit ARMv7-A with NEON-VFPv4, hard-float ABI (Debian armhf),
# cross-compiled with Debian's crossbuild-essential-armhf (arm-linux-gnueabihf-gcc/g++).
#   cmake -DCMAKE_TOOLCHAIN_FILE=toolchains/arm-linux-gnueabihf.cmake ...
# CMAKE_SYSTEM_PROCESSOR "armv7" matches XNNPACK's ^armv[5-8] check (32-bit ARM kernels).
# Flags are the official armhf ones (tensorflow/lite/tools/cmake/download_toolchains.sh,
# build_cmake_arm.md). With XNNPACK on, its fp16 kernels also need -mfp16-format=ieee
# (tensorflow#54337): added unless the build passes -DTFLITE_ENABLE_XNNPACK=OFF (TFLite's
# default is ON). Note XNNPACK on ARM32 fails in many releases (#53545, #50029, #57364);
# tflite_forge/arches.toml turns it off for armhf by default (default_cmake_options).

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR armv7)

set(TFLITE_FORGE_TRIPLET arm-linux-gnueabihf)
set(CMAKE_C_COMPILER ${TFLITE_FORGE_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${TFLITE_FORGE_TRIPLET}-g++)
set(CMAKE_ASM_COMPILER ${TFLITE_FORGE_TRIPLET}-gcc)

set(TFLITE_FORGE_ARM_FLAGS "-march=armv7-a -mfpu=neon-vfpv4 -funsafe-math-optimizations")
if(NOT DEFINED TFLITE_ENABLE_XNNPACK OR TFLITE_ENABLE_XNNPACK)
  string(APPEND TFLITE_FORGE_ARM_FLAGS " -mfp16-format=ieee")
endif()
# try_compile projects re-read this file: hand them the same switch.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES TFLITE_ENABLE_XNNPACK)

set(CMAKE_C_FLAGS_INIT "${TFLITE_FORGE_ARM_FLAGS}")
set(CMAKE_CXX_FLAGS_INIT "${TFLITE_FORGE_ARM_FLAGS}")
set(CMAKE_ASM_FLAGS_INIT "${TFLITE_FORGE_ARM_FLAGS}")

set(CMAKE_FIND_ROOT_PATH /usr/${TFLITE_FORGE_TRIPLET})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

set(CMAKE_CROSSCOMPILING_EMULATOR qemu-arm-static -L /usr/${TFLITE_FORGE_TRIPLET})
