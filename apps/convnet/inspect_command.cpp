// convnet inspect: what a trained network learned, as pictures (the library's inference/filters.hpp,
// activations.hpp, neighbours.hpp, saliency.hpp and confusion_picture.hpp; docs/inspection.md).
//
//   convnet inspect filters     --checkpoint C [--layer conv1] [--scale S] [--columns N] --out f.png
//   convnet inspect activations --checkpoint C PICTURE [--layers conv1,relu2] --out a.png
//   convnet inspect neighbours  --checkpoint C --dataset KIND:DIR [--layer relu7] [--queries N] [--k 6] --out n.png
//   convnet inspect saliency    --checkpoint C PICTURE [--class K] [--cam-layer L|none] --out s.png
//   convnet inspect confusion   --checkpoint C --dataset KIND:DIR [--eval centre] --out c.png
#include <convnet/convnet.hpp>

#include <algorithm>
#include <iomanip>
#include <iostream>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include <convnet/cli/option_table.hpp>

#include "commands.hpp"

namespace {

using namespace convnet;

struct InspectSettings {
  std::string checkpoint, out, layer, layers, cam_layer, dataset, metric = "euclidean", eval = "centre",
      precision = "auto";
  long scale = 0, columns = 0, queries = 8, k = 6, class_index = -1, seed = 1, pictures = 0, threads = 0;
  bool help = false;
};

struct Inspection {
  const char* name;
  const char* synopsis;
  const char* help;
  std::vector<std::string> options;  // besides --checkpoint, --out, --threads, --precision, --help
};

const std::vector<Inspection>& inspections() {
  static const std::vector<Inspection> list = {
      {"filters", "convnet inspect filters --checkpoint FILE [--layer conv1] [--scale S] [--columns N] --out f.png",
       "every kernel of a convolution as a tile (the paper's Figure 3)", {"--layer", "--scale", "--columns"}},
      {"activations", "convnet inspect activations --checkpoint FILE PICTURE [--layers conv1,relu2] --out a.png",
       "a picture and the feature maps of chosen layers", {"--layers"}},
      {"neighbours",
       "convnet inspect neighbours --checkpoint FILE --dataset KIND:DIR [--layer relu7] [--queries N] [--k 6] --out n.png",
       "test pictures beside their nearest training pictures at a hidden layer (the paper's Figure 4)",
       {"--dataset", "--layer", "--queries", "--k", "--metric", "--seed"}},
      {"saliency", "convnet inspect saliency --checkpoint FILE PICTURE [--class K] [--cam-layer L|none] --out s.png",
       "the gradient of a class score with respect to the pixels, and Grad-CAM", {"--class", "--cam-layer"}},
      {"confusion", "convnet inspect confusion --checkpoint FILE --dataset KIND:DIR [--eval centre] --out c.png",
       "the confusion matrix of a test set as a heat map, with per-class accuracy", {"--dataset", "--eval", "--pictures"}},
  };
  return list;
}

cli::OptionTable options_of(InspectSettings& s, const Inspection& what) {
  const std::vector<cli::Option> all = {
      {"--checkpoint", "FILE", "a checkpoint of a trained network (best.ckpt, last.ckpt, an imported one)", &s.checkpoint},
      {"--out", "FILE", "the picture written (PNG)", &s.out},
      {"--layer", "NAME", what.name == std::string("filters") ? "the convolution drawn (default: the first)"
                                                              : "the layer whose output is compared (default: relu7, fc7 after its ReLU)", &s.layer},
      {"--layers", "A,B", "the layers drawn, in order (default: every convolution)", &s.layers},
      {"--scale", "S", "pixels a weight (0: a kernel about 40 pixels wide)", &s.scale, cli::PerProcess, cli::Range::closed(0, 64)},
      {"--columns", "N", "tiles a row in a group (0: 16)", &s.columns, cli::PerProcess, cli::Range::closed(0, 1024)},
      {"--dataset", "KIND:DIR", "the dataset (" + dataset_kind_list() + "): its test part, else a held-out tenth", &s.dataset},
      {"--queries", "N", "test pictures drawn at random", &s.queries, cli::PerProcess, cli::Range::closed(1, 1000)},
      {"--k", "K", "neighbours a query", &s.k, cli::PerProcess, cli::Range::closed(1, 100)},
      {"--metric", "euclidean|cosine", "the distance between two vectors", &s.metric},
      {"--seed", "S", "which test pictures", &s.seed, cli::PerProcess, cli::Range::closed(0, 1e15)},
      {"--class", "K", "the class explained, by number (-1: the top class)", &s.class_index, cli::PerProcess,
       cli::Range::closed(-1, 100000)},
      {"--cam-layer", "NAME", "Grad-CAM's layer (default: the last convolution's activation; none: no Grad-CAM)", &s.cam_layer},
      {"--eval", "VIEWS", "centre, flip, ten-crop or flip-translate: the views whose softmax is averaged", &s.eval},
      {"--pictures", "N", "score the first N pictures only (0: all)", &s.pictures, cli::PerProcess, cli::Range::closed(0, 1e12)},
      {"--threads", "N", "compute threads (0: all cores)", &s.threads, cli::PerProcess, cli::Range::closed(0, 1024)},
      {"--precision", "auto|fp32|bf16", "the products' arithmetic (auto: bf16 where the host has AMX)", &s.precision},
      {"--help", "", "this text", &s.help}};
  std::vector<cli::Option> chosen;
  for (const auto& o : all) {
    const bool common = o.name == "--checkpoint" || o.name == "--out" || o.name == "--threads" || o.name == "--precision" ||
                        o.name == "--help";
    if (common || std::find(what.options.begin(), what.options.end(), o.name) != what.options.end()) chosen.push_back(o);
  }
  return cli::OptionTable(std::string("usage: ") + what.synopsis + "\n" + what.help + "\n", {{"options", chosen}});
}

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

Image one_picture(const std::vector<std::string>& pictures) {
  if (pictures.size() != 1) throw ArgumentError("give one PICTURE file");
  return decode_image(pictures[0]);
}

// The dataset's test part, or a held-out tenth of its training part without one; the reference
// (training) part is the whole training part when there is a test part.
struct OpenedData {
  std::unique_ptr<TrainingData> data;
  const Dataset* test = nullptr;
  const Dataset* train = nullptr;
};
OpenedData open_dataset(const std::string& text) {
  if (text.empty()) throw ArgumentError("--dataset KIND:DIR is required");
  const DatasetSpec spec = DatasetSpec::parse(text);
  OpenedData d;
  d.data = TrainingData::open(spec, TrainingDataOptions().validation_fraction(0));
  if (!d.data->test()) d.data = TrainingData::open(spec, TrainingDataOptions().validation_fraction(0.1));
  d.test = d.data->test() ? d.data->test() : &d.data->validation();
  d.train = &d.data->train();
  std::cout << spec.str() << ": " << (d.data->test() ? "its test part" : "a held-out tenth of its pictures") << " ("
            << d.test->size() << " pictures), its training part " << d.train->size() << " pictures, "
            << d.data->class_names().size() << " classes\n";
  return d;
}

void filters(Classifier& model, const InspectSettings& s) {
  const FilterPicture f = draw_filters(model.network(), FilterPictureOptions().layer(s.layer).scale(s.scale).columns(s.columns));
  f.canvas.save_png(s.out);
  std::cout << f.layer << ": " << f.origins.size() << " kernels, tiles of " << f.tile << " pixels (scale " << f.scale << ")\n";
}

void activations(Classifier& model, const InspectSettings& s, const std::vector<std::string>& pictures) {
  const Image picture = one_picture(pictures);
  const ActivationPicture a = draw_activations(model, picture, ActivationPictureOptions().layers(split_commas(s.layers)));
  a.canvas.save_png(s.out);
  for (const auto& layer : a.layers) {
    std::cout << layer.name << ": " << layer.origins.size() << " maps, values in [" << layer.range.lo << ", " << layer.range.hi << "]\n";
  }
}

void neighbours(Classifier& model, const InspectSettings& s) {
  if (s.metric != "euclidean" && s.metric != "cosine") throw ArgumentError("--metric takes euclidean or cosine, got '" + s.metric + "'");
  require_neighbours_drawable(s.queries, s.k);  // before the search, which is the work
  const OpenedData d = open_dataset(s.dataset);
  std::vector<Index> order(static_cast<std::size_t>(d.test->size()));
  std::iota(order.begin(), order.end(), Index{0});
  Rng rng(static_cast<std::uint64_t>(s.seed));
  rng.shuffle(order.begin(), order.end());
  order.resize(std::min<std::size_t>(order.size(), static_cast<std::size_t>(s.queries)));
  const NeighbourOptions options = NeighbourOptions().layer(s.layer.empty() ? "relu7" : s.layer).k(s.k).metric(
      s.metric == "cosine" ? EmbeddingMetric::Cosine : EmbeddingMetric::Euclidean);
  const NeighbourSearch found = nearest_neighbours(model, *d.test, order, *d.train, options);
  const auto& names = d.data->class_names();
  for (const auto& q : found.queries) {
    Index same = 0;
    for (const auto& n : q.nearest) same += n.label == q.label ? 1 : 0;
    std::cout << "test picture " << q.query << " (" << names[static_cast<std::size_t>(q.label)] << "): " << same << " of "
              << q.nearest.size() << " neighbours of its class; nearest: training picture " << q.nearest.front().index
              << " (" << names[static_cast<std::size_t>(q.nearest.front().label)] << ", distance " << q.nearest.front().distance << ")\n";
  }
  std::cout << std::fixed << std::setprecision(1) << "neighbours of the query's class: " << 100 * found.same_class_share()
            << "% (" << found.queries.size() << " queries, k " << s.k << ", " << options.layer() << ", " << s.metric
            << ", among " << found.references << " training pictures" << (found.skipped ? detail::concat(", ", found.skipped, " unreadable left out") : "")
            << ")\n";
  draw_neighbours(found, *d.test, *d.train, names).save_png(s.out);
}

void saliency_of(Classifier& model, const InspectSettings& s, const std::vector<std::string>& pictures) {
  const Image picture = one_picture(pictures);
  const Saliency found = saliency(model, picture, SaliencyOptions().class_index(s.class_index).cam_layer(s.cam_layer));
  draw_saliency(model, picture, found).save_png(s.out);
  std::cout << "class " << found.class_index << " (" << model.class_names()[static_cast<std::size_t>(found.class_index)]
            << "), score " << found.score << "; saliency " << found.height << "x" << found.width
            << (found.cam.empty() ? std::string("; no Grad-CAM")
                                  : detail::concat("; Grad-CAM at ", found.cam_layer, " (", found.cam_height, "x", found.cam_width, ")"))
            << "\n";
}

void confusion(Classifier& model, const InspectSettings& s) {
  const OpenedData d = open_dataset(s.dataset);
  const ClassificationReport r = model.evaluate(*d.test, parse_eval_views(s.eval),
                                                s.pictures > 0 ? std::optional<Index>(s.pictures) : std::nullopt);
  print_report(std::cout, r);
  draw_confusion(r.confusion, r.class_names).canvas.save_png(s.out);
}

int run(const Inspection& what, const InspectSettings& s, const std::vector<std::string>& pictures) {
  if (s.checkpoint.empty()) throw ArgumentError("--checkpoint FILE is required");
  if (s.out.empty()) throw ArgumentError("--out FILE.png is required");
  const std::string name = what.name;
  if (!pictures.empty() && name != "activations" && name != "saliency") throw ArgumentError("unexpected argument '" + pictures[0] + "'");
  if (s.threads > 0) set_num_threads(static_cast<int>(s.threads));
  Classifier model = Classifier::load(s.checkpoint);
  model.network().set_precision(parse_precision(s.precision, "--precision"));
  if (name == "filters") filters(model, s);
  if (name == "activations") activations(model, s, pictures);
  if (name == "neighbours") neighbours(model, s);
  if (name == "saliency") saliency_of(model, s, pictures);
  if (name == "confusion") confusion(model, s);
  std::cout << "wrote " << s.out << "\n";
  return 0;
}

void usage(std::ostream& out) {
  out << "usage: convnet inspect <what> [options]   (convnet inspect <what> --help for its options)\n\n";
  for (const auto& i : inspections()) {
    std::string name = i.name;
    name.resize(13, ' ');
    out << "  " << name << i.help << "\n";
  }
}

}  // namespace

int inspect_command(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    usage(argc < 2 ? std::cerr : std::cout);
    return argc < 2 ? 1 : 0;
  }
  const std::string name = argv[1];
  for (const auto& what : inspections()) {
    if (name != what.name) continue;
    InspectSettings settings;
    cli::OptionTable table = options_of(settings, what);
    try {
      const auto pictures = table.parse(argc - 1, argv + 1);
      if (settings.help) {
        table.print_usage(std::cout);
        return 0;
      }
      return run(what, settings, pictures);
    } catch (const std::exception& e) {
      std::cerr << "convnet inspect " << name << ": " << e.what() << "\n";
      return 1;
    }
  }
  std::cerr << "convnet inspect: unknown inspection '" << name << "'\n\n";
  usage(std::cerr);
  return 1;
}
