// Classifier: a trained network ready for pictures. It holds the network, the
// size it reads, the input normalisation it was trained with and the class
// names, and turns any picture into class probabilities:
//
//   Classifier model = Classifier::load("runs/cifar10/best.ckpt");
//   for (const ClassScore& s : model.predict(decode_image("cat.jpg"))) ...   // top-5
//   model.predict(picture, 5, EvalViews::TenCrop);   // the paper's 10-view average (§4.1)
//   ClassificationReport r = model.evaluate(test_set);  // top-1, top-5, confusion matrix
//
// Pictures are prepared as training prepared them (data/preparation.hpp, read
// from the checkpoint): views are the centre, the centre and its mirror, or
// ten crops of the kind training drew - crops of the zero-padded picture for
// the small pipeline (CIFAR), the paper's ten crops of the 256 x 256 picture
// for the paper pipeline; the softmax is averaged over the views.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <numeric>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "../checkpoint/format.hpp"
#include "../data/dataset.hpp"
#include "../data/image.hpp"
#include "../data/preparation.hpp"
#include "../data/transforms.hpp"
#include "../errors.hpp"
#include "../layers/softmax.hpp"
#include "../metrics.hpp"
#include "../models/alexnet.hpp"
#include "../models/saved_network.hpp"
#include "../models/sequential.hpp"

namespace convnet {

struct ClassScore {
  Index label = 0;
  std::string name;
  double probability = 0;
};

/// What evaluate() measured over a dataset.
struct ClassificationReport {
  ClassificationMetrics metrics;  ///< loss (mean -log p of the true class), top-1, top-5
  ConfusionMatrix confusion;
  std::vector<std::string> class_names;
  Index skipped = 0;  ///< pictures left out because they could not be read
};

/// The report as the trainer writes it: top-1, top-5, loss, per-class accuracy, confusion matrix.
inline void print_report(std::ostream& out, const ClassificationReport& r) {
  const Index classes = r.confusion.classes();
  out << std::fixed << std::setprecision(2);
  out << "test top-1: " << 100 * r.metrics.top1_accuracy() << "%\n";
  out << "test top-5: " << 100 * r.metrics.top5_accuracy() << "%\n";
  out << "test loss: " << std::setprecision(4) << r.metrics.loss() << std::setprecision(2) << "\n";
  if (r.skipped > 0) out << "unreadable pictures left out: " << r.skipped << "\n";
  out << "\nper-class accuracy\n";
  auto name = [&](Index c) {
    return c < static_cast<Index>(r.class_names.size()) ? r.class_names[static_cast<std::size_t>(c)]
                                                         : "class " + std::to_string(c);
  };
  for (Index c = 0; c < classes; ++c) {
    out << "  " << std::left << std::setw(12) << name(c) << std::right << std::setw(7)
        << 100 * r.confusion.class_accuracy(c) << "%\n";
  }
  out << "\nconfusion matrix (rows: true class, columns: predicted)\n" << std::setw(12) << "";
  for (Index c = 0; c < classes; ++c) out << std::setw(6) << c;
  out << "\n";
  for (Index t = 0; t < classes; ++t) {
    out << std::setw(3) << t << " " << std::left << std::setw(8) << name(t).substr(0, 8) << std::right;
    for (Index p = 0; p < classes; ++p) out << std::setw(6) << r.confusion.count(t, p);
    out << "\n";
  }
}

class Classifier {
 public:
  /// `net` reads [N, 3, input_size, input_size] normalised with `stats` and gives one score per class
  /// (the small pipeline: pictures fitted to the input size).
  Classifier(Sequential<float> net, Index input_size, ChannelStats stats, std::vector<std::string> class_names)
      : Classifier(std::move(net),
                   Preparation::with_statistics(PreparationOptions().input_size(input_size), std::move(stats)),
                   std::move(class_names)) {}

  /// `net` reads what `preparation` makes of a picture and gives one score per class.
  Classifier(Sequential<float> net, Preparation preparation, std::vector<std::string> class_names)
      : net_(std::move(net)), prep_(std::move(preparation)), names_(std::move(class_names)) {
    input_size_ = prep_.input_size();
    classes_ = net_.output_shape(Shape{1, prep_.channels(), input_size_, input_size_}).c;
    for (Index i = static_cast<Index>(names_.size()); i < classes_; ++i) names_.push_back("class " + std::to_string(i));
    names_.resize(static_cast<std::size_t>(classes_));
    net_.eval();
  }

