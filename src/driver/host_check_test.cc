#include "driver/host_check.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "driver/kvm_probe.h"
#include "temp_dir.h"

namespace nfc::driver {
namespace {

using test_support::TempDir;
using V = HostCheck::Verdict;

std::string File(const TempDir& dir, const std::string& name, const std::string& content, mode_t mode) {
  std::string p = dir.Path(name);
  std::ofstream(p) << content;
  chmod(p.c_str(), mode);
  return p;
}

std::map<std::string, HostCheck> ByName(const std::vector<HostCheck>& checks) {
  std::map<std::string, HostCheck> out;
  for (const auto& c : checks) out[c.name] = c;
  return out;
}

TEST(KvmProbeTest, AMissingDeviceIsAbsentAndANonKvmDeviceIsUnusable) {
  KvmGuestProbe missing = ProbeKvmGuest("/nonexistent/kvm");
  EXPECT_EQ(missing.result, KvmGuestProbe::Result::kAbsent);
  EXPECT_NE(missing.detail.find("/nonexistent/kvm does not exist"), std::string::npos) << missing.detail;
  // /dev/null opens read-write but answers no KVM ioctl: "present but unusable", from the forked probe.
  KvmGuestProbe null_device = ProbeKvmGuest("/dev/null");
  EXPECT_EQ(null_device.result, KvmGuestProbe::Result::kUnusable);
  EXPECT_NE(null_device.detail.find("KVM_GET_API_VERSION"), std::string::npos) << null_device.detail;
}

// A host made of stand-ins: version-printing scripts for the VMMs, magic bytes for the guest artifacts.
class HostCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.data_dir = dir_.Path("data");
    config_.kernel_path = File(dir_, "vmlinux",
                               std::string("\x7f"
                                           "ELF\x02\x01\x01",
                                           7) +
                                   std::string(600, '\0'),
                               0644);
    config_.initrd_path = File(dir_, "initramfs.cpio.gz", std::string("\x1f\x8b\x08\x00 rest", 9), 0644);
    config_.firecracker_path = Program("firecracker", "Firecracker v1.16.1");
    config_.jailer_path = Program("jailer", "Jailer v1.16.1");
    config_.qemu_path = Program("qemu", "QEMU emulator version 7.2.22");
    // A cgroup parent of this test's own, removed afterwards (the check makes and removes a child in it).
    config_.cgroup_parent = "/nfc-host-check-test-" + std::to_string(::getpid());
  }
  void TearDown() override {
    for (const char* tree : {"", "/memory", "/cpu", "/pids"}) {
      ::rmdir(("/sys/fs/cgroup" + std::string(tree) + config_.cgroup_parent).c_str());
    }
  }
  std::string Program(const std::string& name, const std::string& version) {
    return File(dir_, name, "#!/bin/sh\necho '" + version + "'\n", 0755);
  }

  TempDir dir_{"host-check"};
  PluginConfig config_;
};

TEST_F(HostCheckTest, AGoodHostIsReadyAndEveryCheckSaysWhatItFound) {
  config_.backend = Backend::kQemu;
  auto checks = CheckHost(config_);
  auto by = ByName(checks);
  for (const char* name : {"kvm", "firecracker", "jailer", "qemu", "guest-kernel", "guest-initramfs",
                           "cgroups", "cpuset", "tun", "vhost-vsock", "data-dir", "plugin-dir"}) {
    ASSERT_TRUE(by.count(name)) << name;
    EXPECT_FALSE(by[name].detail.empty()) << name;
  }
  EXPECT_EQ(by["qemu"].verdict, V::kOk);
  EXPECT_NE(by["qemu"].detail.find("7.2.22"), std::string::npos);
  EXPECT_EQ(by["guest-kernel"].verdict, V::kOk) << by["guest-kernel"].detail;
  EXPECT_EQ(by["data-dir"].verdict, V::kOk) << by["data-dir"].detail;
  EXPECT_NE(by["data-dir"].detail.find("hard links work"), std::string::npos);
  EXPECT_EQ(by["firecracker"].detail, "not used (backend = \"qemu\")");
  if (::geteuid() == 0) {
    EXPECT_EQ(by["cgroups"].verdict, V::kOk) << by["cgroups"].detail;
    // Our machines mount the v1 cpuset hierarchy (v2 hosts have the controller): pinning must work as root.
    EXPECT_EQ(by["cpuset"].verdict, V::kOk) << by["cpuset"].detail;
  }
  // KVM missing or unusable is a warning for the qemu backend (it falls back to TCG), never a failure.
  EXPECT_NE(by["kvm"].verdict, V::kFail);
  EXPECT_EQ(HostReady(checks), by["tun"].verdict != V::kFail && by["cgroups"].verdict != V::kFail);
}

