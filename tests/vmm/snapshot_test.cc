// Snapshots on the QEMU backend (label `vm`, real guests under TCG): a running guest is paused and saved with
// Vmm::Snapshot, its QEMU killed, and a new QEMU started from the file (VmConfig::restore_from) carries on
// the same guest: the same boot id on the control channel, the workload's later output and its exit code.
// A broken or missing snapshot fails the start cleanly. The figures printed (cold boot vs restore, file size)
// are information, not pass/fail.
#include <gtest/gtest.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

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
  Status not_a_template = cold->agent->DeliverTask("{}", std::string(32, 'x'), 1);
  ASSERT_FALSE(not_a_template.ok());
  EXPECT_EQ(not_a_template.error().code(), ErrorCode::kFailedPrecondition)
      << not_a_template.error().message();

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

// Warm start's template (docs/warm-start.md): nomad-init waits for its task; two VMs restored from one
// snapshot of it are handed different tasks and must not share the template's random state, clock or boot id.
TEST_F(SnapshotTest, VmsRestoredFromOneTemplateGetTheirOwnRandomnessClockAndBootId) {
  auto t_template = Clock::now();
  auto tmpl = BootGuest(artifacts_, *work_, "tmpl", {"/bin/true"}, kBootTimeout, {.await_task = true});
  ASSERT_TRUE(tmpl.ok()) << tmpl.error().message();
  auto ready = tmpl->agent->QueryStatus();
  ASSERT_TRUE(ready.ok()) << ready.error().message();
  ASSERT_EQ(ready->phase, guest::GuestPhase::kAwaitingTask) << guest::GuestPhaseName(ready->phase);
  uint64_t template_boot_id = tmpl->agent->boot_id();
  EXPECT_EQ(ready->boot_id, template_boot_id);
  auto template_ms = Ms(Clock::now() - t_template);
  SnapshotFiles files{work_->dir() + "/tmpl.state", ""};
  ASSERT_TRUE(tmpl->vmm->Snapshot(files).ok());
  tmpl->agent.reset();
  ASSERT_TRUE(tmpl->vmm->Kill().ok());
  ASSERT_TRUE(tmpl->vmm->Wait(kBootTimeout).ok());

  // What each VM reports: two kernel UUIDs, 16 bytes of /dev/urandom (the CRNG getrandom() reads), its clock.
  const std::vector<std::string> probe = {
      "/bin/sh", "-c",
      "cat /proc/sys/kernel/random/uuid /proc/sys/kernel/random/uuid; head -c 16 /dev/urandom | od -An -tx1; "
      "date +%s"};
  struct Restored {
    uint64_t boot_id = 0;
    std::vector<std::string> lines;
    long long deliver_to_exit_ms = 0;
  };
  // The first VM is told a time ten days ahead: its clock must be the one it was handed, not the template's.
  constexpr long long kAhead = 10LL * 24 * 3600;
  auto restore_and_run = [&](const std::string& task, long long clock_offset_s) -> Restored {
    Restored out;
    auto r = BootGuest(artifacts_, *work_, "tmpl", {"/bin/true"}, kBootTimeout,
                       {.restore_from = files, .await_task = true});
    EXPECT_TRUE(r.ok()) << r.error().message();
    if (!r.ok()) return out;
    EXPECT_EQ(r->agent->boot_id(), template_boot_id) << "before its task, a restored VM is the template";
    std::string entropy(32, '\0');
    EXPECT_EQ(getrandom(entropy.data(), entropy.size(), 0), 32);
    auto t_deliver = Clock::now();
    auto now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count() +
                  clock_offset_s * 1000000000LL;
    Status delivered =
        r->agent->DeliverTask(guest::TaskSpecToJson(GuestTaskSpec(task, probe)), entropy, now_ns);
    EXPECT_TRUE(delivered.ok()) << delivered.error().message();
    auto status = r->agent->QueryStatus();
    EXPECT_TRUE(status.ok());
    if (status.ok()) out.boot_id = status->boot_id;
    auto w = CollectWorkload(*r->agent, kBootTimeout);
    EXPECT_TRUE(w.ok()) << w.error().message();
    if (!w.ok()) return out;
    out.deliver_to_exit_ms = Ms(w->t_exit_received - t_deliver);
    EXPECT_EQ(w->exit.exit_code, 0) << w->err;
    std::istringstream lines(w->out);
    for (std::string l; std::getline(lines, l);) out.lines.push_back(l);
    EXPECT_TRUE(r->vmm->Wait(kBootTimeout).ok());
    return out;
  };
  Restored a = restore_and_run("task-a", kAhead);
  Restored b = restore_and_run("task-b", 0);
  ASSERT_EQ(a.lines.size(), 4u);
  ASSERT_EQ(b.lines.size(), 4u);
  for (size_t i = 0; i < 3; i++)
    EXPECT_NE(a.lines[i], b.lines[i]) << "line " << i << " is the same in both VMs";
  EXPECT_NE(a.lines[0], a.lines[1]);
  EXPECT_NE(a.boot_id, 0u);
  EXPECT_NE(a.boot_id, template_boot_id);
  EXPECT_NE(b.boot_id, template_boot_id);
  EXPECT_NE(a.boot_id, b.boot_id);
  long long host_now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  EXPECT_NEAR(static_cast<double>(std::stoll(a.lines[3])), static_cast<double>(host_now + kAhead), 120.0)
      << "the guest's clock is the one it was handed";
  EXPECT_NEAR(static_cast<double>(std::stoll(b.lines[3])), static_cast<double>(host_now), 120.0);
  std::cout << "[figures] template boot to awaiting-task " << template_ms
            << " ms; task delivery to exit result " << a.deliver_to_exit_ms << " ms and "
            << b.deliver_to_exit_ms << " ms\n";
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
