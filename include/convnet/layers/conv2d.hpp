// Conv2d: 2-D convolution (cross-correlation, as every framework), with stride,
// zero padding and groups, lowered to matrix products in one of three ways.
//
// The tiles (kernels/conv_tiles.hpp) for stride-1 layers with bf16 products on an
// AMX host (uses_tiles says which): the products read the picture, held as bf16
// pixels, where it lies, with no column matrix, in all three passes.
// Winograd (kernels/winograd.hpp) for stride-1 3 x 3 and 5 x 5 layers with
// enough channels (uses_winograd says which): 4 to 6.25 times fewer
// multiplications, in all three passes. Everything else takes the direct path:
//
// Shapes:  input [N, C_in, H, W] -> output [N, C_out, H_out, W_out],
//          H_out = (H + 2*padding - kernel) / stride + 1 (likewise W_out);
//          weight [C_out, C_in/groups, kernel, kernel], bias [C_out].
// groups = 2 is the paper's two-GPU split (§3.2): each half of the output
// channels sees only its half of the input channels.
//
// Direct lowering (im2col): for each image and group, the receptive fields are copied
// into a column matrix col [C_in/groups * k * k, H_out * W_out]; then
//   forward   out_g      = W_g * col            (+ bias)
//   backward  dW_g      += dout_g * col^T
//             dcol       = W_g^T * dout_g, scattered back by col2im
// so all the arithmetic runs in Eigen's GEMM. Work is split over the images of
// the batch when there are at least as many images as threads (each thread has
// its own column buffer and, in backward, its own weight-gradient partial sum,
// added up in thread order afterwards); otherwise images run one after another
// and Eigen parallelises each product.
#pragma once

#include <memory>
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "../errors.hpp"
#include "../kernels/gemm.hpp"
#include "../kernels/conv_tiles.hpp"
#include "../kernels/gemm_bf16.hpp"
#include "../init.hpp"
#include "../kernels/winograd.hpp"
#include "../key_values.hpp"
#include "../layer.hpp"
#include "../threading.hpp"

namespace convnet {

/// How a convolution computes: Auto picks per shape (see Conv2d::uses_winograd and uses_tiles);
/// Direct is im2col and matrix products; Winograd is F(4x4, 3x3) or F(4x4, 5x5)
/// (kernels/winograd.hpp) and needs stride 1, a 3 x 3 or 5 x 5 kernel and
/// padding <= kernel - 1, or the constructor refuses it; Tiles is the direct convolution on the
/// matrix unit without a column matrix (kernels/conv_tiles.hpp), for bf16 products on an AMX host
/// (elsewhere it computes as Direct), and needs stride 1 and padding <= kernel - 1.
enum class ConvAlgorithm { Auto, Direct, Winograd, Tiles };

struct Conv2dOptions {
  Conv2dOptions(Index in_channels, Index out_channels, Index kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}

  Conv2dOptions& stride(Index v) { stride_ = v; return *this; }
  Conv2dOptions& padding(Index v) { padding_ = v; return *this; }
  Conv2dOptions& groups(Index v) { groups_ = v; return *this; }
  Conv2dOptions& bias(bool v) { bias_ = v; return *this; }
  /// Seed of the default initialisation (init.hpp); unset: the next of the process-wide sequence.
  Conv2dOptions& seed(std::uint64_t v) { seed_ = v; return *this; }
  Conv2dOptions& algorithm(ConvAlgorithm v) { algorithm_ = v; return *this; }

  Index in_channels() const { return in_channels_; }
  Index out_channels() const { return out_channels_; }
  Index kernel_size() const { return kernel_size_; }
  Index stride() const { return stride_; }
  Index padding() const { return padding_; }
  Index groups() const { return groups_; }
  bool bias() const { return bias_; }
  std::optional<std::uint64_t> seed() const { return seed_; }
  ConvAlgorithm algorithm() const { return algorithm_; }

 private:
  Index in_channels_, out_channels_, kernel_size_;
  Index stride_ = 1, padding_ = 0, groups_ = 1;
  bool bias_ = true;
  std::optional<std::uint64_t> seed_;
  ConvAlgorithm algorithm_ = ConvAlgorithm::Auto;
};

template <class T>
class Conv2d : public Layer<T> {
 public:
  explicit Conv2d(const Conv2dOptions& options) : options_(options) {
    const std::string where = "Conv2d";
    detail::require_option(options_.in_channels() >= 1, where, "in_channels", ">= 1", options_.in_channels());
    detail::require_option(options_.out_channels() >= 1, where, "out_channels", ">= 1", options_.out_channels());
    detail::require_option(options_.kernel_size() >= 1, where, "kernel_size", ">= 1", options_.kernel_size());
    detail::require_option(options_.stride() >= 1, where, "stride", ">= 1", options_.stride());
    detail::require_option(options_.padding() >= 0, where, "padding", ">= 0", options_.padding());
    detail::require_option(options_.groups() >= 1, where, "groups", ">= 1", options_.groups());
    detail::require_option(options_.in_channels() % options_.groups() == 0, where, "groups",
                           detail::concat("a divisor of in_channels (", options_.in_channels(), ")").c_str(),
                           options_.groups());
    detail::require_option(options_.out_channels() % options_.groups() == 0, where, "groups",
                           detail::concat("a divisor of out_channels (", options_.out_channels(), ")").c_str(),
                           options_.groups());
    // The weight's size, checked before it is computed in Index (or allocated): at most 2^31 values.
    const double weights = static_cast<double>(options_.out_channels()) * static_cast<double>(options_.in_channels()) /
                           static_cast<double>(options_.groups()) * static_cast<double>(options_.kernel_size()) *
                           static_cast<double>(options_.kernel_size());
    detail::require_option(weights <= 2147483648.0, where, "out_channels x in_channels / groups x kernel_size^2",
                           "at most 2^31 weights", weights);
    set_algorithm(options_.algorithm());
    weight_ = Vector<T>::Zero(options_.out_channels() * col_rows());
    weight_grad_ = GradientBuffer<T>(weight_.size());
    if (options_.bias()) {
      bias_ = Vector<T>::Zero(options_.out_channels());
      bias_grad_ = GradientBuffer<T>(options_.out_channels());
    }
    const auto params = parameters();
    const std::uint64_t seed = options_.seed() ? *options_.seed() : next_default_seed();
    init::layer_default(params[0], options_.bias() ? &params[1] : nullptr, seed);
  }

