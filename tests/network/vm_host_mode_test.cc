// A real guest (QEMU microvm: TCG on the development machines) in Nomad's host network mode with the plugin's
// host_network on (docs/networking.md, "Host mode"), driven through the task Manager. The test thread joins a
// namespace the test creates to stand for the host, so the TAP, the nftables table and IPv4 forwarding are
// made there (the Manager works in its caller's namespace, and the shim and VMM start in it); a "client"
// namespace hangs off it by a veth pair (10.84.0.2 → the host's 10.84.0.1). The real host is never touched.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "driver/task_config.h"
#include "netns_fixture.h"
#include "network/netns.h"
#include "network/tap_redirect.h"
#include "require.h"
#include "shim/task_dir.h"
#include "task/driver_state.h"
#include "task/manager.h"
#include "task/network.h"
#include "temp_dir.h"
#include "test_layers.h"
#include "vm_guest_fixture.h"

namespace nfc {
namespace {

using namespace std::chrono_literals;
using network::testing::Capture;
using network::testing::ConnectFrom;
using network::testing::FifoCapture;
using network::testing::InterfaceExists;
using network::testing::MakeBridgeLikePair;
using network::testing::NetnsHolder;
using network::testing::ReadLine;
using network::testing::RunIn;
using network::testing::WaitFor;
using network::testing::WriteBusyboxImage;

std::string CaptureIn(const NetnsHolder& ns, const std::string& command) {
  return Capture("nsenter --net=" + ns.path() + " " + command + " 2>&1");
}

// A TCP server on port 80 of every address of `ns`; each connection gets "from <peer address>\n".
class WhoAmI {
 public:
  explicit WhoAmI(const NetnsHolder& ns) {
    status_ = network::RunInNetns(ns.path(), [&]() -> Status {
      fd_.Reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      if (!fd_) return Error::Errno("socket");
      int one = 1;
      ::setsockopt(fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(80);
      if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return Error::Errno("bind :80");
      if (::listen(fd_.get(), 16) != 0) return Error::Errno("listen");
      return Ok();
    });
    if (status_.ok()) thread_ = std::thread([this] { Serve(); });
  }
  ~WhoAmI() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  const Status& status() const { return status_; }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      sockaddr_in peer{};
      socklen_t len = sizeof(peer);
      UniqueFd c(::accept4(fd_.get(), reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC));
      if (!c) continue;
      char ip[INET_ADDRSTRLEN] = {};
      ::inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof(ip));
      std::string line = std::string("from ") + ip + "\n";
      (void)!::write(c.get(), line.data(), line.size());
    }
  }
  Status status_ = Ok();
  UniqueFd fd_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class VmHostModeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NFC_REQUIRE_OR_SKIP(::geteuid() == 0, "needs root (network namespaces, TAP devices, nftables)");
    std::string guest = NFC_GUEST_DIR;
    NFC_REQUIRE_OR_SKIP(::access((guest + "/vmlinux").c_str(), R_OK) == 0,
                        "no guest kernel in " + guest + " (build the guest-artifacts target)");
    Status image = WriteBusyboxImage(dir_.Path("layout"), {"sh", "echo", "cat", "ip", "nc", "sleep", "seq"});
    ASSERT_TRUE(image.ok()) << image.error().message();
    ASSERT_TRUE(host_.ok() && client_.ok());
    Status net = MakeBridgeLikePair(host_, client_, 84, 1500);
    ASSERT_TRUE(net.ok()) << net.error().message();
    ASSERT_EQ(RunIn(host_, "ip link set lo up"), 0);
    // From here on this thread (and the Manager's work on it: TAP, nftables, the shim it forks) is in "the
    // host"; TearDown returns it.
    own_ns_.Reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    auto host_ns = network::OpenNetns(host_.path());
    ASSERT_TRUE(own_ns_ && host_ns.ok());
    ASSERT_EQ(::setns(host_ns->get(), CLONE_NEWNET), 0);
    ::setenv("NFC_SHIM_PATH", NFC_SHIM_BINARY, 1);
    ASSERT_TRUE(manager_.Configure(Config()).ok());
    ASSERT_TRUE(manager_.Init().ok());
  }

  void TearDown() override {
    if (!task_id_.empty()) (void)manager_.DestroyTask(task_id_, true);
    if (own_ns_) {
      EXPECT_EQ(::setns(own_ns_.get(), CLONE_NEWNET), 0);
    }
    out_.reset();
    err_.reset();
  }

  driver::PluginConfig Config() {
    driver::PluginConfig config;
    config.data_dir = dir_.Path("data");
    config.kernel_path = std::string(NFC_GUEST_DIR) + "/vmlinux";
    config.initrd_path = std::string(NFC_GUEST_DIR) + "/initramfs.cpio.gz";
    config.backend = driver::Backend::kQemu;
    config.host_network.enabled = true;  // the range: the default 10.229.0.0/16
    return config;
  }

  // A task in host mode (no network isolation spec) with a static and a dynamic-style port.
  driver::NomadTask Task(const std::string& suffix) {
    driver::NomadTask t;
    t.alloc_id = "2f6e1c2a-1b2c-4d5e-8f90-a1b2c3d4e5f6";
    t.name = "web";
    t.id = t.alloc_id + "/web/" + suffix;
    t.job_name = "vmhost";
    t.resources.cpu_shares = 500;
    t.resources.memory_mb = 128;
    t.resources.ports = {{"http", 8080, 8080, ""}, {"dyn", 25123, 0, ""}};
    t.stdout_path = dir_.Path("." + suffix + ".stdout.fifo");
    t.stderr_path = dir_.Path("." + suffix + ".stderr.fifo");
    out_ = std::make_unique<FifoCapture>(t.stdout_path);
    err_ = std::make_unique<FifoCapture>(t.stderr_path);
    return t;
  }

  driver::TaskConfig Serve(const std::string& probes) {
    driver::TaskConfig tc;
    tc.image = "oci:" + dir_.Path("layout") + ":net";
    tc.command = "/bin/sh";
    tc.args = std::vector<std::string>{"-c",
                                       "(while :; do echo static-port | nc -l -p 8080; done) & "
                                       "(while :; do echo dynamic-port | nc -l -p 25123; done) & "
                                       "ip -o addr show eth0; ip route; cat /etc/resolv.conf; " +
                                           probes + "echo ready; wait"};
    return tc;
  }

  // Nothing of the task's link is left in "the host": TAP, rules (the whole table), lease.
  void ExpectNothingLeft(const std::string& tap) {
    EXPECT_FALSE(InterfaceExists(host_, tap)) << "the TAP survived";
    EXPECT_EQ(CaptureIn(host_, "nft list ruleset"), "") << "nftables rules survived";
    std::string leases = Capture("ls " + task::HostPoolDir(dir_.Path("data")));
    EXPECT_EQ(leases, "") << "leases survived: " << leases;
  }

  std::string Through(const NetnsHolder& from, uint16_t port) {
    auto conn = ConnectFrom(from, "10.84.0.1", port, 120s);
    if (!conn.ok()) return conn.error().message();
    return ReadLine(conn->get());
  }

  test_support::TempDir dir_{"vmhost"};  // first: removed after everything below
  NetnsHolder host_, client_;
  UniqueFd own_ns_;
  std::string task_id_;
  std::unique_ptr<FifoCapture> out_, err_;
  task::Manager manager_;
};

