#include "storage/fs_store.hpp"

#include "core/cert_json.hpp"
#include "storage/atomic_file.hpp"
#include "storage/ca_files.hpp"
#include "storage/snapshot.hpp"
#include "storage/sweep_state.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <numeric>
#include <thread>
#include <unordered_map>

namespace certmate::storage {

namespace json = boost::json;

namespace {

constexpr std::string_view tmp_prefix = ".tmp-";
constexpr std::string_view new_prefix = ".new-";
constexpr std::string_view old_prefix = ".old-";
constexpr std::size_t rand_len = 6; // mkdtemp's XXXXXX

// Serialises creates of different usages between the existence check and the rename.
std::mutex g_create_mu;

error fs_error(const char* what, const fs::path& p, int err) { return storage_io_error(what, p, err); }

error crash_error(std::string_view step) {
    return make_error(errc::storage_failure, "storage: simulated crash at " + std::string(step));
}

void pretty(const json::value& v, std::string& out, int indent);

// `open`, then each element of `items` on its own line one level deeper (written by `each`),
// then `close` on a line of its own; `open` and `close` alone for no elements.
template <class Items, class Each>
void pretty_block(const Items& items, char open, char close, std::string& out, int indent, Each each) {
    out += open;
    if (items.empty()) {
        out += close;
        return;
    }
    auto nl = [&](int n) {
        out += '\n';
        out.append(static_cast<std::size_t>(n) * 2, ' ');
    };
    bool first = true;
    for (const auto& e : items) {
        if (!first) out += ',';
        first = false;
        nl(indent + 1);
        each(e);
    }
    nl(indent);
    out += close;
}

// Indented JSON, so metadata.json stays readable for operators.
void pretty(const json::value& v, std::string& out, int indent) {
    if (v.is_object()) {
        pretty_block(v.get_object(), '{', '}', out, indent, [&](const json::key_value_pair& kv) {
            out += json::serialize(json::string_view(kv.key()));
            out += ": ";
            pretty(kv.value(), out, indent + 1);
        });
    } else if (v.is_array()) {
        pretty_block(v.get_array(), '[', ']', out, indent, [&](const json::value& e) { pretty(e, out, indent + 1); });
    } else {
        out += json::serialize(v);
    }
}

std::string metadata_text(const cert_record& rec) {
    std::string out;
    pretty(to_json(rec), out, 0);
    out += '\n';
    return out;
}

bool exists_nofollow(const fs::path& p) {
    std::error_code ec;
    return fs::exists(fs::symlink_status(p, ec));
}

// mkdtemp(3) of <dir>/<prefix><id>-XXXXXX (mode 0700).
result<fs::path> make_temp_dir(const fs::path& dir, std::string_view prefix, const std::string& id) {
    std::string tmpl = (dir / (std::string(prefix) + id + "-XXXXXX")).string();
    if (::mkdtemp(tmpl.data()) == nullptr) return fs_error("mkdtemp", dir, errno);
    return fs::path(tmpl);
}

void remove_tree(const fs::path& p) {
    std::error_code ec;
    fs::remove_all(p, ec);
    if (ec) spdlog::error("fs_store: cannot remove {}: {}", p.string(), ec.message());
}

// Writes cert.crt, cert.key and cert.csr (those given) and metadata.json into the fresh temp
// directory `tmp`, then syncs it. A real failure removes `tmp`; a simulated crash (`hook`
// returned false at a step) leaves it behind, as a crash would.
result<void> write_cert_dir(const fs::path& tmp, const cert_record& rec, std::string_view cert_pem,
                            const std::optional<std::string>& key_pem, const std::optional<std::string>& csr_pem,
                            const std::function<bool(std::string_view)>& hook) {
    auto crashed = [&](std::string_view step) { return hook && !hook(step); };
    auto fail = [&](error e) -> result<void> {
        remove_tree(tmp);
        return e;
    };
    if (auto r = write_file_synced(tmp / "cert.crt", cert_pem, fs::perms(0644)); !r) return fail(r.error());
    if (crashed("cert-written")) return crash_error("cert-written");
    if (key_pem) {
        if (auto r = write_file_synced(tmp / "cert.key", *key_pem, fs::perms(0600)); !r) return fail(r.error());
        if (crashed("key-written")) return crash_error("key-written");
    }
    if (csr_pem) {
        if (auto r = write_file_synced(tmp / "cert.csr", *csr_pem, fs::perms(0644)); !r) return fail(r.error());
        if (crashed("csr-written")) return crash_error("csr-written");
    }
    if (auto r = write_file_synced(tmp / "metadata.json", metadata_text(rec), fs::perms(0644)); !r)
        return fail(r.error());
    if (crashed("files-written")) return crash_error("files-written");
    if (auto r = fsync_dir(tmp); !r) return fail(r.error());
    if (crashed("dir-synced")) return crash_error("dir-synced");
    return {};
}

std::string_view file_name(file_kind k) {
    switch (k) {
    case file_kind::cert: return "cert.crt";
    case file_kind::key: return "cert.key";
    case file_kind::csr: return "cert.csr";
    }
    return "cert.crt";
}

// Reads and checks one certificate directory; the error message is the reason it is skipped.
result<cert_record> load_one(const fs::path& dir, cert_usage usage, const std::string& name) {
    auto text = storage::read_file(dir / "metadata.json");
    if (!text) return make_error(errc::storage_failure, "metadata.json unreadable");
    std::error_code ec;
    json::value v = json::parse(*text, ec);
    if (ec) return make_error(errc::storage_failure, "metadata.json is not JSON");
    auto rec = record_from_json(v);
    if (!rec) return make_error(errc::storage_failure, "metadata.json invalid (" + rec.error().field + ")");
    if (rec->identifier != name) return make_error(errc::storage_failure, "identifier does not match the directory");
    if (rec->usage != usage) return make_error(errc::storage_failure, "cert_usage does not match the directory");
    if (!exists_nofollow(dir / "cert.crt")) return make_error(errc::storage_failure, "cert.crt missing");
    if (rec->has_private_key && !exists_nofollow(dir / "cert.key"))
        return make_error(errc::storage_failure, "cert.key missing");
    return rec;
}

// Removes write_file_atomic's temp files left in one certificate directory by a crash (an
// interrupted metadata.json rewrite); each one is reported as "<usage>/<id>/<name>: ...".
void remove_temp_files(const fs::path& dir, std::string_view prefix, std::vector<std::string>& removed) {
    std::error_code ec;
    bool changed = false;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (!is_atomic_temp_name(name)) continue;
        std::error_code rec;
        if (!fs::remove(it->path(), rec) || rec) {
            spdlog::error("fs_store: cannot remove {}: {}", it->path().string(), rec.message());
            continue;
        }
        std::string msg = std::string(prefix) + "/" + name + ": removed (interrupted write)";
        spdlog::warn("fs_store: leftover {}", msg);
        removed.push_back(std::move(msg));
        changed = true;
    }
    if (changed) (void)fsync_dir(dir);
}

// Finishes or rolls back interrupted creates and replaces in one usage directory.
void recover_usage_dir(const fs::path& udir, std::string_view uname, load_report& rep) {
    std::vector<std::string> tmps, news, olds;
    std::error_code ec;
    for (fs::directory_iterator it(udir, ec), end; !ec && it != end; it.increment(ec)) {
        std::string name = it->path().filename().string();
        if (name.starts_with(tmp_prefix))
            tmps.push_back(name);
        else if (name.starts_with(new_prefix))
            news.push_back(name);
        else if (name.starts_with(old_prefix))
            olds.push_back(name);
    }
    if (ec) {
        rep.skipped.push_back(std::string(uname) + ": cannot list (" + ec.message() + ")");
        return;
    }
    std::sort(news.begin(), news.end());
    bool changed = false;
    auto note = [&](const std::string& name, std::string_view what) {
        std::string msg = std::string(uname) + "/" + name + ": " + std::string(what);
        spdlog::warn("fs_store: leftover {}", msg);
        rep.removed_leftovers.push_back(std::move(msg));
        changed = true;
    };

    for (const auto& name : tmps) {
        remove_tree(udir / name);
        note(name, "removed (interrupted create)");
    }
    for (const auto& name : news) {
        const fs::path p = udir / name;
        std::string id;
        if (name.size() > new_prefix.size() + rand_len + 1 && name[name.size() - rand_len - 1] == '-')
            id = name.substr(new_prefix.size(), name.size() - new_prefix.size() - rand_len - 1);
        if (!valid_identifier(id) || exists_nofollow(udir / id)) {
            remove_tree(p);
            note(name, "removed (interrupted replace, old certificate kept)");
            continue;
        }
        const fs::path old = udir / (std::string(old_prefix) + id);
        // The old directory is moved aside only after the new one is complete and synced.
        if (exists_nofollow(old) || exists_nofollow(p / "metadata.json")) {
            if (::rename(p.c_str(), (udir / id).c_str()) != 0) {
                fs_error("rename", p, errno);
                continue;
            }
            remove_tree(old);
            note(name, "renamed to " + id + " (interrupted replace completed)");
        } else {
            remove_tree(p);
            note(name, "removed (incomplete)");
        }
    }
    for (const auto& name : olds) {
        const fs::path p = udir / name;
        if (!exists_nofollow(p)) continue; // consumed above
        std::string id = name.substr(old_prefix.size());
        if (!valid_identifier(id) || exists_nofollow(udir / id)) {
            remove_tree(p);
            note(name, "removed (replaced certificate)");
        } else if (::rename(p.c_str(), (udir / id).c_str()) == 0) {
            note(name, "renamed back to " + id + " (interrupted replace rolled back)");
        } else {
            fs_error("rename", p, errno);
        }
    }
    if (changed) (void)fsync_dir(udir);
}

} // namespace