  const Conv2dOptions& options() const { return options_; }

  /// Changes how this layer computes from its next call on (a network built by
  /// make_alexnet, a loaded one); the results agree to rounding.
  void set_algorithm(ConvAlgorithm algorithm) {
    if (algorithm == ConvAlgorithm::Winograd && !winograd::supports(options_.kernel_size(), options_.stride(), options_.padding())) {
      throw ArgumentError(detail::concat(
          "Conv2d: algorithm Winograd needs stride 1, kernel_size 3 or 5 and padding <= kernel_size - 1; got stride ",
          options_.stride(), ", kernel_size ", options_.kernel_size(), ", padding ", options_.padding()));
    }
    if (algorithm == ConvAlgorithm::Tiles && !conv_tiles::supports(options_.kernel_size(), options_.stride(), options_.padding())) {
      throw ArgumentError(detail::concat("Conv2d: algorithm Tiles needs stride 1 and padding <= kernel_size - 1; got stride ",
                                         options_.stride(), ", kernel_size ", options_.kernel_size(), ", padding ",
                                         options_.padding()));
    }
    options_.algorithm(algorithm);
  }
  std::string type_name() const override { return "Conv2d"; }
  /// The layer settings() describes (the registry's factory; models/layer_registry.hpp).
  static std::unique_ptr<Conv2d> from_settings(KeyValues& s) { return std::make_unique<Conv2d>(options_from(s)); }
  /// The parameters' shapes those settings give, nothing built (weight, then bias).
  static std::vector<std::vector<Index>> parameter_shapes(KeyValues& s) {
    const Conv2dOptions o = options_from(s);
    const Index k = o.kernel_size();
    std::vector<std::vector<Index>> shapes{{o.out_channels(), o.groups() >= 1 ? o.in_channels() / o.groups() : 0, k, k}};
    if (o.bias()) shapes.push_back({o.out_channels()});
    return shapes;
  }
  static Conv2dOptions options_from(KeyValues& s) {
    return Conv2dOptions(s.take<Index>("in_channels"), s.take<Index>("out_channels"), s.take<Index>("kernel_size"))
        .stride(s.take<Index>("stride", 1))
        .padding(s.take<Index>("padding", 0))
        .groups(s.take<Index>("groups", 1))
        .bias(s.take("bias", true));
  }
  LayerSettings settings() const override {
    using detail::setting_value;
    return {{"in_channels", setting_value(options_.in_channels())}, {"out_channels", setting_value(options_.out_channels())},
            {"kernel_size", setting_value(options_.kernel_size())},  {"stride", setting_value(options_.stride())},
            {"padding", setting_value(options_.padding())},          {"groups", setting_value(options_.groups())},
            {"bias", setting_value(options_.bias())}};
  }
  std::string describe() const override {
    return detail::concat("Conv2d(", options_.in_channels(), " -> ", options_.out_channels(), ", kernel ",
                          options_.kernel_size(), ", stride ", options_.stride(), ", padding ", options_.padding(),
                          ", groups ", options_.groups(), options_.bias() ? "" : ", no bias", ")");
  }

  Shape output_shape(const Shape& in) const override {
    const Index k = options_.kernel_size();
    if (in.n < 1 || in.c != options_.in_channels() || in.h + 2 * options_.padding() < k ||
        in.w + 2 * options_.padding() < k) {
      const Index min_side = std::max<Index>(1, k - 2 * options_.padding());
      this->input_error(detail::concat("[N >= 1, ", options_.in_channels(), ", H >= ", min_side, ", W >= ",
                                       min_side, "]"),
                        in);
    }
    return Shape{in.n, options_.out_channels(), (in.h + 2 * options_.padding() - k) / options_.stride() + 1,
                 (in.w + 2 * options_.padding() - k) / options_.stride() + 1};
  }

  Index macs_per_sample(const Shape& in) const override {
    const Shape out = output_shape(Shape{1, in.c, in.h, in.w});
    return out.c * out.plane() * col_rows();
  }

