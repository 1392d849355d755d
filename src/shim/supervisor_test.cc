// The supervisor with a fake VMM: start failures, crashes, the boot timeout, stops, and the phase checks.
// No guest ever connects (the fake refuses every connection), so these cover the paths a real VM rarely
// takes. Each test polls with deadlines; none sleeps before comparing.
#include "shim/supervisor.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "shim/exit_record.h"
#include "temp_dir.h"

namespace nfc::shim {
namespace {

using namespace std::chrono_literals;

// What the test controls and observes of the fake; shared with the fake the supervisor owns.
struct FakeVmmState {
  std::mutex mu;
  std::condition_variable cv;
  Status start_result = Ok();
  std::optional<vmm::VmExit> exit;  // set: the VMM process is gone
  bool started = false;
  bool killed = false;
  int shutdown_requests = 0;
  int connect_attempts = 0;

  void End(vmm::VmExit::Kind kind, std::string detail) {
    std::lock_guard<std::mutex> lock(mu);
    if (!exit) exit = vmm::VmExit{kind, -1, std::move(detail)};
    cv.notify_all();
  }
};

class FakeVmm final : public vmm::Vmm {
 public:
  explicit FakeVmm(std::shared_ptr<FakeVmmState> state) : state_(std::move(state)) {}

  Status Start() override {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->started = state_->start_result.ok();
    return state_->start_result;
  }
  Result<vmm::VmExit> Wait(std::chrono::milliseconds timeout) override {
    std::unique_lock<std::mutex> lock(state_->mu);
    if (!state_->cv.wait_for(lock, timeout, [&] { return state_->exit.has_value(); }))
      return Error::Timeout("fake VMM still running");
    return *state_->exit;
  }
  // The guest reboots on the request, which ends the VMM (a guest without a working init does that).
  Status RequestShutdown() override {
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->shutdown_requests++;
    }
    state_->End(vmm::VmExit::Kind::kGuestStopped, "exit status 0");
    return Ok();
  }
  Status Kill() override {
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->killed = true;
    }
    state_->End(vmm::VmExit::Kind::kKilled, "killed by signal 9 (SIGKILL)");
    return Ok();
  }
  // The guest never listens.
  Result<UniqueFd> ConnectGuest(uint32_t, std::chrono::milliseconds timeout) override {
    std::unique_lock<std::mutex> lock(state_->mu);
    state_->connect_attempts++;
    state_->cv.wait_for(lock, std::min<std::chrono::milliseconds>(timeout, 10ms),
                        [&] { return state_->exit.has_value(); });
    return Error::Unavailable("fake guest is not listening");
  }
  vmm::VmRecord Record() const override {
    vmm::VmRecord r;
    r.backend = vmm::Backend::kFirecracker;
    r.id = "fake";
    r.pid = -1;
    return r;
  }
  Status Snapshot(const vmm::SnapshotFiles&) override {
    return Error::Unimplemented("the supervisor never snapshots");
  }

 private:
  std::shared_ptr<FakeVmmState> state_;
};

bool Eventually(const std::function<bool()>& condition, std::chrono::milliseconds limit = 3000ms) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

class SupervisorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.task_id = "task-1";
    config_.task_dir = dir_.path();
    config_.backend = vmm::Backend::kFirecracker;
    config_.stdout_path = "/dev/null";
    config_.stderr_path = "/dev/null";
    config_.boot_timeout_millis = 60000;
    config_.final_log_flush_millis = 100;
  }
  void TearDown() override {
    if (run_.joinable()) run_.join();
    supervisor_.reset();
  }

  Supervisor& Make() {
    auto state = fake_;
    supervisor_ = std::make_unique<Supervisor>(
        config_, [state](vmm::Backend, const vmm::VmConfig&) -> Result<std::unique_ptr<vmm::Vmm>> {
          return std::unique_ptr<vmm::Vmm>(std::make_unique<FakeVmm>(state));
        });
    return *supervisor_;
  }
  // Boot() and then Run() on its own thread, as shim_main does on its main thread.
  Supervisor& Booted() {
    Supervisor& s = Make();
    Status booted = s.Boot();
    EXPECT_TRUE(booted.ok()) << booted.error().message();
    run_ = std::thread([&s] { s.Run(); });
    return s;
  }
  Phase PhaseOf() { return supervisor_->Inspect().state; }
  ExitResult WaitResult() {
    auto r = supervisor_->Wait([] { return false; });
    EXPECT_TRUE(r.ok()) << r.error().message();
    return r.ok() ? *r : ExitResult{};
  }

  test_support::TempDir dir_{"supervisor"};
  ShimConfig config_;
  std::shared_ptr<FakeVmmState> fake_ = std::make_shared<FakeVmmState>();
  std::unique_ptr<Supervisor> supervisor_;
  std::thread run_;
};

