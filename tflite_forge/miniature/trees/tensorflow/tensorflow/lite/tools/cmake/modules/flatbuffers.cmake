# FlatBuffers: model reader headers, and the flatc host tool (tflite-forge miniature).
if(TARGET flatbuffers OR flatbuffers_POPULATED)
  return()
endif()

include(OverridableFetchContent)

OverridableFetchContent_Declare(
  flatbuffers
  GIT_REPOSITORY https://github.com/google/flatbuffers
  GIT_TAG {{FLATBUFFERS_TAG}}
  GIT_SHALLOW TRUE
  GIT_PROGRESS TRUE
  SOURCE_DIR "${CMAKE_BINARY_DIR}/flatbuffers"
)
OverridableFetchContent_GetProperties(flatbuffers)
if(NOT flatbuffers_POPULATED)
  OverridableFetchContent_Populate(flatbuffers)
endif()

# Written into the fetched tree at configure time (TFLite modules do this to their dependencies).
file(WRITE "${flatbuffers_SOURCE_DIR}/CMake/tflite-version.cmake"
  "set(FLATBUFFERS_CONFIGURED_FOR_TFLITE {{FLATBUFFERS_TAG}})\n")

# The target build needs only the headers; flatc runs on the build host.
set(FLATBUFFERS_BUILD_FLATC OFF CACHE BOOL "Build flatc for the target (the host flatc is separate)")
add_subdirectory("${flatbuffers_SOURCE_DIR}" "${flatbuffers_BINARY_DIR}" EXCLUDE_FROM_ALL)

# Host flatc, built natively by `cmake --build <build> --target flatbuffers-flatc` and
# installed to <build>/flatbuffers-flatc/bin/flatc. Cross builds take it from
# TFLITE_HOST_TOOLS_DIR instead (see tensorflow/lite/CMakeLists.txt).
if(NOT CMAKE_CROSSCOMPILING)
  include(ExternalProject)
  set(FLATC_INSTALL_PREFIX <INSTALL_DIR> CACHE PATH "Where the host flatc is installed")
  ExternalProject_Add(flatbuffers-flatc
    PREFIX "${CMAKE_BINARY_DIR}/flatbuffers-flatc"
    SOURCE_DIR "${flatbuffers_SOURCE_DIR}"
    CMAKE_ARGS
      -DCMAKE_BUILD_TYPE=Release
      -DCMAKE_C_COMPILER=${CMAKE_C_COMPILER}
      -DFLATBUFFERS_BUILD_FLATC=ON
      -DCMAKE_INSTALL_PREFIX=$CACHE{FLATC_INSTALL_PREFIX}
    BUILD_BYPRODUCTS "${CMAKE_BINARY_DIR}/flatbuffers-flatc/bin/flatc"
    EXCLUDE_FROM_ALL TRUE
  )
endif()