fs_store::fs_store(layout l) : layout_(std::move(l)) {}

fs_store::~fs_store() {
    {
        std::lock_guard lk(mirror_mu_);
        mirror_stop_ = true;
    }
    mirror_cv_.notify_all();
    if (mirror_thread_.joinable()) mirror_thread_.join();
}

void fs_store::before_write() {
    std::lock_guard lk(snap_mu_);
    ++writes_;
    if (!snapshot_kept_) return;
    const fs::path p = layout_.index_snapshot();
    if (::unlink(p.c_str()) == 0) {
        if (auto r = fsync_dir(layout_.state_dir()); !r)
            spdlog::error("fs_store: cannot sync {} after removing the snapshot", layout_.state_dir().string());
    } else if (errno != ENOENT) {
        // The directory stamps still catch the change at the next start (storage/snapshot.hpp).
        spdlog::error("fs_store: cannot remove {}: {}", p.string(), std::strerror(errno));
        return;
    }
    snapshot_kept_ = false;
}

std::uint64_t fs_store::write_count() const {
    std::lock_guard lk(snap_mu_);
    return writes_;
}

result<bool> fs_store::save_snapshot(const std::string& records, std::size_t count, std::uint64_t at) {
    if (write_count() != at) return false;
    // Taken after the records were encoded: a write between the two makes `at` stale, checked below.
    const dir_stamps stamps = scan_stamps(layout_);
    const std::string data = encode_snapshot(records, count, at, stamps);
    if (auto r = ensure_dir(layout_.state_dir(), fs::perms(0700)); !r) return r.error();
    std::lock_guard lk(snap_mu_);
    if (writes_ != at) return false;
    std::optional<error> late;
    if (auto r = write_file_atomic(layout_.index_snapshot(), data, fs::perms(0600), late); !r) return r.error();
    snapshot_kept_ = true;
    if (late) spdlog::warn("fs_store: snapshot written, its directory not synced: {}", late->message);
    return true;
}

