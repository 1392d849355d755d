// The sidecar relay on 127.0.0.1 of the test's own namespace: TCP and UDP, data both ways, half-close, many
// connections, a failing target, idle UDP sessions, and teardown. No VM, no root.
#include "network/relay.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "base/unique_fd.h"

namespace nfc::network {
namespace {

using namespace std::chrono_literals;

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

void SetTimeout(int fd) {
  timeval tv{10, 0};  // a hung relay fails the test instead of hanging it
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

UniqueFd Connect(uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  SetTimeout(fd.get());
  sockaddr_in a = Loopback(port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return UniqueFd();
  return fd;
}

bool SendAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Everything until EOF (or an error: then what came so far).
std::string ReadToEof(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

// A TCP server standing for the target: per connection, reads to EOF, then answers "<n bytes>:" followed by
// what it read, and closes. So a client sees both directions and the half-close travel through the relay.
class EchoAfterEof {
 public:
  EchoAfterEof() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a = Loopback(0);
    EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_.get(), 512), 0);
    port_ = PortOf(fd_.get());
    thread_ = std::thread([this] { Serve(); });
  }
  ~EchoAfterEof() {
    ::shutdown(fd_.get(), SHUT_RDWR);
    thread_.join();
    for (auto& t : workers_) t.join();
  }
  uint16_t port() const { return port_; }

 private:
  void Serve() {
    for (;;) {
      int c = ::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      workers_.emplace_back([c] {
        SetTimeout(c);
        std::string got = ReadToEof(c);
        SendAll(c, std::to_string(got.size()) + ":" + got);
        ::close(c);
      });
    }
  }
  UniqueFd fd_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::vector<std::thread> workers_;
};

// A relay running in a thread until the fixture ends (or Stop).
class RunningRelay {
 public:
  explicit RunningRelay(const std::vector<Forward>& forwards, RelayOptions options = {}) {
    auto r = Relay::Listen(forwards, options);
    EXPECT_TRUE(r.ok()) << r.error().ToString();
    relay_ = std::move(*r);
    thread_ = std::thread([this] { status_ = relay_->Run(stop_.get()); });
  }
  ~RunningRelay() { Stop(); }
  void Stop() {
    if (!thread_.joinable()) return;
    uint64_t one = 1;
    EXPECT_EQ(::write(stop_.get(), &one, sizeof one), 8);
    thread_.join();
    EXPECT_TRUE(status_.ok()) << status_.error().ToString();
  }
  uint16_t port(size_t i = 0) const { return relay_->ListenPorts()[i]; }
  Relay& relay() { return *relay_; }

