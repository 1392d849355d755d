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
  std::string rec = FormatRecord(Format::kJson, Level::kWarn, "driver", "started \"vm\"",
                                 {{"task_id", "a/b/c"}, {"n", 3}}, 1787307330LL * 1000000);
  ASSERT_EQ(rec.back(), '\n');
  EXPECT_EQ(rec.find('\n'), rec.size() - 1);
  auto j = nlohmann::json::parse(rec);
  EXPECT_EQ(j["@level"], "warn");
  EXPECT_EQ(j["@message"], "started \"vm\"");
  EXPECT_EQ(j["@module"], "driver");
  EXPECT_EQ(j["@timestamp"], "2026-08-21T10:15:30.000000Z");
  EXPECT_EQ(j["task_id"], "a/b/c");
  EXPECT_EQ(j["n"], 3);
}

TEST(LogTest, JsonFieldsKeepTheirKind) {
  std::string rec = FormatRecord(Format::kJson, Level::kInfo, "", "m",
                                 {{"pid", 123},
                                  {"neg", -7LL},
                                  {"big", 18446744073709551615ULL},
                                  {"ms", 2.5},
                                  {"oom_killed", false},
                                  {"ready", true},
                                  {"text", "123"},
                                  {"name", std::string("true")}},
                                 0);
  auto j = nlohmann::json::parse(rec);
  EXPECT_TRUE(j["pid"].is_number_integer());
  EXPECT_EQ(j["pid"], 123);
  EXPECT_EQ(j["neg"], -7);
  EXPECT_EQ(j["big"].get<unsigned long long>(), 18446744073709551615ULL);
  EXPECT_TRUE(j["ms"].is_number_float());
  EXPECT_DOUBLE_EQ(j["ms"].get<double>(), 2.5);
  EXPECT_EQ(j["oom_killed"], false);
  EXPECT_EQ(j["ready"], true);
  EXPECT_EQ(j["text"], "123");  // a string that looks like a number stays a string
  EXPECT_EQ(j["name"], "true");
  EXPECT_NE(rec.find("\"pid\":123,"), std::string::npos) << rec;
}

TEST(LogTest, TextFormatPrintsEveryKindPlainly) {
  std::string rec = FormatRecord(Format::kText, Level::kInfo, "", "m",
                                 {{"pid", 123}, {"ok", true}, {"f", 0.5}, {"s", "a b"}}, 0);
  EXPECT_NE(rec.find("m pid=123 ok=true f=0.500000 s=\"a b\"\n"), std::string::npos) << rec;
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
