// bench-relay: what the sidecar bridge's relay (src/network/relay.h) costs on its own, on 127.0.0.1 of this
// machine: the same client and echo server, once direct and once through a relay in a thread (as in the task
// shim). Not a test: it prints figures. No VM: the guest's network path adds its own cost on top (see
// vm_sidecar_test's printed figures and docs/networking.md, "Sidecars").
//
// Usage: bench-relay [SCALE]   (default 1: 20000 TCP round trips, 1000 connections, 256 MiB, 20000 UDP round
// trips; SCALE multiplies them)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "network/relay.h"

namespace {

using Clock = std::chrono::steady_clock;

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

uint16_t PortOf(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

int Bound(int type) {
  int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  sockaddr_in a = Loopback(0);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::perror("bench-relay: bind");
    std::exit(1);
  }
  return fd;
}

// TCP: every connection echoes what it reads until EOF. UDP: every datagram goes back to its sender.
struct EchoServer {
  int tcp = Bound(SOCK_STREAM), udp = Bound(SOCK_DGRAM);
  std::vector<std::thread> threads;
  EchoServer() {
    ::listen(tcp, 1024);
    threads.emplace_back([this] {
      for (;;) {
        int c = ::accept4(tcp, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return;
        std::thread([c] {
          int one = 1;
          ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          std::vector<char> buf(1 << 16);
          for (ssize_t n; (n = ::recv(c, buf.data(), buf.size(), 0)) > 0;) {
            if (::send(c, buf.data(), static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
          }
          ::close(c);
        }).detach();
      }
    });
    threads.emplace_back([this] {
      char buf[2048];
      for (;;) {
        sockaddr_in from{};
        socklen_t len = sizeof from;
        ssize_t n = ::recvfrom(udp, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
        if (n <= 0) return;  // 0: shut down
        ::sendto(udp, buf, static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&from), len);
      }
    });
  }
  ~EchoServer() {
    ::shutdown(tcp, SHUT_RDWR);
    ::shutdown(udp, SHUT_RDWR);
    for (auto& t : threads) t.join();
    ::close(tcp);
    ::close(udp);
  }
};

int ConnectTo(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in a = Loopback(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::perror("bench-relay: connect");
    std::exit(1);
  }
  return fd;
}

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// µs per 1-byte round trip on one connection.
double TcpRoundTrip(uint16_t port, int n) {
  int fd = ConnectTo(port);
  char b = 'x';
  auto start = Clock::now();
  for (int i = 0; i < n; i++) {
    if (::send(fd, &b, 1, 0) != 1 || ::recv(fd, &b, 1, MSG_WAITALL) != 1) std::exit(1);
  }
  double s = Seconds(start);
  ::close(fd);
  return s * 1e6 / n;
}

// µs per connection: connect, one round trip, close.
double TcpConnect(uint16_t port, int n) {
  auto start = Clock::now();
  for (int i = 0; i < n; i++) {
    int fd = ConnectTo(port);
    char b = 'x';
    if (::send(fd, &b, 1, 0) != 1 || ::recv(fd, &b, 1, MSG_WAITALL) != 1) std::exit(1);
    ::close(fd);
  }
  return Seconds(start) * 1e6 / n;
}

// MiB/s echoed (sent and read back) on one connection.
double TcpThroughput(uint16_t port, size_t bytes) {
  int fd = ConnectTo(port);
  std::thread reader([fd, bytes] {
    std::vector<char> buf(1 << 16);
    for (size_t got = 0; got < bytes;) {
      ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
      if (n <= 0) std::exit(1);
      got += static_cast<size_t>(n);
    }
  });
  std::vector<char> chunk(1 << 16, 'y');
  auto start = Clock::now();
  for (size_t sent = 0; sent < bytes; sent += chunk.size()) {
    if (::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(chunk.size()))
      std::exit(1);
  }
  reader.join();
  double s = Seconds(start);
  ::close(fd);
  return static_cast<double>(bytes) / (1 << 20) / s;
}

// µs per 64-byte datagram round trip.
double UdpRoundTrip(uint16_t port, int n) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = Loopback(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) std::exit(1);
  char buf[64] = {};
  auto start = Clock::now();
  for (int i = 0; i < n; i++) {
    if (::send(fd, buf, sizeof buf, 0) != sizeof buf || ::recv(fd, buf, sizeof buf, 0) != sizeof buf)
      std::exit(1);
  }
  double s = Seconds(start);
  ::close(fd);
  return s * 1e6 / n;
}

}  // namespace

int main(int argc, char** argv) {
  int scale = argc > 1 ? std::max(1, std::atoi(argv[1])) : 1;
  EchoServer server;
  uint16_t tcp_direct = PortOf(server.tcp), udp_direct = PortOf(server.udp);
  auto relayed = [](uint16_t target, bool udp) {
    nfc::network::Forward f{{"127.0.0.1", 0}, {"127.0.0.1", target}, !udp, udp};
    auto t = nfc::network::RelayThread::Start({f});
    if (!t.ok()) {
      std::fprintf(stderr, "bench-relay: %s\n", t.error().ToString().c_str());
      std::exit(1);
    }
    return std::move(*t);
  };
  auto tcp_relay = relayed(tcp_direct, false);
  auto udp_relay = relayed(udp_direct, true);
  uint16_t tcp_via = tcp_relay->relay().ListenPorts()[0], udp_via = udp_relay->relay().ListenPorts()[0];

  struct Row {
    const char* what;
    const char* unit;
    std::function<double(uint16_t)> run;
    uint16_t direct, via;
  };
  const Row rows[] = {
      {"TCP 1-byte round trip", "us", [&](uint16_t p) { return TcpRoundTrip(p, 20000 * scale); }, tcp_direct,
       tcp_via},
      {"TCP connect + round trip + close", "us", [&](uint16_t p) { return TcpConnect(p, 1000 * scale); },
       tcp_direct, tcp_via},
      {"TCP echo throughput (256 MiB)", "MiB/s",
       [&](uint16_t p) { return TcpThroughput(p, (size_t{256} << 20) * static_cast<size_t>(scale)); },
       tcp_direct, tcp_via},
      {"UDP 64-byte round trip", "us", [&](uint16_t p) { return UdpRoundTrip(p, 20000 * scale); }, udp_direct,
       udp_via},
  };
  std::printf("%-34s %12s %12s %8s\n", "relay on 127.0.0.1", "direct", "via relay", "unit");
  for (const Row& r : rows) {
    double direct = r.run(r.direct);
    double via = r.run(r.via);
    std::printf("%-34s %12.1f %12.1f %8s\n", r.what, direct, via, r.unit);
  }
  return 0;
}
