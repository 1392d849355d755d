#include "init/host/cmdline.h"

#include <gtest/gtest.h>

namespace nfc::init::host {
namespace {

TEST(SplitCmdline, HonoursQuotes) {
  auto w = SplitCmdline("console=ttyS0  nomados.hostname=\"a b\" quiet\n");
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0], "console=ttyS0");
  EXPECT_EQ(w[1], "nomados.hostname=a b");
  EXPECT_EQ(w[2], "quiet");
}

TEST(ParseHostOptions, DefaultsWithoutOurKeys) {
  auto p = ParseHostOptions(SplitCmdline("root=/dev/vda ro quiet console=ttyS0"));
  EXPECT_TRUE(p.problems.empty());
  EXPECT_EQ(p.options.system_partition, "nomados-system");
  EXPECT_EQ(p.options.data_partition, "nomados-data");
  EXPECT_FALSE(p.options.static_ip.has_value());
  EXPECT_FALSE(p.options.debug_shell);
  EXPECT_EQ(p.options.stop_timeout.count(), 60);
}

TEST(ParseHostOptions, ReadsEveryKey) {
  auto p = ParseHostOptions(SplitCmdline(
      "nomados.system=sysB nomados.data=d2 nomados.hostname=n1 nomados.iface=eth1 nomados.debug=shell "
      "nomados.stop_timeout=120 nomados.net_timeout=5 nomados.root_timeout=9 nomados.loglevel=debug "
      "nomados.modules=kvm_intel,,vfio_pci"));
  ASSERT_TRUE(p.problems.empty()) << p.problems[0].message();
  const auto& o = p.options;
  EXPECT_EQ(o.system_partition, "sysB");
  EXPECT_EQ(o.data_partition, "d2");
  EXPECT_EQ(o.hostname, "n1");
  EXPECT_EQ(o.interface, "eth1");
  EXPECT_TRUE(o.debug_shell);
  EXPECT_EQ(o.stop_timeout.count(), 120);
  EXPECT_EQ(o.network_timeout.count(), 5);
  EXPECT_EQ(o.root_timeout.count(), 9);
  EXPECT_EQ(o.log_level, "debug");
  EXPECT_EQ(o.extra_modules, (std::vector<std::string>{"kvm_intel", "vfio_pci"}));
}

TEST(ParseHostOptions, ReportsTyposAndBadValuesAndKeepsDefaults) {
  auto p = ParseHostOptions(SplitCmdline("nomados.hostnme=x nomados.stop_timeout=soon nomados.debug=yes"));
  ASSERT_EQ(p.problems.size(), 3u);
  EXPECT_NE(p.problems[0].message().find("nomados.hostnme"), std::string::npos);
  EXPECT_NE(p.problems[1].message().find("soon"), std::string::npos);
  EXPECT_NE(p.problems[2].message().find("yes"), std::string::npos);
  EXPECT_EQ(p.options.stop_timeout.count(), 60);
  EXPECT_FALSE(p.options.debug_shell);
}

TEST(ParseIpParameter, KernelSyntax) {
  auto ip = ParseIpParameter("10.0.0.5::10.0.0.1:255.255.255.0:node1:eth0:off:1.1.1.1:8.8.8.8");
  ASSERT_TRUE(ip.ok()) << ip.error().message();
  EXPECT_EQ(ip->address, "10.0.0.5");
  EXPECT_EQ(ip->gateway, "10.0.0.1");
  EXPECT_EQ(ip->prefix_len, 24);
  EXPECT_EQ(ip->hostname, "node1");
  EXPECT_EQ(ip->device, "eth0");
  EXPECT_EQ(ip->dns, (std::vector<std::string>{"1.1.1.1", "8.8.8.8"}));
}

TEST(ParseIpParameter, RejectsNonsense) {
  EXPECT_FALSE(ParseIpParameter("10.0.0.300").ok());
  EXPECT_FALSE(ParseIpParameter("10.0.0.5::10.0.0.1:255.0.255.0").ok());  // non-contiguous mask
  EXPECT_FALSE(ParseIpParameter("10.0.0.5:::255.255.255.0:::dhcp").ok());
  auto p = ParseHostOptions({"ip=dhcp"});
  EXPECT_TRUE(p.problems.empty());
  EXPECT_FALSE(p.options.static_ip.has_value());
  p = ParseHostOptions({"ip=1.2.3"});
  EXPECT_EQ(p.problems.size(), 1u);
}

}  // namespace
}  // namespace nfc::init::host
