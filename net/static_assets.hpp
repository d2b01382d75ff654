// The dashboard (assets/, embedded at build time by scripts/embed_assets.cmake): its files with
// content types, strong ETags and gzip, and the routes that serve them (README.md "Dashboard").
// Internal to net/.
#pragma once

#include <span>
#include <string_view>

namespace certmate::assets {

struct asset {
    std::string_view name;
    std::string_view data;
};

// Every file of assets/ (flat), generated into the build tree.
std::span<const asset> all();

} // namespace certmate::assets
