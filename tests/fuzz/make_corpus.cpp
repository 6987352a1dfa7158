// Writes the seed corpus in tests/fuzz/corpus/ (run once; the files are
// committed):  make fuzz-corpus
// Small valid inputs of every format each target reads, and a few broken ones.
#include <convnet/data/image_io.hpp>
#include <convnet/interop/onnx_export.hpp>
#include <convnet/models/alexnet.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../gzip.hpp"
#include "fuzz_targets.hpp"

namespace fs = std::filesystem;

namespace {
void put(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}
void put_bytes(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<std::size_t>(size));
}
std::vector<std::uint8_t> pattern(int w, int h, int c) {
  std::vector<std::uint8_t> p(static_cast<std::size_t>(w * h * c));
  for (std::size_t i = 0; i < p.size(); ++i) p[i] = static_cast<std::uint8_t>(i * 37 + 11);
  return p;
}
}  // namespace

int main(int argc, char** argv) {
  const fs::path root = argc > 1 ? argv[1] : "tests/fuzz/corpus";
  // CIFAR-10: names, a zero byte, records.
  const std::string names =
      "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
  std::string records;
  for (int r = 0; r < 2; ++r) {
    records += static_cast<char>(r == 0 ? 3 : 9);
    for (int i = 0; i < 3072; ++i) records += static_cast<char>((i * 7 + r) & 0xff);
  }
  put(root / "cifar10/two_records", names + std::string(1, '\0') + records);
  put(root / "cifar10/bad_label", names + std::string(1, '\0') + std::string(1, '\x0b') + records.substr(1, 3072));
  put(root / "cifar10/truncated", names + std::string(1, '\0') + records.substr(0, 4000));
  put(root / "cifar10/nine_names", "a\nb\nc\nd\ne\nf\ng\nh\ni\n" + std::string(1, '\0') + records);

  // CIFAR-100: a byte choosing the labels (odd: coarse), names, a zero byte, records of two label bytes.
  std::string fine_names, coarse_names, records100;
  for (int c = 0; c < 100; ++c) fine_names += "f" + std::to_string(c) + "\n";
  for (int c = 0; c < 20; ++c) coarse_names += "c" + std::to_string(c) + "\n";
  for (int r = 0; r < 2; ++r) {
    records100 += static_cast<char>(r == 0 ? 4 : 19);
    records100 += static_cast<char>(r == 0 ? 37 : 99);
    for (int i = 0; i < 3072; ++i) records100 += static_cast<char>((i * 5 + r) & 0xff);
  }
  put(root / "cifar100/fine", "\x00" + fine_names + std::string(1, '\0') + records100);
  put(root / "cifar100/coarse", "\x01" + coarse_names + std::string(1, '\0') + records100);
  put(root / "cifar100/fine_label_100", "\x00" + fine_names + std::string(1, '\0') + records100.substr(0, 1) + "d" +
                                            records100.substr(2));
  put(root / "cifar100/truncated", "\x01" + coarse_names + std::string(1, '\0') + records100.substr(0, 3000));

  // IDX: a 4-byte little-endian length of the images file, its bytes, then the labels file.
  auto idx = [](std::initializer_list<unsigned> dims) {
    std::string out{'\0', '\0', '\x08', static_cast<char>(dims.size())};
    unsigned n = 1;
    for (unsigned d : dims) {
      for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((d >> shift) & 0xff);
      n *= d;
    }
    for (unsigned i = 0; i < n; ++i) out += static_cast<char>(i * 13 % 10);
    return out;
  };
  auto pair = [](const std::string& images, const std::string& labels) {
    const auto n = static_cast<std::uint32_t>(images.size());
    return std::string(reinterpret_cast<const char*>(&n), 4) + images + labels;
  };
  put(root / "idx/three_pictures", pair(idx({3, 4, 5}), idx({3})));
  put(root / "idx/count_mismatch", pair(idx({3, 4, 5}), idx({2})));
  put(root / "idx/claims_huge", pair(std::string("\0\0\x08\x03\x7f\xff\xff\xff\0\0\x10\0\0\0\x10\0", 16), idx({3})));
  put(root / "idx/gzip", pair(convnet::testing::gzip(idx({3, 4, 5})), convnet::testing::gzip(idx({3}))));
  put(root / "idx/gzip_truncated", pair(convnet::testing::gzip(idx({3, 4, 5})).substr(0, 30), idx({3})));

  // Images: every format stb writes, plus a hand-made GIF and PPM and a hostile header.
  std::string png, bmp, tga, jpg, grey;
  const auto rgb = pattern(5, 4, 3);
  stbi_write_png_to_func(put_bytes, &png, 5, 4, 3, rgb.data(), 15);
  stbi_write_bmp_to_func(put_bytes, &bmp, 5, 4, 3, rgb.data());
  stbi_write_tga_to_func(put_bytes, &tga, 5, 4, 3, rgb.data());
  stbi_write_jpg_to_func(put_bytes, &jpg, 5, 4, 3, rgb.data(), 75);
  const auto ga = pattern(3, 3, 2);
  stbi_write_png_to_func(put_bytes, &grey, 3, 3, 2, ga.data(), 6);
  put(root / "image/rgb.png", png);
  put(root / "image/rgb.bmp", bmp);
  put(root / "image/rgb.tga", tga);
  put(root / "image/rgb.jpg", jpg);
  put(root / "image/grey_alpha.png", grey);
  put(root / "image/tiny.ppm", std::string("P6\n2 1\n255\n") + std::string("\x10\x20\x30\x40\x50\x60", 6));
  const unsigned char gif[] = {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0x80, 0, 0, 0xff, 0, 0, 0, 0, 0,
                               0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 1, 0, 0x3b};
  put(root / "image/one_pixel.gif", std::string(reinterpret_cast<const char*>(gif), sizeof gif));
  // stb itself refuses a PNG this large; a PNM header reaches our limit.
  put(root / "image/claims_100000x100000.ppm", std::string("P6\n100000 100000\n255\n") + std::string(30, '\x7f'));
  put(root / "image/truncated.png", png.substr(0, png.size() / 2));

  // Checkpoints: the first byte says whether the target recomputes the checksum.
  const std::string ckpt = convnet::fuzz::checkpoint_seed();
  put(root / "checkpoint/valid", std::string(1, '\0') + ckpt);
  put(root / "checkpoint/valid_fixup", std::string(1, '\1') + ckpt);
  put(root / "checkpoint/truncated", std::string(1, '\1') + ckpt.substr(0, ckpt.size() - 9));
  put(root / "checkpoint/header_only", std::string(1, '\0') + ckpt.substr(0, 32));

  // Configuration texts: the one the target's tensors fit, the named ones, and hostile ones.
  put(root / "config/matches", convnet::AlexNetConfig::named("cifar-half").width(0.0625).str());
  put(root / "config/paper", convnet::AlexNetConfig::named("paper").str());
  put(root / "config/torchvision_wide", convnet::AlexNetConfig::named("torchvision").width(8).str());
  put(root / "config/huge_input", "name=cifar input=4000000000 classes=10 groups=1 width=1 dropout=0.5 init=he "
                                  "lrn=5,0.0001,0.75,2,paper");

  // The trainer's checkpoints: the first byte says whether the target recomputes the checksum.
  const std::string trainer = convnet::fuzz::trainer_checkpoint_seed();
  put(root / "trainer_checkpoint/valid", std::string(1, '\0') + trainer);
  put(root / "trainer_checkpoint/valid_fixup", std::string(1, '\1') + trainer);

  // Networks saved with their structure, and --resume's checks of best.ckpt.
  const std::string saved = convnet::fuzz::saved_network_seed();
  put(root / "saved_network/valid", std::string(1, '\0') + saved);
  put(root / "saved_network/valid_fixup", std::string(1, '\1') + saved);
  const std::string resume = convnet::fuzz::resume_seed();
  put(root / "resume_checks/valid", std::string(1, '\0') + resume);
  put(root / "resume_checks/valid_fixup", std::string(1, '\1') + resume);

  // Transforms: height, width (u32 each), channels, an Rng seed, then (op, a, b) steps.
  auto u32 = [](std::uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); };
  auto step = [&](int op, std::uint32_t a, std::uint32_t b) { return std::string(1, static_cast<char>(op)) + u32(a) + u32(b); };
  put(root / "transforms/cifar_pipeline", u32(31) + u32(31) + std::string(1, '\2') + u32(7) + step(3, 31, 31) +
                                              std::string(1, '\4') + step(4, 1, 0) + step(5, 0, 0));
  put(root / "transforms/thin_resize", u32(0) + u32(999999) + std::string(1, '\2') + u32(1) + step(0, 31, 0));
  put(root / "transforms/ten_crops", u32(40) + u32(50) + std::string(1, '\2') + u32(1) + step(6, 31, 31) + step(7, 0, 0));

  // Command lines: arguments separated by zero bytes.
  auto args_of = [](std::initializer_list<const char*> args) {
    std::string out;
    for (const char* a : args) out += std::string(a) + '\0';
    return out;
  };
  put(root / "command_line/defaults", "");
  put(root / "command_line/recipe", args_of({"--epochs", "3", "--lr=0.01", "--width", "0.5", "--augment", "crop,flip,pca",
                                          "--loss", "cross-entropy+triplet", "--loss-weights", "1,0.5"}));
  put(root / "command_line/out_of_range", args_of({"--threads", "5000000000", "--val-fraction", "0"}));

  // ONNX: small networks as the exporter writes them (every operator the importer reads), and broken ones.
  using namespace convnet;
  Sequential<float> every;
  every.add<Conv2d<float>>("conv1", Conv2dOptions(3, 4, 3).padding(1).seed(1));
  every.add<BatchNorm2d<float>>("bn1", BatchNormOptions(4));
  every.add<ReLU<float>>("relu1");
  every.add<LocalResponseNorm<float>>("norm1", LocalResponseNormOptions());
  every.add<MaxPool2d<float>>("pool1", MaxPool2dOptions(2));
  every.add<Conv2d<float>>("conv2", Conv2dOptions(4, 4, 3).padding(1).groups(2).seed(2));
  every.add<AdaptiveAvgPool2d<float>>("avg", 2, 2);
  every.add<Flatten<float>>("flatten");
  every.add<Dense<float>>("fc1", DenseOptions(16, 6).seed(3));
  every.add<BatchNorm1d<float>>("bn2", BatchNormOptions(6));
  every.add<Softmax<float>>("prob");
  every.eval();
  const std::string every_bytes = to_onnx(every, OnnxExportOptions().input(3, 8).metadata("convnet.classes", "a\nb\n"));
  put(root / "onnx/every_operator", every_bytes);
  put(root / "onnx/truncated", every_bytes.substr(0, every_bytes.size() / 2));
  Sequential<float> global;
  global.add<Conv2d<float>>("conv", Conv2dOptions(1, 2, 1).seed(4));
  global.add<AdaptiveAvgPool2d<float>>("gap", 1, 1);
  global.add<Flatten<float>>("flatten");
  global.eval();
  put(root / "onnx/global_average", to_onnx(global, OnnxExportOptions().input(1, 5)));
  std::string flipped = every_bytes;  // one byte changed inside the first node
  flipped[flipped.size() / 3] = static_cast<char>(flipped[flipped.size() / 3] ^ 0x5a);
  put(root / "onnx/one_byte_changed", flipped);
  return 0;
}
