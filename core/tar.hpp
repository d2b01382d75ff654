// Minimal POSIX ustar archives (regular files only; names up to 99 bytes; members named *.key
// get mode 0600, others 0644) and gzip (RFC 1952, via zlib). Used by `certmate ca backup` and
// the batch jobs' archive (docs/api.md). Thread-safety: free functions.
#pragma once

#include "core/errc.hpp"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace certmate {

// Whether a member holds a private key (named *.key): packed and restored 0600.
bool is_key_member(const std::string& name);
std::string tar_pack(const std::vector<std::pair<std::string, std::string>>& files);
// The members of `archive`; errors (errc::invalid_argument) say what is wrong with it.
result<std::vector<std::pair<std::string, std::string>>> tar_unpack(std::string_view archive);
// RFC 1952 gzip at zlib `level` (-1: zlib's default, 9: the smallest).
result<std::string> gzip(std::string_view data, int level = -1);

} // namespace certmate
