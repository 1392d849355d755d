// Secure Boot (own ctest entry, nomados_secure_boot_test): an image built with --secure-boot, booted by OVMF
// with Secure Boot enforced and the Microsoft keys enrolled; the same image with an unsigned kernel is
// refused; GRUB boots grubenv's next_entry once (an update's trial, docs/nomados-updates.md).
#include <fstream>

#include "nomados_vm.h"

namespace nomados_test {
namespace {

class NomadOsSecureBoot : public ::testing::Test {
 protected:
  static inline const std::string kDir = kWork + "/image-secure-boot";

  static void SetUpTestSuite() {
    fs::create_directories(kWork);
    auto [rc, out] =
        RunCommand({NOMADOS_BUILDER, "build", "--init", NOMADOS_INIT, "--nomad", NOMADOS_TEST_AGENT,
                    "--agent-config", NOMADOS_AGENT_CONFIG, "--kernel-package", "linux-image-cloud-amd64",
                    "--out", kDir, "--data-size", "256M", "--formats", "raw", "--secure-boot", "--cmdline",
                    "nomados.loglevel=debug nomados.metadata=off"},
                   {"NOMADOS_CACHE=" + kWork + "/cache"});
    build_output_ = out;
    build_ok_ = rc == 0;
  }
  void SetUp() override {
    for (const char* f : {"/usr/share/OVMF/OVMF_CODE_4M.secboot.fd", "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"}) {
      ASSERT_TRUE(fs::exists(f)) << f << " missing (apt-get install ovmf)";
    }
    ASSERT_TRUE(build_ok_) << "nomados build --secure-boot failed:\n" << build_output_;
  }

  static inline bool build_ok_ = false;
  static inline std::string build_output_;
};

// Drops the Authenticode signature of a PE file: truncate at the certificate table, zero its directory entry
// (PE32+: optional header at e_lfanew + 24, data directory 4 at +144).
void StripPeSignature(const std::string& path) {
  std::string pe = Slurp(path);
  ASSERT_GT(pe.size(), 0x40u);
  uint32_t lfanew = 0, offset = 0, size = 0;
  std::memcpy(&lfanew, pe.data() + 0x3c, 4);
  size_t dir = lfanew + 24 + 144;
  ASSERT_LT(dir + 8, pe.size());
  std::memcpy(&offset, pe.data() + dir, 4);
  std::memcpy(&size, pe.data() + dir + 4, 4);
  ASSERT_GT(size, 0u) << path << " is not signed";
  ASSERT_LE(size_t{offset} + size, pe.size());
  pe.resize(offset);
  std::memset(pe.data() + dir, 0, 8);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << pe;
}

TEST_F(NomadOsSecureBoot, BootsWithSecureBootEnforced) {
  std::string disk = Overlay(kDir + "/nomados.raw", "raw", "secure-boot");
  Vm vm("secure-boot", disk, Firmware::kSecureBoot);
  vm.Boot();
  double secs = vm.WaitForAgent(300s);
  ASSERT_GT(secs, 0);
  std::printf("[ figure ] Secure Boot: QEMU start -> agent answering: %.1f s (TCG)\n", secs);
  std::string serial = vm.Serial();
  // The firmware told the kernel (EFI stub and the kernel's own check), and the kernel locked itself down.
  EXPECT_NE(serial.find("EFI stub: UEFI Secure Boot is enabled."), std::string::npos) << vm.Tail();
  EXPECT_NE(serial.find("secureboot: Secure boot enabled"), std::string::npos) << vm.Tail();
  EXPECT_NE(serial.find("Kernel is locked down from EFI Secure Boot"), std::string::npos) << vm.Tail();
  // Debian's signed modules still load under lockdown.
  EXPECT_NE(serial.find("nomad-init: loaded kernel module module=virtio_blk"), std::string::npos);
}

// The same image with the kernel's signature removed: shim's verifier (called by GRUB) refuses it.
TEST_F(NomadOsSecureBoot, UnsignedKernelIsRefused) {
  std::string raw = kWork + "/unsigned-kernel.raw", kernel = kWork + "/vmlinuz.unsigned";
  std::vector<std::string> mtools_env = {"MTOOLS_SKIP_CHECK=1"};
  auto [rc, out] = RunCommand({"cp", "--sparse=always", kDir + "/nomados.raw", raw});
  ASSERT_EQ(rc, 0) << out;
  fs::remove(kernel);
  auto [rc2, out2] = RunCommand({"mcopy", "-i", raw + "@@1M", "::/a/vmlinuz", kernel}, mtools_env);
  ASSERT_EQ(rc2, 0) << out2;
  StripPeSignature(kernel);
  auto [rc3, out3] = RunCommand({"mcopy", "-o", "-i", raw + "@@1M", kernel, "::/a/vmlinuz"}, mtools_env);
  ASSERT_EQ(rc3, 0) << out3;
  Vm vm("unsigned-kernel", Overlay(raw, "raw", "unsigned-kernel"), Firmware::kSecureBoot);
  vm.Boot();
  EXPECT_TRUE(vm.WaitForSerial("bad shim signature", 180s)) << vm.Tail();
  EXPECT_EQ(vm.Serial().find("Linux version"), std::string::npos) << vm.Tail();
  EXPECT_FALSE(vm.Get("/v1/agent/self"));
  fs::remove(raw);
  fs::remove(kernel);
}

// What nomad-init writes to request a trial under GRUB: next_entry in EFI/debian/grubenv. The image's
// grub.cfg boots it and clears it (save_env) before the kernel loads, so the boot after it is the default
// again.
TEST_F(NomadOsSecureBoot, GrubBootsNextEntryOnce) {
  std::string raw = kWork + "/grub-once.raw", env = kWork + "/grubenv";
  std::vector<std::string> mtools_env = {"MTOOLS_SKIP_CHECK=1"};
  auto [rc, out] = RunCommand({"cp", "--sparse=always", kDir + "/nomados.raw", raw});
  ASSERT_EQ(rc, 0) << out;
  std::string block = "# GRUB Environment Block\nnext_entry=a-trial\n";
  block.resize(1024, '#');
  std::ofstream(env, std::ios::binary | std::ios::trunc) << block;
  auto [rc2, out2] =
      RunCommand({"mcopy", "-o", "-i", raw + "@@1M", env, "::/EFI/debian/grubenv"}, mtools_env);
  ASSERT_EQ(rc2, 0) << out2;
  Vm vm("grub-once", Overlay(raw, "raw", "grub-once"), Firmware::kSecureBoot);
  vm.Boot();
  std::string line = vm.WaitForCommandLine(180s);
  // Stopped at once: nomad-init (which would also clear a leftover request) is seconds away under TCG.
  // "quit", not a kill: QEMU writes its cached qcow2 metadata (GRUB's write to grubenv) out as it quits.
  vm.Qmp("quit");
  vm.WaitForExit(30s);
  EXPECT_NE(line.find("nomados.slot=a nomados.trial=1"), std::string::npos) << line << vm.Tail();
  EXPECT_EQ(vm.Serial().find("nomad-init: update:"), std::string::npos) << vm.Tail();
  vm.Boot();  // the request is gone: the default entry
  line = vm.WaitForCommandLine(180s);
  vm.Qmp("quit");
  vm.WaitForExit(30s);
  EXPECT_NE(line.find("nomados.slot=a"), std::string::npos) << line << vm.Tail();
  EXPECT_EQ(line.find("nomados.trial=1"), std::string::npos) << "next_entry booted twice: " << line;
  fs::remove(raw);
  fs::remove(env);
}

}  // namespace
}  // namespace nomados_test
