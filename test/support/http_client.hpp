// A small synchronous HTTP/1.1 client for tests, with a hard timeout on every exchange so a server
// bug fails the test instead of hanging CI. Keeps the connection alive between requests unless
// the server closes it. Not thread-safe: one client per thread.
#pragma once

#include <boost/json/value.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace certmate::test {

struct http_reply {
    unsigned status = 0;
    std::map<std::string, std::string> headers; // lower-case names
    std::string body;

    std::string header(const std::string& name) const; // "" when absent
    bool has_header(const std::string& name) const;
    boost::json::value json() const; // throws when the body is not JSON
};

using header_list = std::vector<std::pair<std::string, std::string>>;

class http_client {
public:
    explicit http_client(unsigned short port, std::string host = "127.0.0.1",
                         std::chrono::milliseconds timeout = std::chrono::seconds(15));
    ~http_client();
    http_client(http_client&&) noexcept;
    http_client& operator=(http_client&&) noexcept;

    // Throws std::runtime_error on a transport failure or timeout.
    http_reply request(const std::string& method, const std::string& target, const std::string& body = {},
                       const header_list& headers = {});

    // Helpers: `token` adds Authorization: Bearer.
    http_reply get(const std::string& target, const std::string& token = {}, const header_list& extra = {});
    http_reply post_json(const std::string& target, const std::string& json_body, const std::string& token = {},
                         const header_list& extra = {});
    http_reply patch_json(const std::string& target, const std::string& json_body, const std::string& token = {});

    // Sends raw bytes on a fresh connection and reads one response (or throws).
    http_reply raw(const std::string& bytes);

    void close();
    void set_timeout(std::chrono::milliseconds t) { timeout_ = t; }

private:
    struct impl;
    std::unique_ptr<impl> impl_;
    std::chrono::milliseconds timeout_;
};

} // namespace certmate::test
