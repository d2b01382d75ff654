// Bearer tokens (docs/api.md "Authentication and roles"): the presented token's SHA-256 is
// compared with every configured hash in constant time.
// Thread-safety: immutable after construction; swap a whole table to reload.
#pragma once

#include "net/options.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace certmate::net {

struct identity {
    std::string name;
    api_role role = api_role::viewer;
};

class token_table {
public:
    explicit token_table(std::vector<token_credential> tokens);
    // The identity whose token this is; every entry is compared, so timing does not tell which.
    std::optional<identity> find(std::string_view token) const;
    std::size_t size() const noexcept { return tokens_.size(); }

private:
    std::vector<token_credential> tokens_;
};

// The token of an `Authorization: Bearer <token>` header value, or nullopt.
std::optional<std::string_view> bearer_token(std::string_view authorization);

} // namespace certmate::net
