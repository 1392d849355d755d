// Unit tests of the backend-independent parts: config validation, the record format, command-line building.
#include "vmm/vmm.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "require.h"
#include "temp_dir.h"
#include "vmm/console_pump.h"
#include "vmm/firecracker/api_client.h"
#include "vmm/firecracker/firecracker_vmm.h"
#include "vmm/firecracker/jail.h"
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

TEST_F(VmmConfigTest, JailerConfigIsCheckedNamingTheField) {
  auto c = config_;
  c.vmm_binary = "/usr/bin/firecracker";
  c.jailer = JailerConfig{"jailer", dir_.path(), 200001, 200001, "", "nomad-firecracker", {}, 2048};
  EXPECT_TRUE(ValidateConfig(c).ok()) << ValidateConfig(c).error().message();
  auto bad = c;
  bad.jailer->uid = 0;
  EXPECT_NE(ValidateConfig(bad).error().message().find("never runs as root"), std::string::npos);
  bad = c;
  bad.vmm_binary = "firecracker";
  EXPECT_NE(ValidateConfig(bad).error().message().find("vmm_binary 'firecracker' must be an absolute path"),
            std::string::npos);
  bad = c;
  bad.jailer->parent_cgroup = "/nomad-firecracker";
  EXPECT_NE(ValidateConfig(bad).error().message().find("parent_cgroup '/nomad-firecracker'"),
            std::string::npos);
  bad = c;
  bad.jailer->chroot_base = "srv/jailer";
  EXPECT_NE(ValidateConfig(bad).error().message().find("chroot_base 'srv/jailer'"), std::string::npos);
}

// The files Firecracker opens are linked into the jail: a written one is handed to the VM's uid; a read one
// stays root's, readable by the VM's group when others may not read it; a world-readable one is untouched.
TEST_F(VmmConfigTest, JailHardLinksFilesAndGrantsTheVmsUidWhatItNeeds) {
  NFC_REQUIRE_OR_SKIP(::geteuid() == 0, "chown needs root");
  JailerConfig jc{"/usr/bin/jailer",   dir_.Path("jail"),     200001, 200002, "/run/netns/x",
                  "nomad-firecracker", {256 << 20, 500, 130}, 4096};
  firecracker::Jail jail(jc, "vm-1", "/opt/fc/firecracker-v1.16");
  EXPECT_EQ(jail.dir(), dir_.Path("jail") + "/firecracker-v1.16/vm-1");
  ASSERT_TRUE(jail.Create().ok());
  std::ofstream(dir_.Path("scratch")) << "s";
  std::ofstream(dir_.Path("initrd")) << "i";
  ASSERT_EQ(::chmod(dir_.Path("initrd").c_str(), 0600), 0);
  ASSERT_EQ(::chmod(dir_.Path("vmlinux").c_str(), 0644), 0);
  auto scratch = jail.Place(dir_.Path("scratch"), "scratch", true);
  auto initrd = jail.Place(dir_.Path("initrd"), "initrd", false);
  auto kernel = jail.Place(dir_.Path("vmlinux"), "vmlinux", false);
  ASSERT_TRUE(scratch.ok() && initrd.ok() && kernel.ok());
  EXPECT_EQ(*scratch, "/scratch");
  struct stat st;
  ASSERT_EQ(::stat(jail.HostPath("/scratch").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 2u) << "a hard link, not a copy";
  EXPECT_EQ(st.st_uid, 200001u);
  EXPECT_EQ(st.st_gid, 200002u);
  ASSERT_EQ(::stat(jail.HostPath("/initrd").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_gid, 200002u);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  ASSERT_EQ(::stat(jail.HostPath("/vmlinux").c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, 0u);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  auto dup = jail.Place(dir_.Path("scratch"), "scratch", true);
  EXPECT_FALSE(dup.ok()) << "an existing name in the jail is not replaced silently";

  auto argv = jail.Argv({"--api-sock", firecracker::Jail::kApiSocket});
  ASSERT_TRUE(argv.ok()) << argv.error().message();
  std::string line;
  for (const auto& a : *argv) line += a + " ";
  for (const char* part :
       {"/usr/bin/jailer --id vm-1 --exec-file /opt/fc/firecracker-v1.16 --uid 200001 --gid "
        "200002 --chroot-base-dir ",
        " --netns /run/netns/x --cgroup-version ", " --parent-cgroup nomad-firecracker ",
        " --cgroup pids.max=130 --resource-limit no-file=4096 --new-pid-ns -- --api-sock "
        "/run/firecracker.socket "}) {
    EXPECT_NE(line.find(part), std::string::npos) << part << " not in: " << line;
  }
  std::ofstream(jail.PidFile()) << "4242";
  EXPECT_EQ(jail.ReadPid().value_or(0), 4242);
  std::ofstream(jail.PidFile()) << "garbage";
  EXPECT_FALSE(jail.ReadPid().ok());
  ASSERT_TRUE(jail.Remove().ok());
  EXPECT_NE(::stat(jail.dir().c_str(), &st), 0);
  EXPECT_EQ(::stat(dir_.Path("scratch").c_str(), &st), 0) << "the originals stay";

  jc.chroot_base = "/" + std::string(90, 'x');
  EXPECT_EQ(firecracker::Jail(jc, "vm-1", "/opt/fc/firecracker").Create().error().code(),
            ErrorCode::kInvalidArgument);
}

// A jailed VMM no record names is found by the jailer's pid file, and killed only when its root is that jail.
TEST(KillJailedVmmTest, KillsTheProcessOfThePidFileOnlyWhenItRunsInTheJail) {
  NFC_REQUIRE_OR_SKIP(::geteuid() == 0, "chroot needs root");
  test_support::TempDir dir("jailed-vmm");
  std::string jail = dir.Path("firecracker/vm-1");
  ASSERT_EQ(std::system(("mkdir -p " + jail + "/root").c_str()), 0);
  EXPECT_TRUE(KillJailedVmm(jail).ok()) << "no pid file: nothing to do";
  auto start = [&](bool chrooted) {
    pid_t pid = ::fork();
    if (pid == 0) {
      if (chrooted && ::chroot((jail + "/root").c_str()) != 0) ::_exit(1);
      for (;;) ::pause();
    }
    return pid;
  };
  pid_t outsider = start(false);
  pid_t jailed = start(true);
  ASSERT_GT(outsider, 0);
  ASSERT_GT(jailed, 0);
  ::usleep(200 * 1000);  // both have reached pause()
  auto alive = [](pid_t pid) {
    int status;
    return ::waitpid(pid, &status, WNOHANG) == 0;
  };
  std::ofstream(jail + "/root/firecracker.pid") << outsider;
  EXPECT_TRUE(KillJailedVmm(jail).ok());
  EXPECT_TRUE(alive(outsider)) << "a process outside the jail (a reused pid) was killed";
  std::ofstream(jail + "/root/firecracker.pid") << jailed;
  EXPECT_TRUE(KillJailedVmm(jail).ok());
  int status = 0;
  ASSERT_EQ(::waitpid(jailed, &status, 0), jailed);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  ::kill(outsider, SIGKILL);
  ::waitpid(outsider, &status, 0);
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
  r.jail_dir = "/data/jail/firecracker/vm-7";
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
  EXPECT_EQ(back->jail_dir, "/data/jail/firecracker/vm-7");

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
