#include "storage/snapshot.hpp"

#include "core/record_codec.hpp"

#include <zlib.h>

#include <sys/stat.h>

namespace certmate::storage {

namespace {

constexpr std::string_view magic = "CMSNAP1\n";
constexpr std::uint64_t format_version = 1;

void put_u(std::string& out, std::uint64_t v) {
    while (v >= 0x80) {
        out += static_cast<char>((v & 0x7f) | 0x80);
        v >>= 7;
    }
    out += static_cast<char>(v);
}

std::optional<std::uint64_t> get_u(std::string_view& in) {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
        const auto b = static_cast<unsigned char>(in.front());
        in.remove_prefix(1);
        v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
        if (!(b & 0x80)) return v;
    }
    return std::nullopt;
}

std::uint32_t crc_of(std::string_view data) {
    uLong c = crc32(0L, Z_NULL, 0);
    // zlib takes uInt lengths: feed it in pieces.
    while (!data.empty()) {
        const auto n = static_cast<uInt>(std::min<std::size_t>(data.size(), 1u << 30));
        c = crc32(c, reinterpret_cast<const Bytef*>(data.data()), n);
        data.remove_prefix(n);
    }
    return static_cast<std::uint32_t>(c);
}

error corrupt(std::string why) { return make_error(errc::storage_failure, std::move(why)); }

} // namespace

std::optional<dir_stamp> stamp_of(const fs::path& dir) {
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return std::nullopt;
    return dir_stamp{static_cast<std::uint64_t>(st.st_ino),
                     static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

dir_stamps scan_stamps(const layout& l) {
    dir_stamps out;
    for (auto u : all_usages) {
        const fs::path udir = l.usage_dir(u);
        const std::string prefix = std::string(to_string(u)) + "/";
        std::error_code ec;
        for (fs::directory_iterator it(udir, ec), end; !ec && it != end; it.increment(ec)) {
            std::string name = it->path().filename().string();
            if (name.starts_with('.') || !valid_identifier(name)) continue;
            if (auto s = stamp_of(it->path())) out.emplace(prefix + name, *s);
        }
    }
    return out;
}

std::string encode_snapshot(const std::string& records, std::size_t count, std::uint64_t write_count,
                            const dir_stamps& stamps) {
    std::string out;
    out.reserve(records.size() + stamps.size() * 48 + 64);
    out += magic;
    put_u(out, format_version);
    put_u(out, record_codec_version);
    put_u(out, write_count);
    put_u(out, count);
    put_u(out, records.size());
    out += records;
    put_u(out, stamps.size());
    for (const auto& [key, s] : stamps) {
        put_u(out, key.size());
        out += key;
        put_u(out, s.ino);
        put_u(out, (static_cast<std::uint64_t>(s.mtime_ns) << 1) ^ static_cast<std::uint64_t>(s.mtime_ns >> 63));
    }
    const std::uint32_t crc = crc_of(out);
    for (int i = 0; i < 4; ++i) out += static_cast<char>((crc >> (8 * i)) & 0xff);
    return out;
}

result<snapshot> decode_snapshot(std::string_view file) {
    if (file.size() < magic.size() + 4 || file.substr(0, magic.size()) != magic)
        return corrupt("not a snapshot (bad magic or truncated)");
    std::uint32_t stored = 0;
    for (int i = 0; i < 4; ++i)
        stored |= static_cast<std::uint32_t>(static_cast<unsigned char>(file[file.size() - 4 + i])) << (8 * i);
    std::string_view in = file.substr(0, file.size() - 4);
    if (crc_of(in) != stored) return corrupt("checksum mismatch (truncated or damaged)");
    in.remove_prefix(magic.size());
    auto version = get_u(in);
    auto codec = get_u(in);
    if (version != format_version || codec != record_codec_version)
        return corrupt("written by another version (format " + std::to_string(version.value_or(0)) + ")");
    auto writes = get_u(in);
    auto count = get_u(in);
    auto len = get_u(in);
    if (!writes || !count || !len || *len > in.size()) return corrupt("bad header");
    snapshot snap;
    std::string_view body = in.substr(0, *len);
    in.remove_prefix(*len);
    snap.records.reserve(std::min<std::uint64_t>(*count, body.size()));
    for (std::uint64_t k = 0; k < *count; ++k) {
        auto n = get_u(body);
        if (!n || *n > body.size()) return corrupt("bad record length");
        std::string_view one = body.substr(0, *n);
        body.remove_prefix(*n);
        auto rec = decode_record(one);
        if (!rec || !one.empty()) return corrupt("bad record " + std::to_string(k));
        snap.records.push_back(std::move(*rec));
    }
    if (!body.empty()) return corrupt("records longer than their count");
    auto stamps = get_u(in);
    if (!stamps || *stamps > in.size()) return corrupt("bad stamp count");
    snap.stamps.reserve(*stamps);
    for (std::uint64_t k = 0; k < *stamps; ++k) {
        auto n = get_u(in);
        if (!n || *n > in.size()) return corrupt("bad stamp");
        std::string key(in.substr(0, *n));
        in.remove_prefix(*n);
        auto ino = get_u(in);
        auto zz = get_u(in);
        if (!ino || !zz) return corrupt("bad stamp");
        const auto mtime = static_cast<std::int64_t>((*zz >> 1) ^ (~(*zz & 1) + 1));
        snap.stamps.emplace(std::move(key), dir_stamp{*ino, mtime});
    }
    if (!in.empty()) return corrupt("trailing bytes");
    return snap;
}

} // namespace certmate::storage