TEST_F(SupervisorTest, VmmStartFailureLeavesNothingRunningAndReturnsTheError) {
  fake_->start_result = Error::Unavailable("fake: /dev/kvm is busy");
  Supervisor& s = Make();
  Status booted = s.Boot();
  ASSERT_FALSE(booted.ok());
  EXPECT_EQ(booted.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(booted.error().message(), "start the VM: fake: /dev/kvm is busy");
  struct stat st;
  EXPECT_NE(::stat(dir_.Path("vmm.json").c_str(), &st), 0) << "a VMM record for a VMM that never ran";
  InspectInfo info = s.Inspect();
  EXPECT_EQ(info.state, Phase::kExited);
  EXPECT_TRUE(info.exited);
  EXPECT_EQ(info.vmm_pid, 0);
  EXPECT_EQ(info.result.err, "start the VM: fake: /dev/kvm is busy");
  // Waiters and a stop get the failure at once; there is nothing to signal.
  EXPECT_EQ(WaitResult().err, "start the VM: fake: /dev/kvm is busy");
  auto stopped = s.Stop(SIGTERM, 10ms);
  ASSERT_TRUE(stopped.ok()) << stopped.error().message();
  EXPECT_EQ(stopped->exit_code, 1);
  EXPECT_EQ(s.Signal(SIGTERM).error().message(), "signal: task is exited");
  EXPECT_EQ(fake_->connect_attempts, 0);
}

TEST_F(SupervisorTest, VmmIsKilledWhenItsRecordCannotBeWritten) {
  config_.task_dir = dir_.Path("missing");  // vmm.json cannot be written there
  Supervisor& s = Make();
  Status booted = s.Boot();
  ASSERT_FALSE(booted.ok());
  EXPECT_NE(booted.error().message().find("record the VMM"), std::string::npos) << booted.error().message();
  EXPECT_TRUE(fake_->killed);
  EXPECT_EQ(s.Inspect().state, Phase::kExited);
}

TEST_F(SupervisorTest, VmmCrashBeforeTheGuestConnectsIsRecordedWithTheCrash) {
  Supervisor& s = Booted();
  EXPECT_EQ(PhaseOf(), Phase::kBooting);
  ASSERT_TRUE(Eventually([&] {
    std::lock_guard<std::mutex> lock(fake_->mu);
    return fake_->connect_attempts > 0;
  }));
  fake_->End(vmm::VmExit::Kind::kVmmCrashed, "exit status 1");
  ExitResult r = WaitResult();
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.signal, 0);
  EXPECT_EQ(r.err, "the VMM (firecracker) crashed: exit status 1");
  EXPECT_GT(r.completed_at_unix_nanos, 0);
  auto record = ReadExitRecord(dir_.Path("exit.json"));
  ASSERT_TRUE(record.ok()) << record.error().message();
  ASSERT_TRUE(record->has_value());
  EXPECT_EQ(**record, r);
  EXPECT_EQ(s.Inspect().state, Phase::kExited);
}

TEST_F(SupervisorTest, BootTimeoutRecordsTheTimeoutAndKillsTheVm) {
  config_.boot_timeout_millis = 30;
  Supervisor& s = Booted();
  ExitResult r = WaitResult();
  EXPECT_EQ(r.exit_code, 128 + SIGKILL);
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_EQ(r.err.rfind("the guest agent did not answer within 0 s of the VM starting", 0), 0u) << r.err;
  EXPECT_TRUE(fake_->killed);
  run_.join();  // Run() ends: the VM is gone and the exit durable
  InspectInfo info = s.Inspect();
  EXPECT_EQ(info.state, Phase::kExited);
  EXPECT_EQ(info.last_error, r.err);
}

