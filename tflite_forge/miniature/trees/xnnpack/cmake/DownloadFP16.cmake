# Configured into <build>/FP16-download/CMakeLists.txt when FP16_SOURCE_DIR is not given.
cmake_minimum_required(VERSION 3.16)
project(fp16-download NONE)

include(ExternalProject)
ExternalProject_Add(fp16
  URL https://github.com/Maratyszcza/FP16/archive/{{FP16_COMMIT}}.zip
  URL_HASH SHA256={{FP16_SHA256}}
  SOURCE_DIR "${CMAKE_BINARY_DIR}/FP16-source"
  BINARY_DIR "${CMAKE_BINARY_DIR}/FP16"
  CONFIGURE_COMMAND ""
  BUILD_COMMAND ""
  INSTALL_COMMAND ""
  TEST_COMMAND ""
)
