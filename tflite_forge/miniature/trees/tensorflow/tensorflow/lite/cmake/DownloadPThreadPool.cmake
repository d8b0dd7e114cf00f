# Configured into <build>/pthreadpool-download/CMakeLists.txt by tensorflow/lite/CMakeLists.txt
# when neither PTHREADPOOL_SOURCE_DIR nor a disconnected build says otherwise.
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
