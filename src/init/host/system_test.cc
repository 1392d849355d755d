#include "init/host/system.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace nfc::init::host {
namespace {

class TempDir {
 public:
  TempDir() : path_(std::filesystem::temp_directory_path() / ("host-system-" + std::to_string(getpid()))) {
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string operator/(const std::string& s) const { return (path_ / s).string(); }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

std::string Slurp(const std::string& p) {
  std::ifstream f(p);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

TEST(System, SysctlsGoToProcSysPathsAndMissingOnesAreSkipped) {
  TempDir d;
  std::filesystem::create_directories(d / "net/ipv4");
  std::ofstream(d / "net/ipv4/ip_forward") << "0";
  std::ofstream(d / "net/ipv4/ip_forward").flush();
  int n = ApplySysctls({{"net.ipv4.ip_forward", "1"}, {"net.bridge.bridge-nf-call-iptables", "1"}}, d.str());
  EXPECT_EQ(n, 1);
  EXPECT_EQ(Slurp(d / "net/ipv4/ip_forward"), "1");
}

TEST(System, NomadHostSysctlsIncludeForwardingAndBridgeFilter) {
  bool fwd = false, br = false;
  for (const auto& [k, v] : NomadHostSysctls()) {
    fwd |= k == "net.ipv4.ip_forward" && v == "1";
    br |= k == "net.bridge.bridge-nf-call-iptables" && v == "1";
  }
  EXPECT_TRUE(fwd);
  EXPECT_TRUE(br);
}

TEST(System, ResolvConf) {
  TempDir d;
  ASSERT_TRUE(WriteResolvConf({"10.0.2.3", "1.1.1.1"}, "example.internal", d / "resolv.conf").ok());
  EXPECT_EQ(Slurp(d / "resolv.conf"),
            "# written by nomad-init\nsearch example.internal\nnameserver 10.0.2.3\nnameserver 1.1.1.1\n");
}

TEST(System, MachineIdIsCreatedOnceAndKept) {
  TempDir d;
  auto first = EnsureMachineId(d / "machine-id");
  ASSERT_TRUE(first.ok()) << first.error().message();
  EXPECT_EQ(first->size(), 32u);
  EXPECT_EQ(first->find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ((*first)[12], '4');  // UUID version 4
  auto second = EnsureMachineId(d / "machine-id");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*first, *second);
}

TEST(System, DefaultHostnameUsesTheMacSuffix) {
  const unsigned char mac[6] = {0x52, 0x54, 0x00, 0xab, 0xcd, 0x0e};
  EXPECT_EQ(DefaultHostname(mac), "nomados-abcd0e");
}

}  // namespace
}  // namespace nfc::init::host
