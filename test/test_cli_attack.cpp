// The API client (issue 16, docs/cli.md) against a hostile server: a raw-socket HTTP stub on
// 127.0.0.1 answering each route with a fixed reply, and the built `certmate` binary as the client.
// What a server says must not make the client write outside --out-dir, nor abort it.
#define BOOST_TEST_MODULE cli_attack
#include <boost/test/unit_test.hpp>

#include "support/tools.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <regex>
#include <sstream>
#include <thread>

using namespace certmate::test;
namespace fs = std::filesystem;

namespace {

const std::string bin = certmate_binary();

// One request per connection (Connection: close); "METHOD path" -> JSON body with status 200
// (400 when the body starts with "!400 ").
class hostile_server {
public:
    explicit hostile_server(std::map<std::string, std::string> routes) : routes_(std::move(routes)) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        BOOST_REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        socklen_t len = sizeof a;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        BOOST_REQUIRE(::listen(fd_, 16) == 0);
        thread_ = std::thread([this] { serve(); });
    }
    ~hostile_server() {
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        thread_.join();
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

private:
    void serve() {
        for (;;) {
            int c = ::accept(fd_, nullptr, nullptr);
            if (c < 0) return;
            std::string in;
            char buf[4096];
            std::size_t need = std::string::npos;
            for (;;) {
                auto n = ::read(c, buf, sizeof buf);
                if (n <= 0) break;
                in.append(buf, static_cast<std::size_t>(n));
                const auto end = in.find("\r\n\r\n");
                if (end != std::string::npos && need == std::string::npos) {
                    std::smatch m;
                    const std::string head = in.substr(0, end);
                    need = end + 4 +
                           (std::regex_search(head, m, std::regex("[Cc]ontent-[Ll]ength: *([0-9]+)")) ? std::stoul(m[1])
                                                                                                      : 0);
                }
                if (need != std::string::npos && in.size() >= need) break;
            }
            std::istringstream first(in.substr(0, in.find("\r\n")));
            std::string method, target;
            first >> method >> target;
            auto it = routes_.find(method + " " + target);
            int status = it == routes_.end() ? 404 : 200;
            std::string body = it == routes_.end() ? R"({"code":"NOT_FOUND"})" : it->second;
            if (body.rfind("!400 ", 0) == 0) { // an error answer
                status = 400;
                body = body.substr(5);
            }
            const std::string out =
                "HTTP/1.1 " + std::to_string(status) +
                " X\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                "\r\nConnection: close\r\n\r\n" + body;
            (void)!::write(c, out.data(), out.size());
            ::close(c);
        }
    }

    std::map<std::string, std::string> routes_;
    int fd_ = -1;
    unsigned short port_ = 0;
    std::thread thread_;
};

} // namespace

// The server names the record's identifier; a "../" or absolute one must not become a path.
BOOST_AUTO_TEST_CASE(cert_create_writes_only_into_out_dir_whatever_identifier_the_server_names) {
    temp_dir d;
    const fs::path out = d / "out";
    fs::create_directories(out);
    for (const std::string& evil : std::vector<std::string>{"../escaped", (d / "absolute").string()}) {
        hostile_server srv(
            {{"POST /api/client-certs", R"({"identifier":")" + evil +
                                            R"(","certificate":"PEM","has_private_key":true,"serial_number":"1",)"
                                            R"("expires_at":"2030-01-01T00:00:00Z"})"},
             {"GET /api/client-certs/" + std::string("alice") + "/private-key", "KEY"},
             {"GET /api/client-certs/ca", "CA"}});
        auto r = run(bin + " cert create alice --url " + srv.url() + " --out-dir " + out.string());
        BOOST_TEST(!fs::exists(d / "escaped.crt"), r.output);
        BOOST_TEST(!fs::exists(d / "escaped.key"), r.output);
        BOOST_TEST(!fs::exists(d / "absolute.crt"), r.output);
        BOOST_TEST(!fs::exists(d / "absolute.key"), r.output);
        // Either refused, or written under the name asked for.
        BOOST_TEST((r.exit_code == 1 || fs::exists(out / "alice.crt")), r.output);
    }
}

// Malformed answers are a failure (exit 1 with a message), never an abort.
BOOST_AUTO_TEST_CASE(malformed_answers_exit_one_instead_of_aborting) {
    temp_dir d;
    hostile_server srv({{"POST /api/client-certs", R"({"identifier":"alice","certificate":"PEM"})"},
                        {"GET /api/client-certs/ca", "CA"},
                        {"POST /api/client-certs/alice/renew", R"([1,2,3])"},
                        {"GET /api/client-certs?limit=1000&offset=0&sort=identifier",
                         R"({"certificates":[{"identifier":"a"}],"total":1.5})"}});
    auto created = run(bin + " cert create alice --url " + srv.url() + " --out-dir " + d.path().string());
    BOOST_TEST(created.exit_code == 1, created.output);
    auto created_json = run(bin + " cert create alice --json --url " + srv.url() + " --out-dir " + d.path().string());
    BOOST_TEST((created_json.exit_code == 0 || created_json.exit_code == 1), created_json.output);
    auto renewed = run(bin + " cert renew alice --url " + srv.url());
    BOOST_TEST(renewed.exit_code == 1, renewed.output);
    auto listed = run(bin + " cert list --url " + srv.url());
    BOOST_TEST((listed.exit_code == 0 || listed.exit_code == 1), listed.output);
}

