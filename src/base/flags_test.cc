#include "base/flags.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace nfc::flags {
namespace {

struct Options {
  std::string name;
  int64_t count = 0;
  bool verbose = false;
};

std::vector<Flag> Table(Options* o) {
  return {
      {"--name", "-n", "NAME", "a name.",
       [o](const std::string& v) -> Status {
         o->name = v;
         return Ok();
       }},
      {"--count", "", "N", "a count from 1 to 9.",
       [o](const std::string& v) -> Status {
         auto n = ParseWholeNumber(v, 1, 9);
         if (!n.ok()) return Error::InvalidArgument("expected a whole number from 1 to 9");
         o->count = *n;
         return Ok();
       }},
      {"--verbose", "-v", "", "say more.",
       [o](const std::string&) -> Status {
         o->verbose = true;
         return Ok();
       }},
  };
}

std::string ParseError(std::vector<std::string> args) {
  Options o;
  std::vector<std::string> positional;
  auto r = Parse(Table(&o), args, &positional);
  return r.ok() ? "ok" : r.error().message();
}

TEST(FlagsTest, ParsesValuesSwitchesPositionalsAndTheRestAfterDashes) {
  Options o;
  std::vector<std::string> positional, rest;
  auto r =
      Parse(Table(&o), std::vector<std::string>{"a", "-n", "x", "--count=3", "-v", "b", "--", "--count", "z"},
            &positional, &rest);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(*r, Outcome::kParsed);
  EXPECT_EQ(o.name, "x");
  EXPECT_EQ(o.count, 3);
  EXPECT_TRUE(o.verbose);
  EXPECT_EQ(positional, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(rest, (std::vector<std::string>{"--count", "z"}));
}

TEST(FlagsTest, ErrorsNameTheFlagAndTheValue) {
  EXPECT_EQ(ParseError({"--count", "-5"}), "--count \"-5\": expected a whole number from 1 to 9");
  EXPECT_EQ(ParseError({"--count=10"}), "--count \"10\": expected a whole number from 1 to 9");
  EXPECT_EQ(ParseError({"--count"}), "--count needs a value (N)");
  EXPECT_EQ(ParseError({"--foo"}), "unknown flag \"--foo\"");
  EXPECT_EQ(ParseError({"--foo=1"}), "unknown flag \"--foo\"");
  EXPECT_EQ(ParseError({"--verbose=yes"}), "--verbose takes no value");
  EXPECT_EQ(ParseError({"a", "--", "b"}), "unknown flag \"--\"");  // no rest wanted: "--" is not ours
}

TEST(FlagsTest, HelpEndsParsingButNotAsAValue) {
  Options o;
  std::vector<std::string> positional;
  auto r = Parse(Table(&o), std::vector<std::string>{"--count", "x", "-h"}, &positional);
  ASSERT_FALSE(r.ok());  // the bad value comes first
  r = Parse(Table(&o), std::vector<std::string>{"-h", "--count", "x"}, &positional);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, Outcome::kHelp);
  r = Parse(Table(&o), std::vector<std::string>{"--name", "--help"}, &positional);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, Outcome::kParsed);
  EXPECT_EQ(o.name, "--help");
}

TEST(FlagsTest, WholeNumbers) {
  EXPECT_EQ(*ParseWholeNumber("16", 16, 20), 16);
  EXPECT_EQ(*ParseWholeNumber("20", 16, 20), 20);
  for (const char* bad : {"", "15", "21", "-16", "+16", "16x", "1.5", " 16", "99999999999999999999"}) {
    EXPECT_FALSE(ParseWholeNumber(bad, 16, 20).ok()) << bad;
  }
}

TEST(FlagsTest, DescribeListsEveryFlagWithItsValueAndWraps) {
  Options o;
  std::string text = Describe(Table(&o));
  EXPECT_NE(text.find("  -n, --name NAME"), std::string::npos) << text;
  EXPECT_NE(text.find("  --count N"), std::string::npos) << text;
  EXPECT_NE(text.find("  -v, --verbose"), std::string::npos) << text;
  EXPECT_EQ(Names(Table(&o)), (std::vector<std::string>{"--name", "-n", "--count", "--verbose", "-v"}));
  std::string long_help(300, 'x');
  for (size_t i = 10; i < long_help.size(); i += 11) long_help[i] = ' ';
  std::vector<Flag> one = {{"--long", "", "", long_help, nullptr}};
  std::string wrapped = Describe(one);
  size_t start = 0;
  for (size_t nl = wrapped.find('\n'); nl != std::string::npos; nl = wrapped.find('\n', start)) {
    EXPECT_LE(nl - start, 110u) << wrapped;
    start = nl + 1;
  }
  EXPECT_GT(std::count(wrapped.begin(), wrapped.end(), '\n'), 2);
}

}  // namespace
}  // namespace nfc::flags
