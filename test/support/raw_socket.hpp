// Raw TCP sockets for tests that hold many connections or send malformed bytes (what an HTTP
// client library would refuse to write): a source address per socket, bounded waits.
#pragma once

#include <chrono>
#include <string>

namespace certmate::test {

// Lifts the soft open-file limit to the hard one (a test holding both ends of thousands of
// connections; a server started as a child inherits it).
void raise_fd_limit();
// SO_RCVTIMEO and SO_SNDTIMEO of `fd` (the latter also bounds connect() on Linux).
void set_timeouts(int fd, std::chrono::milliseconds t);
// A TCP connection from `source` (any loopback address: all of 127/8 is loopback on Linux) to
// 127.0.0.1:port, with 5 s timeouts; -1 on failure.
int connect_from(const std::string& source, unsigned short port);

} // namespace certmate::test
