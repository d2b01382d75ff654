#include "core/cert_index.hpp"

#include "core/encoding.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstring>
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

template <class T>
int three_way(const T& a, const T& b) noexcept {
    return a < b ? -1 : (b < a ? 1 : 0);
}

// Revocation state of a row: 0 not revoked, 1 revoked, 2 on hold.
template <class R>
std::size_t state_of(const R& r) noexcept {
    return r.on_hold ? 2 : (r.revoked ? 1 : 0);
}

// The state groups a row belongs to: its own, "revoked or held" (3) and "any" (4).
template <class R>
std::size_t state_groups(const R& r, std::size_t out[3]) noexcept {
    const std::size_t st = state_of(r);
    out[0] = st;
    out[1] = 4;
    if (st == 0) return 2;
    out[2] = 3;
    return 3;
}

constexpr std::array<sort_key, 4> all_sorts = {sort_key::created_at, sort_key::expires_at, sort_key::common_name,
                                               sort_key::identifier};

char sort_char(sort_key k) noexcept {
    switch (k) {
    case sort_key::created_at: return 'c';
    case sort_key::expires_at: return 'e';
    case sort_key::common_name: return 'n';
    case sort_key::identifier: return 'i';
    }
    return 'c';
}

} // namespace

std::string encode_cursor(const list_cursor& c) {
    std::string t = "v1:";
    t += sort_char(c.sort);
    t += c.descending ? 'd' : 'a';
    t += ':';
    t += c.identifier;
    t += ':';
    if (c.sort == sort_key::created_at || c.sort == sort_key::expires_at)
        t += std::to_string(c.time);
    else if (c.sort == sort_key::common_name)
        t += c.name;
    return hex_encode({reinterpret_cast<const unsigned char*>(t.data()), t.size()});
}

std::optional<list_cursor> decode_cursor(std::string_view s) {
    if (s.empty() || s.size() > 1024) return std::nullopt;
    const auto t = hex_decode(s);
    if (!t) return std::nullopt;
    std::string_view v = *t;
    if (v.size() < 6 || v.substr(0, 3) != "v1:" || v[5] != ':') return std::nullopt;
    list_cursor c;
    switch (v[3]) {
    case 'c': c.sort = sort_key::created_at; break;
    case 'e': c.sort = sort_key::expires_at; break;
    case 'n': c.sort = sort_key::common_name; break;
    case 'i': c.sort = sort_key::identifier; break;
    default: return std::nullopt;
    }
    if (v[4] != 'a' && v[4] != 'd') return std::nullopt;
    c.descending = v[4] == 'd';
    v.remove_prefix(6);
    const auto colon = v.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    c.identifier = std::string(v.substr(0, colon));
    if (!valid_identifier(c.identifier)) return std::nullopt;
    const std::string_view key = v.substr(colon + 1);
    if (c.sort == sort_key::created_at || c.sort == sort_key::expires_at) {
        auto [p, ec] = std::from_chars(key.data(), key.data() + key.size(), c.time);
        if (ec != std::errc{} || p != key.data() + key.size() || key.empty()) return std::nullopt;
    } else if (c.sort == sort_key::common_name) {
        c.name = std::string(key);
    } else if (!key.empty()) {
        return std::nullopt;
    }
    return c;
}

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
    slot s;
    if (!free_.empty()) {
        s = free_.back();
        free_.pop_back();
    } else {
        s = static_cast<slot>(rows_.size());
        rows_.emplace_back();
    }
    row_of_[id] = s;
    rows_[s] = row{id,
                   text_.size(),
                   text.size(),
                   rec.created_at,
                   rec.expires_at,
                   rec.usage,
                   rec.revocation.revoked,
                   rec.revocation.revoked && rec.revocation.reason == revocation_reason::certificate_hold,
                   true};
    text_rows_.emplace_back(text_.size(), s);
    text_ += text;
    by_id_.insert_or_assign(id, std::move(rec));
    if (built_) order_insert(s);
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
    auto r = row_of_.find(identifier);
    if (r != row_of_.end()) {
        const slot s = r->second;
        row_of_.erase(r);
        if (built_) order_erase(s);
        row& rw = rows_[s];
        text_garbage_ += rw.text_len;
        auto t = std::lower_bound(text_rows_.begin(), text_rows_.end(), std::pair{rw.text_off, slot{0}});
        if (t != text_rows_.end() && t->first == rw.text_off) t->second = dead;
        rw.alive = false;
        rw.identifier.clear();
        free_.push_back(s);
    }
    // Compact the texts once erased ones make up most of them (keeping their order).
    if (text_garbage_ > 4096 && text_garbage_ * 2 > text_.size()) {
        std::string packed;
        packed.reserve(text_.size() - text_garbage_);
        std::vector<std::pair<std::size_t, slot>> kept;
        kept.reserve(row_of_.size());
        for (const auto& [off, s] : text_rows_) {
            if (s == dead) continue;
            row& r2 = rows_[s];
            kept.emplace_back(packed.size(), s);
            packed.append(text_, r2.text_off, r2.text_len);
            r2.text_off = kept.back().first;
        }
        text_ = std::move(packed);
        text_rows_ = std::move(kept);
        text_garbage_ = 0;
    }
    return true;
}

