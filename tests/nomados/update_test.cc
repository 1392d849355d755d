// NomadOS safe updates (docs/nomados-updates.md), under QEMU TCG with SeaBIOS:
//   - a bundle of a new release, put on the data partition, is written into slot b, tried once and committed
//     (the new release's marker config file is what the agent sees, on the trial boot and after it);
//   - a bundle whose agent exits at once: the trial fails, the machine reboots into slot a by itself, and
//   slot
//     a stays the default;
//   - a bundle whose kernel cannot reach nomad-init (its initramfs is garbage: the kernel panics, panic=10
//     reboots): the trial was asked for once, so the machine comes back on slot a by itself, which reports
//     the trial as failed and sets the bundle aside;
//   - a disk enlarged before the first boot: the data partition and its filesystem fill it.
// Three images are built (the base release, a new one, a broken one); only their agent configs differ. Each
// QEMU runs with -no-reboot, so a guest reboot ends QEMU and the test boots the same disk again.
#include <fstream>
#include <sstream>

#include "nomados_vm.h"

namespace nomados_test {
namespace {

const std::string kUpdateWork = kWork + "/update";
// Short trial times so the tests do not wait five minutes (the defaults are 30 s / 300 s).
const std::string kUpdateCmdline = kImageCmdline + " nomados.trial_healthy=10 nomados.trial_timeout=180";

class NomadOsUpdate : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fs::create_directories(kUpdateWork);
    auto t0 = Clock::now();
    build_ok_ = Build("base", "") && Build("release-2", "release-2.hcl") &&
                Build("broken", "broken-agent.hcl") && Bundle("release-2") && Bundle("broken");
    std::printf("[ figure ] three nomados builds + two bundles: %.1f s\n",
                std::chrono::duration<double>(Clock::now() - t0).count());
  }
  void SetUp() override { ASSERT_TRUE(build_ok_) << "build failed:\n" << build_output_; }

  // An image whose agent config directory is agent.hcl plus `marker` (an empty-bodied HCL comment file).
  static bool Build(const std::string& name, const std::string& marker) {
    std::string cfg = kUpdateWork + "/config-" + name;
    fs::remove_all(cfg);
    fs::create_directories(cfg);
    fs::copy_file(NOMADOS_AGENT_CONFIG, cfg + "/agent.hcl");
    if (!marker.empty()) std::ofstream(cfg + "/" + marker) << "# " << name << "\n";
    auto [rc, out] = RunCommand(
        {NOMADOS_BUILDER, "build", "--init", NOMADOS_INIT, "--nomad", NOMADOS_TEST_AGENT, "--agent-config",
         cfg, "--kernel-package", "linux-image-cloud-amd64", "--out", kUpdateWork + "/" + name, "--data-size",
         "256M", "--formats", "raw,qcow2", "--cmdline", kUpdateCmdline},
        {"NOMADOS_CACHE=" + kWork + "/cache"});
    build_output_ += out;
    return rc == 0;
  }

  static bool Bundle(const std::string& name) {
    auto [rc, out] =
        RunCommand({NOMADOS_BUILDER, "bundle", "--image", kUpdateWork + "/" + name + "/nomados.raw", "--out",
                    kUpdateWork + "/bundle-" + name, "--version", name});
    build_output_ += out;
    return rc == 0;
  }

