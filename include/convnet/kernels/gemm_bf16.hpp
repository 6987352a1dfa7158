// Matrix products in bf16: C = alpha * op(A) * op(B) + beta * C on row-major fp32 matrices, with
// A and B rounded to bf16 (to nearest, ties to even) as they are packed, products accumulated in
// fp32 and C kept in fp32: the mixed-precision recipe's GEMM (Kalamkar et al. 2019).
//
// On a host with AMX (matrix_path() == MatrixPath::Amx) the product runs on the tile unit: A is
// packed into rows of 32 bf16, B into VNNI pairs (tile row r holds B[2r][j], B[2r+1][j]), both
// padded with zeros to whole tiles, each tile's 1 KiB contiguous, and a 2x2 block of 16x16 fp32 accumulators (tiles 0-3) takes
// two A tiles (4, 5) and two B tiles (6, 7) per step of 32 along K: TDPBF16PS four times. Every
// other host runs the same arithmetic's reference: the fp32 kernel (gemm.hpp) on the bf16-rounded
// operands, so results agree across hosts to fp32 accumulation order.
//
// Packing buffers are the calling thread's and grow only: once shapes are stable a product
// allocates nothing.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "../cpu_features.hpp"
#include "../errors.hpp"
#include "../tensor.hpp"
#include "../threading.hpp"
#include "bf16.hpp"
#include "gemm.hpp"

#ifdef CONVNET_X86
#include <immintrin.h>
#endif

