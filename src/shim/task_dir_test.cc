#include "shim/task_dir.h"

#include <gtest/gtest.h>

namespace nfc::shim {
namespace {

TEST(TaskDirName, NomadIdsStayReadable) {
  std::string name = TaskDirName("0b2a6a56-54d1-4e1c-b0a6-d3a0b1c3a7c1/web/0f1e2d3c");
  EXPECT_EQ(name.rfind("0b2a6a56.web.", 0), 0u) << name;
  EXPECT_EQ(name.find('/'), std::string::npos);
  EXPECT_LE(name.size(), 8u + 1 + 24 + 1 + 16);
}

TEST(TaskDirName, DistinctIdsNeverCollide) {
  EXPECT_NE(TaskDirName("a/b.c/x"), TaskDirName("a.b/c/x"));
  EXPECT_NE(TaskDirName("a/b/x"), TaskDirName("a.b.x"));
  EXPECT_NE(TaskDirName(std::string(300, 'a') + "1"), TaskDirName(std::string(300, 'a') + "2"));
}

TEST(TaskDirName, HostileIdsCannotEscape) {
  for (std::string id : {"..", "../../etc", ".", "", "a/../../b", "x\ny", "/abs"}) {
    std::string name = TaskDirName(id);
    EXPECT_FALSE(name.empty());
    EXPECT_NE(name[0], '.') << id;
    EXPECT_EQ(name.find('/'), std::string::npos) << id;
    EXPECT_EQ(name.find('\n'), std::string::npos) << id;
    EXPECT_LE(name.size(), 50u);
  }
}

}  // namespace
}  // namespace nfc::shim