  // A copy of the base image with the bundle in /var/lib/nomados/update on its data partition (debugfs writes
  // through ?offset=, no mount), as qcow2.
  static std::string DiskWithBundle(const std::string& bundle, const std::string& name) {
    std::string raw = kUpdateWork + "/" + name + ".raw", qcow2 = kUpdateWork + "/" + name + ".qcow2";
    auto [rc, out] = RunCommand({"cp", "--sparse=always", kUpdateWork + "/base/nomados.raw", raw});
    EXPECT_EQ(rc, 0) << out;
    uint64_t start = 0;
    for (const auto& p : ReadGpt(raw)) {
      if (p.name == "nomados-data") start = p.first_lba;
    }
    EXPECT_GT(start, 0u);
    std::string cmds = kUpdateWork + "/" + name + ".debugfs";
    {
      std::ofstream c(cmds);
      for (const char* d : {"/var", "/var/lib", "/var/lib/nomados", "/var/lib/nomados/update"})
        c << "mkdir " << d << "\n";
      for (const char* f : {"manifest", "system.ext4", "vmlinuz", "initrd.img"}) {
        c << "write " << kUpdateWork << "/bundle-" << bundle << "/" << f << " /var/lib/nomados/update/" << f
          << "\n";
      }
    }
    auto [rc2, out2] =
        RunCommand({"debugfs", "-w", "-f", cmds, raw + "?offset=" + std::to_string(start * 512)});
    EXPECT_EQ(rc2, 0) << out2;
    auto [rc3, out3] = RunCommand({"qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", raw, qcow2});
    EXPECT_EQ(rc3, 0) << out3;
    fs::remove(raw);
    return qcow2;
  }

  // The first boot writes the bundle into slot b and reboots (which ends QEMU).
  static void BootAndApply(Vm& vm) {
    vm.Boot();
    EXPECT_TRUE(vm.WaitForSerial("trial boot", 400s)) << vm.Tail();
    EXPECT_EQ(vm.WaitForExit(120s), 0) << vm.Tail();
    EXPECT_NE(vm.Serial().find("nomados.slot=a"), std::string::npos);
  }

  // bundle-<from> with initrd.img replaced by bytes that are no initramfs (the manifest says so, so the
  // bundle verifies and is written): its kernel boots, finds no init, panics. The other files are hard links.
  static std::string PanickingBundle(const std::string& from) {
    std::string src = kUpdateWork + "/bundle-" + from, dst = kUpdateWork + "/bundle-panic";
    fs::remove_all(dst);
    fs::create_directories(dst);
    fs::create_hard_link(src + "/system.ext4", dst + "/system.ext4");
    fs::create_hard_link(src + "/vmlinuz", dst + "/vmlinuz");
    std::string junk(256 << 10, '\0');
    for (size_t i = 0; i < junk.size(); i++) junk[i] = static_cast<char>((i * 2654435761u) >> 13);
    std::ofstream(dst + "/initrd.img", std::ios::binary) << junk;
    auto [rc, sum] = RunCommand({"sha256sum", dst + "/initrd.img"});
    EXPECT_EQ(rc, 0) << sum;
    std::string manifest = Slurp(src + "/manifest"), out;
    std::istringstream lines(manifest);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("file initrd.img ", 0) == 0)
        line = "file initrd.img " + std::to_string(junk.size()) + " " + sum.substr(0, 64);
      else if (line.rfind("version ", 0) == 0)
        line = "version panic";
      out += line + "\n";
    }
    EXPECT_NE(out, manifest);
    std::ofstream(dst + "/manifest") << out;
    return "panic";
  }

  static double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

  static void PanickingTrialFallsBack(Firmware fw, const std::string& name);

  static inline bool build_ok_ = false;
  static inline std::string build_output_;
};

TEST_F(NomadOsUpdate, TrialBootIsCommitted) {
  Vm vm("update-ok", DiskWithBundle("release-2", "update-ok"), Firmware::kBios);
  auto t0 = Clock::now();
  BootAndApply(vm);
  std::printf("[ figure ] boot + bundle written into slot b + reboot: %.1f s\n", Since(t0));
  ASSERT_FALSE(HasFailure());

  auto t1 = Clock::now();
  vm.Boot();  // the trial
  ASSERT_TRUE(vm.WaitForSerial("update: committed", 400s)) << vm.Tail();
  std::printf("[ figure ] trial boot to commit: %.1f s\n", Since(t1));
  std::string trial = vm.Serial();
  EXPECT_NE(trial.find("nomados.slot=b nomados.trial=1"), std::string::npos);
  auto self = vm.Get("/v1/agent/self");
  ASSERT_TRUE(self);
  EXPECT_NE(self->find("release-2.hcl"), std::string::npos)
      << "the new release's config is not seen: " << *self;
  vm.Qmp("system_powerdown");
  ASSERT_EQ(vm.WaitForExit(120s), 0) << vm.Tail();

  vm.Boot();  // committed: slot b without trial is the default now
  ASSERT_GT(vm.WaitForAgent(400s), 0);
  std::string after = vm.Serial();
  EXPECT_NE(after.find("nomados.slot=b"), std::string::npos) << vm.Tail();
  EXPECT_EQ(after.find("nomados.trial=1"), std::string::npos) << "trial entry booted again";
  self = vm.Get("/v1/agent/self");
  ASSERT_TRUE(self);
  EXPECT_NE(self->find("release-2.hcl"), std::string::npos) << *self;
  vm.Qmp("system_powerdown");
  EXPECT_EQ(vm.WaitForExit(120s), 0);
}

