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
    std::string last_hash = audit_zero_hash;
    bool last_is_checkpoint = false;
};

// Reads `len` bytes at `off`.
bool pread_all(int fd, std::string& buf, std::size_t off) {
    std::size_t got = 0;
    while (got < buf.size()) {
        ssize_t n = ::pread(fd, buf.data() + got, buf.size() - got, static_cast<off_t>(off + got));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        got += static_cast<std::size_t>(n);
    }
    return true;
}

// Finds the last intact entry, reading backwards from the end in growing chunks.
result<tail_state> read_tail(int fd, const std::filesystem::path& file) {
    tail_state st;
    struct stat sb {};
    if (::fstat(fd, &sb) != 0) return make_error(errc::audit_unavailable, "audit log: stat failed");
    const auto size = static_cast<std::size_t>(sb.st_size);
    if (size == 0) return st;
    for (std::size_t chunk = 64 * 1024;; chunk *= 4) {
        const std::size_t start = size > chunk ? size - chunk : 0;
        std::string buf(size - start, '\0');
        if (!pread_all(fd, buf, start)) return make_error(errc::audit_unavailable, "audit log: read failed");
        auto lines = split_lines(buf);
        // Starting mid-file, the first piece may be a partial line.
        const std::size_t first = start > 0 ? 1 : 0;
        std::size_t skipped = 0;
        for (std::size_t i = lines.size(); i-- > first;) {
            if (auto p = read_audit_line(lines[i])) {
                if (skipped > 0)
                    spdlog::warn("audit log {}: {} corrupt line(s) at the end; continuing the chain from seq {}",
                                 file.string(), skipped, p->seq);
                st.next_seq = p->seq + 1;
                st.last_hash = std::move(p->hash);
                st.last_is_checkpoint = p->operation == "checkpoint";
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

// Cuts a last line that has no '\n' (a crash mid-write) and fsyncs; the bytes removed.
result<std::uint64_t> cut_torn_tail(int fd, const std::filesystem::path& file) {
    struct stat sb {};
    if (::fstat(fd, &sb) != 0) return make_error(errc::audit_unavailable, "audit log: stat failed");
    const auto size = static_cast<std::size_t>(sb.st_size);
    if (size == 0) return std::uint64_t{0};
    std::size_t keep = 0; // bytes up to and including the last '\n'
    std::size_t end = size;
    for (bool first = true; end > 0; first = false) {
        const std::size_t start = end > 64 * 1024 ? end - 64 * 1024 : 0;
        std::string buf(end - start, '\0');
        if (!pread_all(fd, buf, start)) return make_error(errc::audit_unavailable, "audit log: read failed");
        if (first && buf.back() == '\n') return std::uint64_t{0};
        if (auto nl = buf.rfind('\n'); nl != std::string::npos) {
            keep = start + nl + 1;
            break;
        }
        end = start;
    }
    if (::ftruncate(fd, static_cast<off_t>(keep)) != 0 || ::fsync(fd) != 0) {
        spdlog::error("audit log {}: cutting a torn last line: {}", file.string(), std::strerror(errno));
        return make_error(errc::audit_unavailable, "audit log: truncate failed");
    }
    spdlog::warn("audit log {}: cut a torn last line ({} bytes without a newline)", file.string(), size - keep);
    return static_cast<std::uint64_t>(size - keep);
}

// flock(2) on the log for the scope: appends and the tail read at open never interleave with
// another process's append.
struct file_lock {
    int fd;
    bool held = false;
    explicit file_lock(int f) : fd(f) {
        int r;
        while ((r = ::flock(fd, LOCK_EX)) != 0 && errno == EINTR) {}
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
    std::uint64_t cut_bytes = 0; // torn tail removed
};

// Opens (0600, creating directories 0700), cuts a torn last line and positions the chain after
// the last intact entry.
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
    opened o;
    {
        // Another process may be appending: mend and read the tail under the file lock.
        file_lock lock(fd);
        if (!lock.held) return fail("lock");
        auto cut = cut_torn_tail(fd, file);
        auto tail = cut ? read_tail(fd, file) : result<tail_state>(cut.error());
        struct stat sb {};
        if (!tail || ::fstat(fd, &sb) != 0) {
            ::close(fd);
            return tail ? make_error(errc::audit_unavailable, "audit log: stat failed") : tail.error();
        }
        o = opened{fd, *tail, static_cast<std::uint64_t>(sb.st_size), *cut};
    }
    if (!existed && file.has_parent_path()) (void)fsync_dir(file.parent_path());
    return o;
}

} // namespace

struct audit_log::opened_state : opened {};

void audit_log::adopt(opened_state&& o) {
    fd_ = o.fd;
    seq_ = o.tail.next_seq;
    last_hash_ = o.tail.last_hash;
    last_is_checkpoint_ = o.tail.last_is_checkpoint;
    size_seen_ = o.size;
    pending_repair_bytes_ += o.cut_bytes;
}

result<std::unique_ptr<audit_log>> audit_log::open(std::filesystem::path file, clock_fn clock) {
    auto o = open_file(file);
    if (!o) return o.error();
    std::unique_ptr<audit_log> log(new audit_log(std::move(file), std::move(clock)));
    {
        std::lock_guard lk(log->mu_);
        log->adopt(opened_state{std::move(*o)});
        // Record the repair at once; if that write fails the log starts unhealthy and retries.
        if (log->pending_repair_bytes_ > 0) {
            file_lock lock(log->fd_);
            if (lock.held && log->catch_up_locked()) (void)log->write_pending_repair_locked();
        }
    }
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
        last_attempt_ = std::chrono::steady_clock::now();
        return o.error();
    }
    adopt(opened_state{std::move(*o)});
    healthy_ = true;
    last_error_.clear();
    if (pending_repair_bytes_ > 0) {
        file_lock lock(fd_);
        if (!lock.held) return fail_locked("lock failed");
        if (auto r = catch_up_locked(); !r) return r;
        if (auto r = write_pending_repair_locked(); !r) return r;
    }
    return {};
}

result<void> audit_log::set_signer(ossl::pkey key, std::uint64_t interval) {
    auto id = public_key_id(key.get());
    if (!id) return id.error();
    auto pem = public_key_to_pem(key.get());
    if (!pem) return pem.error();
    std::lock_guard lk(mu_);
    signer_id_ = std::move(*id);
    signer_pem_ = std::move(*pem);
    signer_ = std::move(key);
    checkpoint_interval_ = interval;
    return {};
}

std::string audit_log::public_key_pem() const {
    std::lock_guard lk(mu_);
    return signer_pem_;
}

result<void> audit_log::fail_locked(std::string why) {
    healthy_ = false;
    last_error_ = std::move(why);
    last_attempt_ = std::chrono::steady_clock::now();
    spdlog::error("audit log {}: {}; retrying at most once per second", file_.string(), last_error_);
    return make_error(errc::audit_unavailable, "audit log unavailable: " + last_error_);
}

result<void> audit_log::ready_locked() {
    if (healthy_ && fd_ >= 0) return {};
    if (std::chrono::steady_clock::now() - last_attempt_ < retry_every_)
        return make_error(errc::audit_unavailable, "audit log unavailable: " + last_error_);
    last_attempt_ = std::chrono::steady_clock::now();
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    auto o = open_file(file_);
    if (!o) return fail_locked(o.error().message);
    adopt(opened_state{std::move(*o)});
    return {};
}

result<void> audit_log::catch_up_locked() {
    struct stat sb {};
    if (::fstat(fd_, &sb) != 0) return fail_locked("stat failed");
    if (static_cast<std::uint64_t>(sb.st_size) == size_seen_) return {};
    // Another process appended (or crashed mid-line: cut that too, it never returned).
    auto cut = cut_torn_tail(fd_, file_);
    if (!cut) return fail_locked(cut.error().message);
    pending_repair_bytes_ += *cut;
    auto tail = read_tail(fd_, file_);
    if (!tail) return fail_locked(tail.error().message);
    if (::fstat(fd_, &sb) != 0) return fail_locked("stat failed");
    seq_ = tail->next_seq;
    last_hash_ = tail->last_hash;
    last_is_checkpoint_ = tail->last_is_checkpoint;
    size_seen_ = static_cast<std::uint64_t>(sb.st_size);
    return {};
}

result<void> audit_log::write_locked(const audit_entry& e) {
    auto made = make_audit_line(e, seq_, clock_(), last_hash_);
    if (!made) return fail_locked("hashing failed: " + made.error().message);
    std::string hash = std::move(made->hash);
    std::string line = std::move(made->text);
    line += '\n';

    if (simulate_failure_) return fail_locked("write failed (simulated)");
    if (!write_all(fd_, line) || ::fsync(fd_) != 0) {
        std::string why = std::string("write failed: ") + std::strerror(errno);
        // Best effort: drop a partial line so the chain on disk stays verifiable.
        if (::ftruncate(fd_, static_cast<off_t>(size_seen_)) == 0) (void)::fsync(fd_);
        return fail_locked(std::move(why));
    }
    ++seq_;
    last_hash_ = std::move(hash);
    size_seen_ += line.size();
    last_is_checkpoint_ = e.operation == "checkpoint";
    healthy_ = true;
    last_error_.clear();
    return {};
}

result<void> audit_log::write_pending_repair_locked() {
    if (pending_repair_bytes_ == 0) return {};
    audit_entry e;
    e.operation = "audit_repair";
    e.resource_type = "audit";
    e.resource_id = file_.filename().string();
    e.details = {{"removed_bytes", pending_repair_bytes_}, {"reason", "torn last line (no newline) cut at open"}};
    if (auto r = write_locked(e); !r) return r;
    pending_repair_bytes_ = 0;
    return {};
}

result<void> audit_log::write_checkpoint_locked(std::string reason) {
    auto e = make_checkpoint_entry(head{seq_ - 1, last_hash_}, signer_.get(), signer_id_, std::move(reason));
    if (!e) return fail_locked("signing the checkpoint failed");
    return write_locked(*e);
}

result<void> audit_log::append(const audit_entry& e) {
    std::lock_guard lk(mu_);
    if (auto r = ready_locked(); !r) return r;

    // Another process (a CLI command beside the server) may append too: hold the file lock and
    // continue the chain from what is on disk.
    file_lock lock(fd_);
    if (!lock.held) return fail_locked("lock failed");
    if (auto r = catch_up_locked(); !r) return r;
    if (auto r = write_pending_repair_locked(); !r) return r;
    if (auto r = write_locked(e); !r) return r;
    // The entry is durable whatever happens to the checkpoint: a failed one only turns the log
    // unhealthy (the next append retries).
    if (signer_ && checkpoint_interval_ > 0 && (seq_ - 1) % checkpoint_interval_ == 0)
        (void)write_checkpoint_locked("interval");
    return {};
}

result<bool> audit_log::checkpoint(std::string reason) {
    std::lock_guard lk(mu_);
    if (!signer_) return false;
    if (auto r = ready_locked(); !r) return r.error();
    file_lock lock(fd_);
    if (!lock.held) return fail_locked("lock failed").error();
    if (auto r = catch_up_locked(); !r) return r.error();
    if (auto r = write_pending_repair_locked(); !r) return r.error();
    if (seq_ == 1 || last_is_checkpoint_) return false;
    if (auto r = write_checkpoint_locked(std::move(reason)); !r) return r.error();
    return true;
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

audit_log::head audit_log::head_written() const {
    std::lock_guard lk(mu_);
    return head{seq_ - 1, last_hash_};
}

result<audit_export> audit_log::export_range(std::uint64_t from_seq, std::optional<std::uint64_t> to_seq) const {
    ossl::pkey pub;
    {
        std::lock_guard lk(mu_);
        if (signer_) pub = ossl::up_ref(signer_.get());
    }
    // Taken before the read: the file holds at least this head, as this process wrote or read it.
    const head expected = head_written();
    auto file_text = read_file(file_);
    if (!file_text) return make_error(errc::audit_unavailable, "audit log: cannot read");
    // A line being written (no '\n' yet) is not part of any range.
    std::string text = std::move(*file_text);
    text.resize(text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1);
    // The signature vouches for these bytes: only a log that verifies, up to the head this server
    // wrote, is signed. Otherwise whoever can write the file gets its rewrite signed.
    if (auto v = verify_audit_text(text, pub.get(), expected); !v.ok)
        return make_error(errc::conflict, "the audit log does not verify (line " + std::to_string(v.bad_line) + ": " +
                                              v.reason + "); nothing was signed");
    audit_export out;
    // The bytes from the first line in range to the end of the last one, exactly as stored.
    std::size_t begin = std::string::npos, end = 0, pos = 0;
    while (pos < text.size()) {
        const auto nl = text.find('\n', pos);
        if (nl == std::string::npos) break;
        const std::string_view line(text.data() + pos, nl - pos);
        if (auto seq = audit_line_seq(line)) {
            if (*seq >= from_seq && (!to_seq || *seq <= *to_seq)) {
                if (begin == std::string::npos) {
                    begin = pos;
                    out.from_seq = *seq;
                }
                end = nl + 1;
                out.to_seq = *seq;
            } else if (to_seq && *seq > *to_seq && begin != std::string::npos) {
                break;
            }
        }
        pos = nl + 1;
    }
    if (begin == std::string::npos) return make_error(errc::not_found, "no audit entries in that range");
    out.bytes = text.substr(begin, end - begin);
    out.count = static_cast<std::size_t>(std::count(out.bytes.begin(), out.bytes.end(), '\n'));
    std::lock_guard lk(mu_);
    if (!signer_) return make_error(errc::audit_unavailable, "no audit signing key is loaded");
    auto sig = sign_raw(signer_.get(), out.bytes);
    if (!sig) return sig.error();
    out.signature = std::move(*sig);
    out.key_id = signer_id_;
    return out;
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

audit_verify_result audit_log::verify() const {
    ossl::pkey pub;
    {
        std::lock_guard lk(mu_);
        if (signer_) pub = ossl::up_ref(signer_.get());
    }
    const head expected = head_written();
    auto text = read_file(file_);
    if (!text) {
        audit_verify_result res;
        res.ok = false;
        res.reason = text.error().code == errc::not_found ? "file not found" : "cannot read file";
        return res;
    }
    return verify_audit_text(*text, pub.get(), expected);
}

audit_verify_result verify_audit_file(const std::filesystem::path& file, EVP_PKEY* public_key) {
    auto text = read_file(file);
    if (!text) {
        audit_verify_result res;
        res.ok = false;
        res.reason = text.error().code == errc::not_found ? "file not found" : "cannot read file";
        return res;
    }
    return verify_audit_text(*text, public_key);
}

audit_verify_result verify_audit_text(std::string_view text, EVP_PKEY* public_key,
                                      std::optional<audit_log::head> expected) {
    audit_chain_verifier v(public_key, std::move(expected));
    for (auto line : split_lines(text))
        if (!v.add(line)) break;
    return v.finish();
}

} // namespace certmate::storage
