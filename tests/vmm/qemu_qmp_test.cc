// The QEMU backend against fake-qemu: a VM that stops with an internal error while QEMU keeps running is
// detected by Wait(), QEMU is killed, and the end is reported as kInternalError. A volume's lock is held by
// the VMM process for its life; a VM with more devices than microvm has transports is refused before QEMU
// starts.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "base/fs.h"
#include "base/process.h"
#include "temp_dir.h"
#include "vmm/vmm.h"

namespace nfc::vmm {
namespace {

using namespace std::chrono_literals;

// A VM of fake-qemu (with `flags` before QEMU's arguments) in its own state dir below dir.
VmConfig FakeQemuVm(const test_support::TempDir& dir, const std::string& id, const std::string& flags = "") {
  std::ofstream(dir.Path("vmlinux")) << "k";
  std::string wrapper = dir.Path("qemu-" + id);
  std::ofstream(wrapper) << "#!/bin/sh\nexec '" << NFC_FAKE_QEMU << "' " << flags << " \"$@\"\n";
  ::chmod(wrapper.c_str(), 0755);
  ::mkdir(dir.Path(id).c_str(), 0700);
  VmConfig c;
  c.id = id;
  c.state_dir = dir.Path(id);
  c.vmm_binary = wrapper;
  c.kernel_path = dir.Path("vmlinux");
  c.allow_kvm = false;
  c.kill_with_owner = true;
  return c;
}

TEST(QemuQmpTest, InternalErrorThatDoesNotEndQemuIsDetected) {
  test_support::TempDir dir("vmm-qmp");
  VmConfig c = FakeQemuVm(dir, "stuck", "--internal-error-after 300");
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

TEST(QemuDriveLockTest, TheVmmHoldsAVolumesLockForItsWholeLife) {
  test_support::TempDir dir("vmm-lock");
  std::string volume = dir.Path("volume.img");
  std::ofstream(volume) << "disk";
  VmConfig c = FakeQemuVm(dir, "writer");
  c.drives = {{"vol0", volume, false, DriveLock::kExclusive}};
  auto writer = CreateVmm(Backend::kQemu, c);
  ASSERT_TRUE(writer.ok()) << writer.error().message();
  ASSERT_TRUE((*writer)->Start().ok());
  auto reader = fs::TryLockFile(volume, fs::LockMode::kShared);
  ASSERT_FALSE(reader.ok()) << "the running VMM holds the volume";
  VmConfig other = FakeQemuVm(dir, "second");
  other.drives = {{"vol0", volume, false, DriveLock::kExclusive}};
  auto second = CreateVmm(Backend::kQemu, other);
  ASSERT_TRUE(second.ok());
  Status started = (*second)->Start();
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(started.error().message().find("drive vol0"), std::string::npos) << started.error().message();
  ASSERT_TRUE((*writer)->Kill().ok());
  ASSERT_TRUE((*writer)->Wait(30s).ok());
  EXPECT_TRUE(fs::TryLockFile(volume, fs::LockMode::kExclusive).ok()) << "released when the VMM is gone";
}

TEST(QemuDriveLockTest, MoreDevicesThanMicrovmHasTransportsAreRefused) {
  test_support::TempDir dir("vmm-transports");
  std::string disk = dir.Path("disk.img");
  std::ofstream(disk) << "disk";
  VmConfig c = FakeQemuVm(dir, "crowded");
  for (int i = 0; i < 8; i++) c.drives.push_back({"d" + std::to_string(i), disk, true});
  c.guest_channel = GuestChannelConfig{};
  c.guest_channel->socket_path = "agent.sock";
  auto v = CreateVmm(Backend::kQemu, c);
  ASSERT_TRUE(v.ok()) << v.error().message();
  Status started = (*v)->Start();
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(started.error().message().find("needs 9 (8 drives, 0 network interfaces, the guest channel)"),
            std::string::npos)
      << started.error().message();
}

}  // namespace
}  // namespace nfc::vmm
