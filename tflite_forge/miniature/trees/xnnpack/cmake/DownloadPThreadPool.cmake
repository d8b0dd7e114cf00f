# Configured into <build>/pthreadpool-download/CMakeLists.txt when PTHREADPOOL_SOURCE_DIR is
# not given. Inside a TensorFlow Lite build it never runs: TFLite sets PTHREADPOOL_SOURCE_DIR first.
cmake_minimum_required(VERSION 3.16)
project(pthreadpool-download NONE)

include(ExternalProject)
ExternalProject_Add(pthreadpool
  URL https://github.com/Maratyszcza/pthreadpool/archive/{{PTHREADPOOL_COMMIT}}.zip
  URL_HASH SHA256={{PTHREADPOOL_SHA256}}
  SOURCE_DIR "${CMAKE_BINARY_DIR}/pthreadpool-source"
  BINARY_DIR "${CMAKE_BINARY_DIR}/pthreadpool"
  CONFIGURE_COMMAND ""
  BUILD_COMMAND ""
  INSTALL_COMMAND ""
  TEST_COMMAND ""
)
