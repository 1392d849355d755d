// A TCP port on 127.0.0.1 that was free a moment ago, for test servers (a registry, a forwarded guest port)
// that must be given a port number before they start. The port is released before returning, so another
// process could take it; the servers here start within milliseconds, which is why that race is accepted.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace nfc::test_support {

// Aborts the test binary when the kernel gives no port: 0 would mean "any port" to the server being set up.
inline int FreeLoopbackPort() {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (s < 0 || ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) != 0 || a.sin_port == 0) {
    std::perror("FreeLoopbackPort: no free port on 127.0.0.1");
    std::abort();
  }
  ::close(s);
  return ntohs(a.sin_port);
}

}  // namespace nfc::test_support
