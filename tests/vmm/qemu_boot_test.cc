// Real VMs (label `vm`): the QEMU backend boots the guest kernel + initramfs with nomad-init (TCG on the CI
// machines), runs a command from a busybox ext4 image, and the host gets its stdout, stderr and exit code
// over the control channel. Graceful and hard stops end the VM; a QEMU killed by someone else is reported.
// Every VM is bounded by timeouts and killed by the Vmm's destructor if a test fails half-way.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>

#include "guest_boot.h"
#include "require.h"

namespace nfc::vmm::testing {
namespace {

using namespace std::chrono_literals;

constexpr auto kBootTimeout = 120s;  // TCG boots in ~3-5 s; shared CI cores can be much slower

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

class QemuBootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NFC_REQUIRE_OR_SKIP(access("/usr/bin/qemu-system-x86_64", X_OK) == 0, "qemu-system-x86 is not installed");
    artifacts_ = GuestArtifacts::Find();
    ASSERT_TRUE(artifacts_.ok()) << "guest artifacts missing: build the guest-artifacts target ("
                                 << artifacts_.vmlinux << ")";
    auto w = GuestWorkdir::Create();
    ASSERT_TRUE(w.ok()) << w.error().message();
    work_ = std::move(w).value();
  }

  // On failure, the console tells what the guest did.
  void DumpConsole(const std::string& name) {
    if (HasFailure())
      std::cerr << "---- console of " << name << "\n" << ReadFile(work_->dir() + "/" + name + ".console.log");
  }

  GuestArtifacts artifacts_;
  std::unique_ptr<GuestWorkdir> work_;
};

TEST_F(QemuBootTest, RunsACommandAndReturnsItsOutputAndExitCode) {
  auto b =
      BootGuest(artifacts_, *work_, "exit7",
                {"/bin/sh", "-c", "echo hello from the guest; echo to stderr >&2; exit 7"}, kBootTimeout);
  ASSERT_TRUE(b.ok()) << b.error().message();
  auto w = CollectWorkload(*b->agent, kBootTimeout);
  ASSERT_TRUE(w.ok()) << w.error().message();
  EXPECT_EQ(w->exit.exit_code, 7);
  EXPECT_EQ(w->exit.signal, 0);
  EXPECT_EQ(w->out, "hello from the guest\n");
  EXPECT_EQ(w->err, "to stderr\n");
  // After the host acknowledged the exit, nomad-init shuts down and reboots: QEMU ends on its own.
  auto exit = b->vmm->Wait(kBootTimeout);
  ASSERT_TRUE(exit.ok()) << exit.error().message();
  EXPECT_EQ(exit->kind, VmExit::Kind::kGuestStopped) << exit->detail;
  EXPECT_FALSE(b->vmm->Record().kvm && access("/dev/kvm", R_OK) != 0);
  DumpConsole("exit7");
}

// Production runs without a serial console (no UART at all): nomad-init must not depend on one.
TEST_F(QemuBootTest, BootsWithTheConsoleOff) {
  auto b = BootGuest(artifacts_, *work_, "noconsole", {"/bin/echo", "quiet boot"}, kBootTimeout,
                     {.quiet = true, .console = false});
  ASSERT_TRUE(b.ok()) << b.error().message();
  EXPECT_TRUE(b->vmm->Record().console_path.empty());
  auto w = CollectWorkload(*b->agent, kBootTimeout);
  ASSERT_TRUE(w.ok()) << w.error().message();
  EXPECT_EQ(w->exit.exit_code, 0);
  EXPECT_EQ(w->out, "quiet boot\n");
  auto exit = b->vmm->Wait(kBootTimeout);
  ASSERT_TRUE(exit.ok()) << exit.error().message();
  EXPECT_EQ(exit->kind, VmExit::Kind::kGuestStopped) << exit->detail;
}

TEST_F(QemuBootTest, GracefulStopEndsTheVm) {
  auto b = BootGuest(artifacts_, *work_, "graceful", {"/bin/sleep", "1000"}, kBootTimeout);
  ASSERT_TRUE(b.ok()) << b.error().message();
  ASSERT_TRUE(b->vmm->RequestShutdown().ok());
  auto w = CollectWorkload(*b->agent, kBootTimeout);
  ASSERT_TRUE(w.ok()) << w.error().message();
  // The stop signal (SIGTERM) ended sleep.
  EXPECT_EQ(w->exit.signal, SIGTERM) << "exit code " << w->exit.exit_code;
  auto exit = b->vmm->Wait(kBootTimeout);
  ASSERT_TRUE(exit.ok()) << exit.error().message();
  EXPECT_EQ(exit->kind, VmExit::Kind::kGuestStopped) << exit->detail;
  DumpConsole("graceful");
}

TEST_F(QemuBootTest, HardStopEndsTheVm) {
  auto b = BootGuest(artifacts_, *work_, "hard", {"/bin/sleep", "1000"}, kBootTimeout);
  ASSERT_TRUE(b.ok()) << b.error().message();
  ASSERT_TRUE(b->vmm->Kill().ok());
  auto exit = b->vmm->Wait(30s);
  ASSERT_TRUE(exit.ok()) << exit.error().message();
  EXPECT_EQ(exit->kind, VmExit::Kind::kKilled) << exit->detail;
  EXPECT_NE(access(b->vmm->Record().api_socket.c_str(), F_OK), 0) << "QMP socket left behind";
}

TEST_F(QemuBootTest, QemuKilledFromOutsideIsReported) {
  auto b = BootGuest(artifacts_, *work_, "crash", {"/bin/sleep", "1000"}, kBootTimeout);
  ASSERT_TRUE(b.ok()) << b.error().message();
  ASSERT_EQ(::kill(b->vmm->Record().pid, SIGKILL), 0);
  auto exit = b->vmm->Wait(30s);
  ASSERT_TRUE(exit.ok()) << exit.error().message();
  EXPECT_EQ(exit->kind, VmExit::Kind::kVmmCrashed);
  EXPECT_NE(exit->detail.find("signal 9"), std::string::npos) << exit->detail;
}

}  // namespace
}  // namespace nfc::vmm::testing
