// The in-memory index: by identifier, by serial (current and historical), by usage, by expiry.
// What get, list, stats, the CRL and the renewal plan read (OCSP reads the ocsp_table, which
// cert_service keeps in step). Not thread-safe: owned by the core strand.
#pragma once

#include "core/cert_record.hpp"

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace certmate {

enum class status_filter { active, revoked, expired, expiring, on_hold };
std::optional<status_filter> parse_status_filter(std::string_view s) noexcept;

enum class sort_key { created_at, expires_at, common_name, identifier };

struct list_query {
    std::optional<cert_usage> usage;
    std::optional<status_filter> status;
    std::optional<bool> revoked;             // compatibility filter revoked=true/false
    std::string search;                      // case-insensitive substring of CN, email, identifier, org, serial
    std::optional<int> expiring_within_days; // not expired, expires within N days (also used by status=expiring)
    sort_key sort = sort_key::created_at;
    bool descending = true;
    std::size_t limit = 100;
    std::size_t offset = 0;
};

struct list_page {
    std::vector<cert_record> items;
    std::size_t total = 0; // matches before paging
};

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

    list_page query(const list_query& q, time_point now, int default_expiring_days) const;
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
    std::unordered_map<std::string, cert_record> by_id_;
    std::unordered_map<std::string, std::string> by_serial_; // serial -> identifier

    // What query() and stats() scan, kept contiguous so 30k certificates take a few ms.
    struct row {
        std::string identifier;
        std::size_t text_off = 0, text_len = 0; // in text_: lower case "cn\x1femail\x1fid\x1forg\x1fserial"
        time_point created_at{}, expires_at{};
        cert_usage usage = cert_usage::api_mtls;
        bool revoked = false, on_hold = false;
    };
    std::vector<row> rows_;
    std::unordered_map<std::string, std::size_t> row_of_; // identifier -> index in rows_
    std::string text_;                                    // search texts, back to back
    std::size_t text_garbage_ = 0;                        // bytes of erased rows in text_
};

} // namespace certmate
