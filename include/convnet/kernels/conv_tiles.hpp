// Stride-1 convolutions on the tile unit (AMX) without a column matrix: the "implicit GEMM" that
// oneDNN's AMX convolutions also are. im2col copies every input value k^2 times and Winograd
// transforms it; on small planes with many channels (the fast CIFAR network: 256 channels on 7 x 7)
// that copying, not the products, set the pace (docs/fast.md). Here the products read the picture
// where it lies.
//
// The picture is held as pixels, not planes: a zero-padded (H + 2p) x (W + 2p) grid, each position
// the `channels()` (C rounded up to 32) bf16 values of one pixel. Output position q = oy Wp + ox is
// computed for every ox < Wp (the last k - 1 of a row are thrown away), so that for each kernel
// offset (kh, kw) the 16 positions of a tile row block read 16 consecutive grid positions starting
// at q + kh Wp + kw: one tile load of stride C x 2 bytes, straight from the picture. A step of 32
// along K is one offset and 32 channels; the weights are packed once a pass as the B tiles (VNNI
// pairs of channels for 16 output channels). The waste is the thrown-away columns: 2 of 33 on a
// 31-wide plane, 2 of 9 on 7 x 7.
//
//   forward         out = correlate(x padded by p, W)
//   input gradient  dx  = correlate(dy padded by k - 1 - p, W flipped and transposed): the same
//   weight gradient dW[kh, kw] += dy (as rows of positions) x x shifted by kh Wp + kw: K runs along
//                   the positions of a chunk of images, the accumulators stay in tiles over it. The
//                   B tiles want pairs of consecutive positions interleaved per channel, and a shift
//                   by an odd offset would split the pairs, so the picture is kept paired both ways
//                   (from an even and from an odd position).
//
// Every product is fp32 arithmetic on bf16-rounded operands, like the direct path's (the test holds
// it to fp32 on rounded operands). AMX only: Conv2d takes this path where matrix_path() is Amx.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../tensor.hpp"
#include "bf16.hpp"
#include "gemm_bf16.hpp"

#ifdef CONVNET_X86
#include <immintrin.h>
#endif

namespace convnet::conv_tiles {

/// One group of a stride-1 convolution, as the tile kernels see it.
struct Geometry {
  Index in_channels = 0, out_channels = 0, kernel = 0, padding = 0, height = 0, width = 0;

  Index out_height() const { return height + 2 * padding - kernel + 1; }
  Index out_width() const { return width + 2 * padding - kernel + 1; }
  Index padded_width() const { return width + 2 * padding; }
  /// Input channels as held: whole steps of 32.
  Index channels() const { return detail::round_up(in_channels, 32); }
  /// Output channels as computed: whole 2 x 16 blocks.
  Index out_channels_padded() const { return detail::round_up(out_channels, 32); }
  /// Output positions computed (oy Wp + ox, ox < Wp), in whole blocks of 32.
  Index positions() const { return detail::round_up(out_height() * padded_width(), 32); }
  /// Grid positions a picture holds: every one the last block reads (the real ones and a zero tail).
  Index picture_positions() const { return positions() + (kernel - 1) * (padded_width() + 1); }
  Index picture_size() const { return picture_positions() * channels(); }
  /// Steps of 32 along K: every offset times every 32 channels.
  Index steps() const { return kernel * kernel * channels() / 32; }
  Index packed_weights_size() const { return out_channels_padded() / 16 * steps() * 512; }
  /// Pairs of positions the weight gradient reads, each way.
  Index pairs() const { return picture_positions() / 2 + 1; }