TEST_F(SupervisorTest, StopDuringBootEndsTheVmAndAnswersTheResult) {
  Supervisor& s = Booted();
  EXPECT_EQ(PhaseOf(), Phase::kBooting);
  auto r = s.Stop(SIGTERM, 50ms);
  ASSERT_TRUE(r.ok()) << r.error().message();
  // No guest to signal: the VM was asked to shut down, and it did.
  EXPECT_EQ(fake_->shutdown_requests, 1);
  EXPECT_FALSE(fake_->killed);
  EXPECT_EQ(r->exit_code, 1);
  EXPECT_NE(r->err.find("the VM shut down without reporting the workload's exit"), std::string::npos)
      << r->err;
  EXPECT_EQ(PhaseOf(), Phase::kExited);
  // A second stop answers the same result without touching the VM again.
  auto again = s.Stop(SIGTERM, 50ms);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *r);
  EXPECT_EQ(fake_->shutdown_requests, 1);
}

TEST_F(SupervisorTest, OperationsAreCheckedAgainstThePhase) {
  Supervisor& s = Booted();
  ExecRequest exec;
  exec.argv = {"/bin/true"};
  // Booting: no workload yet.
  EXPECT_EQ(s.Signal(SIGTERM).error().message(), "signal: task is booting");
  EXPECT_EQ(s.Exec(exec).error().message(), "exec: task is booting");
  EXPECT_TRUE(s.Stats().ok());
  fake_->End(vmm::VmExit::Kind::kVmmCrashed, "killed by signal 11 (SIGSEGV)");
  WaitResult();
  // Exited.
  Status sig = s.Signal(SIGTERM);
  ASSERT_FALSE(sig.ok());
  EXPECT_EQ(sig.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(sig.error().message(), "signal: task is exited");
  auto ex = s.Exec(exec);
  ASSERT_FALSE(ex.ok());
  EXPECT_EQ(ex.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(ex.error().message(), "exec: task is exited");
  // Shutdown: answered, then the shim may end.
  run_.join();
  EXPECT_FALSE(s.WaitForShutdown(0ms));
  ASSERT_TRUE(s.Shutdown().ok());
  s.AfterShutdownReply();
  EXPECT_TRUE(s.WaitForShutdown(0ms));
  EXPECT_EQ(PhaseOf(), Phase::kShutDown);
  EXPECT_EQ(s.Signal(SIGTERM).error().message(), "signal: task is shut down");
}

TEST_F(SupervisorTest, WaitReturnsTheRecordedResultToEveryWaiter) {
  Supervisor& s = Booted();
  std::atomic<int> waiting{0};
  std::vector<std::future<Result<ExitResult>>> waiters;
  waiters.reserve(4);
  for (int i = 0; i < 4; i++) {
    waiters.push_back(std::async(std::launch::async, [&] {
      waiting++;
      return s.Wait([] { return false; });
    }));
  }
  ASSERT_TRUE(Eventually([&] { return waiting.load() == 4; }));
  fake_->End(vmm::VmExit::Kind::kInternalError, "KVM internal error");
  ExitResult first;
  for (size_t i = 0; i < waiters.size(); i++) {
    auto r = waiters[i].get();
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->err, "the VM stopped on a hypervisor internal error: KVM internal error");
    if (i == 0) first = *r;
    EXPECT_EQ(*r, first);
  }
  // A waiter that comes later gets the same.
  EXPECT_EQ(WaitResult(), first);
}

TEST_F(SupervisorTest, WaitEndsWhenTheCallerGoesAway) {
  Supervisor& s = Booted();
  auto r = s.Wait([] { return true; });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kCancelled);
  fake_->End(vmm::VmExit::Kind::kVmmCrashed, "exit status 2");
}

// A plugin cleaning up after an interrupted start may ask for a shutdown before the shim started its VMM: the
// boot is cancelled, no VMM is left behind, and the shutdown is answered.
TEST_F(SupervisorTest, AShutdownBeforeTheVmmStartedCancelsTheBoot) {
  Supervisor& s = Make();
  auto shutdown = std::async(std::launch::async, [&s] { return s.Shutdown(); });
  ASSERT_TRUE(Eventually([&] { return PhaseOf() == Phase::kStopping; }));
  Status booted = s.Boot();
  ASSERT_FALSE(booted.ok());
  EXPECT_EQ(booted.error().code(), ErrorCode::kCancelled);
  Status answered = shutdown.get();
  EXPECT_TRUE(answered.ok()) << answered.error().message();
  std::lock_guard<std::mutex> lock(fake_->mu);
  EXPECT_FALSE(fake_->started);
  EXPECT_EQ(PhaseOf(), Phase::kExited);
}

}  // namespace
}  // namespace nfc::shim