  /// A checkpoint of any network trained through the Trainer (or converted by tools/export_pytorch.py):
  /// an AlexNet by its 'config' entry, any other network by its 'structure' (load_network); the
  /// 'data/...' entries say how pictures were prepared (Preparation::loaded; without them: the small
  /// pipeline at 32 x 32, pixels scaled to [0, 1]) and 'data/classes' the class names (without: numbered).
  static Classifier load(const std::string& path) { return from_checkpoint(Checkpoint::load(path)); }

  static Classifier from_checkpoint(const Checkpoint& c) {
    if (!c.contains("config")) return from_structure(c);
    AlexNetConfig config;
    try {
      config = AlexNetConfig::parse(c.text("config"));
      require_stored_parameters(c, alexnet_parameter_shapes(config));  // before anything is allocated
    } catch (const std::invalid_argument& e) {
      throw CheckpointError(c.source() + ": " + e.what());
    }
    Preparation preparation = Preparation::loaded(c, config.input_size(), config.input_channels());
    if (preparation.input_size() != config.input_size() || preparation.channels() != config.input_channels()) {
      throw CheckpointError(detail::concat(c.source(), ": data/preparation makes ", preparation.channels(), "x",
                                           preparation.input_size(), "x", preparation.input_size(),
                                           " inputs but the network reads ", config.input_channels(), "x",
                                           config.input_size(), "x", config.input_size()));
    }
    Sequential<float> net = make_alexnet<float>(config);
    net.load(c);
    return Classifier(std::move(net), std::move(preparation), class_names_in(c));
  }

 private:
  /// Any network by its structure; the preparation must make what its first layer reads.
  static Classifier from_structure(const Checkpoint& c) {
    if (!c.contains("structure")) {
      throw CheckpointError(c.source() + " does not say which network it holds (no 'config' or 'structure' entry)");
    }
    Sequential<float> net = load_network<float>(c);
    Preparation preparation = Preparation::loaded(c);
    const Shape input{1, preparation.channels(), preparation.input_size(), preparation.input_size()};
    try {
      net.output_shape(input);
    } catch (const std::exception& e) {
      throw CheckpointError(c.source() + ": its network does not read the " + input.str() + " pictures its preparation makes" +
                            (c.contains("data/preparation") ? "" : " (it holds no data/preparation entry)") + ": " + e.what());
    }
    return Classifier(std::move(net), std::move(preparation), class_names_in(c));
  }
  /// At most 100,000 names (AlexNet's class limit) of at most 256 bytes each: what a checkpoint
  /// says is drawn and printed, so it is never trusted to be small.
  static std::vector<std::string> class_names_in(const Checkpoint& c) {
    static constexpr std::size_t kMaxNames = 100000, kMaxNameBytes = 256;
    std::vector<std::string> names;
    if (!c.contains("data/classes")) return names;
    const std::string& text = c.text("data/classes");
    for (std::size_t begin = 0; begin < text.size();) {
      std::size_t end = text.find('\n', begin);
      if (end == std::string::npos) end = text.size();
      if (end - begin > kMaxNameBytes) {
        throw CheckpointError(detail::concat(c.source(), ": class name ", names.size() + 1, " is ", end - begin,
                                             " bytes long (at most ", kMaxNameBytes, ")"));
      }
      if (end > begin) {
        if (names.size() == kMaxNames) {
          throw CheckpointError(detail::concat(c.source(), ": data/classes lists more than ", kMaxNames, " names"));
        }
        names.push_back(text.substr(begin, end - begin));
      }
      begin = end + 1;
    }
    return names;
  }

 public:
  Index input_size() const { return input_size_; }
  Index classes() const { return classes_; }
  const std::vector<std::string>& class_names() const { return names_; }
  const ChannelStats& channel_stats() const { return prep_.channel_stats(); }
  const Preparation& preparation() const { return prep_; }
  Sequential<float>& network() { return net_; }

  /// The normalised views of a picture the network sees (Preparation::views).
  std::vector<Image> views(Image picture, EvalViews which = EvalViews::Centre) const {
    return prep_.views(std::move(picture), which);
  }

  /// Class probabilities of each picture ([pictures][classes]), averaged over its views.
  std::vector<std::vector<double>> probabilities(const std::vector<Image>& pictures, EvalViews which = EvalViews::Centre) {
    std::vector<std::vector<std::vector<double>>> result(1);
    average_views(pictures, which, {*views_within(which, which)}, result);
    return std::move(result[0]);
  }

