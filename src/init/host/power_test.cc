#include "init/host/power.h"

#include <gtest/gtest.h>
#include <linux/input.h>
#include <signal.h>

namespace nfc::init::host {
namespace {

TEST(Power, CapabilityBitmapOfAnAcpiPowerButton) {
  // /sys/class/input/inputN/capabilities/key of the ACPI "Power Button" on x86_64: only KEY_POWER (116).
  EXPECT_TRUE(CapabilityHasBit("10000000000000 0", KEY_POWER));
  EXPECT_FALSE(CapabilityHasBit("10000000000000 0", KEY_SLEEP));
  EXPECT_FALSE(CapabilityHasBit("0", KEY_POWER));
  EXPECT_FALSE(CapabilityHasBit("", KEY_POWER));
  // A keyboard-ish bitmap whose lowest word has bit 1 (KEY_ESC) set.
  EXPECT_TRUE(CapabilityHasBit("10000000000000 2", KEY_ESC));
}

TEST(Power, SignalsMapToActions) {
  EXPECT_EQ(PowerActionForSignal(SIGINT), PowerAction::kReboot);  // Ctrl-Alt-Del
  EXPECT_EQ(PowerActionForSignal(SIGTERM), PowerAction::kReboot);
  EXPECT_EQ(PowerActionForSignal(SIGUSR2), PowerAction::kPowerOff);
  EXPECT_EQ(PowerActionForSignal(SIGPWR), PowerAction::kPowerOff);
  EXPECT_EQ(PowerActionForSignal(SIGUSR1), PowerAction::kHalt);
  EXPECT_FALSE(PowerActionForSignal(SIGHUP).has_value());
  EXPECT_EQ(PowerActionName(PowerAction::kPowerOff), "poweroff");
}

}  // namespace
}  // namespace nfc::init::host
