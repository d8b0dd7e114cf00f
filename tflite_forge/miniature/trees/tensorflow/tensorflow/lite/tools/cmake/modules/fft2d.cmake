# fft2d: Ooura's FFT package, fetched at configure time (tflite-forge miniature).
if(TARGET fft2d_fftsg OR fft2d_POPULATED)
  return()
endif()

include(OverridableFetchContent)

OverridableFetchContent_Declare(
  fft2d
  URL https://storage.googleapis.com/mirror.tensorflow.org/github.com/petewarden/OouraFFT/archive/v1.0.tar.gz
  URL_HASH SHA256={{FFT2D_SHA256}}
  SOURCE_DIR "${CMAKE_BINARY_DIR}/fft2d"
  # Ooura's package has no LICENSE file: its terms are in the readme files.
  LICENSE_FILE "readme2d.txt"
  LICENSE_URL "https://github.com/petewarden/OouraFFT/blob/master/readme2d.txt"
)
OverridableFetchContent_GetProperties(fft2d)
if(NOT fft2d_POPULATED)
  OverridableFetchContent_Populate(fft2d)
endif()

set(FFT2D_SOURCE_DIR "${fft2d_SOURCE_DIR}" CACHE PATH "fft2d source directory")
add_subdirectory("${CMAKE_CURRENT_LIST_DIR}/fft2d" "${fft2d_BINARY_DIR}" EXCLUDE_FROM_ALL)
