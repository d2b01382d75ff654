// Shared parts of the command-line API client (docs/cli.md): the connection options, an API
// session that turns error answers into cli_failure, output helpers (relative times, colour on a
// terminal unless NO_COLOR, aligned tables) and file writing. Thread-safety: single-threaded CLI.
#pragma once

#include "app/cli_commands.hpp"
#include "app/http_client.hpp"
#include "core/clock.hpp"

#include <boost/json/value.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace certmate::app {

// --url, --token-file, --cert, --key, --cacert, --timeout.
void add_connection_options(boost::program_options::options_description& d);

// A connection to the API, authenticated by the token file or the client certificate.
class api_session {
public:
    explicit api_session(const boost::program_options::variables_map& vm);
    // The answer of METHOD path; throws cli_failure for transport errors and non-2xx answers,
    // with the server's message.
    http_answer call(const std::string& method, const std::string& path, const std::string& body = {},
                     const std::string& content_type = "application/json",
                     const std::vector<std::pair<std::string, std::string>>& headers = {});
    boost::json::value get_json(const std::string& path);
    boost::json::value post_json(const std::string& path, const boost::json::value& body);
    const std::string& url() const { return base_url_; }

private:
    std::string base_url_;
    std::string prefix_; // the URL's path, without the trailing '/'
    std::string token_;
    std::unique_ptr<http_connection> conn_;
};

// "in 29 days", "3 hours ago", relative to `now`.
std::string relative_time(time_point t, time_point now);
// An RFC 3339 time from JSON with its relative form: "2027-01-01T00:00:00Z (in 29 days)".
std::string time_with_relative(const boost::json::value& v, time_point now);
// True when stdout is a terminal and NO_COLOR is unset (https://no-color.org).
bool use_colour();
// `text` in the colour of a certificate status (active green, revoked red, on_hold/expired yellow).
std::string colour_status(const std::string& status);
// Prints rows as columns separated by two spaces, the first row a header.
void print_table(const std::vector<std::vector<std::string>>& rows);
// `s` safe to show on a terminal: control characters other than \n and \t (and DEL) become '?', so a
// server's text cannot send escape sequences (OSC 52, title, cursor moves); `keep_colour` keeps SGR
// colour sequences (ESC [ digits ; m), which only colour.
std::string terminal_safe(std::string_view s, bool keep_colour = false);
// A string member of a JSON object, "" when absent or not a string.
std::string str_of(const boost::json::value& o, const char* key);
// Prints `v` as JSON on stdout with a newline.
void print_json(const boost::json::value& v);
// Writes `data` to `path` atomically with `mode` (keys 0600), creating the directory.
void write_output_file(const std::filesystem::path& path, const std::string& data, std::filesystem::perms mode);
std::string read_input_file(const std::string& path);

} // namespace certmate::app