  /// The input gradient's geometry: the output gradient padded by kernel - 1 - padding, correlated
  /// with the flipped, transposed weights (needs padding <= kernel - 1).
  Geometry transposed() const {
    Geometry t;
    t.in_channels = out_channels;
    t.out_channels = in_channels;
    t.kernel = kernel;
    t.padding = kernel - 1 - padding;
    t.height = out_height();
    t.width = out_width();
    return t;
  }
};

/// Whether a convolution of stride `stride` and padding `padding` can run here (and its input
/// gradient: padding <= kernel - 1).
inline bool supports(Index kernel, Index stride, Index padding) {
  return stride == 1 && padding >= 0 && padding <= kernel - 1;
}

/// `x` (in_channels planes of height x width floats) into `out` (picture_size() bf16): the padded
/// grid of pixels, zeros around and past the end.
inline void to_pixels(const Geometry& g, const float* x, Bf16* out) {
  const Index cp = g.channels(), wp = g.padded_width(), c_in = g.in_channels, w = g.width;
  std::fill(out, out + g.picture_size(), Bf16{0});
  thread_local std::vector<Bf16> rows;
  detail::grow(rows, c_in * w);
  for (Index y = 0; y < g.height; ++y) {
    for (Index c = 0; c < c_in; ++c) detail::round_row(x + (c * g.height + y) * w, w, w, rows.data() + c * w);
    Bf16* dst = out + ((y + g.padding) * wp + g.padding) * cp;
    for (Index xx = 0; xx < w; ++xx) {
      for (Index c = 0; c < c_in; ++c) dst[xx * cp + c] = rows[static_cast<std::size_t>(c * w + xx)];
    }
  }
}

/// The weights as the products' B tiles: for each block of 16 output channels and each step
/// (kh, kw, 32 input channels), 16 rows of VNNI pairs (input channels 2r, 2r + 1) for the 16 output
/// channels; zeros past the real channels. weight(o, i, kh, kw) gives each value.
template <class WeightFn>
void pack_weights(const Geometry& g, const WeightFn& weight, std::vector<Bf16>& out) {
  const Index blocks = g.out_channels_padded() / 16, steps = g.steps(), per_offset = g.channels() / 32, k = g.kernel;
  detail::grow(out, g.packed_weights_size());
  for (Index b = 0; b < blocks; ++b) {
    for (Index s = 0; s < steps; ++s) {
      const Index offset = s / per_offset, kh = offset / k, kw = offset % k, c0 = s % per_offset * 32;
      Bf16* tile = out.data() + (b * steps + s) * 512;
      for (Index r = 0; r < 16; ++r) {
        for (Index j = 0; j < 16; ++j) {
          for (Index e = 0; e < 2; ++e) {
            const Index o = b * 16 + j, i = c0 + 2 * r + e;
            tile[(r * 16 + j) * 2 + e] = o < g.out_channels && i < g.in_channels ? to_bf16(weight(o, i, kh, kw)) : Bf16{0};
          }
        }
      }
    }
  }
}

/// dy (out_channels planes of out_height x out_width) as rows of positions for the weight gradient:
/// out_channels_padded() rows of positions() bf16, zeros at the thrown-away columns and past the end.
inline void gradient_rows(const Geometry& g, const float* dy, Bf16* out) {
  const Index positions = g.positions(), wp = g.padded_width(), h = g.out_height(), w = g.out_width();
  std::fill(out, out + g.out_channels_padded() * positions, Bf16{0});
  for (Index o = 0; o < g.out_channels; ++o) {
    for (Index oy = 0; oy < h; ++oy) detail::round_row(dy + (o * h + oy) * w, w, w, out + o * positions + oy * wp);
  }
}

/// A picture's positions in pairs, each channel's two values side by side (the B tiles' VNNI
/// layout along positions): `even` pairs (2t, 2t + 1), `odd` pairs (2t + 1, 2t + 2); pairs() x
/// channels() x 2 each.
inline void position_pairs(const Geometry& g, const Bf16* picture, Bf16* even, Bf16* odd) {
  const Index cp = g.channels(), positions = g.picture_positions(), pairs = g.pairs();
  const auto value = [&](Index p, Index c) { return p < positions ? picture[p * cp + c] : Bf16{0}; };
  for (Index t = 0; t < pairs; ++t) {
    for (Index c = 0; c < cp; ++c) {
      even[(t * cp + c) * 2] = value(2 * t, c);
      even[(t * cp + c) * 2 + 1] = value(2 * t + 1, c);
      odd[(t * cp + c) * 2] = value(2 * t + 1, c);
      odd[(t * cp + c) * 2 + 1] = value(2 * t + 2, c);
    }
  }
}

#ifdef CONVNET_X86
/// out (out_channels planes of out_height x out_width floats) = the picture correlated with the
/// packed weights. The calling thread's tiles must be configured (detail::configure_tiles).
__attribute__((target("amx-tile,amx-bf16"))) inline void correlate(const Geometry& g, const Bf16* picture,
                                                                    const Bf16* packed, float* out) {
  const Index cp = g.channels(), wp = g.padded_width(), k = g.kernel, steps = g.steps(), per_offset = cp / 32;
  const Index h = g.out_height(), w = g.out_width(), plane = h * w;
  const long a_stride = static_cast<long>(cp * sizeof(Bf16));
  alignas(64) float block[32 * 32];
  for (Index bn = 0; bn < g.out_channels_padded() / 32; ++bn) {
    const Bf16* b0 = packed + 2 * bn * steps * 512;
    const Bf16* b1 = b0 + steps * 512;
    for (Index bm = 0; bm < g.positions() / 32; ++bm) {
      detail::amx_zero_block();
      Index s = 0;
      for (Index kh = 0; kh < k; ++kh) {
        for (Index kw = 0; kw < k; ++kw) {
          const Bf16* a = picture + (bm * 32 + kh * wp + kw) * cp;
          for (Index c = 0; c < per_offset; ++c, ++s) {
            detail::amx_step_2x2(a + c * 32, a + 16 * cp + c * 32, a_stride, b0 + s * 512, b1 + s * 512, 64);
          }
        }
      }
      detail::amx_store_block(block, 32);
      // Scatter the block (positions x channels) to the planes, dropping the thrown-away columns.
      const Index first = bm * 32, oy0 = first / wp, ox0 = first % wp;
      for (Index j = 0; j < 32 && bn * 32 + j < g.out_channels; ++j) {
        float* dst = out + (bn * 32 + j) * plane;
        Index oy = oy0, ox = ox0;
        for (Index q = 0; q < 32 && oy < h; ++q) {
          if (ox < w) dst[oy * w + ox] = block[q * 32 + j];
          if (++ox == wp) ox = 0, ++oy;
        }
      }
    }
  }
}

/// acc (kernel^2 x out_channels_padded() x channels() floats) += the weight gradient of `images`
/// images, each given as its gradient_rows (`rows`, one after another) and position_pairs (`even`,
/// `odd`). The calling thread's tiles must be configured.
__attribute__((target("amx-tile,amx-bf16"))) inline void accumulate_weight_gradient(const Geometry& g, Index images,
                                                                                     const Bf16* rows, const Bf16* even,
                                                                                     const Bf16* odd, float* acc) {
  const Index cp = g.channels(), coutp = g.out_channels_padded(), positions = g.positions(), k = g.kernel;
  const Index wp = g.padded_width(), rows_size = coutp * positions, pairs_size = g.pairs() * cp * 2;
  const long a_stride = static_cast<long>(positions * sizeof(Bf16)), b_stride = static_cast<long>(cp * 2 * sizeof(Bf16));
  for (Index kh = 0; kh < k; ++kh) {
    for (Index kw = 0; kw < k; ++kw) {
      const Index offset = kh * wp + kw;
      for (Index bm = 0; bm < coutp / 32; ++bm) {
        for (Index bn = 0; bn < cp / 32; ++bn) {
          float* c = acc + ((kh * k + kw) * coutp + bm * 32) * cp + bn * 32;
          detail::amx_load_block(c, cp);
          for (Index n = 0; n < images; ++n) {
            const Bf16* a = rows + n * rows_size + bm * 32 * positions;
            for (Index q = 0; q < positions; q += 32) {
              const Index base = q + offset;
              const Bf16* b = (base % 2 == 0 ? even + n * pairs_size + base / 2 * cp * 2
                                             : odd + n * pairs_size + (base - 1) / 2 * cp * 2) + bn * 64;
              detail::amx_step_2x2(a + q, a + 16 * positions + q, a_stride, b, b + 32, b_stride);
            }
          }
          detail::amx_store_block(c, cp);
        }
      }
    }
  }
}
#endif

}  // namespace convnet::conv_tiles
