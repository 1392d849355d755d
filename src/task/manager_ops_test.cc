// The plugin's side of the task lifecycle without a shim: a task recovered as exited answers illegal calls
// from its cached phase, with the message the shim would give, and never dials the (absent) control socket.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shim/exit_record.h"
#include "task/manager.h"
#include "temp_dir.h"

namespace nfc::task {
namespace {

class ManagerOpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pid_t pid = ::fork();  // a pid that existed and is gone: the shim of a task that ended while we were away
    if (pid == 0) ::_exit(0);
    ::waitpid(pid, nullptr, 0);
    DriverState s;
    s.task_id = "alloc-1/web/0123abcd";
    s.alloc_id = "alloc-1";
    s.task_name = "web";
    s.task_dir = dir_.path();
    s.control_socket = dir_.Path("control.sock");  // never created: a call that reaches it fails differently
    s.exit_record = dir_.Path("exit.json");
    s.shim = {pid, 1};
    s.backend = "qemu";
    s.vcpus = 1;
    s.memory_mib = 128;
    ASSERT_TRUE(shim::WriteExitRecord(s.exit_record, recorded_).ok());
    handle_.config.id = s.task_id;
    handle_.driver_state = s.Encode();
  }

  test_support::TempDir dir_{"manager-ops"};
  ExitResult recorded_{143, 15, false, "", 1700000000000000000};
  driver::TaskHandle handle_;
  Manager manager_;
};

TEST_F(ManagerOpsTest, ExitedTaskRefusesSignalAndExecWithTheShimsMessage) {
  ASSERT_TRUE(manager_.RecoverTask(handle_).ok());
  const std::string id = handle_.config.id;
  Status signalled = manager_.SignalTask(id, "SIGTERM");
  ASSERT_FALSE(signalled.ok());
  EXPECT_EQ(signalled.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(signalled.error().message(), "signal task " + id + ": signal: task is exited");
  auto exec = manager_.ExecTask(id, {"/bin/true"}, std::chrono::seconds(1));
  ASSERT_FALSE(exec.ok());
  EXPECT_EQ(exec.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(exec.error().message(), "exec in task " + id + ": exec: task is exited");
  auto stream = manager_.ExecStreaming(id, {"/bin/sh"}, true, 24, 80);
  ASSERT_FALSE(stream.ok());
  EXPECT_EQ(stream.error().message(), "exec in task " + id + ": exec: task is exited");
}

TEST_F(ManagerOpsTest, ExitedTaskAnswersWaitAndInspectFromTheRecord) {
  ASSERT_TRUE(manager_.RecoverTask(handle_).ok());
  auto waited = manager_.WaitTask(handle_.config.id, [] { return false; });
  ASSERT_TRUE(waited.ok()) << waited.error().message();
  EXPECT_EQ(*waited, recorded_);
  auto info = manager_.InspectTask(handle_.config.id);
  ASSERT_TRUE(info.ok()) << info.error().message();
  EXPECT_EQ(info->state, driver::TaskState::kExited);
  EXPECT_EQ(info->result, recorded_);
}

}  // namespace
}  // namespace nfc::task