  /// The `k` most probable classes of a picture, most probable first.
  std::vector<ClassScore> predict(const Image& picture, Index k = 5, EvalViews which = EvalViews::Centre) {
    return top(probabilities({picture}, which)[0], k);
  }

  /// The `k` highest of `probabilities`, named.
  std::vector<ClassScore> top(const std::vector<double>& probabilities, Index k) const {
    std::vector<std::size_t> order(probabilities.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    const std::size_t n = std::min(order.size(), static_cast<std::size_t>(std::max<Index>(0, k)));
    std::partial_sort(order.begin(), order.begin() + static_cast<long>(n), order.end(),
                      [&](std::size_t a, std::size_t b) { return probabilities[a] > probabilities[b]; });
    std::vector<ClassScore> out;
    for (std::size_t i = 0; i < n; ++i) out.push_back({static_cast<Index>(order[i]), names_[order[i]], probabilities[order[i]]});
    return out;
  }

  /// Top-1, top-5, loss and confusion matrix over the pictures of `data` (all, or the
  /// first `max_pictures`); its labels must be < classes().
  /// With `stop`, it ends early (a partial report) once that flag is set (StopSignals::flag()).
  /// A picture that cannot be decoded (DataError) is left out and counted in `skipped`.
  ClassificationReport evaluate(const Dataset& data, EvalViews which = EvalViews::Centre,
                                std::optional<Index> max_pictures = std::nullopt,
                                const std::atomic<bool>* stop = nullptr) {
    return evaluate(data, std::vector<EvalViews>{which}, max_pictures, stop)[0];
  }

  /// The same under each of `which`, in its order, with as few passes over the pictures as the
  /// views allow: every set whose views are among the widest set's (views_within: the centre and
  /// flip within flip-translate) averages its own views of that one pass, so `convnet train`'s
  /// three test reports of the fast recipe cost six views a picture, not nine. Any other set has
  /// a pass of its own.
  std::vector<ClassificationReport> evaluate(const Dataset& data, const std::vector<EvalViews>& which,
                                             std::optional<Index> max_pictures = std::nullopt,
                                             const std::atomic<bool>* stop = nullptr) {
    std::vector<ClassificationReport> reports(which.size(), {ClassificationMetrics(), ConfusionMatrix(classes_), names_});
    std::vector<bool> done(which.size(), false);
    for (std::size_t first = 0; first < which.size(); ++first) {
      if (done[first]) continue;
      // The pass: the widest set that holds this one's views; with it, every set it holds.
      EvalViews whole = which[first];
      for (EvalViews w : which) {
        if (view_count(w) > view_count(whole) && views_within(which[first], w)) whole = w;
      }
      std::vector<std::size_t> members;
      std::vector<std::vector<std::size_t>> indices;
      for (std::size_t k = first; k < which.size(); ++k) {
        if (done[k]) continue;
        if (auto within = views_within(which[k], whole)) {
          members.push_back(k);
          indices.push_back(std::move(*within));
          done[k] = true;
        }
      }
      std::vector<ClassificationReport> pass = evaluate_within(data, whole, indices, max_pictures, stop);
      for (std::size_t m = 0; m < members.size(); ++m) reports[members[m]] = std::move(pass[m]);
    }
    return reports;
  }

 private:
  /// One pass over `data` under `whole`'s views; a report for each of `parts` (indices into
  /// `whole`'s views), each averaging its own views.
  std::vector<ClassificationReport> evaluate_within(const Dataset& data, EvalViews whole,
                                                    const std::vector<std::vector<std::size_t>>& parts,
                                                    std::optional<Index> max_pictures, const std::atomic<bool>* stop) {
    std::vector<ClassificationReport> reports(parts.size(), {ClassificationMetrics(), ConfusionMatrix(classes_), names_});
    const Index total = max_pictures ? std::clamp<Index>(*max_pictures, 0, data.size()) : data.size();
    const Index chunk = static_cast<Index>(batch_pictures(whole));  // decoded pictures held at once
    std::vector<Image> pictures;
    std::vector<int> labels;
    std::vector<std::vector<std::vector<double>>> probs(parts.size());
    Index skipped = 0;
    for (Index start = 0; start < total && !(stop && stop->load()); start += chunk) {
      const Index count = std::min(chunk, total - start);
      pictures.resize(static_cast<std::size_t>(count));
      labels.clear();
      std::size_t kept = 0;
      for (Index i = 0; i < count; ++i) {
        try {
          data.load(start + i, pictures[kept]);
        } catch (const DataError&) {  // a picture that does not decode is left out and counted
          ++skipped;
          continue;
        }
        labels.push_back(checked_label(data.label(start + i)));
        ++kept;
      }
      pictures.resize(kept);
      average_views(pictures, whole, parts, probs);
      for (std::size_t p = 0; p < parts.size(); ++p) add_to_report(reports[p], probs[p], labels);
    }
    for (auto& r : reports) r.skipped = skipped;
    return reports;
  }

  /// The network over every view of `pictures` under `whole`; out[p][i]: picture i's class
  /// probabilities averaged over the views parts[p] lists.
  void average_views(const std::vector<Image>& pictures, EvalViews whole, const std::vector<std::vector<std::size_t>>& parts,
                     std::vector<std::vector<std::vector<double>>>& out) {
    for (auto& o : out) o.clear();
    const std::size_t per = view_count(whole), chunk = batch_pictures(whole);
    const Index plane = prep_.channels() * input_size_ * input_size_;
    for (std::size_t start = 0; start < pictures.size(); start += chunk) {
      const std::size_t end = std::min(pictures.size(), start + chunk);
      resize(batch_, Shape{static_cast<Index>((end - start) * per), prep_.channels(), input_size_, input_size_});
      for (std::size_t i = start; i < end; ++i) {
        const std::vector<Image> v = views(pictures[i], whole);
        for (std::size_t k = 0; k < per; ++k) {
          std::copy(v[k].pixels.begin(), v[k].pixels.end(),
                    batch_.data() + static_cast<Index>((i - start) * per + k) * plane);
        }
      }
      const Tensor<float>& p = softmax_.forward(net_.forward(batch_));
      for (std::size_t part = 0; part < parts.size(); ++part) {
        const double count = static_cast<double>(parts[part].size());
        for (std::size_t i = 0; i < end - start; ++i) {
          std::vector<double> mean(static_cast<std::size_t>(classes_), 0.0);
          for (std::size_t v : parts[part])
            for (Index c = 0; c < classes_; ++c)
              mean[static_cast<std::size_t>(c)] += p(static_cast<Index>(i * per + v), c, 0, 0) / count;
          out[part].push_back(std::move(mean));
        }
      }
    }
  }

  /// Pictures per forward pass: at most 128 views, and no more input values than 32 views of
  /// 227 x 227, so memory stays bounded whatever the input size and the number of views (ten crops
  /// of 128 CIFAR pictures at once took 1.2 GB more, 128 views of 227 x 227 about 1.2 GB).
  std::size_t batch_pictures(EvalViews which) const {
    const double side = static_cast<double>(input_size_);
    const double views = std::clamp(32.0 * 227 * 227 / (side * side), 1.0, 128.0);
    return static_cast<std::size_t>(std::max(1.0, std::floor(views / static_cast<double>(view_count(which)))));
  }

  int checked_label(int label) const {
    if (label < 0 || label >= classes_) {
      throw ArgumentError(detail::concat("Classifier::evaluate: label ", label, " is outside the model's ",
                                                 classes_, " classes"));
    }
    return label;
  }

  void add_to_report(ClassificationReport& report, const std::vector<std::vector<double>>& probs,
                     const std::vector<int>& labels) const {
    if (probs.empty()) return;
    Tensor<float> scores(static_cast<Index>(probs.size()), classes_, 1, 1);
    double loss = 0;
    for (std::size_t i = 0; i < probs.size(); ++i) {
      for (Index c = 0; c < classes_; ++c) scores(static_cast<Index>(i), c, 0, 0) = static_cast<float>(probs[i][static_cast<std::size_t>(c)]);
      loss -= std::log(std::max(probs[i][static_cast<std::size_t>(labels[i])], 1e-30));
    }
    report.metrics.add(loss / static_cast<double>(probs.size()), scores, labels);
    report.confusion.add(scores, labels);
  }

  Sequential<float> net_;
  Preparation prep_;
  Index input_size_ = 0;
  std::vector<std::string> names_;
  Index classes_ = 0;
  Softmax<float> softmax_;
  Tensor<float> batch_;
};

}  // namespace convnet