  std::vector<Parameter<T>> parameters() override {
    const Index k = options_.kernel_size();
    std::vector<Parameter<T>> params;
    params.push_back(Parameter<T>{"weight", {options_.out_channels(), options_.in_channels() / options_.groups(), k, k},
                                  weight_.data(), weight_grad_.data(), weight_.size(), true});
    if (options_.bias()) {
      params.push_back(Parameter<T>{"bias", {options_.out_channels()}, bias_.data(), bias_grad_.data(),
                                    bias_.size(), false});
    }
    return params;
  }

  /// Weight as [C_out, C_in/groups * k * k] (row g*C_out/groups + i holds filter i of group g).
  MatrixMap<T> weight() { return MatrixMap<T>(weight_.data(), options_.out_channels(), col_rows()); }
  VectorMap<T> bias() { return VectorMap<T>(bias_.data(), bias_.size()); }
  MatrixMap<T> weight_grad() { return weight_grad_.matrix(options_.out_channels(), col_rows()); }
  VectorMap<T> bias_grad() { return bias_grad_.vector(); }

 protected:
  void forward_impl(const Tensor<T>& input, Tensor<T>& output) override {
    const Shape in = shape_of(input), out = shape_of(output);
    const Index groups = options_.groups(), cout_g = options_.out_channels() / groups;
    const Index cin_g = options_.in_channels() / groups, plane_out = out.plane();
    if (uses_tiles(in)) {
      tiles_forward(input, output);
      return;
    }
    if (uses_winograd(in)) {
      const winograd::Geometry geo = winograd_geometry(in, out);
      for (Index g = 0; g < groups; ++g) {
        winograd_transform_weights(g, false);
        const T* bias = options_.bias() ? bias_.data() + g * cout_g : nullptr;
        winograd_correlate(geo, input.data() + g * cin_g * in.plane(), bias, output.data() + g * cout_g * plane_out);
      }
      return;
    }
    // One work item per image and group: the paper's two groups keep both
    // threads busy even at batch 1 (conv4 and conv5: 2.4 -> 1.5 ms).
    const bool by_item = in.n * groups >= num_threads();
    prepare_workspace(by_item ? num_threads() : 1, plane_out, false);
    pack_weights(false);
    detail::parallel_for(in.n * groups, by_item, [&](Index item, int thread) {
      const Index n = item / groups, g = item % groups;
      const T* x = input.data() + (n * in.c + g * cin_g) * in.plane();
      T* out_g = output.data() + (n * out.c + g * cout_g) * plane_out;
      if (!columns_product(g, x, in, out, out_g)) {
        Matrix<T>& col = columns_[thread];
        im2col(x, in.h, in.w, out.h, out.w, col);
        weight_product(g, false, col.data(), plane_out, out_g);
      }
      if (options_.bias()) MatrixMap<T>(out_g, cout_g, plane_out).colwise() += bias_.segment(g * cout_g, cout_g);
    });
  }

  void backward_impl(const Tensor<T>& input, const Tensor<T>& grad_output, Tensor<T>& grad_input) override {
    const Shape in = shape_of(input), out = shape_of(grad_output);
    const Index groups = options_.groups(), cout_g = options_.out_channels() / groups;
    const Index cin_g = options_.in_channels() / groups, plane_out = out.plane();
    if (uses_tiles(in)) {
      tiles_backward(input, grad_output, grad_input);
      return;
    }
    if (uses_winograd(in)) {
      winograd_backward(input, grad_output, grad_input);
      return;
    }
    const int threads = in.n >= num_threads() ? num_threads() : 1;
    const bool trainable = this->trainable();  // a frozen layer computes the input gradient alone
    prepare_workspace(threads, plane_out, true);
    if (this->input_gradient()) pack_weights(true);
    for (int t = 0; trainable && t < threads; ++t) {
      partial_weight_grad_[t].setZero();
      if (options_.bias()) partial_bias_grad_[t].setZero();
    }
    detail::parallel_for(in.n, threads > 1, [&](Index n, int thread) {
      Matrix<T>& grad_col = grad_columns_[thread];
      for (Index g = 0; g < groups; ++g) {
        const Index in_offset = (n * in.c + g * cin_g) * in.plane();
        const T* dout_g = grad_output.data() + (n * out.c + g * cout_g) * plane_out;
        // dW_g += dout_g * col^T;  dcol = W_g^T * dout_g
        T* dw = partial_weight_grad_[thread].data() + g * cout_g * col_rows();
        if (trainable && !columns_weight_grad(input.data() + in_offset, dout_g, in, out, dw)) {
          Matrix<T>& col = columns_[thread];
          im2col(input.data() + in_offset, in.h, in.w, out.h, out.w, col);
          accumulate_weight_grad(dout_g, col.data(), plane_out, dw);
        }
        if (trainable && options_.bias()) {
          partial_bias_grad_[thread].segment(g * cout_g, cout_g) +=
              ConstMatrixMap<T>(dout_g, cout_g, plane_out).rowwise().sum();
        }
        if (!this->input_gradient()) continue;
        weight_product(g, true, dout_g, plane_out, grad_col.data());
        col2im(grad_col, in.h, in.w, out.h, out.w, grad_input.data() + in_offset);
      }
    });
    for (int t = 0; trainable && t < threads; ++t) {
      weight_grad_.vector() += partial_weight_grad_[t];
      if (options_.bias()) bias_grad_.vector() += partial_bias_grad_[t];
    }
  }

