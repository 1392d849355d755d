// Unit tests of the backend-independent parts: config validation, the record format, command-line building.
#include "vmm/vmm.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "temp_dir.h"
#include "vmm/console_pump.h"
#include "vmm/firecracker/api_client.h"
#include "vmm/firecracker/firecracker_vmm.h"
#include "vmm/qemu/qemu_vmm.h"

namespace nfc::vmm {
namespace {

class VmmConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(dir_.Path("vmlinux")) << "kernel";
    std::ofstream(dir_.Path("disk")) << "disk";
    config_.id = "vm-1";
    config_.state_dir = dir_.path();
    config_.kernel_path = dir_.Path("vmlinux");
    config_.drives = {{"root", dir_.Path("disk"), true}};
  }
  test_support::TempDir dir_{"vmm-test"};
  VmConfig config_;
};

TEST_F(VmmConfigTest, AcceptsAValidConfig) {
  EXPECT_TRUE(ValidateConfig(config_).ok());
}

TEST_F(VmmConfigTest, RejectsBadFieldsNamingThem) {
  auto c = config_;
  c.id = "bad id!";
  auto s = ValidateConfig(c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("'bad id!'"), std::string::npos) << s.error().message();

  c = config_;
  c.drives.push_back({"root", dir_.Path("disk"), false});
  s = ValidateConfig(c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("used twice"), std::string::npos);

  c = config_;
  c.drives[0].id = "has-dash";  // Firecracker drive ids allow only [A-Za-z0-9_]
  EXPECT_FALSE(ValidateConfig(c).ok());

  c = config_;
  c.kernel_path = dir_.Path("missing");
  s = ValidateConfig(c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("missing"), std::string::npos);

  c = config_;
  c.nics = {{"eth0", "tap0", "06:00:zz:00:00:01"}};
  s = ValidateConfig(c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("06:00:zz:00:00:01"), std::string::npos);

  c = config_;
  c.vcpus = 33;
  EXPECT_FALSE(ValidateConfig(c).ok());
  c = config_;
  c.guest_channel = GuestChannelConfig{"", 2, 1024};
  EXPECT_FALSE(ValidateConfig(c).ok());
}

TEST(VmRecordTest, RoundTripsThroughJson) {
  VmRecord r;
  r.backend = Backend::kQemu;
  r.id = "vm-7";
  r.pid = 4242;
  r.start_time = 123456789;
  r.api_socket = "/run/x/qmp.sock";
  r.guest = GuestEndpoint{GuestTransport::kVirtioSerial, "/run/x/agent.sock", 3, 1024};
  r.kvm = false;
  r.vmm_version = "7.2.22";
  auto back = VmRecord::FromJson(r.ToJson());
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(back->backend, Backend::kQemu);
  EXPECT_EQ(back->pid, 4242);
  EXPECT_EQ(back->start_time, 123456789u);
  EXPECT_EQ(back->api_socket, "/run/x/qmp.sock");
  ASSERT_TRUE(back->guest.has_value());
  EXPECT_EQ(back->guest->transport, GuestTransport::kVirtioSerial);
  EXPECT_EQ(back->guest->socket_path, "/run/x/agent.sock");
  EXPECT_EQ(back->vmm_version, "7.2.22");

  EXPECT_FALSE(VmRecord::FromJson("{").ok());
  EXPECT_FALSE(VmRecord::FromJson(R"({"version":2})").ok());
  EXPECT_FALSE(
      VmRecord::FromJson(R"({"version":1,"backend":"xen","id":"a","pid":1,"start_time":1,"api_socket":""})")
          .ok());
}

TEST(AttachTest, RefusesAGoneOrReusedProcess) {
  VmRecord r;
  r.backend = Backend::kFirecracker;
  r.id = "gone";
  r.pid = getpid();
  r.start_time = 1;  // our pid, but not our start time: a reused pid must not be adopted
  auto v = AttachVmm(r);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code(), ErrorCode::kNotFound);
}

TEST(FirecrackerVersionTest, Parses) {
  auto v = firecracker::FirecrackerVersion::Parse("1.16.1");
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->AtLeast(1, 16));
  EXPECT_FALSE(v->AtLeast(1, 17));
  auto dev = firecracker::FirecrackerVersion::Parse("v1.17.0-dev");
  ASSERT_TRUE(dev.ok());
  EXPECT_EQ(dev->minor, 17);
  EXPECT_FALSE(firecracker::FirecrackerVersion::Parse("banana").ok());
  // Found by the firecracker_http fuzz target: from_chars accepts a sign.
  EXPECT_FALSE(firecracker::FirecrackerVersion::Parse("1.-1").ok());
  EXPECT_FALSE(firecracker::FirecrackerVersion::Parse("-1.2").ok());
  EXPECT_EQ(firecracker::FaultMessage(R"({"fault_message":"boom"})"), "boom");
  EXPECT_EQ(firecracker::FaultMessage("not json"), "not json");
}

