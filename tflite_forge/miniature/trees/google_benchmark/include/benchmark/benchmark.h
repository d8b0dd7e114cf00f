// Miniature benchmark library (tflite-forge fixture): time a callable N times.
#ifndef TFLITE_FORGE_MINIATURE_BENCHMARK_H_
#define TFLITE_FORGE_MINIATURE_BENCHMARK_H_
#include <chrono>

namespace benchmark {
template <typename F>
double SecondsPerRun(F&& body, int runs) {
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < runs; ++i) body();
  const std::chrono::duration<double> spent = std::chrono::steady_clock::now() - start;
  return runs > 0 ? spent.count() / runs : 0.0;
}
}  // namespace benchmark
#endif
