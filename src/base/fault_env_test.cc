#include "base/fault_env.h"

#include <gtest/gtest.h>

#include "base/clock.h"
#include "base/fs.h"
#include "temp_dir.h"

namespace nfc {
namespace {

using Op = FaultInjectingEnv::Op;

class FaultEnvTest : public ::testing::Test {
 protected:
  test_support::TempDir dir_{"fault-env-test"};
  FaultInjectingEnv env_;
};

TEST_F(FaultEnvTest, PassesThroughWithoutFaults) {
  Env& env = env_;
  ASSERT_TRUE(env.MakeDirs(dir_.Path("a/b"), 0755).ok());
  ASSERT_TRUE(env.MakeDir(dir_.Path("a/c"), 0755).ok());
  ASSERT_TRUE(env.WriteFileDurably(dir_.Path("a/b/state.json"), "{}", 0600).ok());
  EXPECT_EQ(env.ReadFile(dir_.Path("a/b/state.json"), 10).value(), "{}");
  EXPECT_TRUE(env.Exists(dir_.Path("a/c")));
  ASSERT_TRUE(env.RemoveTree(dir_.Path("a")).ok());
  EXPECT_FALSE(env.Exists(dir_.Path("a")));
  EXPECT_EQ(env_.Calls(Op::kExists), 2);
  EXPECT_EQ(env_.Calls(Op::kWriteFileDurably), 1);
  EXPECT_EQ(env_.Failures(Op::kWriteFileDurably), 0);
}

TEST_F(FaultEnvTest, FailsOnlyTheNamedOperationOnMatchingPaths) {
  env_.FailOn(Op::kWriteFileDurably, "/driver_state.json", ENOSPC);
  Status failed = env_.WriteFileDurably(dir_.Path("driver_state.json"), "x", 0600);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_EQ(failed.error().sys_errno(), ENOSPC);
  EXPECT_NE(failed.error().message().find(dir_.Path("driver_state.json")), std::string::npos);
  EXPECT_FALSE(fs::Exists(dir_.Path("driver_state.json")));  // the real write never happened

  EXPECT_TRUE(env_.WriteFileDurably(dir_.Path("shim.json"), "x", 0600).ok());
  EXPECT_TRUE(env_.ReadFile(dir_.Path("shim.json"), 10).ok());
  EXPECT_TRUE(env_.WriteFileDurably(dir_.Path("driver_state.json.bak"), "x", 0600).ok());
  EXPECT_EQ(env_.Calls(Op::kWriteFileDurably), 3);
  EXPECT_EQ(env_.Failures(Op::kWriteFileDurably), 1);
}

TEST_F(FaultEnvTest, LimitedFaultsFailOnlyTheNextCalls) {
  env_.FailOn(Op::kMakeDir, "/task", EACCES, 2);
  EXPECT_EQ(env_.MakeDir(dir_.Path("task"), 0755).error().code(), ErrorCode::kPermissionDenied);
  EXPECT_FALSE(env_.MakeDir(dir_.Path("task"), 0755).ok());
  EXPECT_TRUE(env_.MakeDir(dir_.Path("task"), 0755).ok());
  EXPECT_EQ(env_.Calls(Op::kMakeDir), 3);
  EXPECT_EQ(env_.Failures(Op::kMakeDir), 2);
}

TEST_F(FaultEnvTest, EveryOperationCanFail) {
  ASSERT_TRUE(fs::WriteFileDurably(dir_.Path("f"), "x").ok());
  for (Op op :
       {Op::kReadFile, Op::kWriteFileDurably, Op::kMakeDir, Op::kMakeDirs, Op::kRemoveTree, Op::kExists})
    env_.FailOn(op, "/f");
  EXPECT_EQ(env_.ReadFile(dir_.Path("f"), 10).error().sys_errno(), EIO);
  EXPECT_FALSE(env_.WriteFileDurably(dir_.Path("f"), "y", 0644).ok());
  EXPECT_FALSE(env_.MakeDir(dir_.Path("f"), 0755).ok());
  EXPECT_FALSE(env_.MakeDirs(dir_.Path("f"), 0755).ok());
  EXPECT_FALSE(env_.RemoveTree(dir_.Path("f")).ok());
  EXPECT_FALSE(env_.Exists(dir_.Path("f")));
  EXPECT_EQ(fs::ReadFile(dir_.Path("f"), 10).value(), "x");
  env_.ClearFaults();
  EXPECT_TRUE(env_.Exists(dir_.Path("f")));
}

TEST_F(FaultEnvTest, ClocksPassThroughUntilFixed) {
  int64_t before = UnixNanosNow();
  int64_t now = env_.UnixNanos();
  EXPECT_GE(now, before);
  auto steady = std::chrono::steady_clock::time_point(std::chrono::seconds(100));
  env_.SetClocks(1'000'000'000, steady);
  EXPECT_EQ(env_.UnixNanos(), 1'000'000'000);
  EXPECT_EQ(env_.SteadyNow(), steady);
  env_.Advance(std::chrono::milliseconds(5));
  EXPECT_EQ(env_.UnixNanos(), 1'005'000'000);
  EXPECT_EQ(env_.SteadyNow(), steady + std::chrono::milliseconds(5));
}

TEST(DefaultEnvTest, IsOneObjectBackedByTheFileSystem) {
  EXPECT_EQ(&DefaultEnv(), &DefaultEnv());
  EXPECT_TRUE(DefaultEnv().Exists("/proc/self/stat"));
  EXPECT_TRUE(DefaultEnv().ReadFile("/proc/self/stat", 4096).ok());
  auto a = DefaultEnv().SteadyNow();
  EXPECT_LE(a, DefaultEnv().SteadyNow());
}

}  // namespace
}  // namespace nfc
