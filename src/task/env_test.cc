#include "task/env.h"

#include <gtest/gtest.h>

namespace nfc::task {
namespace {

TEST(TaskEnvOverrides, NomadEnvWinsOverTaskConfigEnv) {
  auto env = TaskEnvOverrides({{"A", "task"}, {"B", "task"}}, {{"B", "nomad"}, {"NOMAD_ALLOC_ID", "x"}});
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(env->at("A"), "task");
  EXPECT_EQ(env->at("B"), "nomad");
  EXPECT_EQ(env->at("NOMAD_ALLOC_ID"), "x");
  EXPECT_EQ(env->size(), 3u);
}

TEST(TaskEnvOverrides, BadNamesAndValuesAreNamed) {
  auto bad_name = TaskEnvOverrides({{"A=B", "x"}}, {});
  ASSERT_FALSE(bad_name.ok());
  EXPECT_NE(bad_name.error().message().find("task config env: invalid environment variable name \"A=B\""),
            std::string::npos);
  auto empty = TaskEnvOverrides({}, {{"", "x"}});
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message().find("Nomad task env"), std::string::npos);
  auto nul = TaskEnvOverrides({{"K", std::string("a\0b", 3)}}, {});
  ASSERT_FALSE(nul.ok());
  EXPECT_NE(nul.error().message().find("K contains a NUL"), std::string::npos);
}

}  // namespace
}  // namespace nfc::task