TEST_F(NomadOsUpdate, FailedTrialFallsBackToThePreviousSlot) {
  Vm vm("update-broken", DiskWithBundle("broken", "update-broken"), Firmware::kBios);
  BootAndApply(vm);
  ASSERT_FALSE(HasFailure());

  auto t1 = Clock::now();
  vm.Boot();  // the trial: the agent exits at once, three times
  ASSERT_TRUE(vm.WaitForSerial("trial boot failed", 400s)) << vm.Tail();
  EXPECT_EQ(vm.WaitForExit(120s), 0) << "the failed trial must reboot by itself:\n" << vm.Tail();
  std::printf("[ figure ] failed trial boot to its reboot: %.1f s\n", Since(t1));
  EXPECT_NE(vm.Serial().find("broken-agent.hcl present"), std::string::npos);

  vm.Boot();  // back on slot a, still the default
  ASSERT_GT(vm.WaitForAgent(400s), 0);
  std::string after = vm.Serial();
  EXPECT_NE(after.find("nomados.slot=a"), std::string::npos) << vm.Tail();
  EXPECT_EQ(after.find("nomados.trial=1"), std::string::npos);
  auto self = vm.Get("/v1/agent/self");
  ASSERT_TRUE(self);
  EXPECT_EQ(self->find("broken-agent.hcl"), std::string::npos) << *self;
  EXPECT_NE(after.find("the trial of slot b did not commit"), std::string::npos) << vm.Tail();
  vm.Qmp("system_powerdown");
  EXPECT_EQ(vm.WaitForExit(120s), 0);
}

// The panicking bundle under `fw`: written, its trial requested once, the kernel panics before nomad-init and
// panic=10 resets the machine, which comes back on slot a by itself and reports the trial as failed.
void NomadOsUpdate::PanickingTrialFallsBack(Firmware fw, const std::string& name) {
  auto t0 = Clock::now();
  std::string disk = DiskWithBundle(PanickingBundle("release-2"), name);
  fs::remove_all(kWork + "/vm-" + name);  // no EFI variables left from an earlier run
  Vm vm(name, disk, fw);
  BootAndApply(vm);
  ASSERT_FALSE(HasFailure());
  EXPECT_NE(vm.Serial().find("(b-trial, once)"), std::string::npos) << vm.Tail();

  auto t1 = Clock::now();
  vm.Boot();  // the trial, asked for once: the kernel panics before nomad-init, panic=10 resets the machine
  ASSERT_TRUE(vm.WaitForSerial("Kernel panic", 300s)) << vm.Tail();
  EXPECT_EQ(vm.WaitForExit(120s), 0) << "panic=10 must reset the machine:\n" << vm.Tail();
  std::string trial = vm.Serial();
  EXPECT_NE(trial.find("nomados.slot=b nomados.trial=1"), std::string::npos) << vm.Tail();
  EXPECT_EQ(trial.find("update: trial boot"), std::string::npos) << "nomad-init ran: no test of the fallback";
  std::printf("[ figure ] %s: panicking trial kernel to its reset: %.1f s\n", name.c_str(), Since(t1));

  vm.Boot();  // the loader forgot the request: slot a, by itself
  std::string line = vm.WaitForCommandLine(300s);
  ASSERT_NE(line.find("nomados.slot=a"), std::string::npos) << "not back on slot a: " << line;
  ASSERT_EQ(line.find("nomados.trial=1"), std::string::npos) << "the trial entry booted again: " << line;
  ASSERT_GT(vm.WaitForAgent(400s), 0) << vm.Tail();
  EXPECT_NE(vm.Serial().find("the trial of slot b did not commit"), std::string::npos) << vm.Tail();
  vm.Qmp("system_powerdown");
  ASSERT_EQ(vm.WaitForExit(120s), 0);
  std::printf("[ figure ] %s: whole scenario (disk, 3 boots): %.1f s\n", name.c_str(), Since(t0));

  // The bundle was set aside as failed, and the marker is gone (debugfs reads the data partition).
  std::string part = ExtractDataPartition(disk);
  auto [rc, ls] = RunCommand({"debugfs", "-R", "ls /var/lib/nomados", part});
  fs::remove(part);
  ASSERT_EQ(rc, 0) << ls;
  EXPECT_NE(ls.find("update.failed"), std::string::npos) << ls;
  EXPECT_EQ(ls.find("update.applied"), std::string::npos) << ls;
  EXPECT_EQ(ls.find("update.trial"), std::string::npos) << ls;
}

