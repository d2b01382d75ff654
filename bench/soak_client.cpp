// The load of bench/soak.sh (issue 14 "Soak"): well-behaved clients mixing create, list, OCSP and
// revoke, plus idle and slowloris connections, against a certmate on 127.0.0.1, for a bounded
// time. Prints the figures and exits 1 when an acceptance bound is missed (RSS growth after the
// warm-up, errors other than 429/503, OCSP p99). Plain POSIX sockets and threads, no dependency.
//
//   soak_client --port P --token-file F --ocsp-der F --pid PID [--secs 60] [--warmup 10]
//               [--clients 100] [--idle 1000] [--slow 100] [--think-ms 100]
//
// Addresses (all of 127/8 is loopback on Linux; the server caps connections per address):
// clients from 127.0.1.1-4, idle connections from 127.0.2.1-20, slowloris from 127.0.3.1-4.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using steady = std::chrono::steady_clock;

struct options {
    unsigned short port = 0;
    std::string token;
    std::string ocsp_der;
    int pid = 0;
    int secs = 60;
    int warmup = 10;
    int clients = 100;
    int idle = 1000;
    int slow = 100;
    int think_ms = 100;
};

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

long rss_kb(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
    return -1;
}

// A TCP connection from `source` to 127.0.0.1:port (blocking, 5 s timeouts); -1 on failure.
int connect_from(const std::string& source, unsigned short port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    ::inet_pton(AF_INET, source.c_str(), &src.sin_addr);
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(port);
    ::inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0 ||
        ::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// One keep-alive HTTP/1.1 connection; reconnects when the server has closed it.
class http_conn {
public:
    http_conn(std::string source, unsigned short port) : source_(std::move(source)), port_(port) {}
    ~http_conn() { drop(); }
    // The status (0: no answer), the body in `body`.
    // `safe` (a read): asked again on a new connection when a kept-alive one turns out closed.
    unsigned request(const std::string& method, const std::string& target, const std::string& headers,
                     const std::string& body, std::string& out_body, bool safe = false) {
        const bool reused = fd_ >= 0;
        const unsigned status = attempt(method, target, headers, body, out_body);
        if (status == 0 && reused && safe) return attempt(method, target, headers, body, out_body);
        return status;
    }

private:
    unsigned attempt(const std::string& method, const std::string& target, const std::string& headers,
                     const std::string& body, std::string& out_body) {
        if (fd_ < 0) fd_ = connect_from(source_, port_);
        if (fd_ < 0) return 0;
        std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers +
                          "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
        if (!send_all(req)) {
            drop();
            return 0;
        }
        // header
        std::size_t end;
        while ((end = in_.find("\r\n\r\n")) == std::string::npos)
            if (!fill()) {
                drop();
                return 0;
            }
        const std::string head = in_.substr(0, end + 4);
        in_.erase(0, end + 4);
        const unsigned status = head.size() > 12 ? static_cast<unsigned>(std::atoi(head.c_str() + 9)) : 0;
        std::size_t length = 0;
        if (auto cl = head.find("\r\nContent-Length: "); cl != std::string::npos)
            length = std::strtoul(head.c_str() + cl + 18, nullptr, 10);
        while (in_.size() < length)
            if (!fill()) {
                drop();
                return 0;
            }
        out_body = in_.substr(0, length);
        in_.erase(0, length);
        if (head.find("\r\nConnection: close\r\n") != std::string::npos) drop();
        return status;
    }

    bool send_all(const std::string& s) {
        std::size_t off = 0;
        while (off < s.size()) {
            const auto n = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
            if (n <= 0) return false;
            off += static_cast<std::size_t>(n);
        }
        return true;
    }
    bool fill() {
        char buf[16384];
        const auto n = ::recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) return false;
        in_.append(buf, static_cast<std::size_t>(n));
        return true;
    }
    void drop() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
        in_.clear();
    }
    std::string source_;
    unsigned short port_;
    int fd_ = -1;
    std::string in_;
};

enum op { op_create, op_list, op_ocsp, op_revoke, op_count };
const char* op_names[] = {"create", "list", "ocsp", "revoke"};

struct sample {
    double at; // seconds since the start
    double ms;
    unsigned status;
};

struct client_stats {
    std::vector<sample> by_op[op_count];
};