 public:
  /// Whether this layer computes through Winograd for inputs of shape `in`:
  /// when asked to, or (Auto) where it measured faster than the direct path:
  /// stride 1, 3 x 3 or 5 x 5, at least 16 input and output channels a group
  /// (with fewer, transforming the tiles costs more than the products save)
  /// and enough output tiles of 4 x 4 in the batch: 64 for 3 x 3, 16 for
  /// 5 x 5. With fewer, the weights' transform, done every call, outweighs
  /// the products (3 x 3 layers of cifar at batch 1: 0.4 ms direct, 1.3
  /// Winograd); 5 x 5 saves 6.25x the products instead of 4x and wins even at
  /// batch 1 (paper conv2: 5.9 -> 1.8 ms, cifar conv2: 1.4 -> 0.7 ms).
  /// At bf16 the products of F(4x4, 3x3) and F(4x4, 5x5) lose too much: their
  /// transforms (points +-2, +-1/2) spread each bf16 rounding over the output,
  /// 5-7% of its largest value against 0.2% for the direct path (test
  /// Bf16Layers.WinogradAtBf16StaysNearTheDirectPathsError). So at bf16 3 x 3
  /// layers take F(2x2, 3x3) (0.4%, 2.25x fewer products) with bf16 products,
  /// and 5 x 5 layers the direct path on the tiles, which measured as fast as
  /// F(4x4, 5x5) with bf16 products (cifar conv2 at batch 128: 23 and 60 ms
  /// forward and backward either way) and faster than it in fp32 (31, 69).
  bool uses_winograd(const Shape& in) const {
    if (options_.algorithm() == ConvAlgorithm::Direct || options_.algorithm() == ConvAlgorithm::Tiles) return false;
    if (uses_tiles(in)) return false;
    if (!winograd::supports(options_.kernel_size(), options_.stride(), options_.padding())) return false;
    if (options_.algorithm() == ConvAlgorithm::Winograd) return true;
    if (options_.in_channels() / options_.groups() < 16 || options_.out_channels() / options_.groups() < 16) return false;
    if (this->bf16_products() && options_.kernel_size() == 5) return false;
    const Shape out = output_shape(in);
    const Index tile = winograd_tile();
    const Index tiles = in.n * ((out.h + tile - 1) / tile) * ((out.w + tile - 1) / tile);
    return tiles >= (options_.kernel_size() == 5 ? kMinTiles5 : kMinTiles3);
  }

  /// Whether this layer computes on the matrix unit without a column matrix (kernels/conv_tiles.hpp)
  /// for inputs of shape `in`: only with bf16 products on an AMX host, at stride 1 and padding <=
  /// kernel - 1; when asked to, or (Auto) with at least 16 input and output channels a group (fewer
  /// would leave most of each 32-channel step zeros) and at least half of the positions it computes
  /// real outputs (it computes whole rows of the padded width in blocks of 32: a 3 x 3 plane takes
  /// 32 positions for 9 outputs, and there F(2x2, 3x3) measured faster, 39 against 56 ms a step
  /// for the fast CIFAR network's conv6 at batch 512; 7 x 7 takes 64 for 49 and is 1.2x faster).
  bool uses_tiles(const Shape& in) const {
    if (!this->bf16_products() || matrix_path() != MatrixPath::Amx) return false;
    if (!conv_tiles::supports(options_.kernel_size(), options_.stride(), options_.padding())) return false;
    if (options_.algorithm() == ConvAlgorithm::Tiles) return true;
    if (options_.algorithm() != ConvAlgorithm::Auto) return false;
    if (options_.in_channels() / options_.groups() < 16 || options_.out_channels() / options_.groups() < 16) return false;
    const conv_tiles::Geometry g = tiles_geometry(in);
    return 2 * g.out_height() * g.out_width() >= g.positions();
  }

 private:
  // Output tiles: F(4x4, 3x3) (alpha 6) and F(4x4, 5x5) (alpha 8). Measured
  // against F(6x6, 3x3), which wastes most of its larger tiles on 13 x 13 and
  // 7 x 7 planes, and F(2x2, 5x5), which saves 2.8x the products instead of 6.25x.
  static constexpr int kTile3 = 4, kTile5 = 4, kTile3Bf16 = 2;
  // Whether the Winograd products run in bf16: only F(2x2, 3x3)'s (see uses_winograd).
  bool bf16_winograd() const { return this->bf16_products() && options_.kernel_size() == 3; }
  Index winograd_tile() const { return options_.kernel_size() == 5 ? kTile5 : bf16_winograd() ? kTile3Bf16 : kTile3; }
  static constexpr Index kMinTiles3 = 64, kMinTiles5 = 16;  // the measured rule above
  winograd::Geometry winograd_geometry(const Shape& in, const Shape& out) const {
    winograd::Geometry geo;
    geo.batch = in.n;
    geo.in_channels = options_.in_channels() / options_.groups();
    geo.out_channels = options_.out_channels() / options_.groups();
    geo.height = in.h;
    geo.width = in.w;
    geo.out_height = out.h;
    geo.out_width = out.w;
    geo.padding = options_.padding();
    geo.in_image_stride = in.c * in.plane();
    geo.out_image_stride = out.c * out.plane();
    return geo;
  }

