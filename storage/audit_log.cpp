#include "storage/audit_log.hpp"

#include "core/keys.hpp"
#include "storage/atomic_file.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/file.h>
#include <optional>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace certmate::storage {

namespace json = boost::json;

namespace {

const std::string zero_hash(64, '0');

bool is_hash(const json::value* v) {
    if (!v || !v->is_string()) return false;
    const auto& s = v->get_string();
    return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::optional<std::uint64_t> as_seq(const json::value* v) {
    if (!v) return std::nullopt;
    if (v->is_uint64()) return v->get_uint64();
    if (v->is_int64() && v->get_int64() >= 0) return static_cast<std::uint64_t>(v->get_int64());
    return std::nullopt;
}

// The entry without `hash`, keys in their fixed order; its serialisation is what `hash` covers.
json::object without_hash(const json::object& o) {
    json::object out;
    out.reserve(o.size());
    for (const auto& kv : o)
        if (kv.key() != "hash") out.emplace(kv.key(), kv.value());
    return out;
}

struct parsed_line {
    json::object obj;
    std::uint64_t seq = 0;
    std::string prev_hash, hash;
};

// Parses one line; `reason` says why it is not a chain entry.
std::optional<parsed_line> parse_line(std::string_view line, std::string& reason) {
    std::error_code ec;
    json::value v = json::parse(line, ec);
    if (ec || !v.is_object()) {
        reason = "not JSON";
        return std::nullopt;
    }
    parsed_line p;
    p.obj = std::move(v.get_object());
    auto seq = as_seq(p.obj.if_contains("seq"));
    const auto* prev = p.obj.if_contains("prev_hash");
    const auto* hash = p.obj.if_contains("hash");
    if (!seq || !is_hash(prev) || !is_hash(hash)) {
        reason = "missing seq, prev_hash or hash";
        return std::nullopt;
    }
    p.seq = *seq;
    p.prev_hash = std::string(prev->get_string());
    p.hash = std::string(hash->get_string());
    return p;
}

// Whether the line is exactly what was hashed (canonical serialisation, `hash` last and correct).
bool hash_ok(std::string_view line, const parsed_line& p) {
    if (p.obj.empty() || (p.obj.end() - 1)->key() != "hash") return false;
    if (json::serialize(p.obj) != line) return false;
    return sha256_hex(json::serialize(without_hash(p.obj))) == p.hash;
}

std::vector<std::string_view> split_lines(std::string_view text) {
    std::vector<std::string_view> lines;
    while (!text.empty()) {
        auto nl = text.find('\n');
        if (nl == std::string_view::npos) {
            lines.push_back(text);
            break;
        }
        lines.push_back(text.substr(0, nl));
        text.remove_prefix(nl + 1);
    }
    return lines;
}

struct tail_state {
    std::uint64_t next_seq = 1;
    std::string last_hash = zero_hash;
    bool ends_with_newline = true;
};

// Finds the last intact entry, reading backwards from the end in growing chunks.
result<tail_state> read_tail(int fd, const std::filesystem::path& file) {
    tail_state st;
    struct stat sb{};
    if (::fstat(fd, &sb) != 0) return make_error(errc::audit_unavailable, "audit log: stat failed");
    const auto size = static_cast<std::size_t>(sb.st_size);
    if (size == 0) return st;
    for (std::size_t chunk = 64 * 1024;; chunk *= 4) {
        const std::size_t start = size > chunk ? size - chunk : 0;
        std::string buf(size - start, '\0');
        std::size_t got = 0;
        while (got < buf.size()) {
            ssize_t n = ::pread(fd, buf.data() + got, buf.size() - got, static_cast<off_t>(start + got));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return make_error(errc::audit_unavailable, "audit log: read failed");
            got += static_cast<std::size_t>(n);
        }
        st.ends_with_newline = buf.back() == '\n';
        auto lines = split_lines(buf);
        // Starting mid-file, the first piece may be a partial line.
        const std::size_t first = start > 0 ? 1 : 0;
        std::size_t skipped = 0;
        for (std::size_t i = lines.size(); i-- > first;) {
            std::string reason;
            auto p = parse_line(lines[i], reason);
            if (p && hash_ok(lines[i], *p)) {
                if (skipped > 0)
                    spdlog::warn("audit log {}: {} corrupt line(s) at the end; continuing the chain from seq {}",
                                 file.string(), skipped, p->seq);
                st.next_seq = p->seq + 1;
                st.last_hash = p->hash;
                return st;
            }
            ++skipped;
        }
        if (start == 0) {
            spdlog::warn("audit log {}: no intact entry found; starting a new chain", file.string());
            return st;
        }
    }
}

// flock(2) on the log for the scope: appends and the tail read at open never interleave with
// another process's append.
struct file_lock {
    int fd;
    bool held = false;
    explicit file_lock(int f) : fd(f) {
        int r;
        while ((r = ::flock(fd, LOCK_EX)) != 0 && errno == EINTR) {
        }
        held = r == 0;
    }
    ~file_lock() {
        if (held) ::flock(fd, LOCK_UN);
    }
    file_lock(const file_lock&) = delete;
    file_lock& operator=(const file_lock&) = delete;
};

struct opened {
    int fd = -1;
    tail_state tail;
    std::uint64_t size = 0;
};

// Opens (0600, creating directories 0700) and positions the chain after the last intact entry.
result<opened> open_file(const std::filesystem::path& file) {
    if (file.has_parent_path())
        if (auto r = ensure_dir(file.parent_path(), fs::perms(0700)); !r)
            return make_error(errc::audit_unavailable, "audit log: cannot create directory");
    const bool existed = std::filesystem::exists(file);
    int fd = ::open(file.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        spdlog::error("audit log {}: open: {}", file.string(), std::strerror(errno));
        return make_error(errc::audit_unavailable, "audit log: cannot open");
    }
    auto fail = [&](const char* what) -> result<opened> {
        spdlog::error("audit log {}: {}: {}", file.string(), what, std::strerror(errno));
        ::close(fd);
        return make_error(errc::audit_unavailable, std::string("audit log: ") + what + " failed");
    };
    if (::fchmod(fd, 0600) != 0) return fail("chmod");
    // Another process may be appending: read the tail (and mend a torn one) under the file lock.
    std::optional<file_lock> lock(std::in_place, fd);
    if (!lock->held) return fail("lock");
    auto tail = read_tail(fd, file);
    if (!tail) {
        lock.reset();
        ::close(fd);
        return tail.error();
    }
    // Terminate a torn last line so the next entry starts on its own line.
    if (!tail->ends_with_newline) {
        if (!write_all(fd, "\n") || ::fsync(fd) != 0) {
            lock.reset();
            return fail("write");
        }
    }
    struct stat sb{};
    if (::fstat(fd, &sb) != 0) {
        lock.reset();
        return fail("stat");
    }
    lock.reset();
    if (!existed && file.has_parent_path()) (void)fsync_dir(file.parent_path());
    return opened{fd, *tail, static_cast<std::uint64_t>(sb.st_size)};
}

} // namespace

result<std::unique_ptr<audit_log>> audit_log::open(std::filesystem::path file, clock_fn clock) {
    auto o = open_file(file);
    if (!o) return o.error();
    std::unique_ptr<audit_log> log(new audit_log(std::move(file), std::move(clock)));
    log->fd_ = o->fd;
    log->seq_ = o->tail.next_seq;
    log->last_hash_ = o->tail.last_hash;
    log->size_seen_ = o->size;
    return log;
}

audit_log::~audit_log() {
    if (fd_ >= 0) ::close(fd_);
}

result<void> audit_log::reopen() {
    std::lock_guard lk(mu_);
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    auto o = open_file(file_);
    if (!o) {
        healthy_ = false;
        last_error_ = o.error().message;
        return o.error();
    }
    fd_ = o->fd;
    seq_ = o->tail.next_seq;
    last_hash_ = o->tail.last_hash;
    size_seen_ = o->size;
    healthy_ = true;
    last_error_.clear();
    return {};
}

result<void> audit_log::append(const audit_entry& e) {
    std::lock_guard lk(mu_);
    if (!healthy_ || fd_ < 0) return make_error(errc::audit_unavailable, "audit log unavailable: " + last_error_);

    // Another process (a CLI command beside the server) may append too: hold the file lock and
    // continue the chain from what is on disk.
    file_lock lock(fd_);
    if (!lock.held) return make_error(errc::audit_unavailable, "audit log: lock failed");
    struct stat sb{};
    if (::fstat(fd_, &sb) != 0) return make_error(errc::audit_unavailable, "audit log: stat failed");
    if (static_cast<std::uint64_t>(sb.st_size) != size_seen_) {
        auto tail = read_tail(fd_, file_);
        if (!tail) return tail.error();
        seq_ = tail->next_seq;
        last_hash_ = tail->last_hash;
    }

    json::object o;
    o["seq"] = seq_;
    o["timestamp"] = format_time(clock_());
    o["operation"] = e.operation;
    o["resource_type"] = e.resource_type;
    o["resource_id"] = e.resource_id;
    o["status"] = e.status;
    o["user"] = e.user;
    o["ip_address"] = e.ip_address;
    if (!e.actor.empty()) o["actor"] = e.actor;
    o["details"] = e.details;
    o["error"] = e.error ? json::value(json::string(*e.error)) : json::value(nullptr);
    o["prev_hash"] = last_hash_;
    std::string hash = sha256_hex(json::serialize(o));
    o["hash"] = hash;
    std::string line = json::serialize(o);
    line += '\n';

    auto fail = [&](std::string why) -> result<void> {
        healthy_ = false;
        last_error_ = std::move(why);
        spdlog::error("audit log {}: {}; refusing further mutations", file_.string(), last_error_);
        return make_error(errc::audit_unavailable, "audit log unavailable: " + last_error_);
    };
    if (simulate_failure_) return fail("write failed (simulated)");
    if (hash.empty()) return fail("hashing failed");
    if (!write_all(fd_, line) || ::fsync(fd_) != 0) {
        std::string why = std::string("write failed: ") + std::strerror(errno);
        // Best effort: drop a partial line so the chain on disk stays verifiable.
        if (::ftruncate(fd_, sb.st_size) == 0) (void)::fsync(fd_);
        return fail(std::move(why));
    }
    ++seq_;
    last_hash_ = std::move(hash);
    size_seen_ = static_cast<std::uint64_t>(sb.st_size) + line.size();
    return {};
}

bool audit_log::healthy() const {
    std::lock_guard lk(mu_);
    return healthy_;
}

std::string audit_log::last_error() const {
    std::lock_guard lk(mu_);
    return last_error_;
}

std::uint64_t audit_log::next_seq() const {
    std::lock_guard lk(mu_);
    return seq_;
}

void audit_log::simulate_failure(bool on) {
    std::lock_guard lk(mu_);
    simulate_failure_ = on;
}

result<std::vector<json::object>> audit_log::query(const audit_query& q) const {
    auto text = read_file(file_);
    if (!text) return make_error(errc::audit_unavailable, "audit log: cannot read");
    std::vector<json::object> out;
    if (q.limit == 0) return out;
    auto lines = split_lines(*text);
    for (std::size_t i = lines.size(); i-- > 0;) {
        std::error_code ec;
        json::value v = json::parse(lines[i], ec);
        if (ec || !v.is_object()) continue;
        auto& o = v.get_object();
        auto str = [&](std::string_view k) -> std::string_view {
            const auto* f = o.if_contains(k);
            return f && f->is_string() ? std::string_view(f->get_string()) : std::string_view();
        };
        if (!q.resource_id.empty() && str("resource_id") != q.resource_id) continue;
        if (!q.operation.empty() && str("operation") != q.operation) continue;
        if (q.since || q.until) {
            auto t = parse_time(str("timestamp"));
            if (!t || (q.since && *t < *q.since) || (q.until && *t > *q.until)) continue;
        }
        out.push_back(std::move(o));
        if (out.size() >= q.limit) break;
    }
    return out;
}

audit_verify_result verify_audit_file(const std::filesystem::path& file) {
    audit_verify_result res;
    auto text = read_file(file);
    if (!text) {
        res.ok = false;
        res.reason = text.error().code == errc::not_found ? "file not found" : "cannot read file";
        return res;
    }
    auto lines = split_lines(*text);
    std::string prev = zero_hash;
    std::uint64_t expected_seq = 1;
    auto bad = [&](std::size_t i, std::string reason) {
        res.ok = false;
        res.bad_line = i + 1;
        res.reason = std::move(reason);
        return res;
    };
    for (std::size_t i = 0; i < lines.size(); ++i) {
        std::string reason;
        auto p = parse_line(lines[i], reason);
        if (!p) return bad(i, reason);
        if (!hash_ok(lines[i], *p)) return bad(i, "hash mismatch");
        if (p->seq != expected_seq) return bad(i, "seq out of order");
        if (p->prev_hash != prev) return bad(i, "prev_hash mismatch");
        prev = p->hash;
        ++expected_seq;
        ++res.entries;
    }
    return res;
}

} // namespace certmate::storage
