#include "shim/exit_record.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "temp_dir.h"

namespace nfc::shim {
namespace {

class ExitRecordTest : public ::testing::Test {
 protected:
  int CountEntries() {
    int n = 0;
    DIR* d = opendir(dir_.path().c_str());
    while (auto* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
    return n;
  }
  test_support::TempDir dir_{"exit"};
};

TEST_F(ExitRecordTest, RoundTripsEveryField) {
  ExitResult in{143, 15, true, "guest \"said\"\nbye", 1700000000123456789};
  ASSERT_TRUE(WriteExitRecord(dir_.Path("exit.json"), in).ok());
  auto out = ReadExitRecord(dir_.Path("exit.json"));
  ASSERT_TRUE(out.ok()) << out.error().message();
  ASSERT_TRUE(out->has_value());
  EXPECT_EQ(**out, in);
  EXPECT_EQ(CountEntries(), 1) << "the temp file must be gone after the rename";
}

TEST_F(ExitRecordTest, MissingRecordIsNotAnError) {
  auto out = ReadExitRecord(dir_.Path("exit.json"));
  ASSERT_TRUE(out.ok());
  EXPECT_FALSE(out->has_value());
}

TEST_F(ExitRecordTest, CorruptRecordIsDataLossNamingThePath) {
  std::ofstream(dir_.Path("exit.json")) << "{\"version\":1,\"exit_code\":";
  auto out = ReadExitRecord(dir_.Path("exit.json"));
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().code(), ErrorCode::kDataLoss);
  EXPECT_NE(out.error().message().find(dir_.Path("exit.json")), std::string::npos);
}

TEST_F(ExitRecordTest, UnknownVersionIsRefused) {
  std::ofstream(dir_.Path("exit.json"))
      << R"({"version":2,"exit_code":0,"signal":0,"oom_killed":false,"err":"",)"
      << R"("completed_at_unix_nanos":0})";
  auto out = ReadExitRecord(dir_.Path("exit.json"));
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().message().find("version"), std::string::npos);
}

TEST_F(ExitRecordTest, ReplacesAnOlderRecordAtomically) {
  ASSERT_TRUE(WriteExitRecord(dir_.Path("exit.json"), {1, 0, false, "", 1}).ok());
  ASSERT_TRUE(WriteExitRecord(dir_.Path("exit.json"), {2, 0, false, "", 2}).ok());
  auto out = ReadExitRecord(dir_.Path("exit.json"));
  ASSERT_TRUE(out.ok() && out->has_value());
  EXPECT_EQ((*out)->exit_code, 2);
}

TEST_F(ExitRecordTest, InvalidUtf8InErrDoesNotThrow) {
  ASSERT_TRUE(WriteExitRecord(dir_.Path("exit.json"), {0, 0, false, std::string("panic \xff\xfe"), 1}).ok());
  auto out = ReadExitRecord(dir_.Path("exit.json"));
  ASSERT_TRUE(out.ok() && out->has_value());
  EXPECT_EQ((*out)->err.substr(0, 6), "panic ");
}

}  // namespace
}  // namespace nfc::shim
