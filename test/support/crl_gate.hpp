// Holding or failing the CRL builds of the in-process servers (issue 15: a revocation is
// acknowledged before its CRL is built).
#pragma once

#include "storage/atomic_file.hpp"

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>

namespace certmate::test {

// Holds or fails every CRL build of the process at the write of crl_state.json (the number kept
// before a CRL is served), through storage::write_fault_hook: installed before the server starts
// and removed after it stopped (the hook is read without a lock).
struct crl_gate {
    enum class mode { pass, hold, fail };
    std::mutex mu;
    std::condition_variable cv;
    mode m = mode::pass;
    int waiting = 0; // builds held at the gate now

    crl_gate() {
        storage::write_fault_hook = [this](const std::filesystem::path& p) {
            if (p.filename().string().find("crl_state.json") == std::string::npos) return 0;
            std::unique_lock lk(mu);
            ++waiting;
            cv.notify_all();
            cv.wait(lk, [&] { return m != mode::hold; });
            --waiting;
            return m == mode::fail ? EIO : 0;
        };
    }
    ~crl_gate() { storage::write_fault_hook = nullptr; }
    void set(mode x) {
        std::lock_guard lk(mu);
        m = x;
        cv.notify_all();
    }
    // True once a build waits at the gate (within 10 s).
    bool build_held() {
        std::unique_lock lk(mu);
        return cv.wait_for(lk, std::chrono::seconds(10), [&] { return waiting > 0; });
    }
};

// Opens the gate before the server goes (a held build would keep its pool from stopping).
struct gate_opener {
    crl_gate& g;
    ~gate_opener() { g.set(crl_gate::mode::pass); }
};

} // namespace certmate::test
