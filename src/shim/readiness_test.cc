#include "shim/readiness.h"

#include <gtest/gtest.h>

namespace nfc::shim {
namespace {

TEST(Readiness, AReadyReplyRoundTrips) {
  ShimReady r;
  r.shim = ProcessIdentity{4242, 987654321};
  r.vmm_pid = 4243;
  r.started_at_unix_nanos = 1700000000123456789;
  r.exited = true;
  r.guest_boot_id = "77";
  r.timings.vmm_started_millis = 170;
  r.timings.guest_connected_millis = 1400;
  r.timings.workload_started_millis = 2100;
  r.timings.guest_init_started_millis = 1300;
  r.timings.guest_workload_exec_millis = 2000;
  std::string line = EncodeReady(r);
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);  // one line
  auto back = DecodeReadiness(line);
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(back->shim.pid, 4242);
  EXPECT_EQ(back->shim.start_time, 987654321u);
  EXPECT_EQ(back->vmm_pid, 4243);
  EXPECT_EQ(back->started_at_unix_nanos, 1700000000123456789);
  EXPECT_TRUE(back->exited);
  EXPECT_EQ(back->guest_boot_id, "77");
  EXPECT_EQ(back->timings.vmm_started_millis, 170);
  EXPECT_EQ(back->timings.guest_connected_millis, 1400);
  EXPECT_EQ(back->timings.workload_started_millis, 2100);
  EXPECT_EQ(back->timings.guest_init_started_millis, 1300);
  EXPECT_EQ(back->timings.guest_workload_exec_millis, 2000);
}

TEST(Readiness, AFailureKeepsItsCodeAndMessage) {
  for (ErrorCode code : {ErrorCode::kTimeout, ErrorCode::kUnavailable, ErrorCode::kNotFound,
                         ErrorCode::kInvalidArgument, ErrorCode::kInternal}) {
    auto back = DecodeReadiness(EncodeNotReady(Error(code, "boot: \"quoted\"\nand a second line")));
    ASSERT_FALSE(back.ok());
    EXPECT_EQ(back.error().code(), code) << ErrorCodeName(code);
    EXPECT_EQ(back.error().message(), "boot: \"quoted\"\nand a second line");
  }
  EXPECT_NE(EncodeNotReady(Error::Timeout("t")).find("\"recoverable\":true"), std::string::npos);
  EXPECT_NE(EncodeNotReady(Error::NotFound("n")).find("\"recoverable\":false"), std::string::npos);
}

TEST(Readiness, AnythingElseIsAnInternalErrorQuotingWhatCame) {
  struct Case {
    std::string line, expect;
  } cases[] = {
      {"", "without a readiness reply"},
      {"ok 1234\n", "not JSON: ok 1234"},
      {"{\"version\":2,\"ready\":true}", "readiness version 2"},
      {"{\"version\":1,\"ready\":true,\"shim\":{\"pid\":5}}", "malformed"},
      {"{\"version\":1,\"ready\":\"yes\"}", "malformed"},
      {"[1,2]", "not JSON"},
  };
  for (const auto& c : cases) {
    auto back = DecodeReadiness(c.line);
    ASSERT_FALSE(back.ok()) << c.line;
    EXPECT_EQ(back.error().code(), ErrorCode::kInternal) << c.line;
    EXPECT_NE(back.error().message().find(c.expect), std::string::npos) << back.error().message();
  }
}

TEST(Readiness, AReadyReplyWithAnImpossiblePidIsRefused) {
  ShimReady r;
  r.shim = ProcessIdentity{1, 5};
  auto back = DecodeReadiness(EncodeReady(r));
  ASSERT_FALSE(back.ok());
  EXPECT_NE(back.error().message().find("invalid shim pid 1"), std::string::npos);
}

}  // namespace
}  // namespace nfc::shim
