#include "driver/host_probe.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "driver/fingerprint.h"
#include "driver/kvm_probe.h"
#include "temp_dir.h"

namespace nfc::driver {
namespace {

using test_support::TempDir;

// A file `name` in `dir` with `content` and `mode`; its path.
std::string File(const TempDir& dir, const std::string& name, const std::string& content, mode_t mode) {
  std::string p = dir.Path(name);
  std::ofstream(p) << content;
  chmod(p.c_str(), mode);
  return p;
}

TEST(HostProbeTest, VersionTokens) {
  EXPECT_EQ(FirstVersionToken("Firecracker v1.7.0\n\nSupported snapshot data format versions: 1.0.0"),
            "1.7.0");
  EXPECT_EQ(FirstVersionToken("QEMU emulator version 7.2.15 (Debian 1:7.2+dfsg-7+deb12u12)"), "7.2.15");
  EXPECT_EQ(FirstVersionToken("x86_64 build 2 of 3.4"), "3.4");
  EXPECT_EQ(FirstVersionToken("no version here"), "");
}

TEST(HostProbeTest, ResolvesAndRunsPrograms) {
  TempDir dir("probe");
  std::string fake = File(dir, "fake-vmm", "#!/bin/sh\necho 'Fake VMM v9.8.7'\n", 0755);
  EXPECT_EQ(*ResolveProgram(fake), fake);
  EXPECT_EQ(*ProgramVersion(fake), "9.8.7");
  std::string broken = File(dir, "broken-vmm", "#!/bin/sh\necho oops >&2\nexit 3\n", 0755);
  Result<std::string> v = ProgramVersion(broken);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.error().message().find("exit status 3"), std::string::npos) << v.error().message();
  std::string slow = File(dir, "slow-vmm", "#!/bin/sh\nexec sleep 30\n", 0755);
  Result<std::string> t = ProgramVersion(slow, std::chrono::milliseconds(200));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code(), ErrorCode::kTimeout);
  std::string not_exec = File(dir, "plain", "x", 0644);
  EXPECT_FALSE(ResolveProgram(not_exec).ok());
  EXPECT_EQ(ResolveProgram("no-such-program-nfc").error().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(ResolveProgram("sh").ok());
}

TEST(FingerprintTest, HealthyOnlyWithBackendAndGuestKernel) {
  TempDir dir("probe");
  PluginConfig config;
  config.backend = Backend::kQemu;
  config.qemu_path = File(dir, "qemu", "#!/bin/sh\necho 'QEMU emulator version 7.2.15'\n", 0755);
  config.kernel_path = File(dir, "vmlinux", "kernel", 0644);
  config.initrd_path = File(dir, "initrd", "initrd", 0644);
  FingerprintResult ok = ProbeFingerprint(config, "fc", "0.1.0");
  EXPECT_EQ(ok.health, FingerprintResult::Health::kHealthy) << ok.description;
  EXPECT_EQ(std::get<std::string>(ok.attributes.at("driver.fc.backend")), "qemu");
  EXPECT_EQ(std::get<std::string>(ok.attributes.at("driver.fc.vmm.version")), "7.2.15");
  EXPECT_EQ(std::get<std::string>(ok.attributes.at("driver.fc.version")), "0.1.0");
  EXPECT_TRUE(ok.attributes.count("driver.fc.kvm"));
  // doctor's facts, as attributes: each equal to what the probe itself finds on this machine.
  EXPECT_EQ(std::get<bool>(ok.attributes.at("driver.fc.kvm.usable")),
            ProbeKvmGuest(KvmDevicePath()).result == KvmGuestProbe::Result::kUsable);
  const std::string cgroups = std::get<std::string>(ok.attributes.at("driver.fc.cgroup.version"));
  EXPECT_TRUE(cgroups == "v1" || cgroups == "v2" || cgroups == "none") << cgroups;
  const int tun = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  EXPECT_EQ(std::get<bool>(ok.attributes.at("driver.fc.tun")), tun >= 0);
  if (tun >= 0) ::close(tun);
  EXPECT_EQ(std::get<bool>(ok.attributes.at("driver.fc.vhost_vsock")),
            ::access("/dev/vhost-vsock", F_OK) == 0);

  config.kernel_path = "/nonexistent/vmlinux";
  FingerprintResult no_kernel = ProbeFingerprint(config, "fc", "0.1.0");
  EXPECT_EQ(no_kernel.health, FingerprintResult::Health::kUnhealthy);
  EXPECT_NE(no_kernel.description.find("/nonexistent/vmlinux"), std::string::npos) << no_kernel.description;
  EXPECT_NE(no_kernel.description.find("kernel_path"), std::string::npos) << no_kernel.description;

  config.kernel_path = File(dir, "vmlinux", "kernel", 0644);
  config.qemu_path = "/nonexistent/qemu";
  FingerprintResult no_vmm = ProbeFingerprint(config, "fc", "0.1.0");
  EXPECT_EQ(no_vmm.health, FingerprintResult::Health::kUnhealthy);
  EXPECT_NE(no_vmm.description.find("qemu_path"), std::string::npos) << no_vmm.description;
  EXPECT_EQ(std::get<std::string>(no_vmm.attributes.at("driver.fc.backend")), "none");

  config.backend = Backend::kFirecracker;
  config.firecracker_path = "/nonexistent/firecracker";
  FingerprintResult no_fc = ProbeFingerprint(config, "fc", "0.1.0");
  EXPECT_EQ(no_fc.health, FingerprintResult::Health::kUnhealthy);
  EXPECT_NE(no_fc.description.find("firecracker"), std::string::npos) << no_fc.description;
}

}  // namespace
}  // namespace nfc::driver
