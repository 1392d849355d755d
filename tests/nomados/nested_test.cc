// NomadOS hosts microVMs (issue 21 item 5): a NomadOS image with this driver, its shim, QEMU (with its
// libraries and firmware), mke2fs, the guest kernel and initramfs, and the Go conformance harness as the
// image's agent (nfc-conformance built static: `nomad agent -config /etc/nomad.d` runs
// tests/conformance/harness/ nomados_agent.go). Booted under QEMU (TCG); inside, the harness drives the
// plugin through go-plugin as a Nomad client does and runs one task from an OCI layout baked into the image
// (nothing is pulled from a network): a microVM under the inner QEMU (TCG inside TCG). The task prints a line
// and exits 3; the harness checks exit code and stdout and prints one result line on the serial console, then
// powers the machine off.
//
// Long (about 6 minutes here, most of it the inner guest booting): label `nested` only, left out of the
// default run (scripts/test) and of CI.
#include <cstdlib>
#include <fstream>
#include <regex>

#include "nomados_vm.h"
#include "test_layers.h"

namespace nomados_test {
namespace {

const std::string kLayoutDest = "/opt/nested/layout";

// The busybox image of the lifecycle tests (tests/lifecycle/demo_image.cc), as an OCI layout on disk.
void WriteTaskImage(const std::string& dir) {
  using nfc::image::testing::E;
  std::vector<E> entries = {{'d', "bin", 0755},
                            {'f', "bin/busybox", 0755, nfc::image::testing::ReadFileOrDie("/bin/busybox")}};
  for (const char* applet : {"sh", "echo", "sleep", "cat", "true"}) {
    entries.push_back({'l', std::string("bin/") + applet, 0777, "busybox"});
  }
  entries.push_back({'d', "tmp", 01777});
  nfc::image::testing::TestImage img;
  img.layers = {{entries, "gzip"}};
  img.config_json =
      R"({"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"],"Env":["PATH=/bin"]}})";
  fs::remove_all(dir);
  auto digest = nfc::image::testing::WriteOciLayout(dir, "demo", {img});
  ASSERT_TRUE(digest.ok()) << digest.error().message();
}

// `--file SRC:/DEST` for a file given by a path that may be a symlink (Debian's bios-microvm.bin ->
// qboot.rom).
std::vector<std::string> FileArg(const std::string& src, const std::string& dest) {
  return {"--file", fs::canonical(src).string() + ":" + dest};
}

std::vector<std::string> BuildArgv(const std::string& layout, const std::string& env_file) {
  const std::string guest = NESTED_GUEST_DIR;
  std::vector<std::string> argv = {NOMADOS_BUILDER,
                                   "build",
                                   "--init",
                                   NOMADOS_INIT,
                                   "--nomad",
                                   NESTED_AGENT,
                                   "--agent-config",
                                   NOMADOS_AGENT_CONFIG,
                                   "--kernel-package",
                                   "linux-image-cloud-amd64",
                                   "--profile",
                                   "cloud",
                                   "--driver",
                                   NESTED_PLUGIN,
                                   "--vmm",
                                   NESTED_SHIM,
                                   "--vmm",
                                   "/usr/bin/qemu-system-x86_64",
                                   "--vmm",
                                   "/usr/sbin/mke2fs",
                                   "--guest-kernel",
                                   guest + "/vmlinux",
                                   "--guest-kernel",
                                   guest + "/initramfs.cpio.gz",
                                   "--out",
                                   kImageDir,
                                   "--formats",
                                   "raw",
                                   "--data-size",
                                   "1G",
                                   "--cmdline",
                                   kImageCmdline};
  // QEMU's microvm machine loads qboot (bios-microvm.bin); the others are what QEMU opens for -kernel.
  for (const char* fw : {"bios-microvm.bin", "qboot.rom", "linuxboot_dma.bin", "kvmvapic.bin"}) {
    auto a = FileArg(std::string("/usr/share/qemu/") + fw, std::string("/usr/share/qemu/") + fw);
    argv.insert(argv.end(), a.begin(), a.end());
  }
  // Debian builds QEMU's TCG as a loadable module ("could not load module for type 'tcg-accel-ops'" without
  // it).
  const std::string accel = "/usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so";
  for (const auto& a : {FileArg(accel, accel), FileArg("/etc/mke2fs.conf", "/etc/mke2fs.conf"),
                        FileArg(env_file, "/etc/nomados-nested.env"), FileArg(layout, kLayoutDest)}) {
    argv.insert(argv.end(), a.begin(), a.end());
  }
  return argv;
}

double Seconds(Clock::time_point from) {
  return std::chrono::duration<double>(Clock::now() - from).count();
}

TEST(NomadOsNested, HostsAMicroVm) {
  fs::create_directories(kWork);
  std::string layout = kWork + "/layout", env_file = kWork + "/nested.env";
  WriteTaskImage(layout);
  {
    std::ofstream env(env_file);
    env << "NESTED_PLUGIN=/opt/nomad/plugins/nomad-driver-firecracker\n"
        << "NFC_SHIM_PATH=/usr/bin/nomad-fc-shim\n"
        << "NESTED_KERNEL=/usr/share/nomados/guest/vmlinux\n"
        << "NESTED_INITRD=/usr/share/nomados/guest/initramfs.cpio.gz\n"
        << "NESTED_IMAGE=oci:" << kLayoutDest << ":demo\n"
        << "NESTED_DIR=/var/lib/nested\n";
  }
  auto t0 = Clock::now();
  auto [rc, out] = RunCommand(BuildArgv(layout, env_file), {"NOMADOS_CACHE=" + kWork + "/cache"});
  ASSERT_EQ(rc, 0) << "nomados build failed:\n" << out;
  std::printf("[ figure ] nomados build (driver, QEMU, guest): %.1f s\n", Seconds(t0));

  std::string disk = Overlay(kImageDir + "/nomados.raw", "raw", "nested");
  Vm vm("nested", disk, Firmware::kBios);
  // The inner QEMU's guest (128 MiB) and the ASan-built plugin need room; two vCPUs (MTTCG) for the two
  // QEMUs.
  vm.AddArgs({"-m", "3072", "-smp", "2"});
  auto boot = Clock::now();
  vm.Boot();
  ASSERT_TRUE(vm.WaitForSerial("NOMADOS-NESTED START", 600s)) << "the agent never started; serial:\n"
                                                              << vm.Tail();
  double outer_boot = Seconds(boot);
  bool reported = vm.WaitForSerial("NOMADOS-NESTED RESULT", 2700s) ||
                  vm.Serial().find("NOMADOS-NESTED FAILED") != std::string::npos;
  double total = Seconds(boot);
  std::string serial = vm.Serial();
  ASSERT_TRUE(reported) << "no result from the agent after " << total << " s; serial:\n" << vm.Tail();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(serial, m,
                                std::regex("NOMADOS-NESTED RESULT start_ms=(\\d+) "
                                           "start_to_exit_ms=(\\d+) exit_code=3 signal=0 "
                                           "stdout=nested-hello from nested total_ms=(\\d+)")))
      << "the task did not run to completion as expected; serial:\n"
      << vm.Tail();
  std::printf("[ figure ] outer QEMU start -> agent running: %.1f s (TCG)\n", outer_boot);
  std::printf("[ figure ] inner StartTask: %.1f s, StartTask -> task exited: %.1f s (TCG in TCG)\n",
              std::stod(m[1]) / 1000, std::stod(m[2]) / 1000);
  std::printf("[ figure ] agent total %.1f s; outer QEMU start -> result: %.1f s\n", std::stod(m[3]) / 1000,
              total);
  // The agent powers the machine off after its report: a clean shutdown, QEMU exits 0.
  EXPECT_EQ(vm.WaitForExit(180s), 0) << vm.Tail();
}

}  // namespace
}  // namespace nomados_test
