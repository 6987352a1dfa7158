// Matrix products in bf16: C = alpha * op(A) * op(B) + beta * C on row-major fp32 matrices, with
// A and B rounded to bf16 (to nearest, ties to even) as they are packed, products accumulated in
// fp32 and C kept in fp32: the mixed-precision recipe's GEMM (Kalamkar et al. 2019).
//
// On a host with AMX (MatrixPath::Amx) the product runs on the tile unit. A is packed into tiles
// of 16 rows x 32 bf16 (1 KiB each, contiguous, so a tile load reads consecutive lines), B into
// VNNI pairs (tile row r holds B[2r][j], B[2r+1][j] for 16 columns j), both padded with zeros to
// whole tiles. A 2 x 2 block of 16 x 16 fp32 accumulators (tiles 0-3) takes two A tiles (4, 5)
// and two B tiles (6, 7) per step of 32 along K: TDPBF16PS four times, a load for each product.
// Here a tile load, not the product, sets the pace: 15 ns a tile on the Sapphire Rapids hosts we
// measured (68 GB/s from L1, the same from one address; a product's operands take as long to load
// as the product takes), so the 2 x 2 block — the fewest loads per product that 8 tiles allow — runs
// whole along K with its accumulators in tiles, and chunking K for L1 measured slower (the reloads of
// the accumulators cost more than L1 saved). B is taken a window of columns at a time (about 1 MiB,
// kept in L2) while every row block of A passes it; full blocks with alpha 1 and beta 0 or 1 are
// stored straight into C, others go through a scratch stripe.
//
// Every other host runs the same arithmetic's reference: the fp32 kernel (gemm.hpp) on the
// bf16-rounded operands, so results agree across hosts to fp32 accumulation order.
//
// A layer multiplies one matrix (its weights) by many (the images of a batch): PackedBf16Matrix
// packs it once. Buffers are grow-only: once shapes are stable a product allocates nothing.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
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

template <class V>
void grow(V& v, Index n) {
  if (static_cast<Index>(v.size()) < n) v.resize(static_cast<std::size_t>(n));
}

inline void require_path(MatrixPath path, const char* where) {
  if (static_cast<int>(path) > static_cast<int>(best_matrix_path())) {
    throw ArgumentError(std::string(where) + ": path " + to_string(path) + " is not available on this host (" +
                        cpu_features().describe() + ")");
  }
}

inline bool has_avx512bw() { return cpu_features().avx512bw && cpu_features().avx512vl; }

/// `count` floats from `in` to bf16 at `out`, then zeros up to `padded`.
inline void round_row(const float* in, Index count, Index padded, Bf16* out) {
  Index done = 0;
#ifdef CONVNET_X86
  if (has_avx512bw()) {
    to_bf16_avx512(in, out, count);
    done = count;
  }
#endif
  for (; done < count; ++done) out[done] = to_bf16(in[done]);
  std::fill(out + count, out + padded, Bf16{0});
}

/// op(A) (m x k) as tiles: for each group of 16 rows and each step of 32 along K, 16 x 32 bf16
/// (512 values). Zeros past m and k.
inline void pack_a_tiles(Transpose ta, Index m, Index k, const float* a, Index lda, Index mp, Index kp, Bf16* out) {
  const Index steps = kp / 32;
  parallel_for(mp, !in_parallel_region() && mp * kp >= (Index{1} << 16), [&](Index i, int) {
    thread_local std::vector<Bf16> row;
    grow(row, kp);
    if (i >= m) {
      std::fill(row.begin(), row.begin() + kp, Bf16{0});
    } else if (ta == Transpose::No) {
      round_row(a + i * lda, k, kp, row.data());
    } else {
      for (Index j = 0; j < k; ++j) row[static_cast<std::size_t>(j)] = to_bf16(a[j * lda + i]);
      std::fill(row.begin() + k, row.begin() + kp, Bf16{0});
    }
    Bf16* group = out + (i / 16) * steps * 512 + (i % 16) * 32;
    for (Index s = 0; s < steps; ++s) std::memcpy(group + s * 512, row.data() + s * 32, 64);
  });
}