const cert_record* cert_index::find(const std::string& identifier) const {
    auto it = by_id_.find(identifier);
    return it == by_id_.end() ? nullptr : &it->second;
}

bool cert_index::serial_exists(const std::string& serial_decimal) const { return by_serial_.contains(serial_decimal); }

// Ascending order of sort key k, ties broken by identifier.
int cert_index::compare(sort_key k, slot a, slot b) const {
    const row& x = rows_[a];
    const row& y = rows_[b];
    int c = 0;
    switch (k) {
    case sort_key::created_at: c = three_way(x.created_at, y.created_at); break;
    case sort_key::expires_at: c = three_way(x.expires_at, y.expires_at); break;
    case sort_key::common_name: c = cn_of(text_of(x)).compare(cn_of(text_of(y))); break;
    case sort_key::identifier: break;
    }
    return c != 0 ? c : x.identifier.compare(y.identifier);
}

// The row against a cursor position, in ascending order of k.
int cert_index::compare(sort_key k, slot a, const list_cursor& cur) const {
    const row& x = rows_[a];
    int c = 0;
    switch (k) {
    case sort_key::created_at: c = three_way<std::int64_t>(x.created_at.time_since_epoch().count(), cur.time); break;
    case sort_key::expires_at: c = three_way<std::int64_t>(x.expires_at.time_since_epoch().count(), cur.time); break;
    case sort_key::common_name: c = cn_of(text_of(x)).compare(cur.name); break;
    case sort_key::identifier: break;
    }
    return c != 0 ? c : x.identifier.compare(cur.identifier);
}

// Sorts every live slot once per key, then splits each order into the groups (a stable pass).
void cert_index::ensure_built() const {
    if (built_) return;
    std::vector<slot> all;
    all.reserve(row_of_.size());
    for (slot s = 0; s < rows_.size(); ++s)
        if (rows_[s].alive) all.push_back(s);
    for (auto k : all_sorts) {
        auto& groups = order_[static_cast<std::size_t>(k)];
        for (auto& g : groups) g.clear();
        std::sort(all.begin(), all.end(), [&](slot a, slot b) { return compare(k, a, b) < 0; });
        for (slot s : all) {
            std::size_t sg[3];
            const std::size_t n = state_groups(rows_[s], sg);
            const std::size_t ug[2] = {static_cast<std::size_t>(rows_[s].usage), 4};
            for (std::size_t u : ug)
                for (std::size_t i = 0; i < n; ++i) groups[u * n_state_groups + sg[i]].push_back(s);
        }
    }
    built_ = true;
}

template <class F>
void cert_index::for_each_order_of(slot s, F&& f) {
    std::size_t sg[3];
    const std::size_t n = state_groups(rows_[s], sg);
    const std::size_t ug[2] = {static_cast<std::size_t>(rows_[s].usage), 4};
    for (auto k : all_sorts)
        for (std::size_t u : ug)
            for (std::size_t i = 0; i < n; ++i) {
                auto& v = order_[static_cast<std::size_t>(k)][u * n_state_groups + sg[i]];
                f(v, std::lower_bound(v.begin(), v.end(), s, [&](slot a, slot b) { return compare(k, a, b) < 0; }));
            }
}

void cert_index::order_insert(slot s) {
    for_each_order_of(s, [s](std::vector<slot>& v, std::vector<slot>::iterator at) { v.insert(at, s); });
}

void cert_index::order_erase(slot s) {
    for_each_order_of(s, [s](std::vector<slot>& v, std::vector<slot>::iterator at) {
        if (at != v.end() && *at == s) v.erase(at);
    });
}

// One memmem over the contiguous texts; a hit is mapped to its row by offset, and a hit that runs
// past its row's end is not one (nor is any later start in that row).
template <class F>
void cert_index::for_each_text_hit(std::string_view needle, F&& f) const {
    const char* base = text_.data();
    std::size_t pos = 0;
    auto it = text_rows_.begin(); // the first row starting after the previous hit
    while (pos < text_.size()) {
        const void* p = ::memmem(base + pos, text_.size() - pos, needle.data(), needle.size());
        if (!p) return;
        const auto at = static_cast<std::size_t>(static_cast<const char*>(p) - base);
        // Hits come in text order: step a few rows, else binary search the rest.
        for (int step = 0; step < 8 && it != text_rows_.end() && it->first <= at; ++step) ++it;
        if (it != text_rows_.end() && it->first <= at)
            it = std::upper_bound(it, text_rows_.end(), at,
                                  [](std::size_t a, const std::pair<std::size_t, slot>& e) { return a < e.first; });
        if (it == text_rows_.begin()) return; // cannot happen: the first row starts at 0
        auto cur = std::prev(it);
        const std::size_t row_end = it == text_rows_.end() ? text_.size() : it->first;
        if (cur->second != dead && at + needle.size() <= cur->first + rows_[cur->second].text_len) f(cur->second);
        pos = row_end;
    }
}

