// NomadOS boot tests: build an image with `nomados build`, boot it under QEMU (TCG) with SeaBIOS and with
// UEFI (OVMF), user-mode networking with the agent's port forwarded, and check what nomad-init (host role)
// does: DHCP address, agent started and answering, crash -> restart, QMP system_powerdown -> SIGTERM to the
// agent, clean unmount, QEMU exits 0, data partition contents survive a reboot. The image itself: GPT layout,
// vmdk, reproducibility, the builder's input checks.
//
// The agent inside is a TEST DOUBLE (tests/nomados/test_agent.cc), not Nomad: Nomad is not packaged by
// Debian. Timings are printed (boot-to-agent), not asserted. Config sources: cloud_config_test.cc; Secure
// Boot: secure_boot_test.cc.
#include "nomados_vm.h"

namespace nomados_test {
namespace {

// SeaBIOS, raw image: the whole lifecycle over two boots.
TEST_F(NomadOsBoot, BiosLifecycle) {
  std::string disk = Overlay(kImageDir + "/nomados.raw", "raw", "bios");
  Vm vm("bios", disk, Firmware::kBios);
  vm.Boot();
  double secs = vm.WaitForAgent(180s);
  ASSERT_GT(secs, 0);
  std::printf("[ figure ] BIOS: QEMU start -> agent answering: %.1f s (TCG)\n", secs);

  auto self = vm.Get("/v1/agent/self");
  ASSERT_TRUE(self);
  EXPECT_NE(self->find("\"test_double\":true"), std::string::npos);
  EXPECT_NE(self->find("=10.0.2.15\""), std::string::npos) << "no DHCP address from QEMU's slirp: " << *self;
  EXPECT_NE(self->find("agent.hcl"), std::string::npos)
      << "agent not started with the baked config: " << *self;
  int first_starts = Vm::Starts(*self);
  EXPECT_EQ(first_starts, 1);

  // DHCP's DNS server landed in resolv.conf (through the /etc -> /run link); df works for the fingerprint.
  auto resolv = vm.Get("/test/file?p=/etc/resolv.conf");
  ASSERT_TRUE(resolv);
  EXPECT_NE(resolv->find("nameserver 10.0.2.3"), std::string::npos) << *resolv;
  auto df = vm.Get("/test/df");
  ASSERT_TRUE(df);
  EXPECT_NE(df->find("exit=0"), std::string::npos) << *df;
  EXPECT_NE(df->find("/dev/vda4"), std::string::npos) << "data_dir is not on the data partition: " << *df;

  // Crash the agent: init restarts it (first back-off is 1 s).
  ASSERT_TRUE(vm.Get("/test/crash"));
  double crash_at = vm.WaitForAgent(60s, first_starts + 1);
  ASSERT_GT(crash_at, 0);
  self = vm.Get("/v1/agent/self");
  ASSERT_TRUE(self);
  EXPECT_EQ(Vm::Starts(*self), first_starts + 1);
  EXPECT_NE(vm.Serial().find("nomad exited"), std::string::npos);

  // Data for the next boot, then ACPI power button.
  ASSERT_TRUE(vm.Get("/test/write?v=survives-reboot-42"));
  vm.Qmp("system_powerdown");
  int rc = vm.WaitForExit(90s);
  std::string serial = vm.Serial();
  EXPECT_EQ(rc, 0) << serial.substr(serial.size() > 6000 ? serial.size() - 6000 : 0);
  EXPECT_NE(serial.find("shutting down: power button"), std::string::npos);
  EXPECT_NE(serial.find("TEST DOUBLE nomad agent: signal SIGTERM from pid 1"), std::string::npos);
  EXPECT_NE(serial.find("unmounted path=/var type=ext4"), std::string::npos);
  EXPECT_NE(serial.find("unmounted path=/data type=ext4"), std::string::npos);
  EXPECT_NE(serial.find("filesystems unmounted; poweroff"), std::string::npos);

  // The data partition was unmounted cleanly (no journal recovery pending).
  std::string part = ExtractDataPartition(disk);
  auto [drc, dump] = RunCommand({"dumpe2fs", "-h", part});
  EXPECT_EQ(drc, 0) << dump;
  EXPECT_NE(dump.find("Filesystem state:         clean"), std::string::npos) << dump;
  EXPECT_EQ(dump.find("needs_recovery"), std::string::npos) << dump;
  fs::remove(part);

  // Second boot from the same disk: the data and the SIGTERM record of the first boot are there.
  vm.Boot();
  secs = vm.WaitForAgent(180s);
  ASSERT_GT(secs, 0);
  std::printf("[ figure ] BIOS: second boot -> agent answering: %.1f s (TCG)\n", secs);
  auto value = vm.Get("/test/read");
  ASSERT_TRUE(value);
  EXPECT_EQ(*value, "survives-reboot-42");
  self = vm.Get("/v1/agent/self");
  ASSERT_TRUE(self);
  EXPECT_EQ(Vm::Starts(*self), first_starts + 2);
  EXPECT_NE(self->find("signal SIGTERM from pid 1"), std::string::npos) << *self;
  auto mid1 = vm.Get("/test/file?p=/etc/machine-id");
  ASSERT_TRUE(mid1);
  EXPECT_EQ(mid1->size(), 33u);

  // Ctrl-Alt-Del: the kernel tells PID 1 (SIGINT), which stops the agent and reboots (-no-reboot: QEMU exits
  // 0).
  vm.Qmp(
      "send-key",
      R"({"keys":[{"type":"qcode","data":"ctrl"},{"type":"qcode","data":"alt"},{"type":"qcode","data":"delete"}]})");
  rc = vm.WaitForExit(90s);
  serial = vm.Serial();
  EXPECT_EQ(rc, 0) << vm.Tail();
  EXPECT_NE(serial.find("shutting down: Ctrl-Alt-Del"), std::string::npos) << vm.Tail();
  EXPECT_NE(serial.find("TEST DOUBLE nomad agent: signal SIGTERM from pid 1"), std::string::npos);
  EXPECT_NE(serial.find("filesystems unmounted; reboot"), std::string::npos) << vm.Tail();
}

// UEFI (OVMF + systemd-boot), qcow2 image.
TEST_F(NomadOsBoot, UefiBootAndPowerdown) {
  std::string disk = Overlay(kImageDir + "/nomados.qcow2", "qcow2", "uefi");
  Vm vm("uefi", disk, Firmware::kUefi);
  vm.Boot();
  double secs = vm.WaitForAgent(240s);
  ASSERT_GT(secs, 0);
  std::printf("[ figure ] UEFI: QEMU start -> agent answering: %.1f s (TCG)\n", secs);
  auto self = vm.Get("/v1/agent/self");
  ASSERT_TRUE(self);
  EXPECT_NE(self->find("=10.0.2.15\""), std::string::npos) << *self;
  vm.Qmp("system_powerdown");
  int rc = vm.WaitForExit(90s);
  std::string serial = vm.Serial();
  EXPECT_EQ(rc, 0) << serial.substr(serial.size() > 6000 ? serial.size() - 6000 : 0);
  EXPECT_NE(serial.find("TEST DOUBLE nomad agent: signal SIGTERM from pid 1"), std::string::npos);
  EXPECT_NE(serial.find("filesystems unmounted; poweroff"), std::string::npos);
}

// The partition table: boot partition flagged "legacy BIOS bootable" (gptmbr.bin boots it), then the two
// system slots (A/B, equal sizes), data last (so it can grow to the disk's end).
TEST_F(NomadOsBoot, GptLayout) {
  auto parts = ReadGpt(kImageDir + "/nomados.raw");
  ASSERT_EQ(parts.size(), 4u);
  EXPECT_EQ(parts[0].name, "nomados-boot");
  EXPECT_EQ(parts[0].first_lba, 2048u);
  EXPECT_EQ(parts[0].attributes & 4, 4u) << "legacy BIOS bootable attribute missing";
  EXPECT_EQ(parts[1].name, "nomados-system-a");
  EXPECT_EQ(parts[2].name, "nomados-system-b");
  EXPECT_EQ(parts[1].last_lba - parts[1].first_lba, parts[2].last_lba - parts[2].first_lba);
  EXPECT_EQ(parts[3].name, "nomados-data");
  EXPECT_GE((parts[3].last_lba - parts[3].first_lba + 1) * 512, 256u << 20);
}

// The vmdk output is a valid streamOptimized VMDK of the same disk.
TEST_F(NomadOsBoot, VmdkMatchesRaw) {
  auto [rc, info] = RunCommand({"qemu-img", "info", kImageDir + "/nomados.vmdk"});
  ASSERT_EQ(rc, 0) << info;
  EXPECT_NE(info.find("file format: vmdk"), std::string::npos) << info;
  EXPECT_NE(info.find("streamOptimized"), std::string::npos) << info;
  auto [rc2, cmp] = RunCommand({"qemu-img", "compare", "-f", "vmdk", "-F", "raw", kImageDir + "/nomados.vmdk",
                                kImageDir + "/nomados.raw"});
  EXPECT_EQ(rc2, 0) << cmp;
}

// Same inputs, same bytes: a second build (raw only) matches the suite's image bit for bit.
TEST_F(NomadOsBoot, BuildIsReproducible) {
  std::string again = kWork + "/image-again";
  fs::remove_all(again);
  auto [rc, out] =
      RunCommand({NOMADOS_BUILDER, "build", "--init", NOMADOS_INIT, "--nomad", NOMADOS_TEST_AGENT,
                  "--agent-config", NOMADOS_AGENT_CONFIG, "--kernel-package", "linux-image-cloud-amd64",
                  "--out", again, "--data-size", "256M", "--formats", "raw", "--cmdline", kImageCmdline},
                 {"NOMADOS_CACHE=" + kWork + "/cache"});
  ASSERT_EQ(rc, 0) << out;
  auto [rc1, sum1] = RunCommand({"sha256sum", kImageDir + "/nomados.raw"});
  auto [rc2, sum2] = RunCommand({"sha256sum", again + "/nomados.raw"});
  ASSERT_EQ(rc1, 0);
  ASSERT_EQ(rc2, 0);
  EXPECT_EQ(sum1.substr(0, 64), sum2.substr(0, 64));
  EXPECT_EQ(Slurp(kImageDir + "/nomados.manifest"), Slurp(again + "/nomados.manifest"));
  fs::remove_all(again);
}

// Missing inputs fail fast with an error naming the option.
TEST_F(NomadOsBoot, BuilderNamesMissingInputs) {
  auto [rc, out] = RunCommand({NOMADOS_BUILDER, "build", "--init", NOMADOS_INIT, "--agent-config",
                               NOMADOS_AGENT_CONFIG, "--out", kWork + "/never"});
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("--nomad is required"), std::string::npos) << out;
  auto [rc2, out2] =
      RunCommand({NOMADOS_BUILDER, "build", "--init", NOMADOS_INIT, "--nomad", "/nonexistent/nomad",
                  "--agent-config", NOMADOS_AGENT_CONFIG, "--out", kWork + "/never"});
  EXPECT_NE(rc2, 0);
  EXPECT_NE(out2.find("--nomad '/nonexistent/nomad': no such file"), std::string::npos) << out2;
  auto [rc3, out3] =
      RunCommand({NOMADOS_BUILDER, "build", "--init", NOMADOS_TEST_AGENT, "--nomad", NOMADOS_TEST_AGENT,
                  "--agent-config", NOMADOS_AGENT_CONFIG, "--out", kWork + "/never", "--formats", "iso"});
  EXPECT_NE(rc3, 0);
  EXPECT_NE(out3.find("unknown format 'iso'"), std::string::npos) << out3;
}

}  // namespace
}  // namespace nomados_test