// One well-behaved client: an operation, a pause of 0..2*think_ms, again, until `deadline`.
void run_client(const options& o, int index, steady::time_point start, steady::time_point deadline, client_stats& st) {
    http_conn conn("127.0.1." + std::to_string(1 + index % 4), o.port);
    std::mt19937 rng(static_cast<unsigned>(index) * 7919u + 1);
    std::uniform_int_distribution<int> pick(0, 99), pause(0, 2 * o.think_ms);
    const std::string auth = "Authorization: Bearer " + o.token + "\r\n";
    const std::string json = auth + "Content-Type: application/json\r\n";
    std::vector<std::string> mine; // created, not yet revoked
    int made = 0;
    std::string body;
    while (steady::now() < deadline) {
        const int r = pick(rng);
        op kind = r < 60 ? op_ocsp : r < 85 ? op_list : r < 95 ? op_create : op_revoke;
        if (kind == op_revoke && mine.empty()) kind = op_create;
        const auto t0 = steady::now();
        unsigned status = 0;
        std::string id;
        switch (kind) {
        case op_create:
            id = "soak-" + std::to_string(index) + "-" + std::to_string(made++);
            status = conn.request("POST", "/api/client-certs", json,
                                  R"({"identifier":")" + id + R"(","common_name":")" + id + R"("})", body);
            if (status == 201) mine.push_back(id);
            break;
        case op_list: status = conn.request("GET", "/api/client-certs?limit=20", auth, "", body, true); break;
        case op_ocsp:
            status =
                conn.request("POST", "/ocsp", "Content-Type: application/ocsp-request\r\n", o.ocsp_der, body, true);
            break;
        case op_revoke:
            id = mine.back();
            mine.pop_back();
            status =
                conn.request("POST", "/api/client-certs/" + id + "/revoke", json, R"({"reason":"superseded"})", body);
            break;
        default: break;
        }
        const auto t1 = steady::now();
        st.by_op[kind].push_back({std::chrono::duration<double>(t0 - start).count(),
                                  std::chrono::duration<double, std::milli>(t1 - t0).count(), status});
        std::this_thread::sleep_for(std::chrono::milliseconds(pause(rng)));
    }
}

// Connections from `sources` that the server should see as idle (nothing sent) or slowloris (a
// header byte a second); each one the server closes is opened again, until `deadline`.
struct holder_stats {
    std::atomic<long> opened{0}, failed{0}, closed_by_server{0}, refused_503{0}, answered_other{0};
};

void run_holders(const options& o, int count, const std::string& prefix, int addresses, bool slowloris,
                 steady::time_point deadline, holder_stats& st) {
    std::vector<int> fds(static_cast<std::size_t>(count), -1);
    std::vector<std::size_t> sent(fds.size(), 0);
    const std::string header = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + std::string(4096, 's');
    auto open_one = [&](std::size_t i) {
        fds[i] = connect_from(prefix + std::to_string(1 + i % static_cast<std::size_t>(addresses)), o.port);
        sent[i] = 0;
        if (fds[i] < 0)
            ++st.failed;
        else
            ++st.opened;
    };
    for (std::size_t i = 0; i < fds.size() && steady::now() < deadline; ++i) open_one(i);
    while (steady::now() < deadline) {
        for (std::size_t i = 0; i < fds.size(); ++i) {
            if (fds[i] < 0) {
                open_one(i);
                continue;
            }
            pollfd p{fds[i], POLLIN, 0};
            if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
                char buf[256];
                const auto n = ::recv(fds[i], buf, sizeof buf - 1, MSG_DONTWAIT);
                if (n > 12 && std::strncmp(buf + 9, "503", 3) == 0)
                    ++st.refused_503;
                else if (n > 0)
                    ++st.answered_other;
                else
                    ++st.closed_by_server;
                ::close(fds[i]);
                fds[i] = -1;
                continue;
            }
            if (slowloris) {
                const char byte = header[sent[i] % header.size()];
                if (::send(fds[i], &byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1) ++sent[i];
            }
        }
        std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    for (int fd : fds)
        if (fd >= 0) ::close(fd);
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const auto i = std::min(v.size() - 1, static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size())));
    return v[i];
}

} // namespace

