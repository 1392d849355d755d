// bench-network: throughput and latency from a peer namespace to a real guest in group ("bridge") mode, side
// by side with a plain veth path, and what the sidecar bridge's loopback forwarder adds per connection. Not a
// test: it prints figures (medians) and asserts none of them. Paths:
//   veth    a peer namespace → veth → a listener in the other namespace (no VM; the same shape as Nomad's)
//   tap     a peer namespace → the allocation's address → tc redirect → TAP → guest
//   relay   a process of the allocation's namespace → 127.0.0.1:<port> → shim relay → guest
//   link    a process of the allocation's namespace → 169.254.254.2:<port> (the guest's end of the link; the
//           relay's own next hop, so relay - link is the forwarder's cost)
// The guest runs busybox nc servers: a 1-byte echo (cat), a sink (cat > /dev/null) and a one-line answer; the
// veth listener does the same in threads. Needs root; makes its own namespaces, which die with it.
//
// Usage: bench-network [MIB] [RUNS]   (default 16 MiB per throughput run, 5 runs)
#include <netinet/tcp.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "network/sidecar_link.h"
#include "task/manager.h"
#include "temp_dir.h"
#include "vm_guest_fixture.h"

namespace nfc {
namespace {

using namespace std::chrono_literals;
using network::testing::Address;
using network::testing::FifoCapture;
using network::testing::NetnsHolder;
using network::testing::SocketIn;
using Clock = std::chrono::steady_clock;

constexpr uint16_t kHelloPort = 8080, kEchoPort = 7000, kSinkPort = 9000;
constexpr int kRoundTrips = 200, kConnections = 20, kPairs = 50;
constexpr size_t kChunk = size_t{64} * 1024;
const char kHello[] = "hello from the guest\n";

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double Since(Clock::time_point begin) {
  return std::chrono::duration<double>(Clock::now() - begin).count();
}

// A TCP socket made in `ns`, connected to ip:port (retried while a server is between two connections).
Result<UniqueFd> Connect(const NetnsHolder& ns, const std::string& ip, uint16_t port) {
  for (int attempt = 0;; attempt++) {
    auto fd = SocketIn(ns, SOCK_STREAM, "", 0);
    if (!fd.ok()) return fd.error();
    timeval tv{60, 0};  // a TCG guest can stall for seconds
    ::setsockopt(fd->get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd->get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    ::setsockopt(fd->get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a = Address(ip, port);
    if (::connect(fd->get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return std::move(*fd);
    if (attempt == 50) return Error::Errno("connect " + ip + ":" + std::to_string(port));
    std::this_thread::sleep_for(100ms);
  }
}

// MiB/s of one connection sending `mib` MiB, timed until the receiver closed (all of it was read).
Result<double> Throughput(const NetnsHolder& ns, const std::string& ip, int mib) {
  auto fd = Connect(ns, ip, kSinkPort);
  if (!fd.ok()) return fd.error();
  std::vector<char> chunk(kChunk, 'x');
  auto begin = Clock::now();
  for (int i = 0; i < mib * 16; i++) {  // 16 chunks of 64 KiB a MiB
    size_t off = 0;
    while (off < chunk.size()) {
      ssize_t n = ::send(fd->get(), chunk.data() + off, chunk.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return Error::Errno("send to " + ip + ":" + std::to_string(kSinkPort));
      off += static_cast<size_t>(n);
    }
  }
  ::shutdown(fd->get(), SHUT_WR);
  char c;
  if (::recv(fd->get(), &c, 1, 0) != 0) return Error::Errno("waiting for the sink at " + ip + " to close");
  return mib / Since(begin);
}

// Median µs of a 1-byte round trip on one connection to the echo server.
Result<double> RoundTrip(const NetnsHolder& ns, const std::string& ip) {
  auto fd = Connect(ns, ip, kEchoPort);
  if (!fd.ok()) return fd.error();
  std::vector<double> us;
  for (int i = 0; i < kRoundTrips; i++) {
    char c = 'x';
    auto begin = Clock::now();
    if (::send(fd->get(), &c, 1, MSG_NOSIGNAL) != 1 || ::recv(fd->get(), &c, 1, 0) != 1)
      return Error::Errno("echo round trip " + ip + ":" + std::to_string(kEchoPort));
    us.push_back(Since(begin) * 1e6);
  }
  return Median(us);
}

// Ms of connect + reading the one-line answer to EOF + close (the socket is made before the clock runs).
Result<double> OneConnection(const NetnsHolder& ns, const std::string& ip) {
  auto fd = SocketIn(ns, SOCK_STREAM, "", 0);
  if (!fd.ok()) return fd.error();
  sockaddr_in a = Address(ip, kHelloPort);
  auto begin = Clock::now();
  if (::connect(fd->get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    return Error::Errno("connect " + ip + ":" + std::to_string(kHelloPort));
  std::string got = network::testing::ReadAll(fd->get());
  fd->Reset();
  double took = Since(begin) * 1e3;
  if (got != kHello) return Error::Internal("answer from " + ip + ": '" + got + "'");
  return took;
}

Result<double> PerConnection(const NetnsHolder& ns, const std::string& ip) {
  std::vector<double> ms;
  for (int i = 0; i < kConnections; i++) {
    auto took = OneConnection(ns, ip);
    if (!took.ok()) return took.error();
    ms.push_back(*took);
  }
  return Median(ms);
}

// The forwarder's cost per connection: relay and direct connections alternate, so both see the same load; the
// median of the pairs' differences.
Status ForwarderOverhead(const NetnsHolder& alloc) {
  std::vector<double> relay, link, diff;
  for (int i = 0; i < kPairs; i++) {
    auto r = OneConnection(alloc, "127.0.0.1");
    auto l = OneConnection(alloc, network::kSidecarGuestAddress);
    if (!r.ok()) return r.error();
    if (!l.ok()) return l.error();
    relay.push_back(*r);
    link.push_back(*l);
    diff.push_back(*r - *l);
  }
  std::printf(
      "forwarder, %d alternating pairs of connect+answer+close: relay %.2f ms, direct to %s %.2f ms, "
      "median difference %+.2f ms\n",
      kPairs, Median(relay), network::kSidecarGuestAddress, Median(link), Median(diff));
  return Ok();
}

// The veth path's servers, in threads of this process: the same three as the guest's busybox nc.
class PlainServers {
 public:
  explicit PlainServers(const NetnsHolder& ns, const std::string& ip) {
    for (uint16_t port : {kHelloPort, kEchoPort, kSinkPort}) {
      auto fd = SocketIn(ns, SOCK_STREAM, ip, port);
      if (!fd.ok()) {
        error_ = fd.error().ToString();
        return;
      }
      threads_.emplace_back([this, port, listener = std::make_shared<UniqueFd>(std::move(*fd))] {
        Serve(listener->get(), port);
      });
    }
  }
  ~PlainServers() {
    stop_ = true;
    for (auto& t : threads_) t.join();
  }
  PlainServers(const PlainServers&) = delete;
  PlainServers& operator=(const PlainServers&) = delete;
  const std::string& error() const { return error_; }

 private:
  void Serve(int listener, uint16_t port) {
    while (!stop_) {
      pollfd p{listener, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      UniqueFd c(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
      if (!c) continue;
      int one = 1;
      ::setsockopt(c.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (port == kHelloPort) {
        (void)::send(c.get(), kHello, sizeof kHello - 1, MSG_NOSIGNAL);
        continue;
      }
      std::vector<char> buf(kChunk);
      for (ssize_t n; (n = ::recv(c.get(), buf.data(), buf.size(), 0)) > 0;) {
        if (port == kEchoPort) (void)::send(c.get(), buf.data(), static_cast<size_t>(n), MSG_NOSIGNAL);
      }
    }
  }
  std::string error_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

// The guest in group mode, destroyed with this object (also when the bench fails half-way).
class Guest {
 public:
  ~Guest() {
    if (!id_.empty()) (void)manager_.DestroyTask(id_, true);
  }
  Status Start(const NetnsHolder& alloc) {
    std::string guest = NFC_GUEST_DIR;
    NFC_RETURN_IF_ERROR(network::testing::WriteBusyboxImage(
        dir_.Path("layout"), {"sh", "echo", "cat", "nc", "printf", "chmod", "sleep", "ip"}));
    ::setenv("NFC_SHIM_PATH", NFC_SHIM_BINARY, 1);
    NFC_RETURN_IF_ERROR(manager_.Configure(network::testing::QemuGuestConfig(guest, dir_.Path("data"))));
    NFC_RETURN_IF_ERROR(manager_.Init());
    driver::NomadTask t;
    t.alloc_id = "be1cface-1b2c-4d5e-8f90-a1b2c3d4e5f6";
    t.name = "bench";
    t.id = t.alloc_id + "/bench/" + std::to_string(::getpid());
    t.resources.cpu_shares = 500;
    t.resources.memory_mb = 128;
    t.resources.ports = {
        {"hello", 25080, kHelloPort, ""}, {"echo", 25070, kEchoPort, ""}, {"sink", 25090, kSinkPort, ""}};
    t.stdout_path = dir_.Path(".bench.stdout.fifo");
    t.stderr_path = "/dev/null";
    stdout_ = std::make_unique<FifoCapture>(t.stdout_path);
    t.network = driver::NetworkIsolation{driver::NetworkIsolation::Mode::kGroup, alloc.path(), {}, "", ""};
    driver::TaskConfig tc;
    tc.image = "oci:" + dir_.Path("layout") + ":net";
    tc.command = "/bin/sh";
    // nc -ll -e forks PROG per connection and keeps listening: no gap between two connections.
    tc.args = std::vector<std::string>{"-c", R"(printf '#!/bin/sh\necho hello from the guest\n' > /tmp/hello
printf '#!/bin/sh\ncat > /dev/null\n' > /tmp/sink
chmod +x /tmp/hello /tmp/sink
nc -ll -p 8080 -e /tmp/hello & nc -ll -p 7000 -e /bin/cat & nc -ll -p 9000 -e /tmp/sink &
echo ready; wait)"};
    auto started = manager_.StartTask(t, tc);
    if (!started.ok()) return started.error();
    id_ = t.id;
    if (!network::testing::WaitFor([&] { return stdout_->Text().find("ready") != std::string::npos; }, 300s))
      return Error::Timeout("the guest did not print ready: " + stdout_->Text());
    return Ok();
  }

 private:
  test_support::TempDir dir_{"bench-network"};
  task::Manager manager_;
  std::unique_ptr<FifoCapture> stdout_;
  std::string id_;
};

struct Row {
  const char* name;
  const NetnsHolder* from;
  std::string ip;
  double mibs = 0, rtt_us = 0, conn_ms = 0;
};

Status Measure(Row& row, int mib, int runs) {
  std::vector<double> rates;
  for (int i = 0; i < runs; i++) {
    auto r = Throughput(*row.from, row.ip, mib);
    if (!r.ok()) return r.error();
    rates.push_back(*r);
  }
  row.mibs = Median(rates);
  auto rtt = RoundTrip(*row.from, row.ip);
  if (!rtt.ok()) return rtt.error();
  row.rtt_us = *rtt;
  auto conn = PerConnection(*row.from, row.ip);
  if (!conn.ok()) return conn.error();
  row.conn_ms = *conn;
  std::fprintf(stderr, "  measured %s\n", row.name);
  return Ok();
}

void Print(const std::vector<Row>& rows, int mib, int runs) {
  const Row& veth = rows.front();
  std::printf(
      "bench-network: medians; throughput %d x %d MiB, RTT of 1 byte x %d, connect+answer+close x %d\n", runs,
      mib, kRoundTrips, kConnections);
  std::printf("%-36s %9s %7s %10s %7s %12s %7s\n", "path", "MiB/s", "x veth", "RTT us", "x veth", "conn ms",
              "x veth");
  for (const Row& r : rows) {
    std::printf("%-36s %9.1f %7.3f %10.0f %7.1f %12.2f %7.1f\n", r.name, r.mibs, r.mibs / veth.mibs, r.rtt_us,
                r.rtt_us / veth.rtt_us, r.conn_ms, r.conn_ms / veth.conn_ms);
  }
  const Row& relay = rows[2];
  const Row& link = rows[3];
  std::printf("forwarder per round trip (relay - link): %+.0f us; per connection (relay - link): %+.2f ms\n",
              relay.rtt_us - link.rtt_us, relay.conn_ms - link.conn_ms);
}

Status Run(int mib, int runs) {
  NetnsHolder peer, alloc, vpeer, plain;
  if (!peer.ok() || !alloc.ok() || !vpeer.ok() || !plain.ok()) return Error::Internal("namespaces: unshare");
  NFC_RETURN_IF_ERROR(network::testing::MakeBridgeLikePair(peer, alloc, 86, 1500));
  NFC_RETURN_IF_ERROR(network::testing::MakeBridgeLikePair(vpeer, plain, 87, 1500));
  if (network::testing::RunIn(alloc, "ip link set lo up") != 0) return Error::Internal("lo up in alloc");
  PlainServers servers(plain, "10.87.0.2");
  if (!servers.error().empty()) return Error::Internal("veth servers: " + servers.error());
  Guest guest;
  std::fprintf(stderr, "booting the guest (QEMU)...\n");
  NFC_RETURN_IF_ERROR(guest.Start(alloc));
  std::vector<Row> rows = {{"veth, no VM (peer -> 10.87.0.2)", &vpeer, "10.87.0.2"},
                           {"tap: peer -> alloc address -> guest", &peer, "10.86.0.2"},
                           {"relay: alloc ns -> 127.0.0.1 -> guest", &alloc, "127.0.0.1"},
                           {"link: alloc ns -> 169.254.254.2", &alloc, network::kSidecarGuestAddress}};
  for (Row& row : rows) NFC_RETURN_IF_ERROR(Measure(row, mib, runs));
  Print(rows, mib, runs);
  return ForwarderOverhead(alloc);
}

}  // namespace
}  // namespace nfc

int main(int argc, char** argv) {
  if (::geteuid() != 0) {
    std::fprintf(stderr, "bench-network: needs root (network namespaces, TAP devices)\n");
    return 2;
  }
  int mib = argc > 1 ? std::atoi(argv[1]) : 16;
  int runs = argc > 2 ? std::atoi(argv[2]) : 5;
  if (mib <= 0 || runs <= 0) {
    std::fprintf(stderr, "bench-network: MIB and RUNS must be positive (got '%s' '%s')\n",
                 argc > 1 ? argv[1] : "", argc > 2 ? argv[2] : "");
    return 2;
  }
  nfc::Status s = nfc::Run(mib, runs);
  if (!s.ok()) {
    std::fprintf(stderr, "bench-network: %s\n", s.error().ToString().c_str());
    return 1;
  }
  return 0;
}
