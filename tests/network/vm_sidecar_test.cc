// The sidecar bridge with a real guest (QEMU microvm; TCG here) in Nomad's group network mode, through the
// task Manager (docs/networking.md, "Sidecars"): a process in the allocation's namespace reaches the workload
// at 127.0.0.1:<app port>, a proxy standing in for Envoy carries a peer's request the same way, and the
// workload reaches a listener on 127.0.0.1:<upstream port> of the namespace (TCP and UDP) at 127.0.0.1 in the
// guest. Also prints how long a request takes through the bridge, for the record (not a pass/fail figure).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "driver/task_config.h"
#include "netns_fixture.h"
#include "network/netns.h"
#include "network/sidecar_link.h"
#include "network/tap_redirect.h"
#include "require.h"
#include "task/manager.h"
#include "temp_dir.h"
#include "test_layers.h"
#include "vm_guest_fixture.h"

namespace nfc {
namespace {

using namespace std::chrono_literals;
using network::testing::Address;
using network::testing::Ask;
using network::testing::FifoCapture;
using network::testing::MakeBridgeLikePair;
using network::testing::NetnsHolder;
using network::testing::RunIn;
using network::testing::SocketIn;
using network::testing::WaitFor;

// Listens on ip:port in `ns`, runs `client`, and answers its one connection with "envoy here"; returns what
// the client got.
std::string AnswerOnce(const NetnsHolder& ns, const std::string& ip, uint16_t port,
                       const std::function<std::string()>& client) {
  auto fd = SocketIn(ns, SOCK_STREAM, ip, port);
  if (!fd.ok()) return fd.error().ToString();
  std::thread answer([&] {
    UniqueFd c(::accept4(fd->get(), nullptr, nullptr, SOCK_CLOEXEC));  // bounded by SO_RCVTIMEO
    if (c) (void)::send(c.get(), "envoy here\n", 11, MSG_NOSIGNAL);
  });
  std::string got = client();
  answer.join();
  return got;
}

// The upstream's side in the namespace, on 127.0.0.1:<port>: TCP answers "upstream says hi" and closes; UDP
// answers every DNS query with NXDOMAIN (busybox's nc has no UDP; its nslookup is the guest's UDP client).
// What Envoy's upstream listener stands for.
class Upstream {
 public:
  Upstream(const NetnsHolder& ns, uint16_t port) {
    auto tcp = SocketIn(ns, SOCK_STREAM, "127.0.0.1", port);
    auto udp = SocketIn(ns, SOCK_DGRAM, "127.0.0.1", port);
    if (!tcp.ok() || !udp.ok()) {
      error_ = !tcp.ok() ? tcp.error().ToString() : udp.error().ToString();
      return;
    }
    tcp_ = std::move(*tcp);
    udp_ = std::move(*udp);
    thread_ = std::thread([this] { Serve(); });
  }
  ~Upstream() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  const std::string& error() const { return error_; }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p[2] = {{tcp_.get(), POLLIN, 0}, {udp_.get(), POLLIN, 0}};
      if (::poll(p, 2, 100) <= 0) continue;
      if (p[0].revents & POLLIN) {
        UniqueFd c(::accept4(tcp_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (c) (void)::send(c.get(), "upstream says hi\n", 17, MSG_NOSIGNAL);
      }
      if (p[1].revents & POLLIN) {
        char buf[512];
        sockaddr_in from{};
        socklen_t len = sizeof from;
        ssize_t n = ::recvfrom(udp_.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
        if (n <= 0) continue;
        if (n < 12) continue;
        buf[2] = static_cast<char>(buf[2] | 0x80);        // a response
        buf[3] = static_cast<char>((buf[3] & 0xf0) | 3);  // NXDOMAIN
        ::sendto(udp_.get(), buf, static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&from), len);
      }
    }
  }
  std::string error_;
  UniqueFd tcp_, udp_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The sidecar stand-in: a proxy in the namespace, listening on `listen` (reachable from a peer namespace),
// that sends each connection to 127.0.0.1:<app port>, as Envoy's public listener does after mTLS. One
// connection at a time, both directions copied until both ends closed.
class MiniProxy {
 public:
  MiniProxy(const NetnsHolder& ns, const std::string& listen, uint16_t port, uint16_t app_port) : ns_(ns) {
    auto fd = SocketIn(ns, SOCK_STREAM, listen, port);
    if (!fd.ok()) {
      error_ = fd.error().ToString();
      return;
    }
    fd_ = std::move(*fd);
    thread_ = std::thread([this, app_port] {
      while (!stop_) {
        pollfd p{fd_.get(), POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        UniqueFd in(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        auto out = SocketIn(ns_, SOCK_STREAM, "", 0);
        sockaddr_in a = Address("127.0.0.1", app_port);
        if (!in || !out.ok() || ::connect(out->get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
          continue;
        Copy(in.get(), out->get());
      }
    });
  }
  ~MiniProxy() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  const std::string& error() const { return error_; }

 private:
  static void Copy(int a, int b) {
    bool open[2] = {true, true};
    while (open[0] || open[1]) {
      pollfd p[2] = {{a, static_cast<short>(open[0] ? POLLIN : 0), 0},
                     {b, static_cast<short>(open[1] ? POLLIN : 0), 0}};
      if (::poll(p, 2, 5000) <= 0) return;
      for (int i = 0; i < 2; i++) {
        if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        char buf[4096];
        ssize_t n = ::recv(p[i].fd, buf, sizeof buf, 0);
        int other = i == 0 ? b : a;
        if (n <= 0) {
          ::shutdown(other, SHUT_WR);
          open[i] = false;
        } else if (::send(other, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) {
          return;
        }
      }
    }
  }
  const NetnsHolder& ns_;
  std::string error_;
  UniqueFd fd_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class VmSidecarTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NFC_REQUIRE_OR_SKIP(::geteuid() == 0, "needs root (network namespaces, TAP devices)");
    std::string guest = NFC_GUEST_DIR;
    NFC_REQUIRE_OR_SKIP(::access((guest + "/vmlinux").c_str(), R_OK) == 0,
                        "no guest kernel in " + guest + " (build the guest-artifacts target)");
    ASSERT_TRUE(network::testing::WriteBusyboxImage(
                    dir_.Path("layout"), {"sh", "echo", "cat", "nc", "sleep", "ip", "grep", "nslookup"})
                    .ok());
    config_ = network::testing::QemuGuestConfig(guest, dir_.Path("data"));
    ::setenv("NFC_SHIM_PATH", NFC_SHIM_BINARY, 1);
    ASSERT_TRUE(manager_.Configure(config_).ok());
    ASSERT_TRUE(manager_.Init().ok());
  }

  void TearDown() override {
    if (!task_id_.empty()) (void)manager_.DestroyTask(task_id_, true);
    if (off_ && !off_id_.empty()) (void)off_->DestroyTask(off_id_, true);
    stdout_.reset();
  }

  test_support::TempDir dir_{"vmsidecar"};
  driver::PluginConfig config_;
  std::string task_id_;
  std::unique_ptr<FifoCapture> stdout_;
  task::Manager manager_;
  std::unique_ptr<task::Manager> off_;  // a plugin with sidecar_bridge = false
  std::string off_id_;
};

constexpr uint16_t kAppPort = 8080, kUpstreamPort = 5432, kProxyPort = 21000;

TEST_F(VmSidecarTest, NamespaceAndGuestMeetOnLoopbackBothWays) {
  NetnsHolder outside, alloc, mesh;
  ASSERT_TRUE(outside.ok() && alloc.ok() && mesh.ok());
  ASSERT_TRUE(MakeBridgeLikePair(outside, alloc, 82, 1500).ok());
  // Loopback up (Nomad's CNI chain has the loopback plugin); a second link from a "mesh" peer to the
  // namespace, where the proxy standing in for Envoy listens (eth0's traffic belongs to the VM).
  // RunIn runs one command in the namespace: the chains go through sh -c.
  ASSERT_EQ(RunIn(alloc, "sh -c 'ip link set lo up && ip link add mesh0 type veth peer name mesh1 netns " +
                             mesh.pid() + " && ip addr add 10.99.0.2/24 dev mesh0 && ip link set mesh0 up'"),
            0);
  ASSERT_EQ(RunIn(mesh, "sh -c 'ip addr add 10.99.0.1/24 dev mesh1 && ip link set mesh1 up'"), 0);
  Upstream upstream(alloc, kUpstreamPort);
  ASSERT_TRUE(upstream.error().empty()) << upstream.error();
  MiniProxy proxy(alloc, "10.99.0.2", kProxyPort, kAppPort);
  ASSERT_TRUE(proxy.error().empty()) << proxy.error();

  driver::NomadTask t;
  t.alloc_id = "5c1dcafe-1b2c-4d5e-8f90-a1b2c3d4e5f6";
  t.name = "web";
  t.id = t.alloc_id + "/web/" + std::to_string(::getpid());
  t.resources.cpu_shares = 500;
  t.resources.memory_mb = 128;
  t.resources.ports = {{"http", 25080, kAppPort, ""}, {"connect-proxy-web", 21001, -1, ""}};
  t.env = {{"NOMAD_UPSTREAM_ADDR_db", "127.0.0.1:" + std::to_string(kUpstreamPort)}};
  t.stdout_path = dir_.Path(".web.stdout.fifo");
  t.stderr_path = "/dev/null";
  stdout_ = std::make_unique<FifoCapture>(t.stdout_path);
  t.network = driver::NetworkIsolation{driver::NetworkIsolation::Mode::kGroup, alloc.path(), {}, "", ""};
  driver::TaskConfig tc;
  tc.image = "oci:" + dir_.Path("layout") + ":net";
  tc.command = "/bin/sh";
  std::string up = std::to_string(kUpstreamPort);
  std::string script =
      "ip -o addr show eth0; "
      // TCP to the upstream, retried while the relays come up.
      "for i in 1 2 3 4 5; do r=$(nc 127.0.0.1 PORT </dev/null); [ -n \"$r\" ] && break; sleep 1; done; "
      "echo \"tcp: $r\"; "
      // UDP: a DNS query, answered by the upstream with NXDOMAIN.
      "nslookup -port=PORT -timeout=2 -retry=2 upstream.test 127.0.0.1 2>&1 | grep -q NXDOMAIN && echo 'udp: "
      "answered'; "
      "echo ready; while :; do echo 'hello from the guest' | nc -l -p APP; done";
  for (auto [from, to] :
       {std::pair<std::string, std::string>{"PORT", up}, {"APP", std::to_string(kAppPort)}}) {
    for (size_t at; (at = script.find(from)) != std::string::npos;) script.replace(at, from.size(), to);
  }
  tc.args = std::vector<std::string>{"-c", script};
  auto started = manager_.StartTask(t, tc);
  ASSERT_TRUE(started.ok()) << started.error().message();
  task_id_ = t.id;

  ASSERT_TRUE(WaitFor([&] { return stdout_->Text().find("ready") != std::string::npos; }, 180s))
      << stdout_->Text();
  std::string out = stdout_->Text();
  EXPECT_NE(out.find("inet 169.254.254.2/30"), std::string::npos) << out;
  EXPECT_NE(out.find("tcp: upstream says hi"), std::string::npos) << "guest → 127.0.0.1 upstream:\n" << out;
  EXPECT_NE(out.find("udp: answered"), std::string::npos) << "guest → 127.0.0.1 upstream (UDP):\n" << out;

  // A process of the namespace at 127.0.0.1:<app port>; nc in the guest may be between two connections.
  std::string direct;
  WaitFor([&] { return (direct = Ask(alloc, "127.0.0.1", kAppPort)) == "hello from the guest\n"; }, 30s);
  EXPECT_EQ(direct, "hello from the guest\n");
  // A peer through the sidecar stand-in.
  std::string proxied;
  WaitFor([&] { return (proxied = Ask(mesh, "10.99.0.2", kProxyPort)) == "hello from the guest\n"; }, 30s);
  EXPECT_EQ(proxied, "hello from the guest\n");
  // Envoy's own port was left to Envoy: nothing of ours listens on it.
  EXPECT_NE(RunIn(alloc, "grep -q ':5209 ' /proc/net/tcp"), 0) << "port 21001 (0x5209) is taken";
  // The allocation's address is split by port: Envoy's public listener (21001, bound on 0.0.0.0 of the
  // namespace) answers a peer at the allocation's address, and the namespace's own connections out of eth0
  // get their replies (its ephemeral ports); everything else still reaches the guest (above).
  EXPECT_EQ(AnswerOnce(alloc, "0.0.0.0", 21001, [&] { return Ask(outside, "10.82.0.2", 21001); }),
            "envoy here\n");
  EXPECT_EQ(AnswerOnce(outside, "10.82.0.1", 7070, [&] { return Ask(alloc, "10.82.0.1", 7070); }),
            "envoy here\n");

  // For the record: a request through the bridge (namespace → shim relay → guest nc), and one from the
  // namespace straight to the guest's end of the link (no relay). The guest's nc serves one connection and is
  // started again, so each request is retried until it is answered; the time of the answered one counts.
  for (const auto& [name, ip] : {std::pair{"via 127.0.0.1 (relay)", "127.0.0.1"},
                                 std::pair{"direct to 169.254.254.2", network::kSidecarGuestAddress}}) {
    std::vector<double> ms;
    for (int i = 0; i < 5; i++) {
      for (int attempt = 0; attempt < 50; attempt++) {
        auto begin = std::chrono::steady_clock::now();
        bool answered = Ask(alloc, ip, kAppPort) == "hello from the guest\n";
        auto took = std::chrono::steady_clock::now() - begin;
        if (answered) {
          ms.push_back(std::chrono::duration<double, std::milli>(took).count());
          break;
        }
        std::this_thread::sleep_for(50ms);
      }
    }
    std::sort(ms.begin(), ms.end());
    EXPECT_EQ(ms.size(), 5u) << name;
    if (!ms.empty())
      std::printf("sidecar bridge: %s: median %.2f ms per request (%zu)\n", name, ms[ms.size() / 2],
                  ms.size());
  }

  ASSERT_TRUE(manager_.StopTask(t.id, 2s, "SIGTERM").ok());
  ASSERT_TRUE(manager_.DestroyTask(t.id, false).ok());
  task_id_.clear();
  // The link went with the TAP; the shim's listeners with the shim.
  EXPECT_NE(RunIn(alloc, "sh -c 'ip -o addr | grep -q 169.254.254.1'"), 0);
  EXPECT_EQ(Ask(alloc, "127.0.0.1", kAppPort), "");
  EXPECT_EQ(RunIn(alloc, "sh -c 'tc filter show dev eth0 ingress | grep -q .'"), 1) << "filters left on eth0";
}

// The plugin option sidecar_bridge = false: the guest owns the whole uplink as before the bridge existed.
TEST_F(VmSidecarTest, OffLeavesTheUplinkToTheGuest) {
  NetnsHolder outside, alloc;
  ASSERT_TRUE(outside.ok() && alloc.ok());
  ASSERT_TRUE(MakeBridgeLikePair(outside, alloc, 83, 1500).ok());
  ASSERT_EQ(RunIn(alloc, "ip link set lo up"), 0);
  driver::PluginConfig config = config_;
  config.sidecar_bridge = false;
  off_ = std::make_unique<task::Manager>();
  ASSERT_TRUE(off_->Configure(config).ok());
  ASSERT_TRUE(off_->Init().ok());
  driver::NomadTask t;
  t.alloc_id = "0ffcafe0-1b2c-4d5e-8f90-a1b2c3d4e5f6";
  t.name = "web";
  t.id = t.alloc_id + "/web/" + std::to_string(::getpid());
  t.resources.cpu_shares = 500;
  t.resources.memory_mb = 128;
  t.resources.ports = {{"http", 25080, kAppPort, ""}, {"connect-proxy-web", 21001, -1, ""}};
  t.stdout_path = dir_.Path(".off.stdout.fifo");
  t.stderr_path = "/dev/null";
  stdout_ = std::make_unique<FifoCapture>(t.stdout_path);
  t.network = driver::NetworkIsolation{driver::NetworkIsolation::Mode::kGroup, alloc.path(), {}, "", ""};
  driver::TaskConfig tc;
  tc.image = "oci:" + dir_.Path("layout") + ":net";
  tc.command = "/bin/sh";
  tc.args = std::vector<std::string>{"-c", "ip -o addr show eth0; echo ready; sleep 600"};
  auto started = off_->StartTask(t, tc);
  ASSERT_TRUE(started.ok()) << started.error().message();
  off_id_ = t.id;
  ASSERT_TRUE(WaitFor([&] { return stdout_->Text().find("ready") != std::string::npos; }, 180s))
      << stdout_->Text();
  EXPECT_EQ(stdout_->Text().find("169.254.254.2"), std::string::npos) << stdout_->Text();
  EXPECT_NE(RunIn(alloc, "sh -c 'ip -o addr | grep -q 169.254.254.1'"), 0);
  EXPECT_EQ(Ask(alloc, "127.0.0.1", kAppPort), "") << "nothing relays the app port";
  // Only the redirect on eth0 (priority 0xfc01 = 64513), none of the bridge's filters.
  EXPECT_EQ(RunIn(alloc, "sh -c 'tc filter show dev eth0 ingress | grep -q \"pref 64513\"'"), 0);
  EXPECT_NE(RunIn(alloc, "sh -c 'tc filter show dev eth0 ingress | grep -q \"pref 6427\"'"), 0);
  ASSERT_TRUE(off_->DestroyTask(t.id, true).ok());
  off_id_.clear();
}

}  // namespace
}  // namespace nfc