  // Group g's weights into the shared workspace, for the forward pass or (flip) the input gradient.
  void winograd_transform_weights(Index g, bool flip) {
    const Index cout_g = options_.out_channels() / options_.groups(), cin_g = options_.in_channels() / options_.groups();
    const Index alpha = winograd_tile() + options_.kernel_size() - 1;
    winograd::Workspace<T>& ws = winograd::shared_workspace<T>();
    winograd::Workspace<T>::grow(ws.weights, alpha * alpha * cout_g * cin_g);
    const T* w = weight_.data() + g * cout_g * col_rows();
    if (bf16_winograd()) {
      winograd::transform_weights<kTile3Bf16, 3>(w, cout_g, cin_g, flip, ws.weights.data(), ws);
    } else if (options_.kernel_size() == 3) {
      winograd::transform_weights<kTile3, 3>(w, cout_g, cin_g, flip, ws.weights.data(), ws);
    } else {
      winograd::transform_weights<kTile5, 5>(w, cout_g, cin_g, flip, ws.weights.data(), ws);
    }
    if constexpr (std::is_same_v<T, float>) {  // at bf16 the products take the transformed weights packed
      if (bf16_winograd()) {
        winograd::pack_points(ws.weights.data(), alpha * alpha, flip ? cin_g : cout_g, flip ? cout_g : cin_g,
                              winograd_packed_);
      }
    }
  }

  const PackedBf16Matrix* winograd_packed() const { return bf16_winograd() ? winograd_packed_.data() : nullptr; }

  void winograd_correlate(const winograd::Geometry& geo, const T* in, const T* bias, T* out) {
    winograd::Workspace<T>& ws = winograd::shared_workspace<T>();
    if (bf16_winograd()) {
      winograd::correlate<kTile3Bf16, 3>(geo, in, ws.weights.data(), bias, out, ws, winograd_packed());
    } else if (options_.kernel_size() == 3) {
      winograd::correlate<kTile3, 3>(geo, in, ws.weights.data(), bias, out, ws, winograd_packed());
    } else {
      winograd::correlate<kTile5, 5>(geo, in, ws.weights.data(), bias, out, ws, winograd_packed());
    }
  }

  void winograd_backward(const Tensor<T>& input, const Tensor<T>& grad_output, Tensor<T>& grad_input) {
    const Shape in = shape_of(input), out = shape_of(grad_output);
    const Index groups = options_.groups(), cout_g = options_.out_channels() / groups, cin_g = options_.in_channels() / groups;
    const winograd::Geometry geo = winograd_geometry(in, out);
    for (Index g = 0; g < groups; ++g) {
      const T* x = input.data() + g * cin_g * in.plane();
      const T* dy = grad_output.data() + g * cout_g * out.plane();
      T* dw = weight_grad_.data() + g * cout_g * col_rows();
      if (!this->trainable()) {  // frozen: the input gradient alone
      } else if (bf16_winograd()) {
        winograd::weight_gradient<kTile3Bf16, 3>(geo, x, dy, dw, winograd::shared_workspace<T>(), true);
      } else if (options_.kernel_size() == 3) {
        winograd::weight_gradient<kTile3, 3>(geo, x, dy, dw, winograd::shared_workspace<T>());
      } else {
        winograd::weight_gradient<kTile5, 5>(geo, x, dy, dw, winograd::shared_workspace<T>());
      }
      if (!this->input_gradient()) continue;
      // The input gradient is the output gradient correlated with the flipped,
      // transposed weights, padded by kernel - 1 - padding: a forward pass.
      winograd::Geometry back;
      back.batch = in.n;
      back.in_channels = cout_g;
      back.out_channels = cin_g;
      back.height = out.h;
      back.width = out.w;
      back.out_height = in.h;
      back.out_width = in.w;
      back.padding = options_.kernel_size() - 1 - options_.padding();
      back.in_image_stride = out.c * out.plane();
      back.out_image_stride = in.c * in.plane();
      winograd_transform_weights(g, true);
      winograd_correlate(back, dy, nullptr, grad_input.data() + g * cin_g * in.plane());
    }
    if (options_.bias() && this->trainable()) {
      for (Index n = 0; n < in.n; ++n) {
        bias_grad_.vector() += ConstMatrixMap<T>(grad_output.data() + n * out.c * out.plane(), out.c, out.plane()).rowwise().sum();
      }
    }
  }

  // ---- the tile path (kernels/conv_tiles.hpp) ----

  conv_tiles::Geometry tiles_geometry(const Shape& in) const {
    conv_tiles::Geometry g;
    g.in_channels = options_.in_channels() / options_.groups();
    g.out_channels = options_.out_channels() / options_.groups();
    g.kernel = options_.kernel_size();
    g.padding = options_.padding();
    g.height = in.h;
    g.width = in.w;
    return g;
  }

