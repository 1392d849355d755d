#include "plugin/stop_signal.h"

#include <gtest/gtest.h>

#include <thread>

namespace nfc::plugin {
namespace {

using std::chrono::milliseconds;

TEST(StopSignalTest, TimesOutWhenNothingHappens) {
  StopSignal stop;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(stop.WaitFor(nullptr, milliseconds(150)), StopSignal::Wake::kTimeout);
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(150));
  EXPECT_FALSE(stop.triggered());
  EXPECT_FALSE(stop.WaitUntilTriggeredFor(milliseconds(10)));
}

TEST(StopSignalTest, TriggerWakesWaitersAtOnce) {
  StopSignal stop;
  std::thread trigger([&] {
    std::this_thread::sleep_for(milliseconds(50));
    stop.Trigger();
  });
  const auto start = std::chrono::steady_clock::now();
  // A long wait must end right after the trigger, not at the end of a poll slice or the timeout.
  EXPECT_EQ(stop.WaitFor(nullptr, std::chrono::hours(1)), StopSignal::Wake::kStopping);
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(2000));
  trigger.join();
  EXPECT_TRUE(stop.triggered());
  EXPECT_EQ(stop.WaitUntilDone(nullptr), StopSignal::Wake::kStopping);
  EXPECT_TRUE(stop.WaitUntilTriggeredFor(milliseconds(0)));
}

}  // namespace
}  // namespace nfc::plugin