// syslinux: the boot-once record in ldlinux.sys's ADV.
TEST_F(NomadOsUpdate, TrialKernelThatNeverReachesInitFallsBackByItself) {
  PanickingTrialFallsBack(Firmware::kBios, "update-panic");
}

// systemd-boot: the EFI variable LoaderEntryOneShot (OVMF keeps it in the VM's variable store).
TEST_F(NomadOsUpdate, TrialKernelThatNeverReachesInitFallsBackByItselfUefi) {
  PanickingTrialFallsBack(Firmware::kUefi, "update-panic-uefi");
}

TEST_F(NomadOsUpdate, DataPartitionFillsAnEnlargedDisk) {
  std::string disk = Overlay(kUpdateWork + "/base/nomados.qcow2", "qcow2", "update-grow");
  auto [rc, out] = RunCommand({"qemu-img", "resize", "-q", disk, "+2G"});
  ASSERT_EQ(rc, 0) << out;
  Vm vm("update-grow", disk, Firmware::kBios);
  vm.Boot();
  ASSERT_GT(vm.WaitForAgent(400s), 0);
  EXPECT_NE(vm.Serial().find("data partition grown to the end of the disk"), std::string::npos) << vm.Tail();
  auto df = vm.Get("/test/df");
  ASSERT_TRUE(df);
  // df -kP: "/dev/vda4 <1K-blocks> ..."; 256 MiB grew by 2 GiB.
  size_t at = df->find("/dev/vda4");
  ASSERT_NE(at, std::string::npos) << *df;
  long long kib = std::atoll(df->c_str() + df->find_first_of("0123456789", at + 9));
  std::printf("[ figure ] data filesystem after growth: %lld KiB\n", kib);
  EXPECT_GT(kib, 2000000) << *df;
  vm.Qmp("system_powerdown");
  ASSERT_EQ(vm.WaitForExit(120s), 0);
  // libblkid (partx) checks the GPT's CRCs: the rewritten table is valid and data ends near the disk's end.
  std::string raw = kUpdateWork + "/update-grow.raw";
  auto [rc2, out2] = RunCommand({"qemu-img", "convert", "-q", "-f", "qcow2", "-O", "raw", disk, raw});
  ASSERT_EQ(rc2, 0) << out2;
  auto [rc3, table] = RunCommand({"partx", "-g", "-o", "NR,END,NAME", raw});
  fs::remove(raw);
  ASSERT_EQ(rc3, 0) << table;
  EXPECT_NE(table.find("nomados-data"), std::string::npos) << table;
  auto parts = ReadGpt(kUpdateWork + "/base/nomados.raw");
  ASSERT_EQ(parts.size(), 4u);
  unsigned long long end = std::stoull(table.substr(table.rfind(" 4 ") + 3));
  EXPECT_GT(end * 512, (2ull << 30)) << table;
}

}  // namespace
}  // namespace nomados_test
