#include "core/cert_index.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <tuple>

namespace certmate {

namespace {

constexpr auto day = std::chrono::hours(24);

constexpr std::array<unsigned char, 256> make_lower_table() {
    std::array<unsigned char, 256> t{};
    for (int i = 0; i < 256; ++i)
        t[static_cast<std::size_t>(i)] = static_cast<unsigned char>(i >= 'A' && i <= 'Z' ? i + 32 : i);
    return t;
}
constexpr auto lower_table = make_lower_table();

inline unsigned char lower(char c) noexcept { return lower_table[static_cast<unsigned char>(c)]; }

// Numeric order of two decimal strings without leading zeros.
bool serial_less(const std::string& a, const std::string& b) noexcept {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
}

template <class R>
bool expiring(const R& r, bool revoked, time_point now, int days) noexcept {
    return !revoked && r.expires_at > now && r.expires_at <= now + days * day;
}

constexpr char field_sep = '\x1f';

// The lower-case text search runs over: CN first, so sorting by CN can use it too.
std::string search_text(const cert_record& r) {
    std::string t;
    t.reserve(r.subject.common_name.size() + r.subject.email.size() + r.identifier.size() +
              r.subject.organization.size() + r.serial_number.size() + 4);
    for (const std::string* f :
         {&r.subject.common_name, &r.subject.email, &r.identifier, &r.subject.organization, &r.serial_number}) {
        if (!t.empty() || f != &r.subject.common_name) t += field_sep;
        for (char c : *f) t += static_cast<char>(lower(c));
    }
    return t;
}

std::string_view cn_of(std::string_view text) noexcept { return text.substr(0, text.find(field_sep)); }

} // namespace

std::optional<status_filter> parse_status_filter(std::string_view s) noexcept {
    if (s == "active") return status_filter::active;
    if (s == "revoked") return status_filter::revoked;
    if (s == "expired") return status_filter::expired;
    if (s == "expiring") return status_filter::expiring;
    if (s == "on_hold") return status_filter::on_hold;
    return std::nullopt;
}

void cert_index::upsert(cert_record rec) {
    erase(rec.identifier);
    const std::string id = rec.identifier;
    by_serial_[rec.serial_number] = id;
    for (const auto& h : rec.history) by_serial_.emplace(h.serial_number, id);
    const std::string text = search_text(rec);
    row_of_[id] = rows_.size();
    rows_.push_back(row{id, text_.size(), text.size(), rec.created_at, rec.expires_at, rec.usage,
                        rec.revocation.revoked,
                        rec.revocation.revoked && rec.revocation.reason == revocation_reason::certificate_hold});
    text_ += text;
    by_id_.insert_or_assign(id, std::move(rec));
}

bool cert_index::erase(const std::string& identifier) {
    auto it = by_id_.find(identifier);
    if (it == by_id_.end()) return false;
    // Only drop serial entries that still point at this identifier.
    auto drop = [&](const std::string& serial) {
        auto s = by_serial_.find(serial);
        if (s != by_serial_.end() && s->second == identifier) by_serial_.erase(s);
    };
    drop(it->second.serial_number);
    for (const auto& h : it->second.history) drop(h.serial_number);
    by_id_.erase(it);
    // Swap-remove the row, re-pointing the row moved into its place.
    auto r = row_of_.find(identifier);
    if (r != row_of_.end()) {
        const std::size_t i = r->second;
        row_of_.erase(r);
        text_garbage_ += rows_[i].text_len;
        if (i + 1 != rows_.size()) {
            rows_[i] = std::move(rows_.back());
            row_of_[rows_[i].identifier] = i;
        }
        rows_.pop_back();
    }
    // Compact the texts once erased ones make up most of them.
    if (text_garbage_ > 4096 && text_garbage_ * 2 > text_.size()) {
        std::string packed;
        packed.reserve(text_.size() - text_garbage_);
        for (auto& r2 : rows_) {
            const std::size_t off = packed.size();
            packed.append(text_, r2.text_off, r2.text_len);
            r2.text_off = off;
        }
        text_ = std::move(packed);
        text_garbage_ = 0;
    }
    return true;
}

const cert_record* cert_index::find(const std::string& identifier) const {
    auto it = by_id_.find(identifier);
    return it == by_id_.end() ? nullptr : &it->second;
}

bool cert_index::serial_exists(const std::string& serial_decimal) const { return by_serial_.contains(serial_decimal); }

list_page cert_index::query(const list_query& q, time_point now, int default_expiring_days) const {
    std::string needle;
    for (char c : q.search) needle += static_cast<char>(lower(c));
    const int exp_days = q.expiring_within_days.value_or(default_expiring_days);

    auto text_of = [this](const row& r) { return std::string_view(text_).substr(r.text_off, r.text_len); };
    auto matches = [&](const row& r) {
        if (q.usage && r.usage != *q.usage) return false;
        if (q.revoked && r.revoked != *q.revoked) return false;
        if (q.status) {
            const bool expired = now >= r.expires_at;
            switch (*q.status) {
            case status_filter::active:
                if (r.revoked || expired) return false;
                break;
            case status_filter::revoked:
                if (!r.revoked || r.on_hold) return false;
                break;
            case status_filter::expired:
                if (r.revoked || !expired) return false;
                break;
            case status_filter::on_hold:
                if (!r.on_hold) return false;
                break;
            case status_filter::expiring:
                if (!expiring(r, r.revoked, now, exp_days)) return false;
                break;
            }
        }
        if (q.expiring_within_days && !(r.expires_at > now && r.expires_at <= now + *q.expiring_within_days * day))
            return false;
        if (!needle.empty() && text_of(r).find(needle) == std::string_view::npos) return false;
        return true;
    };

    std::vector<const row*> hits;
    hits.reserve(q.search.empty() && !q.usage && !q.status && !q.revoked ? rows_.size() : 256);
    for (const auto& r : rows_)
        if (matches(r)) hits.push_back(&r);

    // Total order: the key, then the identifier; `descending` reverses both.
    auto less = [&](const row* a, const row* b) {
        int c = 0;
        switch (q.sort) {
        case sort_key::created_at:
            c = a->created_at < b->created_at ? -1 : (b->created_at < a->created_at ? 1 : 0);
            break;
        case sort_key::expires_at:
            c = a->expires_at < b->expires_at ? -1 : (b->expires_at < a->expires_at ? 1 : 0);
            break;
        case sort_key::common_name: c = cn_of(text_of(*a)).compare(cn_of(text_of(*b))); break; // case-insensitive
        case sort_key::identifier: break;
        }
        if (c == 0) c = a->identifier.compare(b->identifier);
        return q.descending ? c > 0 : c < 0;
    };

    list_page page;
    page.total = hits.size();
    if (q.offset >= hits.size() || q.limit == 0) return page;
    const std::size_t end = q.offset + std::min(q.limit, hits.size() - q.offset);
    std::partial_sort(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(end), hits.end(), less);
    page.items.reserve(end - q.offset);
    for (std::size_t i = q.offset; i < end; ++i) page.items.push_back(by_id_.at(hits[i]->identifier));
    return page;
}

cert_stats cert_index::stats(time_point now, int expiring_days) const {
    cert_stats s;
    std::size_t per_usage[std::size(all_usages)] = {};
    for (const auto& r : rows_) {
        ++s.total;
        ++per_usage[static_cast<std::size_t>(r.usage)];
        if (r.on_hold)
            ++s.on_hold;
        else if (r.revoked)
            ++s.revoked;
        else if (now >= r.expires_at)
            ++s.expired;
        else
            ++s.active;
        if (expiring(r, r.revoked, now, expiring_days)) ++s.expiring_soon;
        if (!r.revoked && r.expires_at > now) {
            const auto week = static_cast<std::size_t>((r.expires_at - now) / (7 * day));
            if (week < cert_stats::expiry_weeks) ++s.expiring_per_week[week];
        }
    }
    for (auto u : all_usages) s.by_usage[std::string(to_string(u))] = per_usage[static_cast<std::size_t>(u)];
    return s;
}

std::vector<revoked_serial> cert_index::revoked() const {
    std::vector<revoked_serial> out;
    for (const auto& [id, r] : by_id_) {
        if (r.revocation.revoked)
            out.push_back({r.serial_number, r.revocation.revoked_at.value_or(time_point{}),
                           r.revocation.reason.value_or(revocation_reason::unspecified)});
        for (const auto& h : r.history)
            if (h.revoked)
                out.push_back({h.serial_number, h.revoked_at.value_or(h.superseded_at),
                               h.reason.value_or(revocation_reason::superseded)});
    }
    std::sort(out.begin(), out.end(), [](const revoked_serial& a, const revoked_serial& b) {
        return serial_less(a.serial_decimal, b.serial_decimal);
    });
    return out;
}

std::vector<std::string> cert_index::due_for_renewal(time_point now) const {
    std::vector<const cert_record*> due;
    for (const auto& [id, r] : by_id_) {
        // The listener's certificate is only re-made by `certmate init --server-cert`.
        if (r.revocation.revoked || !r.renewal.renewal_enabled || r.usage == cert_usage::server) continue;
        if (r.expires_at <= now + r.renewal.renewal_threshold_days * day) due.push_back(&r);
    }
    std::sort(due.begin(), due.end(), [](const cert_record* a, const cert_record* b) {
        return std::tie(a->expires_at, a->identifier) < std::tie(b->expires_at, b->identifier);
    });
    std::vector<std::string> out;
    out.reserve(due.size());
    for (const auto* r : due) out.push_back(r->identifier);
    return out;
}

} // namespace certmate
