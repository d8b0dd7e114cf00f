# google_benchmark: the benchmark library the kernel tests link (tflite-forge miniature).
# Reached only through kernels/CMakeLists.txt, i.e. with TFLITE_KERNEL_TEST ON.
if(TARGET benchmark OR google_benchmark_POPULATED)
  return()
endif()

include(OverridableFetchContent)

OverridableFetchContent_Declare(
  google_benchmark
  GIT_REPOSITORY https://github.com/google/benchmark.git
  GIT_TAG {{GOOGLE_BENCHMARK_TAG}}
  GIT_SHALLOW TRUE
  GIT_PROGRESS TRUE
  SOURCE_DIR "${CMAKE_BINARY_DIR}/google_benchmark"
)
OverridableFetchContent_GetProperties(google_benchmark)
if(NOT google_benchmark_POPULATED)
  OverridableFetchContent_Populate(google_benchmark)
endif()

add_subdirectory("${google_benchmark_SOURCE_DIR}" "${google_benchmark_BINARY_DIR}" EXCLUDE_FROM_ALL)