list_page cert_index::query(const list_query& q, time_point now, int default_expiring_days,
                            const list_visitor& visit) const {
    ensure_built();
    list_page page;
    const int exp_days = q.expiring_within_days.value_or(default_expiring_days);

    // Revocation states allowed (bit 0 not revoked, 1 revoked, 2 on hold) and the expiry window
    // (lo, hi] that status and expiring_within_days leave.
    unsigned states = 7;
    std::optional<time_point> lo, hi;
    auto above = [&](time_point t) { lo = lo ? std::max(*lo, t) : t; };
    auto upto = [&](time_point t) { hi = hi ? std::min(*hi, t) : t; };
    if (q.status) {
        switch (*q.status) {
        case status_filter::active:
            states &= 1;
            above(now);
            break;
        case status_filter::revoked: states &= 2; break;
        case status_filter::expired:
            states &= 1;
            upto(now);
            break;
        case status_filter::on_hold: states &= 4; break;
        case status_filter::expiring:
            states &= 1;
            above(now);
            upto(now + exp_days * day);
            break;
        }
    }
    if (q.revoked) states &= *q.revoked ? 6u : 1u;
    if (q.expiring_within_days) {
        above(now);
        upto(now + *q.expiring_within_days * day);
    }
    if (states == 0 || (lo && hi && *lo >= *hi)) return page;
    const std::size_t sg = states == 1 ? 0 : states == 2 ? 1 : states == 4 ? 2 : states == 6 ? 3 : 4;
    const std::size_t ug = q.usage ? static_cast<std::size_t>(*q.usage) : 4;
    const std::size_t group = ug * n_state_groups + sg;
    const sort_key k = q.sort;
    const bool desc = q.descending;
    const auto& v = order_[static_cast<std::size_t>(k)][group];

    // The part of an expiry order inside the window: [first with expiry > lo, first with expiry > hi).
    auto window_of = [&](const std::vector<slot>& e) {
        auto exp_after = [&](time_point t) {
            return static_cast<std::size_t>(
                std::partition_point(e.begin(), e.end(), [&](slot s) { return rows_[s].expires_at <= t; }) - e.begin());
        };
        return std::pair<std::size_t, std::size_t>{lo ? exp_after(*lo) : 0, hi ? exp_after(*hi) : e.size()};
    };
    auto in_window = [&](slot s) {
        const time_point e = rows_[s].expires_at;
        return (!lo || e > *lo) && (!hi || e <= *hi);
    };
    auto emit = [&](slot s) {
        const cert_record& rec = by_id_.at(rows_[s].identifier);
        if (visit)
            visit(rec);
        else
            page.items.push_back(rec);
    };
    auto cursor_of = [&](slot s) {
        const row& r = rows_[s];
        list_cursor c{k, desc, r.identifier, {}, 0};
        if (k == sort_key::created_at) c.time = r.created_at.time_since_epoch().count();
        if (k == sort_key::expires_at) c.time = r.expires_at.time_since_epoch().count();
        if (k == sort_key::common_name) c.name = std::string(cn_of(text_of(r)));
        return encode_cursor(c);
    };
    // Where the walk over v[b, e) starts after the cursor, as a walk index (desc walks e-1 down to b).
    auto cursor_start = [&](std::size_t b, std::size_t e) -> std::size_t {
        if (!q.after) return 0;
        if (!desc) {
            auto it = std::partition_point(v.begin() + static_cast<std::ptrdiff_t>(b),
                                           v.begin() + static_cast<std::ptrdiff_t>(e),
                                           [&](slot s) { return compare(k, s, *q.after) <= 0; });
            return static_cast<std::size_t>(it - v.begin()) - b;
        }
        auto it =
            std::partition_point(v.begin() + static_cast<std::ptrdiff_t>(b), v.begin() + static_cast<std::ptrdiff_t>(e),
                                 [&](slot s) { return compare(k, s, *q.after) < 0; });
        return e - static_cast<std::size_t>(it - v.begin());
    };
    auto at_walk = [&](std::size_t b, std::size_t e, std::size_t w) { return desc ? v[e - 1 - w] : v[b + w]; };
    const std::size_t want = q.limit;

    if (q.search.empty() && (!(lo || hi) || k == sort_key::expires_at)) {
        // Every entry of v[b, e) matches: the page is an index range.
        auto [b, e] = (lo || hi) ? window_of(v) : std::pair<std::size_t, std::size_t>{0, v.size()};
        page.total = e - b;
        const std::size_t start = cursor_start(b, e) + q.offset;
        if (start >= e - b || want == 0) return page;
        const std::size_t end = std::min(e - b, start + want);
        if (!visit) page.items.reserve(end - start);
        for (std::size_t w = start; w < end; ++w) emit(at_walk(b, e, w));
        if (end < e - b) page.next_cursor = cursor_of(at_walk(b, e, end - 1));
        return page;
    }

    // Walks v from the cursor, skipping `offset` matches, taking limit (+1 to know if more follow).
    auto walk = [&](auto&& match) {
        std::size_t skip = q.offset, taken = 0;
        slot last = dead;
        for (std::size_t w = cursor_start(0, v.size()); w < v.size(); ++w) {
            const slot s = at_walk(0, v.size(), w);
            if (!match(s)) continue;
            if (skip) {
                --skip;
                continue;
            }
            if (taken == want) {
                if (last != dead) page.next_cursor = cursor_of(last);
                return;
            }
            emit(s);
            last = s;
            ++taken;
        }
    };

    if (q.search.empty()) {
        // A window on another order: count it on the expiry order, walk this one.
        auto [b, e] = window_of(order_[static_cast<std::size_t>(sort_key::expires_at)][group]);
        page.total = e - b;
        if (want) walk(in_window);
        return page;
    }

    std::string needle;
    for (char c : q.search) needle += static_cast<char>(lower(c));
    const std::size_t ustate = states;
    std::vector<slot> hits;
    for_each_text_hit(needle, [&](slot s) {
        const row& r = rows_[s];
        if (q.usage && r.usage != *q.usage) return;
        if (!(ustate & (1u << state_of(r)))) return;
        if (!in_window(s)) return;
        hits.push_back(s);
    });
    page.total = hits.size();
    if (want == 0 || hits.empty()) return page;
    if (hits.size() * 8 > v.size()) {
        // Many hits: walk the order, testing a bitmap.
        std::vector<bool> hit(rows_.size(), false);
        for (slot s : hits) hit[s] = true;
        walk([&](slot s) { return hit[s]; });
        return page;
    }
    // Few hits: sort them.
    if (q.after)
        std::erase_if(hits, [&](slot s) {
            const int c = compare(k, s, *q.after);
            return desc ? c >= 0 : c <= 0;
        });
    if (q.offset >= hits.size()) return page;
    const std::size_t end = q.offset + std::min(want, hits.size() - q.offset);
    auto before = [&](slot a, slot b) { return desc ? compare(k, a, b) > 0 : compare(k, a, b) < 0; };
    std::partial_sort(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(end), hits.end(), before);
    for (std::size_t i = q.offset; i < end; ++i) emit(hits[i]);
    if (end < hits.size()) page.next_cursor = cursor_of(hits[end - 1]);
    return page;
}