TEST_F(VmHostModeTest, PortsReachTheGuestAndTheGuestReachesOutThroughNat) {
  WhoAmI peer(client_), host_service(host_);
  ASSERT_TRUE(peer.status().ok() && host_service.status().ok());
  driver::NomadTask t = Task("a");
  // The peer sees the host's address (masquerade); the host's side of the link refuses new connections
  // (egress guard), its other address answers.
  auto tc = Serve(
      "for a in 10.84.0.2 10.229.0.1 10.84.0.1; do r=$(nc -w 3 $a 80 </dev/null); echo \"to $a: [$r]\"; "
      "done; ");
  auto started = manager_.StartTask(t, tc);
  ASSERT_TRUE(started.ok()) << started.error().message();
  task_id_ = t.id;
  EXPECT_FALSE(started->network.has_value()) << "host mode keeps Nomad's own address";
  std::string tap = network::TapNameForTask(t.id);
  EXPECT_TRUE(InterfaceExists(host_, tap));
  auto state = manager_.State(t.id);
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->network_mode, "host");
  EXPECT_EQ(state->host_lease, "10.229.0.0/30");
  EXPECT_EQ(state->address, "10.229.0.2");

  ASSERT_TRUE(WaitFor([&] { return out_->Text().find("ready") != std::string::npos; }, 180s))
      << "stdout: " << out_->Text() << "\nstderr: " << err_->Text();
  std::string out = out_->Text();
  EXPECT_NE(out.find("inet 10.229.0.2/30"), std::string::npos) << out;
  EXPECT_NE(out.find("default via 10.229.0.1"), std::string::npos) << out;
  EXPECT_NE(out.find("to 10.84.0.2: [from 10.84.0.1]"), std::string::npos) << out;
  EXPECT_NE(out.find("to 10.229.0.1: []"), std::string::npos) << out;
  EXPECT_NE(out.find("to 10.84.0.1: [from 10.229.0.2]"), std::string::npos) << out;

  // From the client namespace and from the host itself: the host's address and the task's ports.
  EXPECT_EQ(Through(client_, 8080), "static-port\n");
  EXPECT_EQ(Through(client_, 25123), "dynamic-port\n");
  EXPECT_EQ(Through(host_, 8080), "static-port\n");
  EXPECT_EQ(Through(host_, 25123), "dynamic-port\n");

  ASSERT_TRUE(manager_.StopTask(t.id, 2s, "SIGTERM").ok());
  Status destroyed = manager_.DestroyTask(t.id, false);
  ASSERT_TRUE(destroyed.ok()) << destroyed.error().message();
  task_id_.clear();
  ExpectNothingLeft(tap);
}

