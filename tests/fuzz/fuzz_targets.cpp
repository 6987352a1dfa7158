#include "fuzz_targets.hpp"

#include <convnet/data/image_io.hpp>  // first: it compiles stb
#include <convnet/checkpoint.hpp>
#include <convnet/inference/classifier.hpp>
#include <convnet/interop/onnx_import.hpp>
#include <convnet/data/cifar10.hpp>
#include <convnet/data/cifar100.hpp>
#include <convnet/data/idx.hpp>
#include <convnet/data/transforms.hpp>
#include <convnet/layers/dense.hpp>
#include <convnet/layers/dropout.hpp>
#include <convnet/layers/flatten.hpp>
#include <convnet/layers/relu.hpp>
#include <convnet/optim/sgd.hpp>
#include <convnet/train/resume.hpp>
#include <convnet/train/trainer.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>
#include <unistd.h>

#include <convnet/cli/train_settings.hpp>

namespace convnet::fuzz {

namespace {
[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz target: %s\n", what);
  std::abort();
}
// The checksum fix-up of the checkpoint targets: with the first byte odd, the header's payload size and
// FNV-1a checksum are recomputed over the rest, so mutations reach the entries.
std::string checkpoint_bytes(const std::uint8_t* data, std::size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  if ((data[0] & 1) && bytes.size() >= Checkpoint::kHeaderSize) {
    const std::uint64_t payload = bytes.size() - Checkpoint::kHeaderSize;
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (std::size_t i = Checkpoint::kHeaderSize; i < bytes.size(); ++i) {
      h ^= static_cast<unsigned char>(bytes[i]);
      h *= 0x100000001b3ULL;
    }
    std::memcpy(&bytes[16], &payload, 8);
    std::memcpy(&bytes[24], &h, 8);
  }
  return bytes;
}

Sequential<float> small_network() {
  Sequential<float> net;
  net.add<Dense<float>>("fc1", DenseOptions(4, 3));
  net.add<ReLU<float>>("relu1");
  net.add<Dropout<float>>("drop1", DropoutOptions(0.5).seed(3));
  net.add<Dense<float>>("fc2", DenseOptions(3, 2));
  return net;
}
}  // namespace

std::string checkpoint_seed() {
  Sequential<float> net = small_network();
  Sgd<float> sgd(net.parameters(), SgdOptions(0.1).momentum(0.9));
  StepLR schedule(StepLROptions(0.1, 2));
  Tensor<float> x(2, 4, 1, 1);
  x.setConstant(0.5f);
  net.forward(x);
  Tensor<float> g(2, 2, 1, 1);
  g.setConstant(1.0f);
  net.backward(g);
  sgd.step();
  schedule.step();
  Checkpoint c;
  save_training_state(c, net, &sgd, &schedule);
  c.set_text("note", "fuzz seed");
  return c.serialize();
}

// Input: the class-names text, a zero byte, then the records.
int cifar10(const std::uint8_t* data, std::size_t size) {
  const auto* zero = static_cast<const std::uint8_t*>(std::memchr(data, 0, size));
  const std::size_t names = zero ? static_cast<std::size_t>(zero - data) : size;
  const std::size_t records = zero ? size - names - 1 : 0;
  try {
    const Cifar10Dataset d = Cifar10Dataset::from_memory(zero ? zero + 1 : data + size, records,
                                                         std::string(reinterpret_cast<const char*>(data), names));
    if (d.size() * Cifar10Dataset::kRecordBytes != static_cast<Index>(records)) fail("record count");
    if (d.class_names().size() != 10) fail("class names");
    Image image;
    for (Index i = 0; i < d.size(); ++i) {
      if (d.label(i) < 0 || d.label(i) > 9) fail("label outside 0-9");
      d.load(i, image);
      if (image.pixels.size() != 3 * 32 * 32) fail("image size");
    }
  } catch (const DataError&) {
  }
  return 0;
}

// Input: a byte choosing the labels (odd: coarse), the class-names text, a zero byte, then the records.
int cifar100(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const Cifar100Labels kind = (data[0] & 1) ? Cifar100Labels::Coarse : Cifar100Labels::Fine;
  ++data, --size;
  const auto* zero = static_cast<const std::uint8_t*>(std::memchr(data, 0, size));
  const std::size_t names = zero ? static_cast<std::size_t>(zero - data) : size;
  const std::size_t records = zero ? size - names - 1 : 0;
  try {
    const Cifar100Dataset d = Cifar100Dataset::from_memory(
        zero ? zero + 1 : data + size, records, std::string(reinterpret_cast<const char*>(data), names), kind);
    if (d.size() * Cifar100Dataset::kRecordBytes != static_cast<Index>(records)) fail("record count");
    const int classes = kind == Cifar100Labels::Fine ? 100 : 20;
    if (d.classes() != classes) fail("class names");
    Image image;
    for (Index i = 0; i < d.size(); ++i) {
      if (d.label(i) < 0 || d.label(i) >= classes) fail("label outside its range");
      d.load(i, image);
      if (image.pixels.size() != 3 * 32 * 32) fail("image size");
    }
  } catch (const DataError&) {
  }
  return 0;
}

// Input: a 4-byte little-endian length n, n bytes of the images file, then the labels file (either
// may be gzip). Limits small enough for the fuzzer's memory, the checks the same.
int idx(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  std::uint32_t n = 0;
  std::memcpy(&n, data, 4);
  data += 4, size -= 4;
  n = static_cast<std::uint32_t>(std::min<std::size_t>(n, size));
  std::vector<std::uint8_t> images(data, data + n), labels(data + n, data + size);
  try {
    const IdxDataset d = IdxDataset::from_memory(std::move(images), std::move(labels), IdxDataset::mnist_classes(),
                                                 "images", "labels", IdxLimits().max_bytes(1 << 24).max_side(256));
    Image image;
    for (Index i = 0; i < d.size(); ++i) {
      if (d.label(i) < 0 || d.label(i) > 9) fail("label outside 0-9");
      d.load(i, image);
      if (image.channels != 1 || image.height != d.height() || image.width != d.width()) fail("image shape");
    }
  } catch (const DataError&) {
  }
  return 0;
}

int image(const std::uint8_t* data, std::size_t size) {
  ImageLimits limits;
  limits.max_pixels(1 << 22);  // keeps the fuzzer within its memory limit; the check is the same
  try {  // the header path (ImageFolderOptions().verify(false)) on its own: the same checks
    const ImageInfo info = image_info_from_memory(data, size, "fuzz input", limits);
    if (info.width < 1 || info.height < 1 || info.width * info.height > limits.max_pixels()) fail("image info");
  } catch (const DataError&) {
  }
  try {
    const Image image = decode_image_from_memory(data, size, "fuzz input", limits);
    if (image.channels != 3 || image.height < 1 || image.width < 1 ||
        image.pixels.size() != static_cast<std::size_t>(3 * image.height * image.width)) {
      fail("decoded image has an inconsistent shape");
    }
  } catch (const DataError&) {
  }
  return 0;
}

// The first byte chooses whether the header's payload size and checksum are
// recomputed over the rest (so mutations reach the entries instead of
// stopping at the checksum) or left as they are (so the header checks are
// fuzzed too). A parsed checkpoint is then restored into a small network
// with an optimizer, which validates everything before it changes anything.
int checkpoint(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string bytes = checkpoint_bytes(data, size);
  Sequential<float> net = small_network();
  Sgd<float> sgd(net.parameters(), SgdOptions(0.1).momentum(0.9));
  StepLR schedule(StepLROptions(0.1, 2));
  try {
    const Checkpoint c = Checkpoint::parse(bytes, "fuzz input", CheckpointLimits().tensor_elements(1 << 20));
    restore_training_state(c, net, &sgd, &schedule);
  } catch (const CheckpointError&) {
  }
  return 0;
}

namespace {
// The parameters of a small cifar-half network: what the configuration target's checkpoint holds.
const Checkpoint& small_cifar_parameters() {
  static const Checkpoint c = [] {
    Checkpoint k;
    auto net = make_alexnet<float>(AlexNetConfig::named("cifar-half").width(0.0625), 1);
    save_training_state(k, net);
    return k;
  }();
  return c;
}
}  // namespace

// A checkpoint's configuration text, as predict and --resume read it: parsed, bounded, its shapes
// worked out and compared with the tensors the checkpoint holds (a small cifar-half network's), and
// the network built only when they match - so whatever the text says, nothing big is allocated.
int config(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  Checkpoint c = small_cifar_parameters();
  c.set_text("config", text);
  try {
    const Classifier classifier = Classifier::from_checkpoint(c);
    if (classifier.classes() != 10) fail("a network built from a configuration its tensors do not match");
  } catch (const CheckpointError&) {
  }
  try {  // the bounds and shapes alone, for configurations of any size
    const std::vector<ParameterShape> shapes = alexnet_parameter_shapes(AlexNetConfig::parse(text));
    for (const auto& p : shapes) {
      double n = 1;
      for (Index d : p.shape) {
        if (d < 1) fail("a parameter dimension below 1");
        n *= static_cast<double>(d);
      }
      if (n > 2147483648.0) fail("a parameter over 2^31 values");
    }
    if (shapes.size() != 16) fail("AlexNet has 8 layers of weights and biases");
  } catch (const std::invalid_argument&) {
  }
  return 0;
}

namespace {
// Eight 1 x 2 x 2 pictures of two classes, for the trainer target's runs.
class Squares : public Dataset {
 public:
  Index size() const override { return 8; }
  int label(Index i) const override { return static_cast<int>(i % 2); }
  void load(Index i, Image& out) const override { out.reset(1, 2, 2, static_cast<float>(i % 2) - 0.5f); }
  const std::vector<std::string>& class_names() const override { return names_; }

