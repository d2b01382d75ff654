// Waiting in tests for something to happen: poll a condition until a deadline, instead of sleeping
// for a guessed time. (A test that must let time pass on purpose, a retry interval or a timeout
// that must not fire, sleeps and says why.)
#pragma once

#include <chrono>
#include <thread>

namespace certmate::test {

// Calls `cond` until it returns true (then true) or `timeout` has passed (then false), every `poll`.
template <class F>
bool eventually(F&& cond, std::chrono::milliseconds timeout = std::chrono::seconds(10),
                std::chrono::milliseconds poll = std::chrono::milliseconds(20)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!cond()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(poll);
    }
    return true;
}

} // namespace certmate::test