TEST_F(HostCheckTest, FirecrackerVersionsAndAMismatchedJailer) {
  config_.backend = Backend::kFirecracker;
  config_.jailer = true;
  config_.jailer_path = Program("jailer", "Jailer v1.15.0");
  auto by = ByName(CheckHost(config_));
  EXPECT_EQ(by["firecracker"].verdict, V::kOk) << by["firecracker"].detail;
  EXPECT_EQ(by["jailer"].verdict, V::kFail);
  EXPECT_NE(by["jailer"].detail.find("but firecracker is 1.16.1"), std::string::npos) << by["jailer"].detail;

  config_.firecracker_path = Program("firecracker", "Firecracker v1.5.0");
  by = ByName(CheckHost(config_));
  EXPECT_EQ(by["firecracker"].verdict, V::kFail);
  EXPECT_NE(by["firecracker"].fix.find("1.7 or later"), std::string::npos) << by["firecracker"].fix;

  config_.firecracker_path = Program("firecracker", "Firecracker v1.17.0");
  by = ByName(CheckHost(config_));
  EXPECT_EQ(by["firecracker"].verdict, V::kWarn) << by["firecracker"].detail;

  // Without KVM, Firecracker cannot run: a failure for backend = "firecracker".
  if (::access("/dev/kvm", F_OK) != 0) {
    EXPECT_EQ(by["kvm"].verdict, V::kFail);
  }
}

TEST_F(HostCheckTest, MissingOrWrongArtifactsFailWithAFix) {
  config_.backend = Backend::kFirecracker;
  config_.kernel_path = File(dir_, "bzImage", std::string(0x202, '\0') + "HdrS" + std::string(8, '\0'), 0644);
  config_.initrd_path = File(dir_, "initrd.txt", "not an archive", 0644);
  config_.qemu_path = dir_.Path("no-such-qemu");
  auto checks = CheckHost(config_);
  auto by = ByName(checks);
  EXPECT_EQ(by["guest-kernel"].verdict, V::kFail);
  EXPECT_NE(by["guest-kernel"].detail.find("bzImage"), std::string::npos) << by["guest-kernel"].detail;
  EXPECT_EQ(by["guest-initramfs"].verdict, V::kFail);
  EXPECT_FALSE(by["guest-initramfs"].fix.empty());
  EXPECT_EQ(by["qemu"].verdict, V::kOk) << "qemu is not used by backend = \"firecracker\"";
  EXPECT_FALSE(HostReady(checks));

  const std::string table = HostChecksTable(checks);
  EXPECT_NE(table.find("guest-kernel     FAIL"), std::string::npos) << table;
  EXPECT_NE(table.find("fix: use the vmlinux"), std::string::npos) << table;
  EXPECT_NE(table.find("not ready"), std::string::npos);

  auto j = nlohmann::json::parse(HostChecksJson(checks));
  EXPECT_FALSE(j["ok"].get<bool>());
  ASSERT_EQ(j["checks"].size(), checks.size());
  for (const auto& c : j["checks"]) {
    const std::string v = c["verdict"];
    EXPECT_TRUE(v == "ok" || v == "warn" || v == "fail") << v;
  }
}

}  // namespace
}  // namespace nfc::driver
