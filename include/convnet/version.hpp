// The library's version: the one place it is written. CMake reads these three
// lines for the package version (find_package(convnet 0.1) and convnet_VERSION).
#pragma once

#define CONVNET_VERSION_MAJOR 0
#define CONVNET_VERSION_MINOR 1
#define CONVNET_VERSION_PATCH 0

#define CONVNET_VERSION_STRINGIFY_(x) #x
#define CONVNET_VERSION_STRINGIFY(x) CONVNET_VERSION_STRINGIFY_(x)

namespace convnet {
/// "major.minor.patch"
inline constexpr const char* version =
    CONVNET_VERSION_STRINGIFY(CONVNET_VERSION_MAJOR) "." CONVNET_VERSION_STRINGIFY(CONVNET_VERSION_MINOR) "."
    CONVNET_VERSION_STRINGIFY(CONVNET_VERSION_PATCH);
}  // namespace convnet
