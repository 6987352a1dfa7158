// bfloat16: fp32's sign and 8-bit exponent with 7 bits of mantissa, the upper half of an fp32.
// Conversion rounds to nearest, ties to even (as VCVTNEPS2BF16 does for normal numbers); a NaN
// stays a NaN (quietened); subnormals are rounded like any other number, never flushed.
//
// One bf16 rounding changes a value by at most 2^-8 of itself (half a unit in the last of its 8
// significant bits): the bound the bf16 products' tests derive their tolerance from.
#pragma once

#include <cstdint>
#include <cstring>

#include "../cpu_features.hpp"
#include "../tensor.hpp"

#ifdef CONVNET_X86
#include <immintrin.h>
#endif

namespace convnet {

/// A bf16 value as its 16 bits.
using Bf16 = std::uint16_t;

inline Bf16 to_bf16(float value) {
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<Bf16>((bits >> 16) | 0x40u);  // NaN, quiet
  bits += 0x7fffu + ((bits >> 16) & 1u);  // to nearest, ties to the even upper half
  return static_cast<Bf16>(bits >> 16);
}

inline float from_bf16(Bf16 value) {
  const std::uint32_t bits = static_cast<std::uint32_t>(value) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

/// `value` as the nearest bf16 would hold it, in fp32.
inline float round_to_bf16(float value) { return from_bf16(to_bf16(value)); }

namespace detail {

#ifdef CONVNET_X86
/// 16 floats to 16 bf16, exactly as to_bf16 does each (AVX-512 integer arithmetic, no VCVTNEPS2BF16,
/// which flushes subnormals).
__attribute__((target("avx512f,avx512bw,avx512vl"))) inline __m256i to_bf16_x16(__m512 values) {
  const __m512i bits = _mm512_castps_si512(values);
  const __m512i magnitude = _mm512_and_si512(bits, _mm512_set1_epi32(0x7fffffff));
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(magnitude, _mm512_set1_epi32(0x7f800000));
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7fff))), 16);
  rounded = _mm512_mask_or_epi32(rounded, nan, _mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x40));
  return _mm512_cvtepi32_epi16(rounded);
}

/// `count` floats to bf16 (any count: the tail is masked).
__attribute__((target("avx512f,avx512bw,avx512vl"))) inline void to_bf16_avx512(const float* in, Bf16* out, Index count) {
  Index i = 0;
  for (; i + 16 <= count; i += 16) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), to_bf16_x16(_mm512_loadu_ps(in + i)));
  }
  if (i < count) {
    const __mmask16 m = static_cast<__mmask16>((1u << (count - i)) - 1);
    const __m256i v = to_bf16_x16(_mm512_maskz_loadu_ps(m, in + i));
    _mm256_mask_storeu_epi16(out + i, m, v);
  }
}
#endif

}  // namespace detail

}  // namespace convnet