#ifdef CONVNET_X86
/// Rows `even` and `odd` (null: zeros), 16 columns each, rounded and interleaved into 16 pairs.
__attribute__((target("avx512f,avx512bw,avx512vl"))) inline void interleave_pair_avx512(const float* even,
                                                                                       const float* odd, Index cols,
                                                                                       Bf16* dst) {
  const __mmask16 mask = static_cast<__mmask16>(cols >= 16 ? 0xffff : (1u << cols) - 1);
  const __m512 e = even ? _mm512_maskz_loadu_ps(mask, even) : _mm512_setzero_ps();
  const __m512 o = odd ? _mm512_maskz_loadu_ps(mask, odd) : _mm512_setzero_ps();
  const __m512i lo = _mm512_cvtepu16_epi32(to_bf16_x16(e)), hi = _mm512_cvtepu16_epi32(to_bf16_x16(o));
  _mm512_storeu_si512(dst, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
}
#endif

/// op(B) (k x n) as VNNI pairs: for each block of 16 columns, kp / 2 rows of 16 pairs
/// (B[2r][j], B[2r + 1][j]) — the layout TDPBF16PS takes its second operand in. Zeros past k, n.
/// B comes a stored row at a time from `row(index, scratch)`, which returns the row (a pointer
/// into B, or `scratch` filled with it): rows of op(B) (n values) when tb is No, its columns
/// (k values) when tb is Yes. So a convolution packs its columns as im2col makes them, without
/// writing the fp32 column matrix.
template <class RowFn>
void pack_b_pairs(Transpose tb, Index k, Index n, const RowFn& row, Index np, Index kp, Bf16* out) {
  const Index blocks = np / 16;
  const bool parallel = !in_parallel_region() && np * kp >= (Index{1} << 16);
  if (tb == Transpose::No) {
    // One pair of rows at a time, written to every block's row of pairs.
    parallel_for(kp / 2, parallel, [&](Index p, int) {
      thread_local std::vector<float> scratch;
      grow(scratch, 2 * n);
      const Index r = 2 * p;
      const float* even = r < k ? row(r, scratch.data()) : nullptr;
      const float* odd = r + 1 < k ? row(r + 1, scratch.data() + n) : nullptr;
      for (Index block = 0; block < blocks; ++block) {
        const Index j0 = block * 16, cols = std::max<Index>(0, std::min<Index>(16, n - j0));
        Bf16* dst = out + block * kp * 16 + p * 32;
#ifdef CONVNET_X86
        if (has_avx512bw()) {
          interleave_pair_avx512(even && cols ? even + j0 : nullptr, odd && cols ? odd + j0 : nullptr, cols, dst);
          continue;
        }
#endif
        for (Index j = 0; j < 16; ++j) {
          dst[2 * j] = even && j < cols ? to_bf16(even[j0 + j]) : Bf16{0};
          dst[2 * j + 1] = odd && j < cols ? to_bf16(odd[j0 + j]) : Bf16{0};
        }
      }
    });
    return;
  }
  // Transposed: a pair (B[2p][j], B[2p + 1][j]) is adjacent in stored row j. Each of a block's 16
  // rows is rounded whole, then the pairs are transposed into place.
  parallel_for(blocks, parallel, [&](Index block, int) {
    thread_local std::vector<Bf16> rows;
    thread_local std::vector<float> scratch;
    grow(rows, 16 * kp);
    grow(scratch, k);
    for (Index jj = 0; jj < 16; ++jj) {
      const Index j = block * 16 + jj;
      Bf16* rounded = rows.data() + jj * kp;
      if (j < n) {
        round_row(row(j, scratch.data()), k, kp, rounded);
      } else {
        std::fill(rounded, rounded + kp, Bf16{0});
      }
    }
    // A pair moves as 4 bytes (memcpy: the buffers hold 16-bit values, not 32-bit ones).
    Bf16* dst = out + block * kp * 16;
    for (Index p = 0; p < kp / 2; ++p) {
      for (Index jj = 0; jj < 16; ++jj) std::memcpy(dst + (p * 16 + jj) * 2, rows.data() + jj * kp + 2 * p, 4);
    }
  });
}

/// C (rows x cols at c, ldc) = alpha * S + beta * C, S at `s` with row stride `lds`.
inline void merge_stripe(const float* s, Index lds, Index rows, Index cols, float alpha, float beta, float* c,
                         Index ldc) {
  for (Index i = 0; i < rows; ++i) {
    float* out = c + i * ldc;
    const float* in = s + i * lds;
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
  // GCC 12's LDTILECFG builtin does not tell the compiler that it reads memory, so without this
  // barrier the stores above may be dropped or moved past it (seen at -O2: colsb left zero, #GP).
  __asm__ volatile("" : : "m"(config) : "memory");
  _tile_loadconfig(&config);
}

__attribute__((target("amx-tile"))) inline void release_tiles() { _tile_release(); }

/// One step of 32 along K for the 2 x 2 block: accumulators 0-3 += the A tiles at a0 (rows 0-15) and
/// a1 (16-31) times the B tiles at b0 (columns 0-15) and b1 (16-31). Tiles are not renamed: a load
/// into a tile waits for the products still reading it, so each load is placed just before its
/// first use and the next one overlaps the product before it. Strides in bytes.
__attribute__((target("amx-tile,amx-bf16"))) inline void amx_step_2x2(const Bf16* a0, const Bf16* a1, long a_stride,
                                                                       const Bf16* b0, const Bf16* b1, long b_stride) {
  _tile_loadd(4, a0, a_stride);
  _tile_loadd(6, b0, b_stride);
  _tile_dpbf16ps(0, 4, 6);
  _tile_loadd(7, b1, b_stride);
  _tile_dpbf16ps(1, 4, 7);
  _tile_loadd(5, a1, a_stride);
  _tile_dpbf16ps(2, 5, 6);
  _tile_dpbf16ps(3, 5, 7);
}

/// The 2 x 2 block's accumulators from or to 32 x 32 floats at c (row stride ld floats).
__attribute__((target("amx-tile"))) inline void amx_load_block(const float* c, Index ld) {
  const long stride = static_cast<long>(ld * sizeof(float));
  _tile_loadd(0, c, stride);
  _tile_loadd(1, c + 16, stride);
  _tile_loadd(2, c + 16 * ld, stride);
  _tile_loadd(3, c + 16 * ld + 16, stride);
}
__attribute__((target("amx-tile"))) inline void amx_store_block(float* c, Index ld) {
  const long stride = static_cast<long>(ld * sizeof(float));
  _tile_stored(0, c, stride);
  _tile_stored(1, c + 16, stride);
  _tile_stored(2, c + 16 * ld, stride);
  _tile_stored(3, c + 16 * ld + 16, stride);
}
__attribute__((target("amx-tile"))) inline void amx_zero_block() {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
}

/// acc (32 x 32 fp32, row stride ld floats) (+)= A rows (a0: 16, a1: the next 16) x B columns (b0: 16,
/// b1: the next 16) over `steps` steps of 32 along K; starting from zero unless `accumulate`.
__attribute__((target("amx-tile,amx-bf16"))) inline void amx_block_32x32(const Bf16* a0, const Bf16* a1,
                                                                          const Bf16* b0, const Bf16* b1, Index steps,
                                                                          float* acc, Index ld, bool accumulate) {
  if (accumulate) {
    amx_load_block(acc, ld);
  } else {
    amx_zero_block();
  }
  for (Index s = 0; s < steps; ++s) amx_step_2x2(a0 + s * 512, a1 + s * 512, 64, b0 + s * 512, b1 + s * 512, 64);
  amx_store_block(acc, ld);
}

/// C = alpha * A B + beta * C from packed tiles (A: mp x kp, B: kp x np).
inline void amx_products(const Bf16* pa, const Bf16* pb, Index m, Index n, Index mp, Index np, Index kp, float alpha,
                         float beta, float* c, Index ldc) {
  const Index row_blocks = mp / 32, col_blocks = np / 32;
  const Index window = std::max<Index>(1, std::min<Index>(col_blocks, (Index{1} << 20) / (32 * kp * 2)));
  const Index windows = (col_blocks + window - 1) / window, units = windows * row_blocks;
  const bool direct_ok = alpha == 1.0f && (beta == 0.0f || beta == 1.0f);
  const auto run = [&](Index first, Index last) {  // units [first, last): window-major
    thread_local std::vector<float> scratch;
    grow(scratch, 32 * window * 32);
    configure_tiles();
    for (Index u = first; u < last; ++u) {
      const Index w = u / row_blocks, bi = u % row_blocks;
      const Index j0 = w * window * 32, width = std::min<Index>(window * 32, np - j0);
      const Index i0 = bi * 32, rows = std::min<Index>(32, m - i0), cols = std::min<Index>(width, n - j0);
      // Full blocks of C with alpha 1 and beta 0 or 1 accumulate in C itself; others in the scratch stripe.
      const bool direct = direct_ok && rows == 32 && cols == width;
      float* acc = direct ? c + i0 * ldc + j0 : scratch.data();
      const Index ld = direct ? ldc : width;
      const Bf16* a0 = pa + bi * 32 * kp;
      const Bf16* a1 = a0 + 16 * kp;
      for (Index jb = 0; jb < width / 32; ++jb) {
        const Bf16* b0 = pb + (j0 / 32 + jb) * 32 * kp;
        amx_block_32x32(a0, a1, b0, b0 + 16 * kp, kp / 32, acc + jb * 32, ld, direct && beta == 1.0f);
      }
      if (!direct) merge_stripe(scratch.data(), width, rows, cols, alpha, beta, c + i0 * ldc + j0, ldc);
    }
    release_tiles();
  };
  if (in_parallel_region() || num_threads() == 1 || units == 1) {
    run(0, units);
    return;
  }
#ifdef _OPENMP
#pragma omp parallel
  {
    const Index threads = omp_get_num_threads(), id = omp_get_thread_num();
    run(units * id / threads, units * (id + 1) / threads);
  }
#else
  run(0, units);
#endif
}
#endif

/// The calling thread's packed B (grow-only).
inline std::vector<Bf16>& packed_b_buffer() {
  thread_local std::vector<Bf16> buffer;
  return buffer;
}
inline std::vector<float>& rounded_b_buffer() {
  thread_local std::vector<float> buffer;
  return buffer;
}

}  // namespace detail

/// op(A) rounded to bf16 and laid out for one path's products, to be multiplied by many B: a
/// layer packs its weights once a pass and multiplies them by every image of the batch.
class PackedBf16Matrix {
 public:
  /// Packs op(A) (m x k, from `a` with row stride lda) for `path`; a path the host lacks is an ArgumentError.
  void pack(Transpose ta, Index m, Index k, const float* a, Index lda, MatrixPath path = matrix_path()) {
    // Checked before require_option is called: its std::string `where` would allocate on every pack.
    if (m < 0 || k < 0) detail::require_option(false, "PackedBf16Matrix", "m, k", ">= 0", m < 0 ? m : k);
    detail::require_path(path, "PackedBf16Matrix");
    m_ = m;
    k_ = k;
    path_ = path;
    if (path == MatrixPath::Amx) {
      mp_ = detail::round_up(m, 32);
      kp_ = detail::round_up(std::max<Index>(k, 1), 32);
      detail::grow(tiles_, mp_ * kp_);
      detail::pack_a_tiles(ta, m, k, a, lda, mp_, kp_, tiles_.data());
      return;
    }
    detail::grow(rounded_, m * k);  // op(A) row-major, each value rounded to bf16
    for (Index i = 0; i < m; ++i) {
      for (Index j = 0; j < k; ++j) rounded_[i * k + j] = round_to_bf16(ta == Transpose::No ? a[i * lda + j] : a[j * lda + i]);
    }
  }

  Index rows() const { return m_; }
  Index depth() const { return k_; }
  MatrixPath path() const { return path_; }

  /// C (m x n) = alpha * this * op(B) + beta * C, op(B) k x n.
  void multiply(Transpose tb, Index n, float alpha, const float* b, Index ldb, float beta, float* c, Index ldc) const {
    multiply_rows(tb, n, [b, ldb](Index r, Index first, Index, float*) { return b + r * ldb + first; }, alpha, beta,
                  c, ldc);
  }

  /// The same with B's stored rows made on demand: `row(index, first, count, scratch)` returns
  /// values [first, first + count) of stored row `index` (of op(B) when tb is No, n values a row;
  /// of B when tb is Yes, k values a row), a pointer to them or `scratch` (room for `count` floats)
  /// filled with them.
  ///
  /// B is packed and multiplied a window of columns at a time, about 1 MiB of packed B, so that
  /// it is still in L2 when the tiles read it (a convolution's columns for one image of the
  /// paper's conv2 are 3.5 MB packed).
  template <class RowFn>
  void multiply_rows(Transpose tb, Index n, const RowFn& row, float alpha, float beta, float* c, Index ldc) const {
    detail::require_option(n >= 0, "gemm_bf16", "n", ">= 0", n);
    if (m_ == 0 || n == 0) return;
#ifdef CONVNET_X86
    if (path_ == MatrixPath::Amx) {
      const Index window = std::max<Index>(32, (Index{1} << 20) / (2 * kp_) / 32 * 32);
      std::vector<Bf16>& packed = detail::packed_b_buffer();
      detail::grow(packed, detail::round_up(std::min(window, n), 32) * kp_);
      for (Index j0 = 0; j0 < n; j0 += window) {
        const Index width = std::min(window, n - j0), np = detail::round_up(width, 32);
        const auto window_row = [&](Index r, float* scratch) -> const float* {
          return tb == Transpose::No ? row(r, j0, width, scratch) : row(j0 + r, 0, k_, scratch);
        };
        detail::pack_b_pairs(tb, k_, width, window_row, np, kp_, packed.data());
        detail::amx_products(tiles_.data(), packed.data(), m_, width, mp_, np, kp_, alpha, beta, c + j0, ldc);
      }
      return;
    }
#endif
    // The reference: the fp32 kernel on the rounded operands, what every host can run.
    const Index rows = tb == Transpose::No ? k_ : n, length = tb == Transpose::No ? n : k_;
    std::vector<float>& rb = detail::rounded_b_buffer();
    detail::grow(rb, rows * length + length);  // the last `length`: scratch for a generated row
    float* scratch = rb.data() + rows * length;
    for (Index r = 0; r < rows; ++r) {
      const float* values = row(r, 0, length, scratch);
      for (Index j = 0; j < length; ++j) rb[static_cast<std::size_t>(r * length + j)] = round_to_bf16(values[j]);
    }
    if (beta != 0.0f && beta != 1.0f) {  // the fp32 kernel takes beta 0 or 1: scale C first
      for (Index i = 0; i < m_; ++i) {
        for (Index j = 0; j < n; ++j) c[i * ldc + j] *= beta;
      }
      beta = 1.0f;
    }
    gemm<float>(Transpose::No, tb, m_, n, k_, alpha, rounded_.data(), std::max<Index>(k_, 1), rb.data(),
                std::max<Index>(length, 1), beta, c, ldc);
  }

 private:
  Index m_ = 0, k_ = 0, mp_ = 0, kp_ = 0;
  MatrixPath path_ = MatrixPath::Fp32;
  std::vector<Bf16> tiles_;
  std::vector<float> rounded_;
};

/// C = alpha * op(A) * op(B) + beta * C with A and B in bf16, on `path` (default: this process's,
/// matrix_path()). A path the host lacks is an ArgumentError.
inline void gemm_bf16(Transpose ta, Transpose tb, Index m, Index n, Index k, float alpha, const float* a, Index lda,
                      const float* b, Index ldb, float beta, float* c, Index ldc, MatrixPath path = matrix_path()) {
  detail::require_option(m >= 0 && n >= 0 && k >= 0, "gemm_bf16", "m, n, k", ">= 0", m < 0 ? m : n < 0 ? n : k);
  detail::require_path(path, "gemm_bf16");
  if (m == 0 || n == 0) return;
  thread_local PackedBf16Matrix packed;
  packed.pack(ta, m, k, a, lda, path);
  packed.multiply(tb, n, alpha, b, ldb, beta, c, ldc);
}

}  // namespace convnet
