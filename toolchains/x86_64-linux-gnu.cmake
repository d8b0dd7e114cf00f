# CMake toolchain: Linux on x86_64 (Debian amd64).
#   cmake -DCMAKE_TOOLCHAIN_FILE=toolchains/x86_64-linux-gnu.cmake ...
# On an x86_64 host this is a native build: only the compilers are pinned (the triplet-named
# GCC from build-essential), and CMAKE_SYSTEM_NAME is left alone, because setting it makes
# CMake treat the build as a cross build (CMAKE_CROSSCOMPILING) and TFLite then asks for host
# tools. On any other host it is a real cross build (Debian's crossbuild-essential-amd64).

set(TFLITE_FORGE_TRIPLET x86_64-linux-gnu)
set(CMAKE_C_COMPILER ${TFLITE_FORGE_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${TFLITE_FORGE_TRIPLET}-g++)
set(CMAKE_ASM_COMPILER ${TFLITE_FORGE_TRIPLET}-gcc)

if(NOT CMAKE_HOST_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  set(CMAKE_SYSTEM_NAME Linux)
  set(CMAKE_SYSTEM_PROCESSOR x86_64)
  set(CMAKE_FIND_ROOT_PATH /usr/${TFLITE_FORGE_TRIPLET})
  set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
  set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
  set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
  set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
  set(CMAKE_CROSSCOMPILING_EMULATOR qemu-x86_64-static -L /usr/${TFLITE_FORGE_TRIPLET})
endif()
