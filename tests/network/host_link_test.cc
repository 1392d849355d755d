// Host mode's pieces (docs/networking.md, "Host mode") without a guest: the address pool on disk, and the
// VM's link and nftables rules in a namespace the test creates to stand for the host (never the real host's).
#include "network/host_link.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "netns_fixture.h"
#include "network/address_pool.h"
#include "network/nat.h"
#include "network/netns.h"
#include "require.h"
#include "temp_dir.h"

namespace nfc::network {
namespace {

using testing::InterfaceExists;
using testing::NetnsHolder;

std::string Capture(const NetnsHolder& ns, const std::string& command) {
  std::string out;
  std::string line = "nsenter --net=" + ns.path() + " " + command + " 2>&1";
  if (FILE* f = ::popen(line.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    ::pclose(f);
  }
  return out;
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) n++;
  return n;
}

class AddressPoolTest : public ::testing::Test {
 protected:
  std::string Owner(const std::string& name) {
    std::string path = dir_.Path(name);
    ::mkdir(path.c_str(), 0700);
    return path;
  }
  test_support::TempDir dir_{"addrpool"};
};

TEST_F(AddressPoolTest, HandsOutEachSlash30OnceAndPersistsLeases) {
  auto range = Ipv4Net::Parse("10.229.0.0/29", "host_network cidr");
  ASSERT_TRUE(range.ok()) << range.error().message();
  std::string pool_dir = dir_.Path("pool");
  std::string a = Owner("task-a"), b = Owner("task-b"), c = Owner("task-c");
  auto first = AddressPool(pool_dir, *range).Acquire(a, "nfca");
  ASSERT_TRUE(first.ok()) << first.error().message();
  EXPECT_EQ(first->block, "10.229.0.0/30");
  EXPECT_EQ(first->host_ip, "10.229.0.1");
  EXPECT_EQ(first->guest_ip, "10.229.0.2");
  // Another pool object (another plugin process) sees the lease on disk.
  auto second = AddressPool(pool_dir, *range).Acquire(b, "nfcb");
  ASSERT_TRUE(second.ok()) << second.error().message();
  EXPECT_EQ(second->block, "10.229.0.4/30");
  EXPECT_EQ(second->guest_ip, "10.229.0.6");
  // Exhausted: the error names the range.
  auto third = AddressPool(pool_dir, *range).Acquire(c, "nfcc");
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(third.error().message().find("\"10.229.0.0/29\""), std::string::npos) << third.error().message();
  // Released by its owner only.
  ASSERT_TRUE(AddressPool(pool_dir, *range).ReleaseOwnedBy(c).ok());
  EXPECT_TRUE(::access((pool_dir + "/10.229.0.0").c_str(), F_OK) == 0);
  ASSERT_TRUE(AddressPool(pool_dir, *range).ReleaseOwnedBy(a).ok());
  EXPECT_FALSE(::access((pool_dir + "/10.229.0.0").c_str(), F_OK) == 0);
  auto again = AddressPool(pool_dir, *range).Acquire(c, "nfcc");
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(again->block, "10.229.0.0/30");
  // A lease whose owner directory is gone (a crash before the cleanup) is taken back; a live one is not.
  ASSERT_EQ(::rmdir(b.c_str()), 0);
  auto reclaimed = AddressPool(pool_dir, *range).Acquire(a, "nfca");
  ASSERT_TRUE(reclaimed.ok()) << reclaimed.error().message();
  EXPECT_EQ(reclaimed->block, "10.229.0.4/30");
  EXPECT_EQ(reclaimed->reclaimed_tap, "nfcb");  // its leftovers are the caller's to remove
  EXPECT_EQ(again->reclaimed_tap, "");
}

TEST_F(AddressPoolTest, RangesAndBlocksAreChecked) {
  EXPECT_FALSE(Ipv4Net::Parse("10.229.0.0", "host_network cidr").ok());
  auto bad = Ipv4Net::Parse("10.229.0.0/33", "host_network cidr");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("host_network cidr \"10.229.0.0/33\""), std::string::npos);
  auto masked = Ipv4Net::Parse("10.229.7.9/16", "x");
  ASSERT_TRUE(masked.ok());
  EXPECT_EQ(masked->ToString(), "10.229.0.0/16");
  EXPECT_FALSE(HostLease::OfBlock("10.229.0.5/30").ok());
  auto tiny = Ipv4Net::Parse("10.229.0.0/31", "x");
  ASSERT_TRUE(tiny.ok());
  auto none = AddressPool(dir_.Path("tiny"), *tiny).Acquire(Owner("t"), "nfct");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message().find("10.229.0.0/31"), std::string::npos) << none.error().message();
}

// The link and its rules, made in `host` (a namespace standing for the host).
class HostLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NFC_REQUIRE_OR_SKIP(::geteuid() == 0, "needs root (network namespaces, TAP devices, nftables)");
    ASSERT_TRUE(host_.ok());
    config_ = {dir_.Path("pool"), "10.229.0.0/16", {true, {"169.254.0.0/16"}, true}, 1500};
  }
  std::string Owner(const std::string& name) {
    std::string path = dir_.Path(name);
    ::mkdir(path.c_str(), 0700);
    return path;
  }
  Result<HostLink> Attach(const std::string& tap, const std::string& owner, std::vector<PortForward> ports) {
    Result<HostLink> out = Error::Internal("not run");
    Status s = RunInNetns(host_.path(), [&]() -> Status {
      out = AttachHostLink(config_, tap, owner, ports);
      return Ok();
    });
    if (!s.ok()) return s.error();
    return out;
  }
  Status Detach(const std::string& tap, const std::string& owner) {
    return RunInNetns(host_.path(), [&] { return DetachHostLink(config_.pool_dir, tap, owner); });
  }
  std::string Table() { return Capture(host_, "nft list table ip nomad_firecracker"); }

  test_support::TempDir dir_{"hostlink"};
  NetnsHolder host_;
  HostLinkConfig config_;
};

