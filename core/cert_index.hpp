// The in-memory index: by identifier, by serial (current and historical), by usage, by expiry.
// What get, list, stats, the CRL and the renewal plan read (OCSP reads the ocsp_table, which
// cert_service keeps in step). Not thread-safe: owned by the core strand (query() and stats()
// are const but build the ordered lists lazily on first use).
//
// Lists are ordered per sort key and per (usage, revocation state) group, so a page is a walk of
// `limit` entries and `total` a vector size or two binary searches on expiry (docs/api.md
// "Listing certificates").
#pragma once

#include "core/cert_record.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace certmate {

enum class status_filter { active, revoked, expired, expiring, on_hold };
std::optional<status_filter> parse_status_filter(std::string_view s) noexcept;

enum class sort_key { created_at, expires_at, common_name, identifier };

// A position in one sort order: the sort key's value and the identifier of the last item of a
// page. Items strictly after it (in the query's direction) follow; it need not still exist.
struct list_cursor {
    sort_key sort = sort_key::created_at;
    bool descending = true;
    std::string identifier;
    std::string name;      // common_name order: the lower-case common name
    std::int64_t time = 0; // created_at / expires_at order: time_point ticks
    bool operator==(const list_cursor&) const = default;
};
// The opaque text form (hex of "v1:<sort><dir>:<identifier>:<key>") and back; nullopt when malformed.
std::string encode_cursor(const list_cursor& c);
std::optional<list_cursor> decode_cursor(std::string_view s);

struct list_query {
    std::optional<cert_usage> usage;
    std::optional<status_filter> status;
    std::optional<bool> revoked;             // compatibility filter revoked=true/false
    std::string search;                      // case-insensitive substring of CN, email, identifier, org, serial
    std::optional<int> expiring_within_days; // not expired, expires within N days (also used by status=expiring)
    sort_key sort = sort_key::created_at;
    bool descending = true;
    std::size_t limit = 100;
    std::size_t offset = 0;           // with `after`: skipped after the cursor
    std::optional<list_cursor> after; // start after this position (same sort and direction)
};

struct list_page {
    std::vector<cert_record> items;
    std::size_t total = 0;   // matches before paging (the whole filter, not only after the cursor)
    std::string next_cursor; // encode_cursor of the last item when more matches follow; else empty
};

// Receives a page's records in order, borrowed for the call, instead of list_page::items.
using list_visitor = std::function<void(const cert_record&)>;

struct cert_stats {
    std::size_t total = 0, active = 0, revoked = 0, expired = 0, on_hold = 0, expiring_soon = 0;
    std::map<std::string, std::size_t> by_usage; // "api-mtls" -> n
    // Not revoked, expiring in week i from now ([now + 7i days, now + 7(i+1) days)), i < expiry_weeks.
    static constexpr std::size_t expiry_weeks = 26;
    std::vector<std::size_t> expiring_per_week = std::vector<std::size_t>(expiry_weeks, 0);
};

struct revoked_serial {
    std::string serial_decimal;
    time_point revoked_at{};
    revocation_reason reason = revocation_reason::unspecified;
};

class cert_index {
public:
    void upsert(cert_record rec); // replaces by identifier; re-indexes serials
    bool erase(const std::string& identifier);
    const cert_record* find(const std::string& identifier) const;
    bool serial_exists(const std::string& serial_decimal) const;
    std::size_t size() const noexcept { return by_id_.size(); }

    // With `visit`, the page's records go to it in order without a copy and items stays empty.
    list_page query(const list_query& q, time_point now, int default_expiring_days,
                    const list_visitor& visit = {}) const;
    cert_stats stats(time_point now, int expiring_days) const;
    // Current and historical serials revoked (including on hold), for the CRL.
    std::vector<revoked_serial> revoked() const;
    // Identifiers of active (not revoked), renewal-enabled certificates whose expiry is within their
    // threshold at `now` (expired ones included), in expiry order.
    std::vector<std::string> due_for_renewal(time_point now) const;
    template <class F>
    void for_each(F&& f) const {
        for (const auto& [id, rec] : by_id_) f(rec);
    }

private:
    using slot = std::uint32_t;
    static constexpr slot dead = UINT32_MAX;
    // Groups: usage (4 + any) x state (not revoked, revoked, on hold, revoked or held, any).
    static constexpr std::size_t n_usage_groups = 5, n_state_groups = 5, n_groups = 25, n_sorts = 4;

    std::unordered_map<std::string, cert_record> by_id_;
    std::unordered_map<std::string, std::string> by_serial_; // serial -> identifier

    // The fields lists read, in stable slots (a free slot is reused; `alive` false meanwhile).
    struct row {
        std::string identifier;
        std::size_t text_off = 0, text_len = 0; // in text_: lower case "cn\x1femail\x1fid\x1forg\x1fserial"
        time_point created_at{}, expires_at{};
        cert_usage usage = cert_usage::api_mtls;
        bool revoked = false, on_hold = false, alive = false;
    };
    std::vector<row> rows_;
    std::vector<slot> free_;
    std::unordered_map<std::string, slot> row_of_;        // identifier -> slot
    std::string text_;                                    // search texts, back to back
    std::vector<std::pair<std::size_t, slot>> text_rows_; // (offset in text_, slot or dead), by offset
    std::size_t text_garbage_ = 0;                        // bytes of erased rows in text_

    // order_[sort][group]: slots ascending by (key, identifier); built on first query, then kept.
    mutable std::array<std::array<std::vector<slot>, n_groups>, n_sorts> order_;
    mutable bool built_ = false;

    void ensure_built() const;
    // Calls f(list, position of s in it) for each ordered list `s` belongs in (every sort, its
    // usage's group and the all-usages group, each state group it is in).
    template <class F>
    void for_each_order_of(slot s, F&& f);
    void order_insert(slot s);
    void order_erase(slot s);
    int compare(sort_key k, slot a, slot b) const;
    int compare(sort_key k, slot a, const list_cursor& c) const;
    std::string_view text_of(const row& r) const { return std::string_view(text_).substr(r.text_off, r.text_len); }
    // Calls f(slot) once per live row whose search text contains `needle` (lower case).
    template <class F>
    void for_each_text_hit(std::string_view needle, F&& f) const;
};

} // namespace certmate
