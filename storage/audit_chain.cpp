#include "storage/audit_chain.hpp"

#include "core/keys.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include <algorithm>

namespace certmate::storage {

namespace json = boost::json;

namespace {

bool is_hash(const json::value* v) {
    if (!v || !v->is_string()) return false;
    const auto& s = v->get_string();
    return s.size() == 64 &&
           std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
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
    auto hash = sha256_hex(json::serialize(without_hash(p.obj)));
    return hash && *hash == p.hash;
}

std::string_view operation_of(const json::object& o) {
    const auto* v = o.if_contains("operation");
    return v && v->is_string() ? std::string_view(v->get_string()) : std::string_view();
}

} // namespace

std::string checkpoint_message(std::uint64_t head_seq, std::string_view head_hash) {
    return "certmate-audit-checkpoint-v1\n" + std::to_string(head_seq) + "\n" + std::string(head_hash) + "\n";
}

result<audit_line> make_audit_line(const audit_entry& e, std::uint64_t seq, time_point at, std::string_view prev_hash) {
    json::object o;
    o["seq"] = seq;
    o["timestamp"] = format_time(at);
    o["operation"] = e.operation;
    o["resource_type"] = e.resource_type;
    o["resource_id"] = e.resource_id;
    o["status"] = e.status;
    o["user"] = e.user;
    o["ip_address"] = e.ip_address;
    if (!e.actor.empty()) o["actor"] = e.actor;
    o["details"] = e.details;
    o["error"] = e.error ? json::value(json::string(*e.error)) : json::value(nullptr);
    o["prev_hash"] = prev_hash;
    auto hashed = sha256_hex(json::serialize(o));
    if (!hashed) return hashed.error();
    audit_line out;
    out.hash = std::move(*hashed);
    o["hash"] = out.hash;
    out.text = json::serialize(o);
    return out;
}

result<audit_entry> make_checkpoint_entry(const audit_head& head, EVP_PKEY* key, std::string_view key_id,
                                          std::string reason) {
    auto sig = sign_raw(key, checkpoint_message(head.seq, head.hash));
    if (!sig) return make_error(errc::crypto_failure, "signing the audit checkpoint failed");
    audit_entry e;
    e.operation = "checkpoint";
    e.resource_type = "audit";
    e.resource_id = std::to_string(head.seq);
    e.details = {{"head_seq", head.seq}, {"head_hash", head.hash},      {"algorithm", "Ed25519"},
                 {"key_id", key_id},     {"reason", std::move(reason)}, {"signature", base64_encode(*sig)}};
    return e;
}

std::optional<audit_line_info> read_audit_line(std::string_view line) {
    std::string reason;
    auto p = parse_line(line, reason);
    if (!p || !hash_ok(line, *p)) return std::nullopt;
    return audit_line_info{p->seq, std::move(p->hash), std::string(operation_of(p->obj))};
}

std::optional<std::uint64_t> audit_line_seq(std::string_view line) {
    std::string reason;
    auto p = parse_line(line, reason);
    if (!p) return std::nullopt;
    return p->seq;
}

void audit_chain_verifier::fail(std::string reason) {
    if (!res_.ok) return;
    res_.ok = false;
    res_.bad_line = lines_ + 1;
    res_.reason = std::move(reason);
}

bool audit_chain_verifier::add(std::string_view line) {
    if (!res_.ok) return false;
    std::string reason;
    auto p = parse_line(line, reason);
    if (!p) {
        fail(std::move(reason));
        return false;
    }
    if (!hash_ok(line, *p)) {
        fail("hash mismatch");
        return false;
    }
    if (p->seq != expected_seq_) {
        fail("seq out of order");
        return false;
    }
    if (p->prev_hash != prev_) {
        fail("prev_hash mismatch");
        return false;
    }
    const auto op = operation_of(p->obj);
    const auto* details = p->obj.if_contains("details");
    const json::object* d = details && details->is_object() ? &details->get_object() : nullptr;
    if (op == "checkpoint") {
        // Signed over the entry before it (docs/audit.md).
        const auto head_seq = d ? as_seq(d->if_contains("head_seq")) : std::nullopt;
        const auto* head_hash = d ? d->if_contains("head_hash") : nullptr;
        const auto* sig = d ? d->if_contains("signature") : nullptr;
        if (!head_seq || *head_seq + 1 != p->seq || !is_hash(head_hash) || head_hash->get_string() != prev_ || !sig ||
            !sig->is_string()) {
            fail("checkpoint does not name the entry before it");
            return false;
        }
        if (public_key_) {
            auto raw = base64_decode(sig->get_string());
            if (!raw || !verify_raw(public_key_, checkpoint_message(*head_seq, prev_), *raw)) {
                fail("checkpoint signature does not verify");
                return false;
            }
            ++res_.checkpoints;
        } else {
            ++res_.unchecked_checkpoints;
        }
        res_.last_checkpoint_seq = p->seq;
        res_.after_last_checkpoint = 0;
    } else {
        ++res_.after_last_checkpoint;
    }
    if (op == "audit_repair" && d)
        res_.repairs.push_back({p->seq, as_seq(d->if_contains("removed_bytes")).value_or(0)});
    if (expected_ && p->seq == expected_->seq && p->hash != expected_->hash) {
        fail("entry " + std::to_string(p->seq) + " is not the one this server wrote (rewritten since)");
        return false;
    }
    prev_ = std::move(p->hash);
    ++expected_seq_;
    ++res_.entries;
    ++lines_;
    return true;
}

audit_verify_result audit_chain_verifier::finish() {
    // A log cut short of the head this server wrote lost entries.
    if (res_.ok && expected_ && expected_->seq > 0 && expected_seq_ <= expected_->seq) {
        res_.ok = false;
        res_.bad_line = lines_ + 1;
        res_.reason = "the log ends before entry " + std::to_string(expected_->seq) + ", which this server wrote";
    }
    return res_;
}

} // namespace certmate::storage