result<void> fs_store::create(const cert_record& rec, const cert_files& files) {
    before_write();
    return noted(create_unnoted(rec, files));
}

result<void> fs_store::create_unnoted(const cert_record& rec, const cert_files& files) {
    const std::string& id = rec.identifier;
    if (!valid_identifier(id)) return make_error(errc::invalid_identifier, "invalid identifier", "identifier");
    auto crashed = [this](std::string_view step) { return crash_hook && !crash_hook(step); };
    auto taken = [&] {
        for (auto u : all_usages)
            if (exists_nofollow(layout_.cert_dir(u, id))) return true;
        return false;
    };
    if (taken()) return make_error(errc::already_exists, "identifier already exists", "identifier");

    const fs::path udir = layout_.usage_dir(rec.usage);
    if (auto r = ensure_dir(udir, fs::perms(0750)); !r) return r;
    auto tmp = make_temp_dir(udir, tmp_prefix, id);
    if (!tmp) return tmp.error();
    if (crashed("tmp-created")) return crash_error("tmp-created");

    if (auto r = write_cert_dir(*tmp, rec, files.cert_pem, files.key_pem, files.csr_pem, crash_hook); !r) return r;

    // Any real failure below removes the temp directory; a simulated crash leaves it.
    auto fail = [&](error e) -> result<void> {
        remove_tree(*tmp);
        return e;
    };

    {
        std::lock_guard lk(g_create_mu);
        if (taken()) return fail(make_error(errc::already_exists, "identifier already exists", "identifier"));
        const fs::path dst = layout_.cert_dir(rec.usage, id);
        if (::renameat2(AT_FDCWD, tmp->c_str(), AT_FDCWD, dst.c_str(), RENAME_NOREPLACE) != 0) {
            if (errno == EEXIST)
                return fail(make_error(errc::already_exists, "identifier already exists", "identifier"));
            return fail(fs_error("rename", dst, errno));
        }
    }
    if (crashed("renamed")) return crash_error("renamed");
    // The certificate is in place from here on: a failing fsync is reported, not returned.
    if (auto r = fsync_dir(udir); !r) note_late_error(r.error());
    if (crashed("parent-synced")) return crash_error("parent-synced");
    return {};
}

