/* Miniature OpenCL header (tflite-forge fixture): the one type the miniature names. */
#ifndef TFLITE_FORGE_MINIATURE_CL_H_
#define TFLITE_FORGE_MINIATURE_CL_H_
typedef int cl_int;
#define CL_SUCCESS 0
#endif
