/* Miniature fft2d: a naive O(n^2) real DFT (tflite-forge fixture). */
#include <math.h>

void fft2d_naive_rdft(int n, const double* in, double* re, double* im) {
  const double two_pi = 6.283185307179586;
  for (int k = 0; k < n; k++) {
    double sr = 0.0, si = 0.0;
    for (int t = 0; t < n; t++) {
      sr += in[t] * cos(two_pi * k * t / n);
      si -= in[t] * sin(two_pi * k * t / n);
    }
    re[k] = sr;
    im[k] = si;
  }
}