TEST_F(HostLinkTest, MakesTheLinkAndRulesAndRemovesExactlyThem) {
  std::string a = Owner("task-a"), b = Owner("task-b");
  auto first = Attach("nfctesta", a, {{8080, ""}, {25123, "10.84.0.1"}});
  ASSERT_TRUE(first.ok()) << first.error().message();
  EXPECT_EQ(first->block, "10.229.0.0/30");
  EXPECT_EQ(first->mac.rfind("02:fc:", 0), 0u) << first->mac;  // locally administered
  EXPECT_EQ(first->mac.size(), 17u) << first->mac;
  auto second = Attach("nfctestb", b, {});
  ASSERT_TRUE(second.ok()) << second.error().message();
  EXPECT_EQ(second->block, "10.229.0.4/30");

  std::string addr = Capture(host_, "ip -o addr show dev nfctesta");
  EXPECT_NE(addr.find("inet 10.229.0.1/30"), std::string::npos) << addr;
  EXPECT_NE(Capture(host_, "ip -o link show dev nfctesta").find("mtu 1500"), std::string::npos);
  EXPECT_EQ(Capture(host_, "cat /proc/sys/net/ipv4/ip_forward"), "1\n");
  // The egress guard's filters on the TAP (priority 0xfc00).
  std::string filters = Capture(host_, "tc filter show dev nfctesta ingress");
  EXPECT_NE(filters.find("pref 64512"), std::string::npos) << filters;

  std::string table = Table();
  EXPECT_NE(table.find("ip saddr 10.229.0.2 ip daddr != 10.229.0.0/16 masquerade comment \"nfc:nfctesta\""),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("fib daddr type local tcp dport 8080 dnat to 10.229.0.2 comment \"nfc:nfctesta\""),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("ip daddr 10.84.0.1 udp dport 25123 dnat to 10.229.0.2"), std::string::npos) << table;
  // Two ports x TCP/UDP x prerouting/output, masquerade, five forward rules.
  EXPECT_EQ(Count(table, "\"nfc:nfctesta\""), 14u) << table;
  EXPECT_EQ(Count(table, "\"nfc:nfctestb\""), 6u) << table;

  // Detaching one VM leaves the other's rules and link as they were.
  ASSERT_TRUE(Detach("nfctesta", a).ok());
  table = Table();
  EXPECT_EQ(Count(table, "\"nfc:nfctesta\""), 0u) << table;
  EXPECT_EQ(Count(table, "\"nfc:nfctestb\""), 6u) << table;
  EXPECT_FALSE(InterfaceExists(host_, "nfctesta"));
  EXPECT_TRUE(InterfaceExists(host_, "nfctestb"));
  EXPECT_NE(::access((config_.pool_dir + "/10.229.0.0").c_str(), F_OK), 0) << "lease of the first VM kept";
  EXPECT_EQ(::access((config_.pool_dir + "/10.229.0.4").c_str(), F_OK), 0);
  ASSERT_TRUE(Detach("nfctesta", a).ok()) << "a second detach must be harmless";

  // The last VM takes the table with it: nothing of ours is left in the "host".
  ASSERT_TRUE(Detach("nfctestb", b).ok());
  EXPECT_EQ(Capture(host_, "nft list ruleset"), "");
  EXPECT_FALSE(InterfaceExists(host_, "nfctestb"));
  EXPECT_NE(::access((config_.pool_dir + "/10.229.0.4").c_str(), F_OK), 0);
}

// A task whose cleanup never ran and whose directory is gone: its block goes to the next VM, without its
// rules.
TEST_F(HostLinkTest, ABlockTakenBackFromADeadOwnerLosesItsOldRules) {
  std::string dead = Owner("task-dead"), next = Owner("task-next");
  auto old = Attach("nfcdead", dead, {{8080, ""}});
  ASSERT_TRUE(old.ok()) << old.error().message();
  ASSERT_EQ(::rmdir(dead.c_str()), 0);
  auto taken = Attach("nfcnext", next, {});
  ASSERT_TRUE(taken.ok()) << taken.error().message();
  EXPECT_EQ(taken->block, old->block);
  std::string table = Table();
  EXPECT_EQ(Count(table, "\"nfc:nfcdead\""), 0u) << table;
  EXPECT_EQ(Count(table, "\"nfc:nfcnext\""), 6u) << table;
  EXPECT_FALSE(InterfaceExists(host_, "nfcdead"));
  ASSERT_TRUE(Detach("nfcnext", next).ok());
  EXPECT_EQ(Capture(host_, "nft list ruleset"), "");
}

TEST_F(HostLinkTest, AFailedAttachLeavesNothing) {
  std::string a = Owner("task-a");
  auto bad = Attach("nfctestc", a, {{8080, "not-an-address"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("\"not-an-address\""), std::string::npos) << bad.error().message();
  EXPECT_FALSE(InterfaceExists(host_, "nfctestc"));
  EXPECT_EQ(Capture(host_, "nft list ruleset"), "");
  EXPECT_NE(::access((config_.pool_dir + "/10.229.0.0").c_str(), F_OK), 0) << "the lease survived";
}

}  // namespace
}  // namespace nfc::network
