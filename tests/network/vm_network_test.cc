// A real guest (QEMU microvm: TCG on the development machines) in Nomad's group network mode, driven through
// the task Manager the gRPC layer calls: the VM owns the allocation's address, serves TCP to a peer on the
// bridge side, sees the uplink's MAC, MTU, routes and the job's DNS; destroying the task gives the namespace
// its uplink back.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
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
#include "task/inventory.h"
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
using network::testing::MacOf;
using network::testing::MakeBridgeLikePair;
using network::testing::NetnsHolder;
using network::testing::ReadLine;
using network::testing::RunIn;
using network::testing::WaitFor;
using network::testing::WriteBusyboxImage;

class VmNetworkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NFC_REQUIRE_OR_SKIP(::geteuid() == 0, "needs root (network namespaces, TAP devices)");
    std::string guest = NFC_GUEST_DIR;
    NFC_REQUIRE_OR_SKIP(::access((guest + "/vmlinux").c_str(), R_OK) == 0,
                        "no guest kernel in " + guest + " (build the guest-artifacts target)");
    Status image =
        WriteBusyboxImage(dir_.Path("layout"), {"sh", "echo", "cat", "ip", "nc", "sleep", "hostname"});
    ASSERT_TRUE(image.ok()) << image.error().message();

    data_dir_ = dir_.Path("data");
    driver::PluginConfig config = Config(data_dir_);
    ::setenv("NFC_SHIM_PATH", NFC_SHIM_BINARY, 1);
    ASSERT_TRUE(manager_.Configure(config).ok());
    ASSERT_TRUE(manager_.Init().ok());
  }

  driver::PluginConfig Config(const std::string& data_dir) {
    driver::PluginConfig config;
    config.data_dir = data_dir;
    config.kernel_path = std::string(NFC_GUEST_DIR) + "/vmlinux";
    config.initrd_path = std::string(NFC_GUEST_DIR) + "/initramfs.cpio.gz";
    config.backend = driver::Backend::kQemu;
    return config;
  }

  void TearDown() override {
    if (!task_id_.empty()) (void)manager_.DestroyTask(task_id_, true);
    stdout_.reset();
    stderr_.reset();
  }

  driver::NomadTask Task(const std::string& netns) {
    driver::NomadTask t;
    t.alloc_id = "0f6e1c2a-1b2c-4d5e-8f90-a1b2c3d4e5f6";
    t.name = "web";
    t.id = t.alloc_id + "/web/" + std::to_string(::getpid());
    t.job_name = "vmnet";
    t.resources.cpu_shares = 500;
    t.resources.memory_mb = 128;
    std::string n = std::to_string(tasks_made_++);  // a fresh pair of FIFOs per task
    t.stdout_path = dir_.Path(".web" + n + ".stdout.fifo");
    t.stderr_path = dir_.Path(".web" + n + ".stderr.fifo");
    stdout_ = std::make_unique<FifoCapture>(t.stdout_path);
    stderr_ = std::make_unique<FifoCapture>(t.stderr_path);
    t.network = driver::NetworkIsolation{driver::NetworkIsolation::Mode::kGroup, netns, {}, "", ""};
    t.dns = driver::DnsSettings{{"192.0.2.53"}, {"service.consul"}, {}};
    return t;
  }

  test_support::TempDir dir_{"vmnet"};  // first: removed after the manager below is gone
  std::string data_dir_, task_id_;
  int tasks_made_ = 0;
  std::unique_ptr<FifoCapture> stdout_, stderr_;
  task::Manager manager_;
};

