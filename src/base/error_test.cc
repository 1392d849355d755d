#include "base/error.h"

#include <gtest/gtest.h>

namespace nfc {
namespace {

Result<int> Parse(std::string_view s) {
  if (s.empty()) return Error::InvalidArgument("empty number");
  return static_cast<int>(s.size());
}

Result<int> Twice(std::string_view s) {
  NFC_ASSIGN_OR_RETURN(int n, Parse(s));
  return n * 2;
}

Status Check(std::string_view s) {
  NFC_RETURN_IF_ERROR_CTX(Parse(s), "check");
  return Ok();
}

TEST(ErrorTest, SysCarriesErrnoAndMessage) {
  Error e = Error::Sys(ENOENT, "open /nope");
  EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  EXPECT_EQ(e.sys_errno(), ENOENT);
  EXPECT_EQ(e.message(), "open /nope: No such file or directory");
}

TEST(ErrorTest, ContextPrepends) {
  Error e = Error::InvalidArgument("bad");
  e.Context("inner").Context("outer");
  EXPECT_EQ(e.ToString(), "outer: inner: bad");
}

TEST(ErrorTest, MacrosPropagate) {
  EXPECT_EQ(*Twice("abc"), 6);
  auto r = Twice("");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  auto s = Check("");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message(), "check: empty number");
  EXPECT_TRUE(Check("x").ok());
}

}  // namespace
}  // namespace nfc