  // Each group's weights as B tiles, for the forward pass or (transposed) the input gradient.
  void tiles_pack(const conv_tiles::Geometry& g, bool transposed) {
    std::vector<std::vector<Bf16>>& packed = transposed ? tiles_packed_t_ : tiles_packed_;
    const Index groups = options_.groups(), k = g.kernel, cin_g = g.in_channels, cout_g = g.out_channels;
    if (static_cast<Index>(packed.size()) < groups) packed.resize(static_cast<std::size_t>(groups));
    for (Index group = 0; group < groups; ++group) {
      const T* w = weight_.data() + group * cout_g * col_rows();
      const auto at = [&](Index o, Index i, Index kh, Index kw) { return static_cast<float>(w[((o * cin_g + i) * k + kh) * k + kw]); };
      if (transposed) {
        conv_tiles::pack_weights(g.transposed(), [&](Index o, Index i, Index kh, Index kw) { return at(i, o, k - 1 - kh, k - 1 - kw); },
                                 packed[group]);
      } else {
        conv_tiles::pack_weights(g, at, packed[group]);
      }
    }
  }

  void tiles_forward(const Tensor<T>& input, Tensor<T>& output) {
#ifdef CONVNET_X86
    if constexpr (std::is_same_v<T, float>) {
      const Shape in = shape_of(input), out = shape_of(output);
      const conv_tiles::Geometry g = tiles_geometry(in);
      const Index groups = options_.groups();
      tiles_pack(g, false);
      detail::parallel_for(in.n, in.n > 1, [&](Index n, int) {
        thread_local std::vector<Bf16> picture;
        detail::grow(picture, g.picture_size());
        detail::configure_tiles();
        for (Index group = 0; group < groups; ++group) {
          conv_tiles::to_pixels(g, input.data() + (n * in.c + group * g.in_channels) * in.plane(), picture.data());
          T* y = output.data() + (n * out.c + group * g.out_channels) * out.plane();
          conv_tiles::correlate(g, picture.data(), tiles_packed_[group].data(), y);
          if (options_.bias()) {
            MatrixMap<T>(y, g.out_channels, out.plane()).colwise() += bias_.segment(group * g.out_channels, g.out_channels);
          }
        }
        detail::release_tiles();
      });
    }
#else
    (void)input, (void)output;
#endif
  }

  // Images a thread takes at once for the weight gradient: their rows and pairs within about 1 MiB
  // (L2), so that the accumulators load and store once per chunk, not per image.
  static Index tiles_chunk(const conv_tiles::Geometry& g) {
    const Index bytes = (g.out_channels_padded() * g.positions() + 4 * g.pairs() * g.channels()) * Index{sizeof(Bf16)};
    return std::clamp<Index>((Index{1} << 20) / std::max<Index>(bytes, 1), 1, 16);
  }

  void tiles_backward(const Tensor<T>& input, const Tensor<T>& grad_output, Tensor<T>& grad_input) {
#ifdef CONVNET_X86
    if constexpr (std::is_same_v<T, float>) {
      const Shape in = shape_of(input), out = shape_of(grad_output);
      const conv_tiles::Geometry g = tiles_geometry(in), back = g.transposed();
      const Index groups = options_.groups(), k = g.kernel, cp = g.channels(), coutp = g.out_channels_padded();
      const bool trainable = this->trainable(), input_gradient = this->input_gradient();
      if (input_gradient) tiles_pack(g, true);
      const Index chunk = tiles_chunk(g), chunks = (in.n + chunk - 1) / chunk, acc_size = k * k * coutp * cp;
      const int threads = chunks > 1 ? num_threads() : 1;
      if (static_cast<int>(tiles_partial_.size()) < threads) tiles_partial_.resize(static_cast<std::size_t>(threads));
      for (int t = 0; trainable && t < threads; ++t) {
        detail::grow(tiles_partial_[t], groups * acc_size);
        std::fill(tiles_partial_[t].begin(), tiles_partial_[t].begin() + groups * acc_size, 0.0f);
      }
      const Index rows_size = coutp * g.positions(), pairs_size = g.pairs() * cp * 2;
      detail::parallel_for(chunks, threads > 1, [&](Index c, int thread) {
        thread_local std::vector<Bf16> picture, rows, even, odd;
        detail::grow(picture, std::max(g.picture_size(), back.picture_size()));
        if (trainable) {
          detail::grow(rows, chunk * rows_size);
          detail::grow(even, chunk * pairs_size);
          detail::grow(odd, chunk * pairs_size);
        }
        const Index first = c * chunk, count = std::min(chunk, in.n - first);
        detail::configure_tiles();
        for (Index group = 0; group < groups; ++group) {
          for (Index i = 0; i < count; ++i) {
            const Index n = first + i;
            const T* dy = grad_output.data() + (n * out.c + group * g.out_channels) * out.plane();
            const T* x = input.data() + (n * in.c + group * g.in_channels) * in.plane();
            if (input_gradient) {
              conv_tiles::to_pixels(back, dy, picture.data());
              conv_tiles::correlate(back, picture.data(), tiles_packed_t_[group].data(),
                                    grad_input.data() + (n * in.c + group * g.in_channels) * in.plane());
            }
            if (!trainable) continue;
            conv_tiles::to_pixels(g, x, picture.data());
            conv_tiles::position_pairs(g, picture.data(), even.data() + i * pairs_size, odd.data() + i * pairs_size);
            conv_tiles::gradient_rows(g, dy, rows.data() + i * rows_size);
          }
          if (trainable) {
            conv_tiles::accumulate_weight_gradient(g, count, rows.data(), even.data(), odd.data(),
                                                   tiles_partial_[thread].data() + group * acc_size);
          }
        }
        detail::release_tiles();
      });
      if (!trainable) return;
      // The partial sums, in thread order, into dW[o][i][kh][kw] (the accumulators hold [kh kw][o][i]).
      const Index cin_g = g.in_channels, cout_g = g.out_channels;
      for (int t = 0; t < threads; ++t) {
        for (Index group = 0; group < groups; ++group) {
          const float* acc = tiles_partial_[t].data() + group * acc_size;
          T* dw = weight_grad_.data() + group * cout_g * col_rows();
          for (Index o = 0; o < cout_g; ++o) {
            for (Index i = 0; i < cin_g; ++i) {
              for (Index r = 0; r < k * k; ++r) dw[(o * cin_g + i) * k * k + r] += acc[(r * coutp + o) * cp + i];
            }
          }
        }
      }
      if (options_.bias()) {
        for (Index n = 0; n < in.n; ++n) {
          bias_grad_.vector() += ConstMatrixMap<T>(grad_output.data() + n * out.c * out.plane(), out.c, out.plane()).rowwise().sum();
        }
      }
    }
#else
    (void)input, (void)grad_output, (void)grad_input;
#endif
  }