result<void> fs_store::replace(const cert_record& rec, const cert_files& files) {
    before_write();
    return noted(replace_unnoted(rec, files));
}

result<void> fs_store::replace_unnoted(const cert_record& rec, const cert_files& files) {
    const std::string& id = rec.identifier;
    if (!valid_identifier(id)) return make_error(errc::invalid_identifier, "invalid identifier", "identifier");
    auto crashed = [this](std::string_view step) { return crash_hook && !crash_hook(step); };
    const fs::path udir = layout_.usage_dir(rec.usage);
    const fs::path dir = layout_.cert_dir(rec.usage, id);
    if (!exists_nofollow(dir)) return make_error(errc::not_found, "certificate not found", "identifier");

    // The key and CSR are kept unless new ones are given.
    std::optional<std::string> key = files.key_pem, csr = files.csr_pem;
    if (!key) {
        auto k = storage::read_file(dir / "cert.key");
        if (k)
            key = std::move(*k);
        else if (k.error().code != errc::not_found)
            return k.error();
    }
    if (!csr) {
        auto c = storage::read_file(dir / "cert.csr");
        if (c)
            csr = std::move(*c);
        else if (c.error().code != errc::not_found)
            return c.error();
    }

    auto tmp = make_temp_dir(udir, new_prefix, id);
    if (!tmp) return tmp.error();
    if (crashed("tmp-created")) return crash_error("tmp-created");
    if (auto r = write_cert_dir(*tmp, rec, files.cert_pem, key, csr, crash_hook); !r) return r;
    auto fail = [&](error e) -> result<void> {
        remove_tree(*tmp);
        return e;
    };

    // Swap: <id> -> .old-<id>, .new-<id>-r -> <id>. load_all() completes either half after a crash.
    const fs::path old = udir / (std::string(old_prefix) + id);
    if (exists_nofollow(old)) remove_tree(old);
    if (::rename(dir.c_str(), old.c_str()) != 0) return fail(fs_error("rename", dir, errno));
    if (auto r = fsync_dir(udir); !r) {
        ::rename(old.c_str(), dir.c_str());
        return fail(r.error());
    }
    if (crashed("old-renamed")) return crash_error("old-renamed");
    if (::rename(tmp->c_str(), dir.c_str()) != 0) {
        int err = errno;
        ::rename(old.c_str(), dir.c_str());
        return fail(fs_error("rename", *tmp, err));
    }
    // The new certificate is in place from here on: a failing fsync is reported, not returned.
    if (auto r = fsync_dir(udir); !r) note_late_error(r.error());
    if (crashed("new-renamed")) return crash_error("new-renamed");
    remove_tree(old);
    if (auto r = fsync_dir(udir); !r) note_late_error(r.error());
    if (crashed("old-removed")) return crash_error("old-removed");
    return {};
}

result<void> fs_store::write_metadata(const cert_record& rec) {
    before_write();
    return noted(write_metadata_unnoted(rec));
}

result<void> fs_store::write_metadata_unnoted(const cert_record& rec) {
    if (!valid_identifier(rec.identifier))
        return make_error(errc::invalid_identifier, "invalid identifier", "identifier");
    const fs::path dir = layout_.cert_dir(rec.usage, rec.identifier);
    if (!exists_nofollow(dir)) return make_error(errc::not_found, "certificate not found", "identifier");
    return write_visible(dir / "metadata.json", metadata_text(rec), fs::perms(0644));
}

result<std::string> fs_store::read_file(cert_usage usage, const std::string& id, file_kind kind) const {
    if (!valid_identifier(id)) return make_error(errc::invalid_identifier, "invalid identifier", "identifier");
    return storage::read_file(layout_.cert_dir(usage, id) / std::string(file_name(kind)));
}