namespace convnet {

namespace detail {

inline Index round_up(Index v, Index to) { return (v + to - 1) / to * to; }

/// The packed operands of one product, the calling thread's (grow-only).
struct Bf16Packing {
  std::vector<Bf16> a, b;
  std::vector<float> rounded_a, rounded_b;  // the reference path's bf16-valued fp32 copies
  template <class V>
  static void grow(V& v, std::size_t n) {
    if (v.size() < n) v.resize(n);
  }
};
inline Bf16Packing& bf16_packing() {
  thread_local Bf16Packing packing;
  return packing;
}

#ifdef CONVNET_X86
/// 16 whole columns of B (row-major, from `b`, stride ldb): rows r and r + 1 rounded and interleaved
/// into 16 pairs a row, zero rows past k.
__attribute__((target("avx512f,avx512bw,avx512vl"))) inline void pack_b_pairs_avx512(const float* b, Index ldb, Index k,
                                                                                    Index kp, Bf16* dst) {
  for (Index r = 0; r < kp; r += 2) {
    const __m512 even = r < k ? _mm512_loadu_ps(b + r * ldb) : _mm512_setzero_ps();
    const __m512 odd = r + 1 < k ? _mm512_loadu_ps(b + (r + 1) * ldb) : _mm512_setzero_ps();
    const __m512i lo = _mm512_cvtepu16_epi32(to_bf16_x16(even)), hi = _mm512_cvtepu16_epi32(to_bf16_x16(odd));
    _mm512_storeu_si512(dst + (r / 2) * 32, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
  }
}
#endif

/// op(A) (m x k) into `out` as whole tiles: for each group of 16 rows and each step of 32 along K,
/// 16 x 32 bf16 in 1 KiB, so a tile load reads consecutive lines (rows kp apart would alias in L1).
/// Zeros past m and k.
inline void pack_a_bf16(Transpose ta, Index m, Index k, const float* a, Index lda, Index mp, Index kp, Bf16* out) {
  const Index steps = kp / 32;
  detail::parallel_for(mp, !in_parallel_region(), [&](Index i, int) {
    thread_local std::vector<Bf16> row;
    if (static_cast<Index>(row.size()) < kp) row.resize(static_cast<std::size_t>(kp));
    Index done = 0;
    if (i < m) {
#ifdef CONVNET_X86
      if (ta == Transpose::No && cpu_features().avx512bw && cpu_features().avx512vl) {
        detail::to_bf16_avx512(a + i * lda, row.data(), k);
        done = k;
      }
#endif
      for (; done < k; ++done) row[static_cast<std::size_t>(done)] = to_bf16(ta == Transpose::No ? a[i * lda + done] : a[done * lda + i]);
    }
    std::fill(row.begin() + done, row.begin() + kp, Bf16{0});
    Bf16* group = out + (i / 16) * steps * 512 + (i % 16) * 32;
    for (Index s = 0; s < steps; ++s) std::copy(row.data() + s * 32, row.data() + s * 32 + 32, group + s * 512);
  });
}

/// op(B) (k x n) into `out`: for each block of 16 columns, kp / 2 rows of 16 pairs
/// (B[2r][j], B[2r + 1][j]): the layout TDPBF16PS takes its second operand in.
inline void pack_b_bf16(Transpose tb, Index k, Index n, const float* b, Index ldb, Index np, Index kp, Bf16* out) {
  const auto at = [&](Index r, Index c) -> float {
    if (r >= k || c >= n) return 0.0f;
    return tb == Transpose::No ? b[r * ldb + c] : b[c * ldb + r];
  };
  detail::parallel_for(np / 16, !in_parallel_region(), [&](Index block, int) {
    Bf16* dst = out + block * kp * 16;
    const Index j0 = block * 16;
#ifdef CONVNET_X86
    if (tb == Transpose::No && j0 + 16 <= n && cpu_features().avx512bw && cpu_features().avx512vl) {
      pack_b_pairs_avx512(b + j0, ldb, k, kp, dst);
      return;
    }
#endif
    for (Index r = 0; r < kp; r += 2) {
      for (Index j = 0; j < 16; ++j) {
        dst[(r / 2) * 32 + 2 * j] = to_bf16(at(r, j0 + j));
        dst[(r / 2) * 32 + 2 * j + 1] = to_bf16(at(r + 1, j0 + j));
      }
    }
  });
}


/// C (m x n, ldc) = alpha * block + beta * C for the valid part of a 32 x 32 block at (i0, j0).
inline void merge_block(const float* block, Index i0, Index j0, Index m, Index n, float alpha, float beta, float* c,
                        Index ldc) {
  const Index rows = std::min<Index>(32, m - i0), cols = std::min<Index>(32, n - j0);
  for (Index i = 0; i < rows; ++i) {
    float* out = c + (i0 + i) * ldc + j0;
    const float* in = block + i * 32;
    if (beta == 0.0f) {  // C is not read: it may hold anything
      for (Index j = 0; j < cols; ++j) out[j] = alpha * in[j];
    } else {
      for (Index j = 0; j < cols; ++j) out[j] = alpha * in[j] + beta * out[j];
    }
  }
}

#ifdef CONVNET_X86
/// The 64-byte tile configuration: palette 1, eight tiles of 16 rows x 64 bytes.
struct alignas(64) TileConfig {
  std::uint8_t palette_id = 1;
  std::uint8_t start_row = 0;
  std::uint8_t reserved[14] = {};
  std::uint16_t colsb[16] = {};
  std::uint8_t rows[16] = {};
};

__attribute__((target("amx-tile"))) inline void configure_tiles() {
  TileConfig config;
  for (int t = 0; t < 8; ++t) {
    config.rows[t] = 16;
    config.colsb[t] = 64;
  }
  _tile_loadconfig(&config);
}

__attribute__((target("amx-tile"))) inline void release_tiles() { _tile_release(); }

/// A 32 x 32 fp32 block (row stride 32) = packed A rows [i0, i0 + 32) x packed B columns [j0, j0 + 32).
__attribute__((target("amx-tile,amx-bf16"))) inline void amx_block_32x32(const Bf16* a, const Bf16* b, Index kp,
                                                                          float* block) {
  const Bf16* a1 = a + 16 * kp;       // rows 16..31: the next group of 16 (kp / 32 tiles of 512)
  const Bf16* b1 = b + kp * 16;       // columns 16..31 (the next block of 16)
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  // Tiles are not renamed: a load into a tile waits for the products still reading it. Each load
  // is placed just before its first use, so the next one overlaps the product before it.
  for (Index k = 0; k < kp; k += 32) {
    _tile_loadd(4, a + k * 16, 64);
    _tile_loadd(6, b + k * 16, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_loadd(7, b1 + k * 16, 64);
    _tile_dpbf16ps(1, 4, 7);
    _tile_loadd(5, a1 + k * 16, 64);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, block, 128);
  _tile_stored(1, block + 16, 128);
  _tile_stored(2, block + 16 * 32, 128);
  _tile_stored(3, block + 16 * 32 + 16, 128);
}

inline void gemm_bf16_amx(Transpose ta, Transpose tb, Index m, Index n, Index k, float alpha, const float* a, Index lda,
                          const float* b, Index ldb, float beta, float* c, Index ldc) {
  const Index mp = round_up(m, 32), np = round_up(n, 32), kp = round_up(std::max<Index>(k, 1), 32);
  Bf16Packing& packing = bf16_packing();
  Bf16Packing::grow(packing.a, static_cast<std::size_t>(mp * kp));
  Bf16Packing::grow(packing.b, static_cast<std::size_t>(np * kp));
  pack_a_bf16(ta, m, k, a, lda, mp, kp, packing.a.data());
  pack_b_bf16(tb, k, n, b, ldb, np, kp, packing.b.data());
  const Bf16* pa = packing.a.data();
  const Bf16* pb = packing.b.data();
  const Index row_blocks = mp / 32, col_blocks = np / 32;
  // Blocks of 32 x 32 in windows of columns whose packed B (window x 32 x kp bf16) stays in a
  // core's L2 while every row block of A streams past it: about 1 MiB of B a window.
  const Index window = std::max<Index>(1, std::min<Index>(col_blocks, (Index{1} << 20) / (32 * kp * 2)));
  const Index windows = (col_blocks + window - 1) / window;
  const auto run = [&](Index first, Index last) {  // blocks [first, last) in window-major order
    configure_tiles();
    alignas(64) float block[32 * 32];
    for (Index t = first; t < last; ++t) {
      const Index w = t / (row_blocks * window), in_window = t % (row_blocks * window);
      const Index bi = in_window / window, bj = w * window + in_window % window;
      if (bj >= col_blocks) continue;  // the last window is narrower
      amx_block_32x32(pa + bi * 32 * kp, pb + bj * 32 * kp, kp, block);
      merge_block(block, bi * 32, bj * 32, m, n, alpha, beta, c, ldc);
    }
    release_tiles();
  };
  const Index blocks = windows * row_blocks * window;
  if (in_parallel_region() || num_threads() == 1 || blocks == 1) {
    run(0, blocks);
    return;
  }
#ifdef _OPENMP
#pragma omp parallel
  {
    const Index threads = omp_get_num_threads(), id = omp_get_thread_num();
    run(blocks * id / threads, blocks * (id + 1) / threads);
  }
#else
  run(0, blocks);
#endif
}
#endif

/// The reference every host can run: the fp32 kernel on the operands rounded to bf16.
inline void gemm_bf16_reference(Transpose ta, Transpose tb, Index m, Index n, Index k, float alpha, const float* a,
                                Index lda, const float* b, Index ldb, float beta, float* c, Index ldc) {
  Bf16Packing& packing = bf16_packing();
  // The stored extent of each operand: its rows at their stride, the last one only as long as it is.
  const Index a_rows = ta == Transpose::No ? m : k, a_cols = ta == Transpose::No ? k : m;
  const Index b_rows = tb == Transpose::No ? k : n, b_cols = tb == Transpose::No ? n : k;
  const Index a_size = a_rows == 0 ? 0 : (a_rows - 1) * lda + a_cols, b_size = b_rows == 0 ? 0 : (b_rows - 1) * ldb + b_cols;
  Bf16Packing::grow(packing.rounded_a, static_cast<std::size_t>(a_size));
  Bf16Packing::grow(packing.rounded_b, static_cast<std::size_t>(b_size));
  for (Index i = 0; i < a_size; ++i) packing.rounded_a[static_cast<std::size_t>(i)] = round_to_bf16(a[i]);
  for (Index i = 0; i < b_size; ++i) packing.rounded_b[static_cast<std::size_t>(i)] = round_to_bf16(b[i]);
  if (beta != 0.0f && beta != 1.0f) {  // the fp32 kernel takes beta 0 or 1: scale C first
    for (Index i = 0; i < m; ++i) {
      for (Index j = 0; j < n; ++j) c[i * ldc + j] *= beta;
    }
    beta = 1.0f;
  }
  gemm<float>(ta, tb, m, n, k, alpha, packing.rounded_a.data(), lda, packing.rounded_b.data(), ldb, beta, c, ldc);
}

}  // namespace detail

/// C = alpha * op(A) * op(B) + beta * C with A and B in bf16, on `path` (default: this process's,
/// matrix_path()). A path the host lacks is an ArgumentError.
inline void gemm_bf16(Transpose ta, Transpose tb, Index m, Index n, Index k, float alpha, const float* a, Index lda,
                      const float* b, Index ldb, float beta, float* c, Index ldc, MatrixPath path = matrix_path()) {
  detail::require_option(m >= 0 && n >= 0 && k >= 0, "gemm_bf16", "m, n, k", ">= 0", m < 0 ? m : n < 0 ? n : k);
  if (m == 0 || n == 0) return;
  if (static_cast<int>(path) > static_cast<int>(best_matrix_path())) {
    throw ArgumentError(std::string("gemm_bf16: path ") + to_string(path) + " is not available on this host (" +
                        cpu_features().describe() + ")");
  }
#ifdef CONVNET_X86
  if (path == MatrixPath::Amx) {
    detail::gemm_bf16_amx(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
#endif
  detail::gemm_bf16_reference(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace convnet