int main(int argc, char** argv) {
    options o;
    std::string token_file, der_file;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--port")
            o.port = static_cast<unsigned short>(std::atoi(v.c_str()));
        else if (k == "--token-file")
            token_file = v;
        else if (k == "--ocsp-der")
            der_file = v;
        else if (k == "--pid")
            o.pid = std::atoi(v.c_str());
        else if (k == "--secs")
            o.secs = std::atoi(v.c_str());
        else if (k == "--warmup")
            o.warmup = std::atoi(v.c_str());
        else if (k == "--clients")
            o.clients = std::atoi(v.c_str());
        else if (k == "--idle")
            o.idle = std::atoi(v.c_str());
        else if (k == "--slow")
            o.slow = std::atoi(v.c_str());
        else if (k == "--think-ms")
            o.think_ms = std::atoi(v.c_str());
        else {
            std::fprintf(stderr, "soak_client: unknown option %s\n", k.c_str());
            return 2;
        }
    }
    o.token = read_file(token_file);
    while (!o.token.empty() && (o.token.back() == '\n' || o.token.back() == '\r')) o.token.pop_back();
    o.ocsp_der = read_file(der_file);
    if (!o.port || o.token.empty() || o.ocsp_der.empty() || !o.pid) {
        std::fprintf(stderr, "soak_client: --port, --token-file, --ocsp-der and --pid are required\n");
        return 2;
    }
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &rl);
    }

    const long rss_before = rss_kb(o.pid);
    const auto start = steady::now();
    const auto deadline = start + std::chrono::seconds(o.secs);
    std::vector<client_stats> stats(static_cast<std::size_t>(o.clients));
    std::vector<std::thread> threads;
    for (int i = 0; i < o.clients; ++i)
        threads.emplace_back(run_client, std::cref(o), i, start, deadline,
                             std::ref(stats[static_cast<std::size_t>(i)]));
    holder_stats idle, slow;
    threads.emplace_back(run_holders, std::cref(o), o.idle, "127.0.2.", 20, false, deadline, std::ref(idle));
    threads.emplace_back(run_holders, std::cref(o), o.slow, "127.0.3.", 4, true, deadline, std::ref(slow));

    long rss_warm = -1, rss_peak = rss_before, rss_peak_after_warm = -1;
    while (steady::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        const long r = rss_kb(o.pid);
        rss_peak = std::max(rss_peak, r);
        if (steady::now() - start >= std::chrono::seconds(o.warmup)) {
            if (rss_warm < 0) rss_warm = r;
            rss_peak_after_warm = std::max(rss_peak_after_warm, r);
        }
    }
    for (auto& t : threads) t.join();
    const long rss_end = rss_kb(o.pid);

    std::printf("soak: %d s (warm-up %d s), %d clients (think 0-%d ms), %d idle, %d slowloris connections\n", o.secs,
                o.warmup, o.clients, 2 * o.think_ms, o.idle, o.slow);
    std::printf("RSS MiB: before %.1f, after warm-up %.1f, end %.1f, peak %.1f; growth after warm-up %.1f "
                "(peak after warm-up %.1f)\n",
                rss_before / 1024.0, rss_warm / 1024.0, rss_end / 1024.0, rss_peak / 1024.0,
                (rss_end - rss_warm) / 1024.0, (rss_peak_after_warm - rss_warm) / 1024.0);
    long errors = 0;
    double ocsp_p99 = 0;
    std::printf("%-7s %8s %9s %9s %9s  statuses (after warm-up)\n", "op", "requests", "p50 ms", "p99 ms", "max ms");
    for (int k = 0; k < op_count; ++k) {
        std::vector<double> ms;
        std::map<unsigned, long> by_status;
        for (const auto& s : stats)
            for (const auto& x : s.by_op[k]) {
                if (x.at < o.warmup) continue;
                ms.push_back(x.ms);
                ++by_status[x.status];
                const bool ok = (x.status >= 200 && x.status < 300) || x.status == 429 || x.status == 503;
                if (!ok) ++errors;
            }
        std::string sts;
        for (const auto& [code, n] : by_status) sts += " " + std::to_string(code) + "=" + std::to_string(n);
        const double p99 = percentile(ms, 99);
        if (k == op_ocsp) ocsp_p99 = p99;
        std::printf("%-7s %8zu %9.1f %9.1f %9.1f %s\n", op_names[k], ms.size(), percentile(ms, 50), p99,
                    ms.empty() ? 0.0 : *std::max_element(ms.begin(), ms.end()), sts.c_str());
    }
    std::printf("idle connections: opened %ld (failed %ld), closed by the server %ld, refused 503 %ld, other %ld\n",
                idle.opened.load(), idle.failed.load(), idle.closed_by_server.load(), idle.refused_503.load(),
                idle.answered_other.load());
    std::printf("slowloris:        opened %ld (failed %ld), closed by the server %ld, refused 503 %ld, other %ld\n",
                slow.opened.load(), slow.failed.load(), slow.closed_by_server.load(), slow.refused_503.load(),
                slow.answered_other.load());
    const double growth = (rss_end - rss_warm) / 1024.0;
    const bool pass = growth < 20.0 && errors == 0 && ocsp_p99 < 20.0;
    std::printf("acceptance: RSS growth after warm-up %.1f MiB (< 20), errors other than 429/503 %ld (= 0), OCSP "
                "p99 %.1f ms (< 20): %s\n",
                growth, errors, ocsp_p99, pass ? "PASS" : "FAIL");
    return pass ? 0 : 1;
}