result<load_report> fs_store::load_all(unsigned threads) {
    load_report rep;
    struct job {
        cert_usage usage;
        std::string name;
    };
    std::vector<job> jobs;
    for (auto u : all_usages) {
        const fs::path udir = layout_.usage_dir(u);
        std::error_code ec;
        if (!fs::is_directory(udir, ec)) continue;
        const std::string uname(to_string(u));
        recover_usage_dir(udir, uname, rep);
        for (fs::directory_iterator it(udir, ec), end; !ec && it != end; it.increment(ec)) {
            std::string name = it->path().filename().string();
            if (name.starts_with('.')) {
                rep.skipped.push_back(uname + "/" + name + ": unknown hidden entry");
                continue;
            }
            std::error_code tec;
            if (!it->is_directory(tec) || it->is_symlink(tec)) {
                rep.skipped.push_back(uname + "/" + name + ": not a directory");
                continue;
            }
            if (!valid_identifier(name)) {
                rep.skipped.push_back(uname + "/" + name + ": invalid identifier");
                continue;
            }
            jobs.push_back({u, std::move(name)});
        }
        if (ec) {
            spdlog::error("fs_store: cannot list {}: {}", udir.string(), ec.message());
            return make_error(errc::storage_failure, "storage: cannot list certificates");
        }
    }

    // The snapshot's record of a directory is used while the directory keeps the stamp it had
    // when the snapshot was written; the others (new, replaced, rewritten) are read below.
    std::vector<std::pair<cert_usage, cert_record>> all;
    {
        auto text = storage::read_file(layout_.index_snapshot());
        auto snap = text ? decode_snapshot(*text) : result<snapshot>(text.error());
        if (!snap) {
            rep.snapshot_problem =
                text ? "corrupt: " + snap.error().message
                     : (text.error().code == errc::not_found ? "missing" : "unreadable: " + text.error().message);
        } else {
            std::unordered_map<std::string, std::size_t> rec_of;
            rec_of.reserve(snap->records.size());
            for (std::size_t i = 0; i < snap->records.size(); ++i) {
                const auto& r = snap->records[i];
                rec_of.emplace(std::string(to_string(r.usage)) + "/" + r.identifier, i);
            }
            std::vector<job> changed;
            all.reserve(jobs.size());
            for (auto& j : jobs) {
                const std::string key = std::string(to_string(j.usage)) + "/" + j.name;
                auto st = snap->stamps.find(key);
                auto rec = rec_of.find(key);
                auto now = stamp_of(layout_.cert_dir(j.usage, j.name));
                if (st == snap->stamps.end() || rec == rec_of.end() || !now || !(*now == st->second))
                    changed.push_back(std::move(j));
                else
                    all.emplace_back(j.usage, std::move(snap->records[rec->second]));
            }
            rep.from_snapshot = true;
            rep.replayed = changed.size();
            jobs = std::move(changed);
        }
    }

    // Parse metadata in parallel; each worker collects into its own slot.
    struct slot {
        std::vector<std::pair<cert_usage, cert_record>> records;
        std::vector<std::string> skipped;
        std::vector<std::string> removed;
    };
    const unsigned n =
        std::max(1u, std::min<unsigned>(threads, static_cast<unsigned>(std::max<std::size_t>(1, jobs.size()))));
    std::vector<slot> slots(n);
    std::atomic<std::size_t> next{0};
    auto work = [&](slot& s) {
        for (std::size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < jobs.size();) {
            const auto& j = jobs[i];
            const fs::path dir = layout_.cert_dir(j.usage, j.name);
            remove_temp_files(dir, std::string(to_string(j.usage)) + "/" + j.name, s.removed);
            auto rec = load_one(dir, j.usage, j.name);
            if (rec)
                s.records.emplace_back(j.usage, std::move(*rec));
            else
                s.skipped.push_back(std::string(to_string(j.usage)) + "/" + j.name + ": " + rec.error().message);
        }
    };
    {
        std::vector<std::jthread> pool;
        pool.reserve(n - 1);
        for (unsigned t = 1; t < n; ++t) pool.emplace_back([&, t] { work(slots[t]); });
        work(slots[0]);
    }

    all.reserve(all.size() + jobs.size());
    for (auto& s : slots) {
        std::move(s.records.begin(), s.records.end(), std::back_inserter(all));
        std::move(s.skipped.begin(), s.skipped.end(), std::back_inserter(rep.skipped));
        std::move(s.removed.begin(), s.removed.end(), std::back_inserter(rep.removed_leftovers));
    }
    // Sorted by position (records are large: each is moved once).
    std::vector<std::size_t> order(all.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) {
        const auto& a = all[x];
        const auto& b = all[y];
        if (a.second.identifier != b.second.identifier) return a.second.identifier < b.second.identifier;
        return a.first < b.first;
    });
    rep.records.reserve(all.size());
    for (std::size_t i : order) {
        auto& [u, rec] = all[i];
        // The same identifier in two usages: keep the first, report the other.
        if (!rep.records.empty() && rep.records.back().identifier == rec.identifier) {
            rep.skipped.push_back(std::string(to_string(u)) + "/" + rec.identifier + ": duplicate identifier");
            continue;
        }
        rep.records.push_back(std::move(rec));
    }
    std::sort(rep.skipped.begin(), rep.skipped.end());
    for (const auto& s : rep.skipped) spdlog::warn("fs_store: skipped {}", s);
    if (rep.from_snapshot)
        spdlog::info("fs_store: start-up from the snapshot: {} certificates, {} directories read anew "
                     "({} leftovers handled, {} skipped)",
                     rep.records.size(), rep.replayed, rep.removed_leftovers.size(), rep.skipped.size());
    else
        spdlog::info("fs_store: start-up from the full scan (snapshot {}): {} certificates ({} leftovers handled, "
                     "{} skipped)",
                     rep.snapshot_problem, rep.records.size(), rep.removed_leftovers.size(), rep.skipped.size());
    return rep;
}

