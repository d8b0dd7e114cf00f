# XNNPACK: the CPU backend, fetched at configure time (tflite-forge miniature).
if(TARGET XNNPACK OR xnnpack_POPULATED)
  return()
endif()

include(OverridableFetchContent)

OverridableFetchContent_Declare(
  xnnpack
  GIT_REPOSITORY https://github.com/google/XNNPACK
  GIT_TAG {{XNNPACK_TAG}}
  GIT_SHALLOW TRUE
  GIT_PROGRESS TRUE
  SOURCE_DIR "${CMAKE_BINARY_DIR}/xnnpack"
)
OverridableFetchContent_GetProperties(xnnpack)
if(NOT xnnpack_POPULATED)
  OverridableFetchContent_Populate(xnnpack)
endif()

# Like the real eigen.cmake, this module writes into the fetched source tree at configure time: a
# settings file the tree's CMakeLists includes, and a blanked benchmark CMakeLists.
file(WRITE "${xnnpack_SOURCE_DIR}/cmake/tflite-configure.cmake"
  "# Written by TensorFlow Lite's xnnpack.cmake\nset(XNNPACK_CONFIGURED_BY_TFLITE ON)\n")
file(WRITE "${xnnpack_SOURCE_DIR}/bench/CMakeLists.txt" "")
set(XNNPACK_BUILD_TESTS OFF CACHE BOOL "Disable XNNPACK tests inside TensorFlow Lite")
set(XNNPACK_BUILD_BENCHMARKS OFF CACHE BOOL "Disable XNNPACK benchmarks inside TensorFlow Lite")
add_subdirectory("${xnnpack_SOURCE_DIR}" "${xnnpack_BINARY_DIR}" EXCLUDE_FROM_ALL)
