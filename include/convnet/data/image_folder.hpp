// ImageFolderDataset: the ImageNet layout, root/<class name>/<picture>.
//
// Classes are the sub-folders of root sorted by name (label = position);
// pictures are the regular files inside each, sorted by name, decoded with
// stb (see image_io.hpp). Every picture is decoded once when the folder is
// scanned (in parallel), so a corrupt file is found before training starts:
// by default it is skipped and listed in skipped(); with strict(true) it
// stops the scan with its path and stb's reason. With verify(false) only the
// headers are read (a folder of a million pictures scans in minutes, not
// hours); a picture that then fails to decode during training is for the
// loader to skip (LoaderOptions::skip_unreadable).
//
// A separate validation folder (ImageNet's train/ and val/) must label its
// pictures as the training folder does: give it the training folder's
// classes (class_names()), and a sub-folder that is not one of them is an
// error instead of a silently shifted label.
#pragma once

#include <algorithm>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "../errors.hpp"
#include "../threading.hpp"
#include "dataset.hpp"
#include "image_io.hpp"

namespace convnet {

struct ImageFolderOptions {
  ImageFolderOptions& strict(bool v) { strict_ = v; return *this; }
  ImageFolderOptions& verify(bool v) { verify_ = v; return *this; }
  ImageFolderOptions& limits(const ImageLimits& v) { limits_ = v; return *this; }
  /// The classes, in label order, instead of the sorted sub-folders (a class may have no folder).
  ImageFolderOptions& class_names(std::vector<std::string> v) { class_names_ = std::move(v); return *this; }

  bool strict() const { return strict_; }
  bool verify() const { return verify_; }
  const ImageLimits& limits() const { return limits_; }
  const std::vector<std::string>& class_names() const { return class_names_; }

 private:
  bool strict_ = false;
  bool verify_ = true;  ///< decode every picture during the scan (off: header check only)
  ImageLimits limits_;
  std::vector<std::string> class_names_;
};

class ImageFolderDataset : public Dataset {
 public:
  struct Skipped {
    std::string path, reason;
  };

  explicit ImageFolderDataset(const std::string& root, const ImageFolderOptions& options = {}) : options_(options) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(root, ec)) throw DataError("image folder " + root + " does not exist or is not a folder");
    std::vector<std::string> folders;
    for (const auto& name : list(root, true)) folders.push_back(fs::path(name).filename().string());
    if (folders.empty()) throw DataError("image folder " + root + " has no class sub-folders");
    class_names_ = options_.class_names().empty() ? folders : options_.class_names();
    std::vector<std::pair<std::string, int>> candidates;
    for (const std::string& folder : folders) {
      const auto known = std::find(class_names_.begin(), class_names_.end(), folder);
      if (known == class_names_.end()) {
        throw DataError("image folder " + root + ": sub-folder '" + folder + "' is not one of the " +
                        std::to_string(class_names_.size()) + " classes it must share (those of the training folder)");
      }
      for (auto& f : list((fs::path(root) / folder).string(), false)) {
        candidates.emplace_back(std::move(f), static_cast<int>(known - class_names_.begin()));
      }
    }
    // Check every candidate (in parallel), then keep the good ones in order.
    std::vector<std::string> errors(candidates.size());
    detail::parallel_for(static_cast<Index>(candidates.size()), true, [&](Index i, int) {
      const std::string& path = candidates[static_cast<std::size_t>(i)].first;
      try {
        if (options_.verify()) {
          decode_image(path, options_.limits());
        } else {
          image_info(path, options_.limits());  // the header, with decoding's checks
        }
      } catch (const std::exception& e) {
        errors[static_cast<std::size_t>(i)] = e.what();
      }
    });
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      if (errors[i].empty()) {
        items_.push_back(std::move(candidates[i]));
      } else if (options_.strict()) {
        throw DataError(errors[i]);
      } else {
        skipped_.push_back({candidates[i].first, errors[i]});
      }
    }
    if (items_.empty()) {
      throw DataError(detail::concat("image folder ", root, " has no readable picture (", skipped_.size(),
                                     " files skipped", skipped_.empty() ? "" : ", the first: " + skipped_[0].reason,
                                     ")"));
    }
  }

  Index size() const override { return static_cast<Index>(items_.size()); }
  int label(Index i) const override {
    check_index(i);
    return items_[static_cast<std::size_t>(i)].second;
  }
  void load(Index i, Image& out) const override {
    check_index(i);
    out = decode_image(items_[static_cast<std::size_t>(i)].first, options_.limits());
  }
  const std::vector<std::string>& class_names() const override { return class_names_; }

  const std::string& path(Index i) const {
    check_index(i);
    return items_[static_cast<std::size_t>(i)].first;
  }
  /// Files that could not be read, with the reason (empty in strict mode).
  const std::vector<Skipped>& skipped() const { return skipped_; }
  /// "1200 images in 10 classes, 3 unreadable files skipped".
  std::string summary() const {
    return detail::concat(size(), " images in ", class_names_.size(), " classes, ", skipped_.size(),
                          " unreadable files skipped");
  }

 private:
  /// The sub-folders (or the regular files) of `dir`, sorted, hidden ones (".name") left out; an
  /// unreadable folder is a DataError naming it.
  static std::vector<std::string> list(const std::string& dir, bool folders) {
    namespace fs = std::filesystem;
    std::vector<std::string> out;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->path().filename().string().rfind('.', 0) == 0) continue;
      if (folders ? it->is_directory(ec) : it->is_regular_file(ec)) out.push_back(it->path().string());
    }
    if (ec) throw DataError("cannot read image folder " + dir + ": " + ec.message());
    std::sort(out.begin(), out.end());
    return out;
  }

  ImageFolderOptions options_;
  std::vector<std::string> class_names_;
  std::vector<std::pair<std::string, int>> items_;
  std::vector<Skipped> skipped_;
};

}  // namespace convnet