result<crl_state> fs_store::load_crl_state() const { return storage::load_crl_state(layout_); }

result<void> fs_store::save_crl_state(const crl_state& s) {
    std::optional<error> late;
    if (auto r = storage::save_crl_state(layout_, s, &late); !r) return r;
    if (late) note_late_error(*late);
    return {};
}

result<void> fs_store::publish_crl(std::string_view der, std::string_view pem) {
    if (auto r = ensure_dir(layout_.crl_dir()); !r) return r;
    // certs/ca/ may not exist yet: `db export` into a data dir with no CA restored in it.
    if (auto r = ensure_dir(layout_.ca_dir(), fs::perms(0700)); !r) return r;
    if (auto r = write_visible(layout_.crl_der(), der, fs::perms(0644)); !r) return r;
    return write_visible(layout_.crl_pem(), pem, fs::perms(0644));
}

result<built_crl> fs_store::publish_next_crl(std::uint64_t at_least, std::uint64_t applied_seq,
                                             const std::function<result<built_crl>(std::uint64_t number)>& sign) {
    (void)applied_seq; // one writer: no other instance's change to miss
    auto crl = sign(at_least);
    if (!crl) return crl.error();
    {
        // The number is kept before the CRL carrying it is served, so it only grows; a higher
        // number kept already (an overlapping build) covers this one.
        std::lock_guard lk(crl_mu_);
        if (crl->crl_number > crl_kept_) {
            if (auto w = save_crl_state(crl_state{crl->crl_number, crl->this_update, crl->next_update}); !w)
                return w.error();
            crl_kept_ = crl->crl_number;
        }
    }
    mirror_crl(*crl);
    return crl;
}

void fs_store::mirror_crl(const built_crl& crl) {
    std::lock_guard lk(mirror_mu_);
    if (crl.crl_number <= mirror_queued_) return; // a newer CRL's files are on their way
    // The thread first: when it cannot start (std::system_error) nothing is left queued that no
    // one would write, which flush_crl_mirror() would wait for forever.
    if (!mirror_thread_.joinable()) mirror_thread_ = std::thread([this] { mirror_loop(); });
    mirror_queued_ = crl.crl_number;
    mirror_next_ = crl_files{crl.crl_number, crl.der, crl.pem};
    mirror_cv_.notify_all();
}