// Counts from group sizes and binary searches on the non-revoked expiry order: no scan.
cert_stats cert_index::stats(time_point now, int expiring_days) const {
    ensure_built();
    cert_stats s;
    const auto& by_any = order_[static_cast<std::size_t>(sort_key::identifier)];
    auto size_of = [&](std::size_t ug, std::size_t sg) { return by_any[ug * n_state_groups + sg].size(); };
    s.total = size_of(4, 4);
    s.on_hold = size_of(4, 2);
    s.revoked = size_of(4, 1);
    const auto& live = order_[static_cast<std::size_t>(sort_key::expires_at)][4 * n_state_groups + 0];
    auto first = [&](auto pred) {
        return static_cast<std::size_t>(std::partition_point(live.begin(), live.end(), pred) - live.begin());
    };
    auto after = [&](time_point t) { return first([&](slot x) { return rows_[x].expires_at <= t; }); };
    auto from = [&](time_point t) { return first([&](slot x) { return rows_[x].expires_at < t; }); };
    const std::size_t not_expired_at = after(now); // expires_at <= now: expired
    s.expired = not_expired_at;
    s.active = live.size() - not_expired_at;
    s.expiring_soon = after(now + expiring_days * day) - not_expired_at;
    for (std::size_t w = 0; w < cert_stats::expiry_weeks; ++w) {
        const std::size_t b = w == 0 ? not_expired_at : from(now + static_cast<int>(w) * 7 * day);
        const std::size_t e = from(now + static_cast<int>(w + 1) * 7 * day);
        s.expiring_per_week[w] = e > b ? e - b : 0;
    }
    for (auto u : all_usages) s.by_usage[std::string(to_string(u))] = size_of(static_cast<std::size_t>(u), 4);
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