  // The direct path's products, in the layer's precision. At bf16 each group's weights are packed
  // once a pass (kernels/gemm_bf16.hpp) and multiplied by every image's columns.
  void pack_weights(bool transposed) {
    if constexpr (std::is_same_v<T, float>) {
      if (!this->bf16_products()) return;
      const Index groups = options_.groups(), cout_g = options_.out_channels() / groups;
      std::vector<PackedBf16Matrix>& packed = transposed ? packed_weights_t_ : packed_weights_;
      if (static_cast<Index>(packed.size()) < groups) packed.resize(static_cast<std::size_t>(groups));
      for (Index g = 0; g < groups; ++g) {
        const T* w_g = weight_.data() + g * cout_g * col_rows();
        if (transposed) {
          packed[g].pack(Transpose::Yes, col_rows(), cout_g, w_g, col_rows());
        } else {
          packed[g].pack(Transpose::No, cout_g, col_rows(), w_g, col_rows());
        }
      }
    }
  }

  // c = W_g b (forward: b the columns, n x plane) or W_g^T b (the columns' gradient: b = dout_g).
  void weight_product(Index g, bool transposed, const T* b, Index n, T* c) {
    const Index cout_g = options_.out_channels() / options_.groups();
    if constexpr (std::is_same_v<T, float>) {
      if (this->bf16_products()) {
        (transposed ? packed_weights_t_ : packed_weights_)[g].multiply(Transpose::No, n, 1.0f, b, n, 0.0f, c, n);
        return;
      }
    }
    const T* w_g = weight_.data() + g * cout_g * col_rows();
    if (transposed) {
      gemm(Transpose::Yes, Transpose::No, col_rows(), n, cout_g, T(1), w_g, col_rows(), b, n, T(0), c, n);
    } else {
      gemm(Transpose::No, Transpose::No, cout_g, n, col_rows(), T(1), w_g, col_rows(), b, n, T(0), c, n);
    }
  }

  // dw (cout_g x col_rows) += dout_g (cout_g x plane) col^T, in fp32 (or double).
  void accumulate_weight_grad(const T* dout_g, const T* col, Index plane, T* dw) {
    const Index cout_g = options_.out_channels() / options_.groups();
    gemm(Transpose::No, Transpose::Yes, cout_g, col_rows(), plane, T(1), dout_g, plane, col, plane, T(1), dw, col_rows());
  }

  // At bf16 the columns are never stored in fp32: each row of col is made as the packing asks for
  // it and rounded straight into the tiles' layout (in the cache, one row at a time), which saves
  // writing and reading the column matrix: paper conv1's is 4.4 MB an image.
  // out_g = W_g col; false (nothing done) unless the layer computes in bf16.
  bool columns_product(Index g, const T* x, const Shape& in, const Shape& out, T* out_g) {
    if constexpr (std::is_same_v<T, float>) {
      if (!this->bf16_products()) return false;
      packed_weights_[g].multiply_rows(
          Transpose::No, out.plane(),
          [&](Index r, Index first, Index count, float* row) {
            return im2col_row(x, r, in.h, in.w, out.h, out.w, row, first, count);
          },
          1.0f, 0.0f, out_g, out.plane());
      return true;
    }
    return false;
  }

  // dw += dout_g col^T; false (nothing done) unless the layer computes in bf16.
  bool columns_weight_grad(const T* x, const T* dout_g, const Shape& in, const Shape& out, T* dw) {
    if constexpr (std::is_same_v<T, float>) {
      if (!this->bf16_products()) return false;
      thread_local PackedBf16Matrix packed_grad;
      const Index cout_g = options_.out_channels() / options_.groups();
      packed_grad.pack(Transpose::No, cout_g, out.plane(), dout_g, out.plane());
      packed_grad.multiply_rows(
          Transpose::Yes, col_rows(),
          [&](Index r, Index, Index, float* row) { return im2col_row(x, r, in.h, in.w, out.h, out.w, row); },
          1.0f, 1.0f, dw, col_rows());
      return true;
    }
    return false;
  }

  Index col_rows() const {
    return options_.in_channels() / options_.groups() * options_.kernel_size() * options_.kernel_size();
  }