void fs_store::mirror_loop() {
    std::unique_lock lk(mirror_mu_);
    // The newest CRL whose files could not be written: written again every crl_files_retry
    // until they are, a newer CRL comes, or the store goes (one last try).
    std::optional<crl_files> failed;
    auto woken = [this] { return mirror_stop_ || mirror_next_.has_value(); };
    for (;;) {
        if (failed)
            mirror_cv_.wait_for(lk, crl_files_retry, woken);
        else
            mirror_cv_.wait(lk, woken);
        crl_files files;
        if (mirror_next_) {
            files = std::move(*mirror_next_);
            mirror_next_.reset();
        } else if (failed) {
            files = std::move(*failed);
        } else {
            return; // stopping, nothing pending
        }
        failed.reset();
        const bool stopping = mirror_stop_;
        mirror_busy_ = true;
        lk.unlock();
        result<void> w;
        if (crash_hook && !crash_hook("crl-files")) {
            spdlog::debug("fs_store: simulated crash before the files of CRL {}", files.number);
        } else {
            w = publish_crl(files.der, files.pem);
        }
        bool was_failing = false;
        {
            // Served from memory all the same, but whoever reads the files (and the next start,
            // which does not serve older files: cert_service::load()) lacks it: /health says so.
            std::lock_guard io(io_mu_);
            was_failing = crl_files_problem_.has_value();
            if (w)
                crl_files_problem_.reset();
            else
                crl_files_problem_ = "the CRL files could not be written (CRL " + std::to_string(files.number) +
                                     " is served; the files hold an older one): " + w.error().message;
        }
        if (w && was_failing) spdlog::info("fs_store: the files of CRL {} are written", files.number);
        // Once per failing spell, not at every retry.
        if (!w)
            spdlog::log(was_failing ? spdlog::level::debug : spdlog::level::err,
                        "fs_store: the files of CRL {} could not be written ({}); tried again every {} ms",
                        files.number, w.error().message, crl_files_retry.count());
        lk.lock();
        mirror_busy_ = false;
        if (!w && !stopping) failed = std::move(files);
        mirror_cv_.notify_all();
    }
}

void fs_store::flush_crl_mirror() const {
    std::unique_lock lk(mirror_mu_);
    mirror_cv_.wait(lk, [this] { return !mirror_next_ && !mirror_busy_; });
}

std::optional<std::pair<std::string, std::string>> fs_store::published_crl() const {
    flush_crl_mirror();
    auto der = storage::read_file(layout_.crl_der());
    auto pem = storage::read_file(layout_.crl_pem());
    if (!der || !pem) return std::nullopt;
    return std::pair{std::move(*der), std::move(*pem)};
}

std::optional<renewal_summary> fs_store::load_last_sweep() const { return storage::load_last_sweep(layout_); }

result<void> fs_store::save_last_sweep(const renewal_summary& s) {
    std::optional<error> late;
    if (auto r = storage::save_last_sweep(layout_, s, &late); !r) return r;
    if (late) note_late_error(*late);
    return {};
}

std::optional<std::string> fs_store::io_error() const {
    std::lock_guard lk(io_mu_);
    return io_error_;
}

// Kept until restart: after a failed fsync Linux may have dropped the dirty pages, so a later
// successful fsync proves nothing about the earlier write (fsync(2), "fsyncgate").
void fs_store::note_late_error(const error& e) {
    spdlog::error("fs_store: a change is visible but may not survive a power loss: {}", e.message);
    std::lock_guard lk(io_mu_);
    if (!io_error_) io_error_ = e.message + " after a change was made; its durability is unknown (restart to clear)";
}

result<void> fs_store::write_visible(const fs::path& path, std::string_view data, fs::perms mode) {
    std::optional<error> late;
    if (auto r = write_file_atomic(path, data, mode, late); !r) return r;
    if (late) note_late_error(*late);
    return {};
}

result<void> fs_store::noted(result<void> r) {
    std::lock_guard lk(io_mu_);
    if (r)
        write_problem_.reset();
    else if (r.error().code == errc::storage_unavailable)
        write_problem_ = r.error().message;
    return r;
}

std::optional<std::string> fs_store::problem() const {
    if (::access(layout_.data_dir.c_str(), W_OK | X_OK) != 0) return std::string("the data directory is not writable");
    // Full: less than what one certificate needs (a few KiB) left to an unprivileged writer.
    struct statvfs vfs {};
    if (::statvfs(layout_.data_dir.c_str(), &vfs) == 0 &&
        static_cast<unsigned long long>(vfs.f_bavail) * vfs.f_frsize < 64 * 1024)
        return std::string("the data directory is full");
    if (auto e = io_error()) return e;
    std::lock_guard lk(io_mu_);
    if (crl_files_problem_) return crl_files_problem_;
    if (write_problem_) return "the last certificate write failed: " + *write_problem_;
    return std::nullopt;
}

std::optional<std::pair<std::string, std::string>> fs_store::load_ocsp_responder() const {
    return storage::load_ocsp_responder_files(layout_);
}

result<void> fs_store::save_ocsp_responder(std::string_view cert_pem, std::string_view key_pem) {
    return storage::save_ocsp_responder_files(layout_, cert_pem, key_pem);
}

