// --profile cloud (own ctest entry, nomados_profile_test): an image with only the cloud drivers (chosen by
// modalias) and the modules a Nomad host loads itself. It must be small (the manifest's content without Nomad
// under 60 MiB, its size breakdown adding up) and still boot: virtio disk and NIC, DHCP, the agent, the ACPI
// power button, a clean power-off.
#include <fstream>
#include <map>
#include <sstream>

#include "nomados_vm.h"

namespace nomados_test {
namespace {

class NomadOsProfile : public ::testing::Test {
 protected:
  static inline const std::string kDir = kWork + "/image-cloud-profile";

  static void SetUpTestSuite() {
    fs::create_directories(kWork);
    auto [rc, out] = RunCommand({NOMADOS_BUILDER,
                                 "build",
                                 "--init",
                                 NOMADOS_INIT,
                                 "--nomad",
                                 NOMADOS_TEST_AGENT,
                                 "--agent-config",
                                 NOMADOS_AGENT_CONFIG,
                                 "--kernel-package",
                                 "linux-image-cloud-amd64",
                                 "--profile",
                                 "cloud",
                                 "--out",
                                 kDir,
                                 "--data-size",
                                 "256M",
                                 "--formats",
                                 "raw",
                                 "--cmdline",
                                 kImageCmdline},
                                {"NOMADOS_CACHE=" + kWork + "/cache"});
    build_output_ = out;
    build_ok_ = rc == 0;
  }
  void SetUp() override {
    ASSERT_TRUE(build_ok_) << "nomados build --profile cloud failed:\n" << build_output_;
  }

  // "key value" lines of the manifest (the first word is the key; later duplicates ignored).
  static std::map<std::string, std::string> Manifest() {
    std::map<std::string, std::string> m;
    std::istringstream in(Slurp(kDir + "/nomados.manifest"));
    std::string line;
    while (std::getline(in, line)) {
      size_t sp = line.find(' ');
      if (sp != std::string::npos) m.emplace(line.substr(0, sp), line.substr(sp + 1));
    }
    return m;
  }

  static inline bool build_ok_ = false;
  static inline std::string build_output_;
};

TEST_F(NomadOsProfile, CloudProfileIsSmallAndSaysWhatEachPartIs) {
  auto m = Manifest();
  ASSERT_EQ(m["profile"], "cloud");
  uint64_t without_nomad = std::stoull(m["system_content_bytes_without_nomad"]);
  std::printf("[ figure ] --profile cloud: system content without Nomad %.1f MiB, %s\n",
              static_cast<double>(without_nomad) / 1048576, m["partitions"].c_str());
  EXPECT_LE(without_nomad, 60ull << 20);
  // The breakdown: every line is "size BYTES WHAT"; the system content's parts (not the indented module
  // directories) add up to its total.
  std::istringstream in(Slurp(kDir + "/nomados.manifest"));
  std::string line;
  uint64_t total = 0, parts = 0;
  bool in_system = false;
  while (std::getline(in, line)) {
    if (line.rfind("size ", 0) != 0) continue;
    std::istringstream l(line.substr(5));
    uint64_t n = 0;
    std::string what;
    l >> n;
    std::getline(l, what);
    if (what == " system-partition-content") {
      total = n;
      in_system = true;
    } else if (what == " boot-partition-content") {
      in_system = false;
    } else if (in_system && what.rfind("   ", 0) != 0) {
      parts += n;
    }
  }
  EXPECT_GT(total, 0u);
  EXPECT_EQ(parts, total);
  std::string manifest = Slurp(kDir + "/nomados.manifest");
  for (const char* part : {"kernel modules (profile cloud)", "/usr/sbin/nomad-init", "/opt/cni/bin/bridge",
                           "modules/net/netfilter", "shared libraries"}) {
    EXPECT_NE(manifest.find(part), std::string::npos) << part << " not in the manifest";
  }
}

TEST_F(NomadOsProfile, CloudProfileBoots) {
  Vm vm("cloud-profile", Overlay(kDir + "/nomados.raw", "raw", "cloud-profile"), Firmware::kBios);
  vm.Boot();
  double secs = vm.WaitForAgent(240s);
  ASSERT_GT(secs, 0);
  std::printf("[ figure ] --profile cloud, BIOS: QEMU start -> agent answering: %.1f s (TCG)\n", secs);
  auto self = vm.Get("/v1/agent/self");
  ASSERT_TRUE(self);
  EXPECT_NE(self->find("=10.0.2.15\""), std::string::npos) << *self;
  std::string serial = vm.Serial();
  EXPECT_NE(serial.find("loaded kernel module module=virtio_net"), std::string::npos) << vm.Tail();
  vm.Qmp("system_powerdown");
  EXPECT_EQ(vm.WaitForExit(90s), 0) << vm.Tail();
  EXPECT_NE(vm.Serial().find("filesystems unmounted; poweroff"), std::string::npos) << vm.Tail();
}

}  // namespace
}  // namespace nomados_test