// Text from the server reaches the terminal without control characters: an identifier or an error
// message holding OSC 52 (write the clipboard) or a title sequence is shown with '?' for ESC/BEL.
BOOST_AUTO_TEST_CASE(server_text_reaches_the_terminal_without_escape_sequences) {
    const std::string osc = R"(\u001b]52;c;ZXZpbA==\u0007)";
    hostile_server srv(
        {{"GET /api/client-certs?limit=1000&offset=0&sort=identifier",
          R"({"certificates":[{"identifier":"a)" + osc + R"(","common_name":"x\u001b[2J"}],"total":1})"},
         {"GET /api/client-certs/a", R"({"identifier":"a)" + osc + R"(","notes":"\u001b]0;owned\u0007"})"},
         {"POST /api/client-certs/a/revoke", R"(!400 {"code":"INVALID_ARGUMENT","message":"no)" + osc + R"("})"},
         {"POST /api/client-certs/b/unhold", R"({"status":"active)" + osc + R"("})"},
         {"POST /api/client-certs/batch/revoke", R"({"id":"j1","state":"queued)" + osc + R"("})"},
         {"GET /api/jobs/j1", R"({"id":"j1","state":"succeeded","total":1,"done":1,"failed":1,)"
                              R"("errors":[{"row":1,"message":"x)" +
                                  osc + R"("}]})"}});
    for (const std::string cmd : {" cert list", " cert show a", " cert revoke a", " cert unhold b",
                                  " batch revoke --filter usage=vpn", " batch revoke --filter usage=vpn --wait"}) {
        auto r = run(bin + cmd + " --url " + srv.url());
        BOOST_TEST(r.output.find('\x1b') == std::string::npos, cmd << ": " << r.output);
        BOOST_TEST(r.output.find('\x07') == std::string::npos, cmd << ": " << r.output);
        BOOST_TEST(r.output.find("52;c;ZXZpbA==") != std::string::npos, cmd << ": " << r.output);
    }
}

// The progress bar (on a terminal) takes whatever counts the job reports: done > total, or counts
// near INT64_MAX, draw a full bar instead of failing on a negative width or overflowing.
BOOST_AUTO_TEST_CASE(progress_bar_survives_counts_out_of_range) {
    temp_dir d;
    write_text(d / "rows.csv", "common_name\nAlice\n");
    for (const std::string counts :
         {R"("total":3,"done":5)", R"("total":9223372036854775807,"done":9223372036854775807)",
          R"("total":3,"done":-4)"}) {
        hostile_server srv({{"POST /api/client-certs/batch", R"({"id":"j1","state":"queued"})"},
                            {"GET /api/jobs/j1", R"({"id":"j1","state":"succeeded","failed":0,)" + counts + "}"}});
        // script(1) gives the command a terminal, so the bar is drawn.
        auto r = run("script -qec '" + bin + " batch create " + (d / "rows.csv").string() + " --wait --url " +
                     srv.url() + "' /dev/null");
        BOOST_TEST(r.exit_code == 0, counts << ": " << r.output);
        BOOST_TEST(r.output.find("job j1 succeeded") != std::string::npos, counts << ": " << r.output);
    }
}

// `inspect` of a hostile file (a CSR someone sent): its extensions' text loses control characters.
BOOST_AUTO_TEST_CASE(inspect_shows_a_hostile_extension_without_escape_sequences) {
    temp_dir d;
    write_text(d / "ext.cnf", "[req]\ndistinguished_name=dn\nreq_extensions=x\n[dn]\n[x]\n"
                              "subjectAltName=DNS:a\x1b]0;pwn\x07"
                              "b\n");
    auto made =
        run("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + (d / "k.pem").string() +
            " -subj /CN=e -config " + (d / "ext.cnf").string() + " -out " + (d / "r.csr").string());
    BOOST_REQUIRE_MESSAGE(made.exit_code == 0, made.output);
    auto r = run(bin + " inspect " + (d / "r.csr").string());
    BOOST_TEST(r.exit_code == 0, r.output);
    BOOST_TEST(r.output.find("DNS:a?]0;pwn?b") != std::string::npos, r.output);
    BOOST_TEST(r.output.find('\x1b') == std::string::npos, r.output);
}