// A TCP connection from `ns` to [ip6]:port, retried until `budget` passes (the guest's address may still be
// tentative while it runs duplicate address detection).
Result<UniqueFd> ConnectFrom6(const NetnsHolder& ns, const std::string& ip6, uint16_t port,
                              std::chrono::milliseconds budget) {
  auto deadline = std::chrono::steady_clock::now() + budget;
  for (;;) {
    UniqueFd fd;
    Status st = network::RunInNetns(ns.path(), [&]() -> Status {
      fd.Reset(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
      if (!fd) return Error::Errno("socket(AF_INET6)");
      sockaddr_in6 a{};
      a.sin6_family = AF_INET6;
      a.sin6_port = htons(port);
      ::inet_pton(AF_INET6, ip6.c_str(), &a.sin6_addr);
      if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
        return Error::Errno("connect [" + ip6 + "]:" + std::to_string(port));
      return Ok();
    });
    if (st.ok()) return fd;
    if (std::chrono::steady_clock::now() >= deadline) return std::move(st).error();
    std::this_thread::sleep_for(200ms);
  }
}

TEST_F(VmNetworkTest, GuestOwnsTheAllocationAddress) {
  NetnsHolder outside, alloc;
  ASSERT_TRUE(outside.ok() && alloc.ok());
  Status net = MakeBridgeLikePair(outside, alloc, 78, 1400);
  ASSERT_TRUE(net.ok()) << net.error().message();
  // Nomad gives the allocation an IPv6 address too when its bridge has one: the guest must get it and its
  // route.
  ASSERT_EQ(RunIn(outside, "ip -6 addr add fd00:78::1/64 dev vout nodad"), 0);
  ASSERT_EQ(
      RunIn(alloc, "ip -6 addr add fd00:78::2/64 dev eth0 nodad && ip -6 route add default via fd00:78::1"),
      0);

  driver::NomadTask t = Task(alloc.path());
  driver::TaskConfig tc;
  tc.image = "oci:" + dir_.Path("layout") + ":net";
  tc.command = "/bin/sh";
  tc.args = std::vector<std::string>{
      "-c",
      "ip -o link show eth0; ip -o addr show eth0; ip route; cat /proc/net/if_inet6 /proc/net/ipv6_route; "
      "cat /etc/resolv.conf; echo ready; "
      "while :; do echo \"hello from $(hostname)\" | nc -l -p 8080; done"};
  auto started = manager_.StartTask(t, tc);
  ASSERT_TRUE(started.ok()) << started.error().message();
  task_id_ = t.id;
  ASSERT_TRUE(started->network.has_value());
  EXPECT_EQ(started->network->address, "10.78.0.2");
  std::string tap = network::TapNameForTask(t.id);
  EXPECT_TRUE(InterfaceExists(alloc, tap));

  ASSERT_TRUE(WaitFor([&] { return stdout_->Text().find("ready") != std::string::npos; }, 120s))
      << "stdout: " << stdout_->Text() << "\nstderr: " << stderr_->Text();
  std::string out = stdout_->Text();
  auto mac = MacOf(alloc, "eth0");
  ASSERT_TRUE(mac.ok()) << mac.error().message();
  EXPECT_NE(out.find("link/ether " + *mac), std::string::npos)
      << "the guest does not have eth0's MAC: " << out;
  EXPECT_NE(out.find("mtu 1400"), std::string::npos) << out;
  EXPECT_NE(out.find("inet 10.78.0.2/24"), std::string::npos) << out;
  EXPECT_NE(out.find("default via 10.78.0.1"), std::string::npos) << out;
  EXPECT_NE(out.find("192.0.2.0/24 via 10.78.0.1"), std::string::npos) << out;
  EXPECT_NE(out.find("nameserver 192.0.2.53"), std::string::npos) << out;
  EXPECT_NE(out.find("search service.consul"), std::string::npos) << out;
  // /proc/net/if_inet6: the address in 32 hex digits, then index, prefix length (hex), scope, flags, name.
  EXPECT_NE(out.find("fd000078000000000000000000000002"), std::string::npos) << "no IPv6 address: " << out;
  // /proc/net/ipv6_route: the default route (::/0) through fd00:78::1.
  EXPECT_NE(out.find("00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
                     "fd000078000000000000000000000001"),
            std::string::npos)
      << "no IPv6 default route via fd00:78::1: " << out;

  // What an operator sees: `ps` and `logs` of the plugin binary on the same data directory.
  auto tasks = task::ListTasks(data_dir_);
  ASSERT_TRUE(tasks.ok()) << tasks.error().message();
  ASSERT_EQ(tasks->size(), 1u);
  EXPECT_EQ((*tasks)[0].task_id, t.id);
  EXPECT_EQ((*tasks)[0].state, "running");
  EXPECT_EQ((*tasks)[0].driver_state.address, "10.78.0.2");
  EXPECT_GT((*tasks)[0].vmm_pid, 0);
  EXPECT_FALSE((*tasks)[0].guest_boot_id.empty());
  std::string ps = Capture(std::string(NFC_PLUGIN_BINARY) + " ps --data-dir " + data_dir_);
  EXPECT_NE(ps.find(t.id), std::string::npos) << ps;
  EXPECT_NE(ps.find("running"), std::string::npos) << ps;
  EXPECT_NE(ps.find("10.78.0.2"), std::string::npos) << ps;
  std::string console = Capture(std::string(NFC_PLUGIN_BINARY) + " logs --data-dir " + data_dir_ + " web");
  EXPECT_NE(console.find("nomad-init: workload started"), std::string::npos) << console;

  // A peer on the bridge side reaches the workload at the allocation's address.
  auto conn = ConnectFrom(outside, "10.78.0.2", 8080, 60s);
  ASSERT_TRUE(conn.ok()) << conn.error().message();
  EXPECT_EQ(ReadLine(conn->get()), "hello from web\n");
  conn->Reset();
  // ... and at its IPv6 address (the guest's nc serves one connection at a time; the loop starts it again).
  std::string got6;
  for (int attempt = 0; attempt < 20 && got6.empty(); attempt++) {
    auto conn6 = ConnectFrom6(outside, "fd00:78::2", 8080, 60s);
    ASSERT_TRUE(conn6.ok()) << conn6.error().message();
    got6 = ReadLine(conn6->get());
  }
  EXPECT_EQ(got6, "hello from web\n");

  // Destroy gives the namespace its uplink back.
  ASSERT_TRUE(manager_.StopTask(t.id, 2s, "SIGTERM").ok());
  Status destroyed = manager_.DestroyTask(t.id, false);
  ASSERT_TRUE(destroyed.ok()) << destroyed.error().message();
  task_id_.clear();
  EXPECT_FALSE(InterfaceExists(alloc, tap));
  EXPECT_EQ(RunIn(alloc, "sh -c 'tc filter show dev eth0 ingress | grep -q mirred'"), 1)
      << "the redirect is still on eth0";
  // The namespace's own stack receives traffic for the address again.
  auto inside = network::testing::UdpSocketIn(alloc, "10.78.0.2", 6000);
  auto peer = network::testing::UdpSocketIn(outside, "10.78.0.1", 6001);
  ASSERT_TRUE(inside.ok() && peer.ok());
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(6000);
  ::inet_pton(AF_INET, "10.78.0.2", &to.sin_addr);
  ASSERT_EQ(::sendto(peer->get(), "back", 4, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 4);
  pollfd p{inside->get(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 5000), 1) << "the namespace's own stack does not receive after DestroyTask";
}

// Warm start with a network interface and a volume (docs/warm-start.md): the template was saved with a NIC of
// its own MAC and a stand-in disk; the restored guest must take this allocation's MAC, address and MTU, and
// read the task's volume, not what the template's kernel saw.
TEST_F(VmNetworkTest, AWarmStartedGuestTakesItsAllocationsMacAddressAndVolume) {
  driver::PluginConfig config = Config(data_dir_);
  config.warm_start = true;
  ASSERT_TRUE(manager_.Configure(config).ok());
  ASSERT_TRUE(std::filesystem::create_directories(dir_.Path("volume")));
  driver::TaskConfig tc;
  tc.image = "oci:" + dir_.Path("layout") + ":net";
  tc.command = "/bin/sh";
  tc.volume_size_bytes = 32 << 20;

  // The first start boots cold, leaves a note on the volume, and queues the template's build.
  NetnsHolder outside1, alloc1;
  ASSERT_TRUE(outside1.ok() && alloc1.ok());
  Status net1 = MakeBridgeLikePair(outside1, alloc1, 79, 1400);
  ASSERT_TRUE(net1.ok()) << net1.error().message();
  driver::NomadTask first = Task(alloc1.path());
  first.mounts.push_back({"/data", dir_.Path("volume"), false});
  tc.args = std::vector<std::string>{"-c", "echo written-by-the-first-task > /data/note && sync"};
  auto cold = manager_.StartTask(first, tc);
  ASSERT_TRUE(cold.ok()) << cold.error().message();
  task_id_ = first.id;
  ASSERT_FALSE(manager_.Timings(first.id)->warm);
  auto exited = manager_.WaitTask(first.id, [] { return false; });
  ASSERT_TRUE(exited.ok()) << exited.error().message();
  ASSERT_EQ(exited->exit_code, 0) << "stdout: " << stdout_->Text() << "\nstderr: " << stderr_->Text();
  ASSERT_TRUE(manager_.DestroyTask(first.id, false).ok());
  task_id_.clear();
  manager_.WaitForTemplateBuilds();
  ASSERT_EQ(manager_.TemplateBuildsFinished(), 1u);

  // The second, in another allocation (another MAC, address and prefix), restores that template.
  NetnsHolder outside2, alloc2;
  ASSERT_TRUE(outside2.ok() && alloc2.ok());
  Status net2 = MakeBridgeLikePair(outside2, alloc2, 80, 1400);
  ASSERT_TRUE(net2.ok()) << net2.error().message();
  driver::NomadTask second = Task(alloc2.path());
  second.alloc_id = "1a2b3c4d-0000-4000-8000-00000000000" + std::to_string(::getpid() % 10);
  second.id = second.alloc_id + "/web/" + std::to_string(::getpid());
  second.mounts.push_back({"/data", dir_.Path("volume"), false});
  tc.args =
      std::vector<std::string>{"-c",
                               "ip -o link show eth0; ip -o addr show eth0; cat /data/note; echo ready; "
                               "while :; do echo \"warm $(hostname)\" | nc -l -p 8080; done"};
  auto warm = manager_.StartTask(second, tc);
  ASSERT_TRUE(warm.ok()) << warm.error().message();
  task_id_ = second.id;
  auto timings = manager_.Timings(second.id);
  ASSERT_TRUE(timings);
  ASSERT_TRUE(timings->warm) << "the start was not warm (see the log above)";
  ASSERT_TRUE(WaitFor([&] { return stdout_->Text().find("ready") != std::string::npos; }, 120s))
      << "stdout: " << stdout_->Text() << "\nstderr: " << stderr_->Text();
  std::string out = stdout_->Text();
  auto mac = MacOf(alloc2, "eth0");
  ASSERT_TRUE(mac.ok()) << mac.error().message();
  EXPECT_NE(out.find("link/ether " + *mac), std::string::npos) << "not the allocation's MAC: " << out;
  EXPECT_NE(out.find("mtu 1400"), std::string::npos) << out;
  EXPECT_NE(out.find("inet 10.80.0.2/24"), std::string::npos) << out;
  EXPECT_NE(out.find("written-by-the-first-task"), std::string::npos) << "not the task's volume: " << out;
  auto conn = ConnectFrom(outside2, "10.80.0.2", 8080, 60s);
  ASSERT_TRUE(conn.ok()) << conn.error().message();
  EXPECT_EQ(ReadLine(conn->get()), "warm web\n");
}

TEST_F(VmNetworkTest, AStartThatFailsLeavesTheNamespaceAsItWas) {
  NetnsHolder outside, alloc;
  ASSERT_TRUE(outside.ok() && alloc.ok());
  ASSERT_TRUE(MakeBridgeLikePair(outside, alloc, 79, 1500).ok());
  driver::NomadTask t = Task(alloc.path());
  driver::TaskConfig tc;
  tc.image = "oci:" + dir_.Path("layout") + ":net";
  tc.boot_args = "console=\"unterminated";  // refused after the network is attached
  auto started = manager_.StartTask(t, tc);
  ASSERT_FALSE(started.ok());
  EXPECT_NE(started.error().message().find("boot_args"), std::string::npos) << started.error().message();
  EXPECT_FALSE(InterfaceExists(alloc, network::TapNameForTask(t.id)));
  EXPECT_EQ(RunIn(alloc, "sh -c 'tc filter show dev eth0 ingress | grep -q mirred'"), 1);
}

// A plugin that died during StartTask after attaching the TAP: Nomad never calls DestroyTask for that task,
// so the next runtime instance's Init removes the TAP along with the rest of the half-started task.
TEST_F(VmNetworkTest, InterruptedStartLosesNoTap) {
  NetnsHolder outside, alloc;
  ASSERT_TRUE(outside.ok() && alloc.ok());
  ASSERT_TRUE(MakeBridgeLikePair(outside, alloc, 80, 1500).ok());
  driver::NomadTask t = Task(alloc.path());
  std::string tap = task::PlannedTap(t, false);
  ASSERT_FALSE(tap.empty());
  ASSERT_TRUE(network::AttachTap(alloc.path(), tap).ok());

  pid_t dead = ::fork();  // the "plugin" that was running StartTask
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  shim::TaskDir dir = shim::TaskDirFor(data_dir_, t.id);
  ASSERT_EQ(::mkdir(dir.root.c_str(), 0700), 0);
  task::StartRecord record{t.id, "sha256:0", {dead, 1}, alloc.path(), tap};
  std::ofstream(dir.root + "/" + std::string(task::kStartRecordFile)) << record.Encode();

  task::Manager next;
  driver::PluginConfig config;
  config.data_dir = data_dir_;
  config.kernel_path = std::string(NFC_GUEST_DIR) + "/vmlinux";
  config.initrd_path = std::string(NFC_GUEST_DIR) + "/initramfs.cpio.gz";
  ASSERT_TRUE(next.Configure(config).ok());
  ASSERT_TRUE(next.Init().ok());
  // Init sweeps interrupted starts in the background: wait (bounded) for the task dir to go, then check all.
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
       ::access(dir.root.c_str(), F_OK) == 0 && std::chrono::steady_clock::now() < deadline;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(InterfaceExists(alloc, tap)) << "the interrupted start's TAP survived";
  EXPECT_EQ(RunIn(alloc, "sh -c 'tc filter show dev eth0 ingress | grep -q mirred'"), 1);
  EXPECT_NE(::access(dir.root.c_str(), F_OK), 0) << "the interrupted start's task dir survived";
}

// A TCP server on port 80 of every address of `ns`: each connection gets "hi from <ns>\n" and is closed.
class Greeter {
 public:
  explicit Greeter(const NetnsHolder& ns) {
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
    if (!status_.ok()) return;
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd_.get(), POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        UniqueFd c(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (c) (void)!::write(c.get(), "hi\n", 3);
      }
    });
  }
  ~Greeter() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  const Status& status() const { return status_; }

 private:
  Status status_ = Ok();
  UniqueFd fd_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The guest tries the metadata address, the gateway (the host's side of the bridge) and another address
// behind the gateway; a peer namespace answers on all three (docs/networking.md, "Egress guard").
class EgressGuardTest : public VmNetworkTest {
 protected:
  // Runs the probe in a guest started by `manager`; returns its lines.
  std::string Probe(task::Manager& manager, const NetnsHolder& alloc) {
    driver::NomadTask t = Task(alloc.path());
    driver::TaskConfig tc;
    tc.image = "oci:" + dir_.Path("layout") + ":net";
    tc.command = "/bin/sh";
    tc.args = std::vector<std::string>{
        "-c",
        "for a in 169.254.169.254 10.82.0.1 192.0.2.10; do r=$(nc -w 3 $a 80 </dev/null); "
        "if [ -n \"$r\" ]; then echo \"$a reached: $r\"; else echo \"$a blocked\"; fi; done; echo probed"};
    auto started = manager.StartTask(t, tc);
    EXPECT_TRUE(started.ok()) << started.error().message();
    if (!started.ok()) return "";
    bool done = WaitFor([&] { return stdout_->Text().find("probed") != std::string::npos; }, 180s);
    std::string out = stdout_->Text();
    Status destroyed = manager.DestroyTask(t.id, true);
    EXPECT_TRUE(destroyed.ok()) << destroyed.error().message();
    EXPECT_TRUE(done) << "stdout: " << out << "\nstderr: " << stderr_->Text();
    return out;
  }
};

TEST_F(EgressGuardTest, TheGuestCannotReachTheMetadataAddressOrTheGatewayUnlessTurnedOff) {
  NetnsHolder outside, alloc;
  ASSERT_TRUE(outside.ok() && alloc.ok());
  Status net = MakeBridgeLikePair(outside, alloc, 82, 1500);
  ASSERT_TRUE(net.ok()) << net.error().message();
  // The "host": the metadata address and an ordinary address on its loopback, both behind the gateway.
  ASSERT_EQ(RunIn(outside,
                  "sh -c 'ip link set lo up && ip addr add 169.254.169.254/32 dev lo && "
                  "ip addr add 192.0.2.10/32 dev lo'"),
            0);
  Greeter greeter(outside);
  ASSERT_TRUE(greeter.status().ok()) << greeter.status().error().message();
  // The listener answers in the namespace itself, so a "blocked" below is the guard's doing.
  for (const char* ip : {"169.254.169.254", "10.82.0.1", "192.0.2.10"}) {
    ASSERT_EQ(RunIn(outside, std::string("sh -c 'busybox nc -w 3 ") + ip + " 80 </dev/null | grep -q hi'"), 0)
        << ip;
  }

  // The default: on.
  std::string guarded = Probe(manager_, alloc);
  EXPECT_NE(guarded.find("169.254.169.254 blocked"), std::string::npos) << guarded;
  EXPECT_NE(guarded.find("10.82.0.1 blocked"), std::string::npos) << guarded;
  EXPECT_NE(guarded.find("192.0.2.10 reached: hi"), std::string::npos) << guarded;
  EXPECT_FALSE(InterfaceExists(alloc, network::TapNameForTask(Task(alloc.path()).id)));

  // egress_guard { enabled = false }: everything is reached.
  task::Manager open;
  driver::PluginConfig config = Config(dir_.Path("data-open"));
  config.egress_guard.enabled = false;
  ASSERT_TRUE(open.Configure(config).ok());
  ASSERT_TRUE(open.Init().ok());
  std::string unguarded = Probe(open, alloc);
  EXPECT_NE(unguarded.find("169.254.169.254 reached: hi"), std::string::npos) << unguarded;
  EXPECT_NE(unguarded.find("10.82.0.1 reached: hi"), std::string::npos) << unguarded;
  EXPECT_NE(unguarded.find("192.0.2.10 reached: hi"), std::string::npos) << unguarded;
}

// An allocation network made by Nomad's CNI bridge chain (tests/network/cni-chain) in a namespace standing
// for the host; CNI DEL (reverse order) when the test ends, also on failure.
class CniAllocation {
 public:
  CniAllocation(const NetnsHolder& host, const NetnsHolder& alloc, const std::string& id,
                const std::string& state_dir, const std::string& ports)
      : args_(host.path() + " " + alloc.path() + " " + id + " " + state_dir + " '" + ports + "'") {
    result_ = Capture(std::string(NFC_CNI_CHAIN) + " add " + args_);
    added_ = result_.find("\"ips\"") != std::string::npos;
  }
  ~CniAllocation() {
    if (added_) {
      EXPECT_EQ(std::system((std::string(NFC_CNI_CHAIN) + " del " + args_).c_str()), 0);
    }
  }
  bool added() const { return added_; }
  const std::string& result() const { return result_; }

 private:
  std::string args_, result_;
  bool added_ = false;
};

// Nomad's bridge mode as Nomad builds it: a client in another namespace reaches the guest through the host's
// mapped ports (portmap's DNAT, a static and a "dynamic" port), and a second VM in a second allocation on the
// same bridge reaches the first.
TEST_F(VmNetworkTest, NomadsCniBridgeChainCarriesMappedPortsAndVmToVm) {
  NFC_REQUIRE_OR_SKIP(::access("/usr/lib/cni/portmap", X_OK) == 0,
                      "needs Debian's containernetworking-plugins (/usr/lib/cni)");
  NetnsHolder host, client, alloc1, alloc2;
  ASSERT_TRUE(host.ok() && client.ok() && alloc1.ok() && alloc2.ok());
  // The client's way to the "host": 10.83.0.2 → 10.83.0.1.
  Status net = MakeBridgeLikePair(host, client, 83, 1500);
  ASSERT_TRUE(net.ok()) << net.error().message();
  // The "host" answers on port 80 of all its addresses: the bridge's (the allocations' gateway)
  // and 10.83.0.1.
  Greeter greeter(host);
  ASSERT_TRUE(greeter.status().ok()) << greeter.status().error().message();
  std::string state = dir_.Path("cni");
  CniAllocation a1(host, alloc1, "alloc1", state,
                   R"([{"hostPort":8080,"containerPort":8080,"protocol":"tcp"},)"
                   R"({"hostPort":25123,"containerPort":9090,"protocol":"tcp"}])");
  ASSERT_TRUE(a1.added()) << a1.result();
  CniAllocation a2(host, alloc2, "alloc2", state, "[]");
  ASSERT_TRUE(a2.added()) << a2.result();
  ASSERT_NE(a1.result().find("172.26.64.2/20"), std::string::npos) << a1.result();
  ASSERT_NE(a2.result().find("172.26.64.3/20"), std::string::npos) << a2.result();

  driver::TaskConfig tc;
  tc.image = "oci:" + dir_.Path("layout") + ":net";
  tc.command = "/bin/sh";
  driver::NomadTask t1 = Task(alloc1.path());
  std::unique_ptr<FifoCapture> out1 = std::move(stdout_);
  tc.args = std::vector<std::string>{"-c",
                                     "(while :; do echo static-port | nc -l -p 8080; done) & "
                                     "(while :; do echo dynamic-port | nc -l -p 9090; done) & "
                                     "cat /etc/resolv.conf; echo ready; wait"};
  auto started1 = manager_.StartTask(t1, tc);
  ASSERT_TRUE(started1.ok()) << started1.error().message();
  task_id_ = t1.id;
  EXPECT_EQ(started1->network->address, "172.26.64.2");

  driver::NomadTask t2 = Task(alloc2.path());
  t2.alloc_id = "1f6e1c2a-1b2c-4d5e-8f90-a1b2c3d4e5f7";
  t2.id = t2.alloc_id + "/web/" + std::to_string(::getpid());
  tc.args = std::vector<std::string>{
      "-c",
      "for i in $(seq 60); do r=$(nc -w 3 172.26.64.2 8080 </dev/null); "
      "[ -n \"$r\" ] && break; sleep 1; done; echo \"vm2 got: $r\"; "
      "for a in 172.26.64.1 10.83.0.1; do g=$(nc -w 3 $a 80 </dev/null); echo \"vm2 to $a: [$g]\"; done; "
      "echo vm2 done"};
  auto started2 = manager_.StartTask(t2, tc);
  ASSERT_TRUE(started2.ok()) << started2.error().message();
  struct Destroy {
    task::Manager& m;
    std::string id;
    ~Destroy() { (void)m.DestroyTask(id, true); }
  } destroy2{manager_, t2.id};
  EXPECT_EQ(started2->network->address, "172.26.64.3");

  // From the client: the host's address and the mapped port, DNAT'd to the guest.
  for (auto [port, want] :
       {std::pair<uint16_t, std::string>{8080, "static-port\n"}, {25123, "dynamic-port\n"}}) {
    auto conn = ConnectFrom(client, "10.83.0.1", port, 120s);
    ASSERT_TRUE(conn.ok()) << conn.error().message() << "\nvm1: " << out1->Text();
    std::string got;
    char buf[256];
    for (int i = 0; i < 20 && got.find('\n') == std::string::npos; i++) {
      ssize_t n = ::read(conn->get(), buf, sizeof(buf));
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    EXPECT_EQ(got, want) << "host port " << port;
  }
  // The job's dns block reaches the guest on the CNI-made network too.
  EXPECT_NE(out1->Text().find("nameserver 192.0.2.53"), std::string::npos) << out1->Text();
  // VM to VM across the bridge.
  ASSERT_TRUE(WaitFor([&] { return stdout_->Text().find("vm2 done") != std::string::npos; }, 180s))
      << "vm2: " << stdout_->Text() << "\nstderr: " << stderr_->Text();
  std::string vm2 = stdout_->Text();
  EXPECT_NE(vm2.find("vm2 got: static-port"), std::string::npos) << vm2;
  // The default egress guard: no new connection to the bridge address; the host's other addresses stay open.
  EXPECT_NE(vm2.find("vm2 to 172.26.64.1: []"), std::string::npos) << vm2;
  EXPECT_NE(vm2.find("vm2 to 10.83.0.1: [hi]"), std::string::npos) << vm2;
}

}  // namespace
}  // namespace nfc