 private:
  UniqueFd stop_{::eventfd(0, EFD_CLOEXEC)};
  std::unique_ptr<Relay> relay_;
  std::thread thread_;
  Status status_ = Ok();
};

Forward To(uint16_t target, bool tcp = true, bool udp = false) {
  return {{"127.0.0.1", 0}, {"127.0.0.1", target}, tcp, udp};
}

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i++) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

TEST(RelayTest, TcpCarriesBothDirectionsAndTheHalfClose) {
  EchoAfterEof server;
  RunningRelay relay({To(server.port())});
  UniqueFd c = Connect(relay.port());
  ASSERT_TRUE(c);
  ASSERT_TRUE(SendAll(c.get(), "hello through the relay"));
  ::shutdown(c.get(), SHUT_WR);  // the server answers only after it saw our EOF
  EXPECT_EQ(ReadToEof(c.get()), "23:hello through the relay");
}

TEST(RelayTest, TcpLargeTransferArrivesIntact) {
  EchoAfterEof server;
  RunningRelay relay({To(server.port())}, RelayOptions{60000ms, 16384, 4096});
  std::string data = Pattern(8 << 20);
  UniqueFd c = Connect(relay.port());
  ASSERT_TRUE(c);
  std::thread writer([&] {
    SendAll(c.get(), data);
    ::shutdown(c.get(), SHUT_WR);
  });
  std::string got = ReadToEof(c.get());
  writer.join();
  ASSERT_EQ(got.size(), data.size() + std::to_string(data.size()).size() + 1);
  EXPECT_TRUE(got == std::to_string(data.size()) + ":" + data);
}

TEST(RelayTest, ManyConcurrentTcpConnections) {
  EchoAfterEof server;
  RunningRelay relay({To(server.port())});
  constexpr int kClients = 200;
  std::vector<UniqueFd> clients;
  for (int i = 0; i < kClients; i++) {
    clients.push_back(Connect(relay.port()));
    ASSERT_TRUE(clients.back()) << "connection " << i;
    ASSERT_TRUE(SendAll(clients.back().get(), "client " + std::to_string(i)));
  }
  for (int i = 0; i < kClients; i++) ::shutdown(clients[i].get(), SHUT_WR);
  for (int i = 0; i < kClients; i++) {
    std::string expect = "client " + std::to_string(i);
    EXPECT_EQ(ReadToEof(clients[i].get()), std::to_string(expect.size()) + ":" + expect);
  }
  clients.clear();
  // Every pair is closed once both directions ended.
  for (int i = 0; i < 100 && relay.relay().Stats().tcp_open != 0; i++) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(relay.relay().Stats().tcp_open, 0u);
  EXPECT_EQ(relay.relay().Stats().tcp_accepted, static_cast<uint64_t>(kClients));
}

TEST(RelayTest, AnUnreachableTargetClosesTheClient) {
  uint16_t closed_port;
  {
    EchoAfterEof gone;  // a port that was just in use and is now closed
    closed_port = gone.port();
  }
  RunningRelay relay({To(closed_port)});
  UniqueFd c = Connect(relay.port());
  ASSERT_TRUE(c);
  char b;
  EXPECT_LE(::recv(c.get(), &b, 1, 0), 0);  // reset or EOF, not a hang
}

TEST(RelayTest, UdpSessionsPerClientBothWaysAndIdleExpiry) {
  UniqueFd server(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in a = Loopback(0);
  ASSERT_EQ(::bind(server.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  timeval tick{0, 100000};  // the echo loop notices `done` soon
  ::setsockopt(server.get(), SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof tick);
  std::atomic<bool> done{false};
  std::thread echo([&] {  // answers "echo:" + datagram to whoever sent it (the relay's session socket)
    char buf[2048];
    while (!done) {
      sockaddr_in from{};
      socklen_t len = sizeof from;
      ssize_t n = ::recvfrom(server.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n <= 0) continue;
      std::string reply = "echo:" + std::string(buf, static_cast<size_t>(n));
      ::sendto(server.get(), reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
    }
  });
  RelayOptions options;
  options.udp_idle = 300ms;
  RunningRelay relay({To(PortOf(server.get()), false, true)}, options);
  std::vector<UniqueFd> clients;
  for (int i = 0; i < 3; i++) {
    clients.emplace_back(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    SetTimeout(clients.back().get());
    sockaddr_in to = Loopback(relay.port());
    ASSERT_EQ(::connect(clients.back().get(), reinterpret_cast<sockaddr*>(&to), sizeof to), 0);
  }
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < 3; i++) {
      std::string msg = "c" + std::to_string(i) + "r" + std::to_string(round);
      ASSERT_EQ(::send(clients[i].get(), msg.data(), msg.size(), 0), static_cast<ssize_t>(msg.size()));
      char buf[64] = {};
      ssize_t n = ::recv(clients[i].get(), buf, sizeof buf, 0);
      ASSERT_GT(n, 0) << msg;
      EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), "echo:" + msg);
    }
  }
  EXPECT_EQ(relay.relay().Stats().udp_sessions, 3u);
  for (int i = 0; i < 100 && relay.relay().Stats().udp_open != 0; i++) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(relay.relay().Stats().udp_open, 0u) << "idle sessions end";
  done = true;
  relay.Stop();
  echo.join();
}

TEST(RelayTest, StopClosesEveryConnectionAndListener) {
  UniqueFd server(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));  // accepts, never answers
  sockaddr_in a = Loopback(0);
  ASSERT_EQ(::bind(server.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(server.get(), 16), 0);
  RunningRelay relay({To(PortOf(server.get()))});
  uint16_t port = relay.port();
  UniqueFd c = Connect(port);
  ASSERT_TRUE(c);
  UniqueFd accepted(::accept4(server.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(accepted);
  SetTimeout(accepted.get());
  relay.Stop();
  char b;
  EXPECT_EQ(::recv(c.get(), &b, 1, 0), 0) << "the client's side is closed";
  EXPECT_EQ(::recv(accepted.get(), &b, 1, 0), 0) << "the target's side is closed";
  EXPECT_FALSE(Connect(port)) << "the listener is gone";
}

TEST(RelayTest, ABusyListenAddressNamesTheForward) {
  UniqueFd busy(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a = Loopback(0);
  ASSERT_EQ(::bind(busy.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(busy.get(), 1), 0);
  uint16_t port = PortOf(busy.get());
  auto r = Relay::Listen({{{"127.0.0.1", port}, {"127.0.0.1", 1}, true, false}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().ToString().find("tcp 127.0.0.1:" + std::to_string(port) + " → 127.0.0.1:1"),
            std::string::npos)
      << r.error().ToString();
}

TEST(RelayTest, ParseEndpoint) {
  auto e = ParseEndpoint("169.254.254.1:9001");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->address, "169.254.254.1");
  EXPECT_EQ(e->port, 9001);
  for (const char* bad :
       {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:70000", "localhost:80", "::1:80", "1.2.3.4:x"}) {
    auto r = ParseEndpoint(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().ToString().find(std::string("'") + bad + "'"), std::string::npos);
  }
}

TEST(RelayTest, RelayThreadStopsOnDestruction) {
  EchoAfterEof server;
  auto t = RelayThread::Start({To(server.port())});
  ASSERT_TRUE(t.ok()) << t.error().ToString();
  uint16_t port = (*t)->relay().ListenPorts()[0];
  UniqueFd c = Connect(port);
  ASSERT_TRUE(c);
  ASSERT_TRUE(SendAll(c.get(), "abc"));
  ::shutdown(c.get(), SHUT_WR);
  EXPECT_EQ(ReadToEof(c.get()), "3:abc");
  t->reset();
  EXPECT_FALSE(Connect(port)) << "the listener is gone";
}

TEST(RelayTest, RunsInAForkedChildUntilKilled) {
  EchoAfterEof server;
  auto r = Relay::Listen({To(server.port())});
  ASSERT_TRUE(r.ok());
  uint16_t port = (*r)->ListenPorts()[0];
  auto pid = RunRelayInChild(std::move(*r));
  ASSERT_TRUE(pid.ok()) << pid.error().ToString();
  UniqueFd c = Connect(port);
  ASSERT_TRUE(c);
  ASSERT_TRUE(SendAll(c.get(), "x"));
  ::shutdown(c.get(), SHUT_WR);
  EXPECT_EQ(ReadToEof(c.get()), "1:x");
  ::kill(*pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(*pid, &status, 0), *pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
  EXPECT_FALSE(Connect(port)) << "the listener went with the child";
}

}  // namespace
}  // namespace nfc::network