 private:
  std::vector<std::string> names_{"a", "b"};
};

// A trainer over a tiny network, as a user's program builds one; `dir` for its checkpoints.
struct TinyTrainer {
  explicit TinyTrainer(const std::string& dir = "")
      : loader(data, Pipeline(), LoaderOptions().batch_size(4).workers(0).seed(1)),
        sgd((build(), net.parameters()), SgdOptions(0.1).momentum(0.9)),
        schedule(StepLROptions(0.1, 1)),
        trainer(net, loss, sgd, &schedule, dir.empty() ? TrainerOptions().epochs(3)
                                                       : TrainerOptions().epochs(3).checkpoint_dir(dir)) {}
  void build() {
    net.add<Flatten<float>>("flatten");
    net.add<Dense<float>>("fc", DenseOptions(4, 2).seed(1));
  }
  Squares data;
  DataLoader loader;
  Sequential<float> net;
  SoftmaxCrossEntropy<float> loss;
  Sgd<float> sgd;
  StepLR schedule;
  Trainer<float> trainer;
};

struct StopAfter : TrainerCallback {
  Trainer<float>* trainer = nullptr;
  void on_batch_end(const BatchReport& r) override {
    if (r.epoch == 1 && r.batch == 1) trainer->request_stop();
  }
};
}  // namespace

std::string trainer_checkpoint_seed() {
  const std::string dir = (std::filesystem::temp_directory_path() / "convnet_fuzz_trainer_seed").string();
  std::filesystem::remove_all(dir);
  std::string bytes;
  {
    TinyTrainer t(dir);
    StopAfter stop;
    stop.trainer = &t.trainer;
    t.trainer.add_callback(stop);
    t.trainer.fit(t.loader);
    std::ifstream in(t.trainer.last_path(), std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::filesystem::remove_all(dir);
  return bytes;
}

// The trainer's own fields of a checkpoint (position, partial epoch, history) and everything under
// them, resumed into a trainer, which then runs to its end: resume() refuses what does not fit
// (CheckpointError) and a resumed run never fails on what it accepted.
int trainer_checkpoint(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string bytes = checkpoint_bytes(data, size);
  TinyTrainer t;
  try {
    t.trainer.load(Checkpoint::parse(bytes, "fuzz input", CheckpointLimits().tensor_elements(1 << 16)));
  } catch (const CheckpointError&) {
    return 0;
  }
  if (t.trainer.position().epoch > 3) fail("resumed past the last epoch");
  const bool fits = t.trainer.position().batch <= t.loader.batches_per_epoch();
  try {
    t.trainer.fit(t.loader);
  } catch (const NonFiniteLossError&) {  // the stored weights may be anything, infinities included
    return 0;
  } catch (const std::invalid_argument&) {  // a position past this loader's epoch, said before any step
    if (fits) fail("fit refused a position inside the epoch");
    return 0;
  }
  if (t.trainer.position().epoch != 3) fail("the run did not reach its end");
  return 0;
}

namespace {
// Reads little-endian numbers off the front of the input, zeros past its end.
struct ByteReader {
  const std::uint8_t* data;
  std::size_t size, pos = 0;
  std::uint32_t u32() {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(pos < size ? data[pos++] : 0) << (8 * i);
    return v;
  }
  std::uint8_t u8() { return pos < size ? data[pos++] : 0; }
  bool done() const { return pos >= size; }
};
}  // namespace

// Transforms on pictures of extreme shapes: the picture's height, width and channels come from the
// input (any size the image limits let a decoder produce, smaller to keep the fuzzer in memory) and
// so do each transform and its settings. Allowed: a transform's own refusals.
int transforms(const std::uint8_t* data, std::size_t size) {
  ByteReader in{data, size};
  const Index h = in.u32() % (1u << 20) + 1, w = in.u32() % (1u << 20) + 1, c = in.u8() % 4 + 1;
  if (h * w > (Index{1} << 20)) return 0;  // a decoder refuses bigger pictures (ImageLimits), scaled down here
  Image image(c, h, w);
  for (std::size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = static_cast<float>(i % 251);
  Rng rng(in.u32());
  for (int step = 0; step < 6 && !in.done(); ++step) {
    const std::uint8_t op = in.u8() % 8;
    const Index a = static_cast<Index>(in.u32()), b = static_cast<Index>(in.u32());
    const Index before_h = image.height, before_w = image.width;
    try {
      switch (op) {
        case 0: Resize::shorter_side(a % 70000 + 1).max_output_pixels(1 << 22).apply(image, rng); break;
        case 1: Resize::exact(a % 5000 + 1, b % 5000 + 1).max_output_pixels(1 << 22).apply(image, rng); break;
        case 2: CenterCrop(a, b).apply(image, rng); break;
        case 3: RandomCrop(a % 5000 + 1, b % 5000 + 1, static_cast<Index>(in.u8()) * 20).apply(image, rng); break;
        case 4: RandomHorizontalFlip(static_cast<double>(a % 3) / 2).apply(image, rng); break;
        case 5: Normalize(ChannelStats{std::vector<double>(static_cast<std::size_t>(c), 100.0),
                                       std::vector<double>(static_cast<std::size_t>(c), 50.0)}).apply(image, rng); break;
        case 6: {
          const std::vector<Image> crops = ten_crops(image, a % 4096 + 1, b % 4096 + 1);
          if (crops.size() != 10 || crops[9].height != a % 4096 + 1 || crops[9].width != b % 4096 + 1) fail("ten crops");
          break;
        }
        default: {
          RgbPca pca{Eigen::Matrix3d::Identity(), Eigen::Vector3d(3, 2, 1)};
          PcaColorAugmentation(pca, 0.1).apply(image, rng);
          break;
        }
      }
    } catch (const DataError&) {
    } catch (const ShapeError&) {
    } catch (const std::invalid_argument&) {
    }
    if (image.channels != c || image.height < 1 || image.width < 1 ||
        image.pixels.size() != static_cast<std::size_t>(c * image.height * image.width)) {
      fail("a transform left an inconsistent picture");
    }
    if (op == 4 && (image.height != before_h || image.width != before_w)) fail("a flip changed the shape");
  }
  return 0;
}

// convnet train's command line: the input, split at zero bytes, is the argument list. A parse either
// fails with std::invalid_argument or gives settings in range whose record restores to the same
// settings, and whose network configuration is bounded. The input is also taken as a checkpoint's
// record of settings (trainer/options), which a resumed run restores.
int command_line(const std::uint8_t* data, std::size_t size) {
  {
    cli::TrainSettings stored;
    cli::OptionTable table = cli::train_options_of(stored);
    try {
      table.restore(std::string(reinterpret_cast<const char*>(data), size));
      cli::resolve_kind_defaults(stored);
      cli::config_of(stored);
    } catch (const std::invalid_argument&) {
    }
  }
  std::vector<std::string> args{"train"};
  std::string current;
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] == 0) {
      args.push_back(current);
      current.clear();
    } else {
      current += static_cast<char>(data[i]);
    }
  }
  if (!current.empty()) args.push_back(current);
  if (args.size() > 64) return 0;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  cli::TrainSettings settings;
  cli::OptionTable table = cli::train_options_of(settings);
  try {
    table.parse(static_cast<int>(args.size()), argv.data());
  } catch (const std::invalid_argument&) {
    return 0;
  }
  const std::string record = table.record();
  cli::TrainSettings again;
  cli::OptionTable other = cli::train_options_of(again);
  try {
    other.restore(record);
  } catch (const std::invalid_argument&) {
    fail("a record of accepted settings was refused");
  }
  if (other.record() != record) fail("the record does not round-trip");
  try {
    cli::resolve_kind_defaults(settings);
    cli::config_of(settings);
  } catch (const std::invalid_argument&) {
  }
  return 0;
}

// The ONNX importer, with limits small enough for the fuzzer's memory: a network it builds must
// read the graph's input, and a forward pass of a small input through it must run.
int onnx(const std::uint8_t* data, std::size_t size) {
  OnnxModel m;
  try {
    m = parse_onnx(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.onnx",
                   OnnxLimits().file_bytes(Index{1} << 22).nodes(64).tensor_values(Index{1} << 18));
  } catch (const DataError&) {
    return 0;
  }
  if (m.network.size() == 0) fail("an imported model without layers");
  if (m.channels < 1 || m.height < 1 || m.width < 1 || m.channels * m.height * m.width > 4096) return 0;
  Shape shape{1, m.channels, m.height, m.width};
  for (std::size_t i = 0; i < m.network.size(); ++i) {
    shape = m.network[i].output_shape(shape);  // the importer checked these: a ShapeError here is a bug
    if (shape.size() > (Index{1} << 20)) return 0;  // an activation too large to run here, not a bug
  }
  Tensor<float> x(1, m.channels, m.height, m.width);
  x.setConstant(0.5f);
  if (shape_of(m.network.forward(x)) != shape) fail("an imported network's output is not the shape it said");
  return 0;
}

// A network rebuilt from a checkpoint alone, as convnet predict does for any saved network: the
// structure's lines and settings, the class names and the preparation, all bounded before anything
// is built (issue 40, item 3). Allowed: CheckpointError (and DataError from a preparation).
std::string saved_network_seed() {
  Sequential<float> net;
  net.add<Flatten<float>>("flatten");
  net.add<Dense<float>>("fc", DenseOptions(3 * 8 * 8, 3));
  Checkpoint c;
  net.save(c);
  c.set_text("data/classes", "cat\ndog\nbird\n");
  Preparation::with_statistics(PreparationOptions().input_size(8), ChannelStats{{120, 110, 100}, {60, 60, 60}}).save(c);
  return c.serialize();
}

int saved_network(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string bytes = checkpoint_bytes(data, size);
  try {
    const Checkpoint c = Checkpoint::parse(bytes, "fuzz input", CheckpointLimits().tensor_elements(1 << 16));
    const Classifier model = Classifier::from_checkpoint(c);
    if (model.class_names().size() > 100000) fail("more class names than the bound");
    for (const auto& name : model.class_names()) {
      if (name.size() > 256) fail("a class name over the bound");
    }
  } catch (const CheckpointError&) {
  } catch (const DataError&) {
  }
  return 0;
}

std::string resume_seed() {
  Checkpoint c = Checkpoint::parse(trainer_checkpoint_seed());
  c.set_u64s("trainer/best", {1, 0});
  c.set_u64s("trainer/position", {1, 0});
  return c.serialize();
}

// What --resume checks before training: the record of the best.ckpt that goes with last.ckpt, against
// a best.ckpt of another run in the output folder (copied, rebuilt or refused), and the trainer's
// reading of it. Allowed: CheckpointError, DataError.
int resume_checks(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string bytes = checkpoint_bytes(data, size);
  static const std::filesystem::path dir = [] {
    const auto d = std::filesystem::temp_directory_path() / ("convnet_fuzz_resume_" + std::to_string(::getpid()));
    std::filesystem::create_directories(d / "run");
    return d;
  }();
  std::error_code ec;
  std::filesystem::remove(dir / "out" / "best.ckpt", ec);
  std::filesystem::create_directories(dir / "out", ec);
  {
    std::ofstream(dir / "out" / "best.ckpt", std::ios::binary) << saved_network_seed();  // another run's
  }
  try {
    Checkpoint c = Checkpoint::parse(bytes, "fuzz input", CheckpointLimits().tensor_elements(1 << 16));
    const std::size_t epochs = stored_epochs(c);
    const auto best = Trainer<float>::stored_best_file(c, "trainer/", epochs);
    if (best && (best->first < 1 || best->first > epochs)) fail("a best epoch outside the history");
    ensure_best_checkpoint((dir / "out").string(), (dir / "run" / "last.ckpt").string(), c);
    if (epochs > 0 && c.contains("trainer/best")) {
      if (Checkpoint::stored_checksum((dir / "out" / "best.ckpt").string()) != c.u64s("trainer/best").at(1)) {
        fail("accepted a best.ckpt that is not the one last.ckpt records");
      }
    }
  } catch (const CheckpointError&) {
  } catch (const DataError&) {
  }
  return 0;
}

}  // namespace convnet::fuzz
