// Snapshots on the QEMU backend (label `vm`, real guests under TCG): a running guest is paused and saved with
// Vmm::Snapshot, its QEMU killed, and a new QEMU started from the file (VmConfig::restore_from) carries on
// the same guest: the same boot id on the control channel, the workload's later output and its exit code.
// A broken or missing snapshot fails the start cleanly. The figures printed (cold boot vs restore, file size)
// are information, not pass/fail.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "guest_boot.h"
#include "require.h"

namespace nfc::vmm::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kBootTimeout = 120s;

long long Ms(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

class SnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NFC_REQUIRE_OR_SKIP(access("/usr/bin/qemu-system-x86_64", X_OK) == 0, "qemu-system-x86 is not installed");
    artifacts_ = GuestArtifacts::Find();
    ASSERT_TRUE(artifacts_.ok()) << "guest artifacts missing: build the guest-artifacts target";
    auto w = GuestWorkdir::Create();
    ASSERT_TRUE(w.ok()) << w.error().message();
    work_ = std::move(w).value();
  }

  void TearDown() override {
    if (HasFailure()) std::cerr << "---- console\n" << ReadFile(work_->dir() + "/snap.console.log");
  }

  GuestArtifacts artifacts_;
  std::unique_ptr<GuestWorkdir> work_;
};

TEST_F(SnapshotTest, RestoredQemuVmCarriesOnTheSameGuest) {
  // The workload prints, then waits 2 s of guest time: the snapshot falls inside that wait.
  const std::vector<std::string> argv = {"/bin/sh", "-c", "echo before; sleep 2; echo after; exit 3"};
  auto cold = BootGuest(artifacts_, *work_, "snap", argv, kBootTimeout);
  ASSERT_TRUE(cold.ok()) << cold.error().message();
  uint64_t boot_id = cold->agent->boot_id();
  ASSERT_TRUE(AwaitOutput(*cold->agent, "before\n", kBootTimeout).ok());

  SnapshotFiles files{work_->dir() + "/snap.state", ""};
  auto t_snap = Clock::now();
  Status saved = cold->vmm->Snapshot(files);
  ASSERT_TRUE(saved.ok()) << saved.error().message();
  auto snap_ms = Ms(Clock::now() - t_snap);
  struct stat st {};
  ASSERT_EQ(::stat(files.state_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_GT(st.st_size, 1 << 20) << "a 256 MiB guest's state is more than a megabyte";
  cold->agent.reset();
  ASSERT_TRUE(cold->vmm->Kill().ok());
  ASSERT_TRUE(cold->vmm->Wait(kBootTimeout).ok());

  auto warm = BootGuest(artifacts_, *work_, "snap", argv, kBootTimeout, {.restore_from = files});
  ASSERT_TRUE(warm.ok()) << warm.error().message();
  EXPECT_EQ(warm->agent->boot_id(), boot_id) << "a restored VM is the same boot of the same guest";
  auto w = CollectWorkload(*warm->agent, kBootTimeout);
  ASSERT_TRUE(w.ok()) << w.error().message();
  EXPECT_EQ(w->exit.exit_code, 3);
  EXPECT_EQ(w->out, "before\nafter\n") << "nothing acknowledged before the snapshot: all of it, once";
  auto exit = warm->vmm->Wait(kBootTimeout);
  ASSERT_TRUE(exit.ok()) << exit.error().message();
  EXPECT_EQ(exit->kind, VmExit::Kind::kGuestStopped) << exit->detail;

  std::cout << "[figures] cold boot to agent " << Ms(cold->t_connected - cold->t_start) << " ms; snapshot "
            << snap_ms << " ms, " << st.st_size / 1024 << " KiB; restore to agent "
            << Ms(warm->t_connected - warm->t_start) << " ms (QEMU up " << Ms(warm->t_started - warm->t_start)
            << " ms)\n";
}

TEST_F(SnapshotTest, AStreamQemuCannotLoadFailsTheStartWithoutLeftovers) {
  std::string bad = work_->dir() + "/bad.state";
  std::ofstream(bad) << "not a migration stream";
  auto b =
      BootGuest(artifacts_, *work_, "snap", {"/bin/true"}, 20s, {.restore_from = SnapshotFiles{bad, ""}});
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().message().find("restore " + bad), std::string::npos) << b.error().message();
  EXPECT_NE(access((work_->dir() + "/qmp.sock").c_str(), F_OK), 0) << "the failed start removes its sockets";
}

TEST_F(SnapshotTest, AMissingSnapshotIsRefusedBeforeAnythingStarts) {
  auto b = BootGuest(artifacts_, *work_, "snap", {"/bin/true"}, 20s,
                     {.restore_from = SnapshotFiles{work_->dir() + "/absent.state", ""}});
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().message().find("restore_from.state_path"), std::string::npos) << b.error().message();
}

}  // namespace
}  // namespace nfc::vmm::testing