  void prepare_workspace(int threads, Index plane_out, bool backward) {
    if (static_cast<int>(columns_.size()) < threads) columns_.resize(threads);
    for (int t = 0; t < threads && !this->bf16_products(); ++t) {  // bf16 makes the columns row by row
      if (columns_[t].rows() != col_rows() || columns_[t].cols() != plane_out) columns_[t].resize(col_rows(), plane_out);
    }
    if (!backward) return;
    if (static_cast<int>(grad_columns_.size()) < threads) {
      grad_columns_.resize(threads);
      partial_weight_grad_.resize(threads, Vector<T>::Zero(weight_.size()));
      partial_bias_grad_.resize(threads, Vector<T>::Zero(bias_.size()));
    }
    for (int t = 0; t < threads; ++t) {
      if (grad_columns_[t].rows() != col_rows() || grad_columns_[t].cols() != plane_out) {
        grad_columns_[t].resize(col_rows(), plane_out);
      }
    }
  }

  // col[(c*k + i)*k + j, oy*W_out + ox] = x[c, oy*stride - pad + i, ox*stride - pad + j], 0 outside.
  void im2col(const T* x, Index h, Index w, Index h_out, Index w_out, Matrix<T>& col) const {
    for (Index r = 0; r < col_rows(); ++r) im2col_row(x, r, h, w, h_out, w_out, col.data() + r * h_out * w_out);
  }

  // Entries [first, first + count) of row r of col (all h_out * w_out of them by default) into
  // `row`; returns `row`.
  T* im2col_row(const T* x, Index r, Index h, Index w, Index h_out, Index w_out, T* row, Index first = 0,
                Index count = -1) const {
    const Index k = options_.kernel_size(), s = options_.stride(), p = options_.padding();
    const Index c = r / (k * k), i = r / k % k, j = r % k;
    if (count < 0) count = h_out * w_out - first;
    // Output columns [lo, hi) read inside the row (0 <= ox * s - p + j < w); the rest are padding.
    const Index lo = std::min(w_out, std::max<Index>(0, (p - j + s - 1) / s));
    const Index last = w - 1 + p - j;  // the largest ox * s that stays inside; none when negative
    const Index hi = last < 0 ? lo : std::max(lo, std::min(w_out, last / s + 1));
    for (Index oy = first / w_out; oy * w_out < first + count; ++oy) {
      // This output row's part of the range, [from, to) in its columns.
      const Index from = std::max<Index>(0, first - oy * w_out), to = std::min(w_out, first + count - oy * w_out);
      T* dst = row + (oy * w_out + from - first);  // dst[ox - from] is column ox's place
      const Index y = oy * s - p + i;
      if (y < 0 || y >= h) {
        std::fill(dst, dst + (to - from), T(0));
        continue;
      }
      const T* src = x + (c * h + y) * w;  // column ox reads src[ox * s + j - p]
      const Index a = std::clamp(lo, from, to), b = std::clamp(hi, a, to);
      std::fill(dst, dst + (a - from), T(0));
      if (s == 1) {
        std::copy(src + (a + j - p), src + (b + j - p), dst + (a - from));
      } else {
        for (Index ox = a; ox < b; ++ox) dst[ox - from] = src[ox * s + j - p];
      }
      std::fill(dst + (b - from), dst + (to - from), T(0));
    }
    return row;
  }

  // The adjoint of im2col: overwrites dx with the sum of every column entry that reads it.
  void col2im(const Matrix<T>& col, Index h, Index w, Index h_out, Index w_out, T* dx) const {
    const Index k = options_.kernel_size(), s = options_.stride(), p = options_.padding();
    const Index channels = options_.in_channels() / options_.groups();
    std::fill(dx, dx + channels * h * w, T(0));
    for (Index c = 0; c < channels; ++c) {
      for (Index i = 0; i < k; ++i) {
        for (Index j = 0; j < k; ++j) {
          const T* row = col.data() + ((c * k + i) * k + j) * h_out * w_out;
          for (Index oy = 0; oy < h_out; ++oy) {
            const Index y = oy * s - p + i;
            if (y < 0 || y >= h) continue;
            const T* src = row + oy * w_out;
            T* dst = dx + (c * h + y) * w;
            for (Index ox = 0; ox < w_out; ++ox) {
              const Index xx = ox * s - p + j;
              if (xx >= 0 && xx < w) dst[xx] += src[ox];
            }
          }
        }
      }
    }
  }

  Conv2dOptions options_;
  Vector<T> weight_, bias_;
  GradientBuffer<T> weight_grad_, bias_grad_;
  // Workspaces, one per thread, kept across calls so steady-state steps do not allocate.
  std::vector<Matrix<T>> columns_, grad_columns_;
  std::vector<Vector<T>> partial_weight_grad_, partial_bias_grad_;
  std::vector<PackedBf16Matrix> packed_weights_, packed_weights_t_;  // bf16: W_g and W_g^T, a pass's
  std::vector<PackedBf16Matrix> winograd_packed_;  // bf16: the transformed weights of the group in hand
  std::vector<std::vector<Bf16>> tiles_packed_, tiles_packed_t_;  // the tile path's weights, a group each
  std::vector<std::vector<float>> tiles_partial_;  // the tile path's weight gradient, a thread each
};

}  // namespace convnet
