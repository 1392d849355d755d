#include "task/inventory.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>

#include "shim/exit_record.h"
#include "temp_dir.h"

namespace nfc::task {
namespace {

class InventoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::mkdir(data_.Path("tasks").c_str(), 0700), 0);
    // A pid that existed and is gone: the "shim" of tasks whose shim died.
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    ::waitpid(pid, nullptr, 0);
    dead_pid_ = pid;
  }

  // A task directory as StartTask leaves it once the VM runs.
  std::string AddTask(const std::string& alloc, const std::string& name, int64_t started) {
    DriverState s;
    s.task_id = alloc + "/" + name + "/0123abcd";
    s.alloc_id = alloc;
    s.task_name = name;
    s.task_dir = data_.path() + "/tasks/" + shim::TaskDirName(s.task_id);
    s.control_socket = s.task_dir + "/control.sock";
    s.exit_record = s.task_dir + "/exit.json";
    s.shim = {dead_pid_, 1};
    s.backend = "qemu";
    s.vcpus = 1;
    s.memory_mib = 128;
    s.image_reference = "demo:1";
    s.started_at_unix_nanos = started;
    EXPECT_EQ(::mkdir(s.task_dir.c_str(), 0700), 0);
    std::ofstream(s.task_dir + "/driver_state.json") << s.Encode();
    return s.task_dir;
  }

  test_support::TempDir data_{"inventory"};
  pid_t dead_pid_ = 0;
};

TEST_F(InventoryTest, MissingDataDirIsEmpty) {
  auto tasks = ListTasks(data_.Path("nothing-here"));
  ASSERT_TRUE(tasks.ok());
  EXPECT_TRUE(tasks->empty());
}

TEST_F(InventoryTest, StatesFromDiskWhenShimsAreGone) {
  std::string exited = AddTask("5f4c0b7e-aaaa", "web", 200);
  ASSERT_TRUE(shim::WriteExitRecord(exited + "/exit.json", shim::ExitResult{3, 0, false, "", 1}).ok());
  AddTask("5f4c0b7e-aaaa", "db", 100);  // no exit record, shim gone: lost
  ASSERT_EQ(::mkdir(data_.Path("tasks/half-started").c_str(), 0700), 0);
  std::string interrupted = data_.Path("tasks/interrupted");
  ASSERT_EQ(::mkdir(interrupted.c_str(), 0700), 0);
  std::ofstream(interrupted + "/" + std::string(kStartRecordFile))
      << StartRecord{"5f4c0b7e-aaaa/cache/0123abcd", "sha256:0", {dead_pid_, 1}, "", ""}.Encode();

  auto tasks = ListTasks(data_.path(), std::chrono::milliseconds(200));
  ASSERT_TRUE(tasks.ok()) << tasks.error().message();
  ASSERT_EQ(tasks->size(), 4u);
  // Sorted by start time; the half-started ones have none yet.
  std::map<std::string, std::string> early;
  for (int i = 0; i < 2; i++)
    early[(*tasks)[i].dir.substr((*tasks)[i].dir.rfind('/') + 1)] = (*tasks)[i].state;
  EXPECT_EQ(early["half-started"], "starting");
  EXPECT_EQ(early["interrupted"], "interrupted");
  EXPECT_EQ((*tasks)[2].task_id, "5f4c0b7e-aaaa/db/0123abcd");
  EXPECT_EQ((*tasks)[2].state, "lost");
  EXPECT_EQ((*tasks)[3].state, "exited");
  EXPECT_EQ((*tasks)[3].result, "exit code 3");
  EXPECT_EQ((*tasks)[3].driver_state.image_reference, "demo:1");
}

TEST_F(InventoryTest, FindTaskByIdNameOrAllocPrefix) {
  AddTask("5f4c0b7e-aaaa", "web", 1);
  AddTask("5f4c0b7e-aaaa", "db", 2);
  AddTask("9e11d3c0-bbbb", "web", 3);
  auto tasks = ListTasks(data_.path(), std::chrono::milliseconds(200));
  ASSERT_TRUE(tasks.ok());

  auto by_id = FindTask(*tasks, "9e11d3c0-bbbb/web/0123abcd");
  ASSERT_TRUE(by_id.ok());
  EXPECT_EQ(by_id->driver_state.alloc_id, "9e11d3c0-bbbb");
  auto by_name = FindTask(*tasks, "db");
  ASSERT_TRUE(by_name.ok());
  EXPECT_EQ(by_name->task_id, "5f4c0b7e-aaaa/db/0123abcd");
  auto by_alloc = FindTask(*tasks, "9e11");
  ASSERT_TRUE(by_alloc.ok());
  EXPECT_EQ(by_alloc->task_id, "9e11d3c0-bbbb/web/0123abcd");

  auto ambiguous = FindTask(*tasks, "web");
  ASSERT_FALSE(ambiguous.ok());
  EXPECT_NE(ambiguous.error().message().find("matches 2 tasks"), std::string::npos);
  EXPECT_NE(ambiguous.error().message().find("5f4c0b7e-aaaa/web/0123abcd"), std::string::npos);
  EXPECT_NE(ambiguous.error().message().find("9e11d3c0-bbbb/web/0123abcd"), std::string::npos);
  auto short_prefix = FindTask(*tasks, "9e1");
  ASSERT_FALSE(short_prefix.ok());
  EXPECT_EQ(short_prefix.error().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace nfc::task
