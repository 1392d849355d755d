#include "task/signals.h"

#include <gtest/gtest.h>
#include <signal.h>

namespace nfc::task {
namespace {

TEST(ParseSignal, NomadNamesAndVariants) {
  EXPECT_EQ(*ParseSignal("SIGHUP"), SIGHUP);
  EXPECT_EQ(*ParseSignal("SIGTERM"), SIGTERM);
  EXPECT_EQ(*ParseSignal("sigint"), SIGINT);
  EXPECT_EQ(*ParseSignal("USR1"), SIGUSR1);
  EXPECT_EQ(*ParseSignal("9"), SIGKILL);
  EXPECT_EQ(*ParseSignal("SIGRTMIN+3"), 35);
  EXPECT_EQ(*ParseSignal("SIGRTMAX"), 64);
}

TEST(ParseSignal, UnknownNamesAreErrorsNamingTheValue) {
  for (const char* bad : {"", "SIGFOO", "0", "65", "-1", "SIGRTMIN+40", "SIG"}) {
    auto r = ParseSignal(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message().find(std::string("\"") + bad + "\""), std::string::npos)
        << r.error().message();
  }
}

TEST(SignalName, RoundTrips) {
  for (int s : {SIGHUP, SIGINT, SIGKILL, SIGTERM, SIGUSR2, 40}) EXPECT_EQ(*ParseSignal(SignalName(s)), s);
}

}  // namespace
}  // namespace nfc::task
