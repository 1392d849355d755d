#include "driver/naming.h"

#include <gtest/gtest.h>

namespace nfc::driver {
namespace {

TEST(NamingTest, StripsNomadDriverPrefix) {
  EXPECT_EQ(DriverNameFromPath("/opt/nomad/plugins/nomad-driver-firecracker"), "firecracker");
  EXPECT_EQ(DriverNameFromPath("nomad-driver-firecracker"), "firecracker");
  EXPECT_EQ(DriverNameFromPath("./nomad-driver-fc"), "fc");
}

TEST(NamingTest, OtherNamesAreKept) {
  EXPECT_EQ(DriverNameFromPath("/opt/nomad/plugins/litegix-fc-driver"), "litegix-fc-driver");
  EXPECT_EQ(DriverNameFromPath("my-nomad-driver-x"), "my-nomad-driver-x");  // prefix only at the start
}

TEST(NamingTest, ExeSuffixAndDegenerateNames) {
  EXPECT_EQ(DriverNameFromPath("C/plugins/nomad-driver-firecracker.exe"), "firecracker");
  EXPECT_EQ(DriverNameFromPath("/plugins/nomad-driver-"), "firecracker");
  EXPECT_EQ(DriverNameFromPath(""), "firecracker");
  EXPECT_EQ(DriverNameFromPath("/plugins/"), "firecracker");
}

}  // namespace
}  // namespace nfc::driver
