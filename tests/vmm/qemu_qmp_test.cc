// The QEMU backend against fake-qemu: a VM that stops with an internal error while QEMU keeps running is
// detected by Wait(), QEMU is killed, and the end is reported as kInternalError.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "base/process.h"
#include "temp_dir.h"
#include "vmm/vmm.h"

namespace nfc::vmm {
namespace {

using namespace std::chrono_literals;

TEST(QemuQmpTest, InternalErrorThatDoesNotEndQemuIsDetected) {
  test_support::TempDir dir("vmm-qmp");
  std::ofstream(dir.Path("vmlinux")) << "k";
  std::string wrapper = dir.Path("qemu");
  std::ofstream(wrapper) << "#!/bin/sh\nexec '" << NFC_FAKE_QEMU << "' --internal-error-after 300 \"$@\"\n";
  ::chmod(wrapper.c_str(), 0755);
  VmConfig c;
  c.id = "stuck";
  c.state_dir = dir.path();
  c.vmm_binary = wrapper;
  c.kernel_path = dir.Path("vmlinux");
  c.allow_kvm = false;
  c.kill_with_owner = true;
  auto v = CreateVmm(Backend::kQemu, c);
  ASSERT_TRUE(v.ok()) << v.error().message();
  ASSERT_TRUE((*v)->Start().ok());
  EXPECT_EQ((*v)->Record().vmm_version, "7.2.0");
  auto exit = (*v)->Wait(30s);
  ASSERT_TRUE(exit.ok()) << exit.error().message();
  EXPECT_EQ(exit->kind, VmExit::Kind::kInternalError) << exit->detail;
  EXPECT_NE(exit->detail.find("internal-error"), std::string::npos) << exit->detail;
  ProcessIdentity id{(*v)->Record().pid, (*v)->Record().start_time};
  EXPECT_FALSE(id.IsAlive()) << "QEMU must be killed";
}

}  // namespace
}  // namespace nfc::vmm
