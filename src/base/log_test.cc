#include "base/log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <regex>

namespace nfc::log {
namespace {

TEST(LogTest, HclogTimestampHasSixFractionalDigitsAndZ) {
  // 2026-08-21T10:15:30.123456Z
  long long micros = 1787307330LL * 1000000 + 123456;
  EXPECT_EQ(HclogTimestamp(micros), "2026-08-21T10:15:30.123456Z");
  EXPECT_EQ(HclogTimestamp(1000000), "1970-01-01T00:00:01.000000Z");
}

TEST(LogTest, JsonRecordIsOneHclogLine) {
  std::string rec = FormatRecord(Format::kJson, Level::kWarn, "driver", "started \"vm\"", {{"task_id", "a/b/c"}, {"n", 3}},
                                 1787307330LL * 1000000);
  ASSERT_EQ(rec.back(), '\n');
  EXPECT_EQ(rec.find('\n'), rec.size() - 1);
  auto j = nlohmann::json::parse(rec);
  EXPECT_EQ(j["@level"], "warn");
  EXPECT_EQ(j["@message"], "started \"vm\"");
  EXPECT_EQ(j["@module"], "driver");
  EXPECT_EQ(j["@timestamp"], "2026-08-21T10:15:30.000000Z");
  EXPECT_EQ(j["task_id"], "a/b/c");
  EXPECT_EQ(j["n"], "3");
}

TEST(LogTest, InvalidUtf8IsReplacedNotThrown) {
  std::string bad = "x\xff\xfey";
  std::string rec = FormatRecord(Format::kJson, Level::kInfo, "", bad, {}, 0);
  EXPECT_TRUE(nlohmann::json::accept(rec));
}

TEST(LogTest, LevelsFilterAndBrokenPipeIsSurvived) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  Configure(p[1], Format::kText, Level::kWarn, "t");
  Info("hidden");
  Warn("shown", {{"k", "v w"}});
  char buf[256] = {};
  ssize_t n = read(p[0], buf, sizeof buf - 1);
  ASSERT_GT(n, 0);
  std::string line(buf, static_cast<size_t>(n));
  EXPECT_NE(line.find("[WARN]  t: shown k=\"v w\""), std::string::npos) << line;
  EXPECT_EQ(line.find("hidden"), std::string::npos);
  close(p[0]);
  signal(SIGPIPE, SIG_IGN);
  Error("after reader left");  // must not crash
  Error("again");
  close(p[1]);
  Configure(2, Format::kText, Level::kInfo);
  EXPECT_EQ(ParseLevel("DEBUG", Level::kInfo), Level::kDebug);
  EXPECT_EQ(ParseLevel("bogus", Level::kInfo), Level::kInfo);
}

}  // namespace
}  // namespace nfc::log
