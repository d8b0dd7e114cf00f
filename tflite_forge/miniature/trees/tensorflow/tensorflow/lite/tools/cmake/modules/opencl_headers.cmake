# OpenCL headers for the GPU delegate, fetched at configure time (tflite-forge miniature).
# Reached only with TFLITE_ENABLE_GPU ON.
if(TARGET opencl_headers OR opencl_headers_POPULATED)
  return()
endif()

include(OverridableFetchContent)

OverridableFetchContent_Declare(
  opencl_headers
  GIT_REPOSITORY https://github.com/KhronosGroup/OpenCL-Headers
  GIT_TAG {{OPENCL_HEADERS_COMMIT}}
  GIT_PROGRESS TRUE
  SOURCE_DIR "${CMAKE_BINARY_DIR}/opencl_headers"
)
OverridableFetchContent_GetProperties(opencl_headers)
if(NOT opencl_headers_POPULATED)
  OverridableFetchContent_Populate(opencl_headers)
endif()

add_library(opencl_headers INTERFACE)
target_include_directories(opencl_headers INTERFACE "${opencl_headers_SOURCE_DIR}")
