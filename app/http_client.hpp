// A small synchronous HTTP/1.1 client (Boost.Beast, OpenSSL for https) for the command line's API
// client and relying-party checks (docs/cli.md). Beast stays in http_client.cpp; this header has
// std types only. Thread-safety: one http_connection per thread. Errors: transport failures,
// timeouts and TLS verification failures throw cli_failure (exit code 1).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace certmate::app {

// A failure the command reports and exits 1 for (docs/cli.md "Exit codes").
struct cli_failure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A usage error: exit code 2.
struct cli_usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct parsed_url {
    bool https = false;
    std::string host;
    std::string port;
    std::string target; // path and query, "/" at least
};

// http://HOST[:PORT][/PATH] or https://...; IPv6 hosts in brackets. cli_usage_error otherwise.
parsed_url parse_url(std::string_view url);

struct tls_files {
    std::string cacert; // trust anchors (PEM); empty: the system's
    std::string cert;   // client certificate chain (PEM), for mTLS
    std::string key;    // its private key (PEM)
};

struct http_answer {
    unsigned status = 0;
    std::map<std::string, std::string> headers; // lower-case names
    std::string body;
    std::string header(const std::string& lower_name) const;
};

// One connection to one origin, kept alive between requests and reopened when the server closed it.
class http_connection {
public:
    http_connection(parsed_url origin, tls_files tls, std::chrono::seconds timeout);
    ~http_connection();
    http_connection(const http_connection&) = delete;
    http_connection& operator=(const http_connection&) = delete;

    // `target` is a path (with query); `headers` are added as given.
    http_answer request(const std::string& method, const std::string& target, const std::string& body = {},
                        const std::vector<std::pair<std::string, std::string>>& headers = {});
    const parsed_url& origin() const { return origin_; }

private:
    struct impl;
    parsed_url origin_;
    std::unique_ptr<impl> impl_;
};

// Percent-encodes a query parameter value (RFC 3986 2.1, unreserved characters kept).
std::string url_encode(std::string_view s);

} // namespace certmate::app
