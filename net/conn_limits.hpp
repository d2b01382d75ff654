// Who may hold one more connection (issue 10 point 6): a cap per client address, a reserve of
// slots the heaviest clients cannot take, and "pressure" when most slots are in use (then idle
// keep-alive and request reads get short timeouts). Plain bookkeeping: no Asio, no clock.
// Thread-safety: none; the server holds its connection mutex around every call.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>

namespace certmate::net {

struct connection_limits {
    unsigned max_connections = 1024; // admitted connections at most; beyond: 503
    unsigned per_address = 64;       // per client address (IPv6: per /64); 0 = unlimited
    unsigned reserved = 32;          // the last slots: only for addresses holding < reserve_share
};

// An address that already holds this many connections cannot take a reserved slot.
inline constexpr std::size_t reserve_share = 2;

enum class admission {
    admitted,
    per_address, // the address holds per_address connections already
    reserve,     // only reserved slots are left, and the address holds reserve_share or more
    full,        // every slot is taken
};

// The key connections are counted under: the IPv4 address (also when IPv4-mapped), or the /64
// prefix of an IPv6 address (one customer's network, RFC 6177); the text itself if unparsable.
std::string address_key(std::string_view ip);

class connection_table {
public:
    explicit connection_table(connection_limits l) : limits_(l) {}

    // Counts the connection under `key` when admitted.
    admission admit(const std::string& key);
    // A connection admitted under `key` has closed.
    void release(const std::string& key);

    std::size_t open() const { return open_; }
    std::size_t held_by(const std::string& key) const;
    // More than 3/4 of max_connections are open.
    bool under_pressure() const { return open_ * 4 > std::size_t{limits_.max_connections} * 3; }
    const connection_limits& limits() const { return limits_; }

private:
    connection_limits limits_;
    std::size_t open_ = 0;
    std::unordered_map<std::string, std::size_t> by_address_;
};

} // namespace certmate::net
