/* Miniature FP16: IEEE half <-> single conversions (tflite-forge fixture).
 * Normal numbers, zeros, infinities and NaN are handled; half subnormals
 * flush to zero, which is enough for the fixture's self-check. */
#ifndef FP16_H
#define FP16_H

#include <stdint.h>
#include <string.h>

static inline uint32_t fp16_bits_of_fp32(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static inline float fp16_fp32_of_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

static inline uint16_t fp16_ieee_from_fp32_value(float f) {
  const uint32_t u = fp16_bits_of_fp32(f);
  const uint16_t sign = (uint16_t) ((u >> 16) & 0x8000u);
  const int32_t exponent = (int32_t) ((u >> 23) & 0xFFu);
  const uint32_t mantissa = u & 0x7FFFFFu;
  if (exponent == 0xFF) {
    return (uint16_t) (sign | 0x7C00u | (mantissa != 0 ? 0x200u : 0u));
  }
  const int32_t half_exponent = exponent - 127 + 15;
  if (half_exponent >= 0x1F) {
    return (uint16_t) (sign | 0x7C00u);
  }
  if (half_exponent <= 0) {
    return sign;
  }
  return (uint16_t) (sign | ((uint32_t) half_exponent << 10) | (mantissa >> 13));
}

static inline float fp16_ieee_to_fp32_value(uint16_t h) {
  const uint32_t sign = ((uint32_t) h & 0x8000u) << 16;
  const uint32_t exponent = ((uint32_t) h >> 10) & 0x1Fu;
  const uint32_t mantissa = (uint32_t) h & 0x3FFu;
  if (exponent == 0) {
    return fp16_fp32_of_bits(sign);
  }
  if (exponent == 0x1F) {
    return fp16_fp32_of_bits(sign | 0x7F800000u | (mantissa << 13));
  }
  return fp16_fp32_of_bits(sign | ((exponent - 15 + 127) << 23) | (mantissa << 13));
}

#endif /* FP16_H */