TEST_F(VmmConfigTest, FirecrackerKernelArgsFollowTheConsoleSetting) {
  auto args = firecracker::PlatformKernelArgs(config_);
  EXPECT_NE(std::find(args.begin(), args.end(), "8250.nr_uarts=0"), args.end());
  EXPECT_NE(std::find(args.begin(), args.end(), "reboot=k"), args.end());
  EXPECT_EQ(std::find(args.begin(), args.end(), "i8042.nopnp"), args.end());
  config_.console.mode = ConsoleConfig::Mode::kFile;
  config_.console.path = dir_.Path("console");
  args = firecracker::PlatformKernelArgs(config_);
  EXPECT_NE(std::find(args.begin(), args.end(), "console=ttyS0"), args.end());
}

TEST_F(VmmConfigTest, QemuCommandLineForTcgWithSerialChannel) {
  config_.guest_channel = GuestChannelConfig{};
  config_.guest_channel->socket_path = dir_.Path("agent,sock");
  config_.kernel_args = {"nomad.debug=1"};
  qemu::CommandInputs in;
  in.qmp_socket = dir_.Path("qmp.sock");
  in.console = true;
  in.tsc_khz = 2000000;
  auto cl = qemu::BuildCommandLine(config_, in);
  std::string all;
  for (const auto& a : cl.argv) all += a + " ";
  EXPECT_NE(all.find("-accel tcg"), std::string::npos) << all;
  EXPECT_NE(all.find("-no-reboot"), std::string::npos);
  // The default port name is the one nomad-init looks for (guest/control_channel.h).
  EXPECT_NE(all.find("virtserialport,chardev=agent,name=nfc.agent"), std::string::npos) << all;
  EXPECT_EQ(config_.guest_channel->serial_port_name, guest::kDefaultSerialPortName);
  EXPECT_NE(all.find("agent,,sock"), std::string::npos)
      << "commas in paths must be doubled for QEMU: " << all;
  EXPECT_NE(all.find("readonly=on"), std::string::npos);
  const std::string& append = cl.argv.back();
  EXPECT_NE(append.find("tsc_early_khz=2000000"), std::string::npos) << append;
  EXPECT_NE(append.find("reboot=a"), std::string::npos);
  EXPECT_NE(append.find("tsc=reliable"), std::string::npos);
  EXPECT_EQ(append.substr(append.size() - 13), "nomad.debug=1");

  in.kvm = true;
  in.vhost_vsock = true;
  cl = qemu::BuildCommandLine(config_, in);
  all.clear();
  for (const auto& a : cl.argv) all += a + " ";
  EXPECT_NE(all.find("-accel kvm -cpu host"), std::string::npos);
  EXPECT_NE(all.find("vhost-vsock-device,guest-cid=3"), std::string::npos);
  EXPECT_EQ(all.find("tsc_early_khz"), std::string::npos);
  EXPECT_EQ(all.find("tsc=reliable"), std::string::npos);
}

// A sandboxed QEMU drops to the VM's uid:gid and chroots into its jail before the guest runs, under its
// seccomp filter; elevateprivileges=deny is not asked for (QEMU 7.2 dies of SIGSYS at its own -runas).
TEST_F(VmmConfigTest, SandboxedQemuRunsAsTheVmsUidInItsJail) {
  config_.sandbox = VmmSandbox{200007, 200007, dir_.path()};
  ASSERT_TRUE(ValidateConfig(config_).ok());
  qemu::CommandInputs in;
  in.qmp_socket = dir_.Path("qmp.sock");
  auto cl = qemu::BuildCommandLine(config_, in);
  std::string all;
  for (const auto& a : cl.argv) all += a + " ";
  EXPECT_NE(all.find("-runas 200007:200007 -chroot " + dir_.path() + " "), std::string::npos) << all;
  EXPECT_NE(all.find("-sandbox on,obsolete=deny,spawn=deny,resourcecontrol=deny"), std::string::npos) << all;
  EXPECT_EQ(all.find("elevateprivileges"), std::string::npos) << all;

  config_.sandbox->uid = 0;
  auto e = ValidateConfig(config_);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message().find("sandbox uid 0"), std::string::npos) << e.error().message();
  config_.sandbox = VmmSandbox{200007, 200007, "relative/jail"};
  e = ValidateConfig(config_);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message().find("jail_dir 'relative/jail'"), std::string::npos) << e.error().message();
}

TEST_F(VmmConfigTest, ConsolePumpKeepsTheFileBoundedAndTheNewestOutput) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  UniqueFd write_end(p[1]);
  std::string path = dir_.Path("console.log");
  {
    ConsolePump pump;
    ASSERT_TRUE(pump.Start(UniqueFd(p[0]), path, 4096).ok());
    std::string all;
    for (int i = 0; i < 1000; i++) all += "line " + std::to_string(i) + "\n";  // ~8.9 KB
    ASSERT_EQ(::write(write_end.get(), all.data(), all.size()), static_cast<ssize_t>(all.size()));
    write_end.Reset();  // EOF ends the pump
    pump.Join();
    EXPECT_EQ(pump.bytes_copied(), all.size());
  }
  std::ifstream cur(path), old(path + ".1");
  std::string now((std::istreambuf_iterator<char>(cur)), std::istreambuf_iterator<char>());
  std::string before((std::istreambuf_iterator<char>(old)), std::istreambuf_iterator<char>());
  EXPECT_LE(now.size(), 4096u);
  EXPECT_EQ(before.size(), 4096u);
  EXPECT_EQ(now.substr(now.size() - 9), "line 999\n") << "the newest output must be kept";
}

}  // namespace
}  // namespace nfc::vmm
