# find_package(opencl_headers): the GPU delegate's OpenCL headers (tflite-forge miniature).
include(opencl_headers)