namespace {
fs::path jobs_dir(const layout& l) { return l.state_dir() / "jobs"; }
// Job identifiers are made by the server (job-<hex>); anything else never names a file.
bool job_id_ok(const std::string& id) {
    if (id.size() < 5 || id.size() > 64 || id.compare(0, 4, "job-") != 0) return false;
    for (char c : id.substr(4))
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}
result<boost::json::value> read_json(const fs::path& p) {
    auto text = read_file(p);
    if (!text) return text.error();
    boost::system::error_code ec;
    auto v = boost::json::parse(*text, ec);
    if (ec) return make_error(errc::storage_failure, p.string() + " is not valid JSON");
    return v;
}
} // namespace

result<void> fs_store::save_job_input(const std::string& job_id, const job_input& in) {
    if (!job_id_ok(job_id)) return make_error(errc::invalid_argument, "invalid job identifier");
    if (auto r = ensure_dir(layout_.state_dir(), fs::perms(0700)); !r) return r;
    if (auto r = ensure_dir(jobs_dir(layout_), fs::perms(0700)); !r) return r;
    return write_visible(jobs_dir(layout_) / (job_id + ".input.json"), boost::json::serialize(to_json(in)),
                         fs::perms(0600));
}

result<job_input> fs_store::load_job_input(const std::string& job_id) const {
    if (!job_id_ok(job_id)) return make_error(errc::not_found, "no such job");
    auto v = read_json(jobs_dir(layout_) / (job_id + ".input.json"));
    if (!v) return v.error();
    return job_input_from_json(*v);
}

result<void> fs_store::save_job(const job_record& j) {
    if (!job_id_ok(j.id)) return make_error(errc::invalid_argument, "invalid job identifier");
    if (auto r = ensure_dir(layout_.state_dir(), fs::perms(0700)); !r) return r;
    if (auto r = ensure_dir(jobs_dir(layout_), fs::perms(0700)); !r) return r;
    return write_visible(jobs_dir(layout_) / (j.id + ".json"), boost::json::serialize(job_to_storage_json(j)),
                         fs::perms(0600));
}

std::vector<job_record> fs_store::load_jobs() const {
    std::vector<job_record> out;
    std::error_code ec;
    for (fs::directory_iterator it(jobs_dir(layout_), ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (name.size() <= 5 || name.compare(name.size() - 5, 5, ".json") != 0 ||
            name.find(".input.") != std::string::npos)
            continue;
        if (!job_id_ok(name.substr(0, name.size() - 5))) continue;
        auto v = read_json(it->path());
        auto j = v ? job_from_json(*v) : result<job_record>(v.error());
        if (j && j->id != name.substr(0, name.size() - 5))
            j = make_error(errc::storage_failure, "it names another job, " + j->id.substr(0, 64));
        if (!j) {
            spdlog::error("skipping job {}: {}", it->path().string(), j.error().message);
            continue;
        }
        out.push_back(std::move(*j));
    }
    // The rows of a job whose document was never written (a crash between the two writes of
    // submit; the request was never answered 202) belong to no job: removed.
    bool removed = false;
    for (fs::directory_iterator it(jobs_dir(layout_), ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        constexpr std::string_view suffix = ".input.json";
        if (!name.ends_with(suffix) || !job_id_ok(name.substr(0, name.size() - suffix.size()))) continue;
        std::error_code xec;
        const std::string doc = name.substr(0, name.size() - suffix.size()) + ".json";
        if (fs::exists(jobs_dir(layout_) / doc, xec) || xec) continue;
        if (fs::remove(it->path(), xec) && !xec) {
            spdlog::warn("removed {}: the rows of a job that was never accepted", it->path().string());
            removed = true;
        }
    }
    if (removed) (void)fsync_dir(jobs_dir(layout_));
    std::sort(out.begin(), out.end(), [](const job_record& a, const job_record& b) {
        return a.created_at != b.created_at ? a.created_at < b.created_at : a.id < b.id;
    });
    return out;
}

result<void> fs_store::remove_job(const std::string& job_id) {
    if (!job_id_ok(job_id)) return make_error(errc::not_found, "no such job");
    std::error_code ec;
    fs::remove(jobs_dir(layout_) / (job_id + ".json"), ec);
    if (ec) return make_error(errc::storage_failure, "cannot remove job " + job_id + ": " + ec.message());
    fs::remove(jobs_dir(layout_) / (job_id + ".input.json"), ec);
    if (ec) return make_error(errc::storage_failure, "cannot remove job input " + job_id + ": " + ec.message());
    return {};
}

} // namespace certmate::storage