// The plugin dies (its Manager is abandoned, nothing cleaned up); a new one recovers the task from the handle
// Nomad kept and destroys it: the link goes with it.
TEST_F(VmHostModeTest, RecoveredAfterAPluginCrashTheLinkIsRemovedOnDestroy) {
  driver::NomadTask t = Task("b");
  auto started = manager_.StartTask(t, Serve(""));
  ASSERT_TRUE(started.ok()) << started.error().message();
  std::string tap = network::TapNameForTask(t.id);
  ASSERT_TRUE(WaitFor([&] { return out_->Text().find("ready") != std::string::npos; }, 180s))
      << "stdout: " << out_->Text() << "\nstderr: " << err_->Text();
  EXPECT_EQ(Through(client_, 8080), "static-port\n");

  task::Manager next;
  ASSERT_TRUE(next.Configure(Config()).ok());
  ASSERT_TRUE(next.Init().ok());
  Status recovered = next.RecoverTask(started->handle);
  ASSERT_TRUE(recovered.ok()) << recovered.error().message();
  EXPECT_EQ(Through(client_, 25123), "dynamic-port\n");
  Status destroyed = next.DestroyTask(t.id, true);
  ASSERT_TRUE(destroyed.ok()) << destroyed.error().message();
  ExpectNothingLeft(tap);
}

TEST_F(VmHostModeTest, AFailedStartLeavesNothingAndOffOrNoneMeansNoInterface) {
  driver::NomadTask t = Task("c");
  driver::TaskConfig tc = Serve("");
  tc.boot_args = "console=\"unterminated";  // refused after the network is attached
  auto started = manager_.StartTask(t, tc);
  ASSERT_FALSE(started.ok());
  EXPECT_NE(started.error().message().find("boot_args"), std::string::npos) << started.error().message();
  ExpectNothingLeft(network::TapNameForTask(t.id));

  // host_network off, or mode none: no link at all.
  task::NetworkPolicy off{{}, false, "10.229.0.0/16", dir_.Path("data")};
  auto host_off = task::AttachTaskNetwork(t, off, dir_.Path("data/tasks/x"));
  ASSERT_TRUE(host_off.ok()) << host_off.error().message();
  EXPECT_EQ(host_off->mode, "none");
  EXPECT_FALSE(host_off->nic.has_value());
  task::NetworkPolicy on{{}, true, "10.229.0.0/16", dir_.Path("data")};
  t.network = driver::NetworkIsolation{driver::NetworkIsolation::Mode::kNone, "", {}, "", ""};
  auto none = task::AttachTaskNetwork(t, on, dir_.Path("data/tasks/x"));
  ASSERT_TRUE(none.ok()) << none.error().message();
  EXPECT_EQ(none->mode, "none");
  EXPECT_TRUE(task::PlannedTap(t, true).empty());
  ExpectNothingLeft(network::TapNameForTask(t.id));
}

// A plugin that died during StartTask after making the link: Nomad never calls DestroyTask for that task, so
// the next plugin's Init removes the link with the rest of the half-started task (its start record names the
// TAP).
TEST_F(VmHostModeTest, AnInterruptedStartLosesNoLink) {
  driver::NomadTask t = Task("d");
  shim::TaskDir dir = shim::TaskDirFor(dir_.Path("data"), t.id);
  ASSERT_TRUE(::mkdir(dir_.Path("data/tasks").c_str(), 0700) == 0 || errno == EEXIST);
  ASSERT_EQ(::mkdir(dir.root.c_str(), 0700), 0);
  task::NetworkPolicy on{{true, {"169.254.0.0/16"}, true}, true, "10.229.0.0/16", dir_.Path("data")};
  auto attached = task::AttachTaskNetwork(t, on, dir.root);
  ASSERT_TRUE(attached.ok()) << attached.error().message();
  ASSERT_EQ(attached->mode, "host");
  ASSERT_TRUE(InterfaceExists(host_, attached->tap));

  pid_t dead = ::fork();  // the "plugin" that was running StartTask
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  task::StartRecord record{t.id, "sha256:0", {dead, 1}, "", attached->tap};
  std::ofstream(dir.root + "/" + std::string(task::kStartRecordFile)) << record.Encode();

  task::Manager next;
  ASSERT_TRUE(next.Configure(Config()).ok());
  ASSERT_TRUE(next.Init().ok());
  ASSERT_TRUE(WaitFor([&] { return ::access(dir.root.c_str(), F_OK) != 0; }, 30s))
      << "the interrupted start's task dir survived";
  ExpectNothingLeft(attached->tap);
}

}  // namespace
}  // namespace nfc
