#include "net/conn_limits.hpp"

#include <boost/asio/ip/address.hpp>

#include <algorithm>

namespace certmate::net {

std::string address_key(std::string_view ip) {
    boost::system::error_code ec;
    auto a = boost::asio::ip::make_address(std::string(ip), ec);
    if (ec) return std::string(ip);
    if (a.is_v4()) return a.to_string();
    auto v6 = a.to_v6();
    if (v6.is_v4_mapped()) return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6).to_string();
    auto bytes = v6.to_bytes();
    for (std::size_t i = 8; i < bytes.size(); ++i) bytes[i] = 0;
    return boost::asio::ip::address_v6(bytes).to_string() + "/64";
}

admission connection_table::admit(const std::string& key) {
    const std::size_t held = held_by(key);
    if (limits_.per_address != 0 && held >= limits_.per_address) return admission::per_address;
    if (open_ >= limits_.max_connections) return admission::full;
    const std::size_t unreserved = limits_.max_connections - std::min(limits_.reserved, limits_.max_connections);
    if (open_ >= unreserved && held >= reserve_share) return admission::reserve;
    ++open_;
    ++by_address_[key];
    return admission::admitted;
}

void connection_table::release(const std::string& key) {
    auto it = by_address_.find(key);
    if (it == by_address_.end()) return;
    if (--it->second == 0) by_address_.erase(it);
    if (open_ > 0) --open_;
}

std::size_t connection_table::held_by(const std::string& key) const {
    auto it = by_address_.find(key);
    return it == by_address_.end() ? 0 : it->second;
}

} // namespace certmate::net
