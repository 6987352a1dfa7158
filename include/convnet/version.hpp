// The library's version, also exported by the CMake package (convnet_VERSION).
#pragma once

#define CONVNET_VERSION_MAJOR 0
#define CONVNET_VERSION_MINOR 1
#define CONVNET_VERSION_PATCH 0

namespace convnet {
inline constexpr const char* version = "0.1.0";
}  // namespace convnet
