#include "core/tar.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace certmate {

bool is_key_member(const std::string& name) { return name.size() > 4 && name.substr(name.size() - 4) == ".key"; }

namespace {

void put_octal(char* field, std::size_t width, std::uint64_t value) {
    // width includes the terminating NUL.
    std::snprintf(field, width, "%0*llo", static_cast<int>(width - 1), static_cast<unsigned long long>(value));
}

} // namespace

std::string tar_pack(const std::vector<std::pair<std::string, std::string>>& files) {
    std::string out;
    for (const auto& [name, data] : files) {
        char h[512];
        std::memset(h, 0, sizeof h);
        std::memcpy(h, name.data(), std::min<std::size_t>(name.size(), 99));
        put_octal(h + 100, 8, is_key_member(name) ? 0600 : 0644);
        put_octal(h + 108, 8, 0);
        put_octal(h + 116, 8, 0);
        put_octal(h + 124, 12, data.size());
        put_octal(h + 136, 12, 0);
        h[156] = '0';
        std::memcpy(h + 257, "ustar", 6);
        std::memcpy(h + 263, "00", 2);
        std::memset(h + 148, ' ', 8);
        unsigned sum = 0;
        for (unsigned char c : h) sum += c;
        std::snprintf(h + 148, 8, "%06o", sum);
        h[155] = ' ';
        out.append(h, sizeof h);
        out += data;
        out.append((512 - data.size() % 512) % 512, '\0');
    }
    out.append(1024, '\0');
    return out;
}

result<std::vector<std::pair<std::string, std::string>>> tar_unpack(std::string_view a) {
    std::vector<std::pair<std::string, std::string>> files;
    std::size_t pos = 0;
    auto bad = [](const char* why) { return make_error(errc::invalid_argument, why); };
    while (pos + 512 <= a.size()) {
        std::string_view h = a.substr(pos, 512);
        if (h.find_first_not_of('\0') == std::string_view::npos) return files;
        unsigned sum = 0;
        for (std::size_t i = 0; i < 512; ++i) sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(h[i]);
        unsigned stored = static_cast<unsigned>(std::strtoul(std::string(h.substr(148, 8)).c_str(), nullptr, 8));
        if (sum != stored) return bad("header checksum mismatch");
        if (h[156] != '0' && h[156] != '\0') return bad("unexpected entry type");
        std::string name(h.substr(0, 100).data(), strnlen(h.data(), 100));
        std::uint64_t size = std::strtoull(std::string(h.substr(124, 12)).c_str(), nullptr, 8);
        pos += 512;
        if (size > a.size() - pos) return bad("truncated");
        files.emplace_back(std::move(name), std::string(a.substr(pos, size)));
        pos += (size + 511) / 512 * 512;
    }
    return bad("missing end-of-archive marker");
}

result<std::string> gzip(std::string_view data, int level) {
    z_stream z{};
    // windowBits 15 + 16: a gzip wrapper (RFC 1952) around the deflate stream.
    if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return make_error(errc::internal, "gzip: deflateInit2 failed");
    std::string out;
    out.resize(deflateBound(&z, static_cast<uLong>(data.size())) + 32);
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    const int rc = deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    if (rc != Z_STREAM_END) return make_error(errc::internal, "gzip: deflate did not finish");
    return out;
}

} // namespace certmate
