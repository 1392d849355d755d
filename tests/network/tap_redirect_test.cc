// TAP attachment in a network namespace shaped like Nomad's bridge mode: "outside" (the host's bridge side)
// and "alloc" (eth0 with the allocation's address and a default route), both namespaces made by the test.
// Frames are read from and written to the TAP directly, standing in for the VM: that proves the redirect in
// both directions without booting a guest.
#include "network/tap_redirect.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "netns_fixture.h"
#include "network/netns.h"
#include "require.h"

namespace nfc::network {
namespace {

using testing::InterfaceExists;
using testing::MacOf;
using testing::MakeBridgeLikePair;
using testing::NetnsHolder;
using testing::UdpSocketIn;

using Frame = std::vector<uint8_t>;
using Mac = std::array<uint8_t, 6>;

Mac ParseMac(const std::string& text) {
  Mac m{};
  unsigned b[6] = {};
  std::sscanf(text.c_str(), "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]);
  for (int i = 0; i < 6; i++) m[i] = static_cast<uint8_t>(b[i]);
  return m;
}

uint16_t Be16(const Frame& f, size_t at) {
  return static_cast<uint16_t>(f[at] << 8 | f[at + 1]);
}
void Put16(Frame& f, uint16_t v) {
  f.push_back(static_cast<uint8_t>(v >> 8));
  f.push_back(static_cast<uint8_t>(v));
}
void PutBytes(Frame& f, const void* p, size_t n) {
  auto* b = static_cast<const uint8_t*>(p);
  f.insert(f.end(), b, b + n);
}
in_addr Ip(const char* text) {
  in_addr a{};
  ::inet_pton(AF_INET, text, &a);
  return a;
}

// Reads frames from the TAP until `want` accepts one or the deadline passes.
template <typename Pred>
bool ReadFrame(int tap, Pred want, Frame* out, std::chrono::milliseconds budget = std::chrono::seconds(5)) {
  auto deadline = std::chrono::steady_clock::now() + budget;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{tap, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    Frame f(65536);
    ssize_t n = ::read(tap, f.data(), f.size());
    if (n <= 0) continue;
    f.resize(static_cast<size_t>(n));
    if (want(f)) {
      *out = std::move(f);
      return true;
    }
  }
  return false;
}

Frame ArpReply(const Mac& guest, const Frame& request) {
  Frame f;
  PutBytes(f, &request[22], 6);  // to the asker
  PutBytes(f, guest.data(), 6);
  Put16(f, 0x0806);
  Put16(f, 1);       // Ethernet
  Put16(f, 0x0800);  // IPv4
  f.push_back(6);
  f.push_back(4);
  Put16(f, 2);  // reply
  PutBytes(f, guest.data(), 6);
  PutBytes(f, &request[38], 4);   // the address asked for: ours
  PutBytes(f, &request[22], 10);  // asker's MAC and IP
  return f;
}

Frame UdpFrame(const Mac& from, const Mac& to, in_addr src, in_addr dst, uint16_t dport,
               const std::string& data) {
  Frame f;
  PutBytes(f, to.data(), 6);
  PutBytes(f, from.data(), 6);
  Put16(f, 0x0800);
  size_t ip = f.size();
  uint16_t total = static_cast<uint16_t>(20 + 8 + data.size());
  const uint8_t header[] = {
      0x45, 0, static_cast<uint8_t>(total >> 8), static_cast<uint8_t>(total), 0, 1, 0x40, 0, 64, 17, 0, 0};
  PutBytes(f, header, sizeof(header));
  PutBytes(f, &src, 4);
  PutBytes(f, &dst, 4);
  uint32_t sum = 0;
  for (size_t i = ip; i < ip + 20; i += 2) sum += Be16(f, i);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  f[ip + 10] = static_cast<uint8_t>(~sum >> 8);
  f[ip + 11] = static_cast<uint8_t>(~sum);
  Put16(f, 40000);
  Put16(f, dport);
  Put16(f, static_cast<uint16_t>(8 + data.size()));
  Put16(f, 0);  // no UDP checksum (allowed for IPv4)
  PutBytes(f, data.data(), data.size());
  return f;
}

class TapRedirectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NFC_REQUIRE_OR_SKIP(::geteuid() == 0, "needs root to create network namespaces");
    ASSERT_TRUE(outside_.ok() && alloc_.ok()) << "cannot create network namespaces";
    Status s = MakeBridgeLikePair(outside_, alloc_, 77, 1450);
    ASSERT_TRUE(s.ok()) << s.error().message();
  }

  Result<UniqueFd> OpenTap(const std::string& name) {
    UniqueFd fd;
    Status s = RunInNetns(alloc_.path(), [&]() -> Status {
      fd.Reset(::open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK));
      if (!fd) return Error::Errno("open /dev/net/tun");
      ifreq ifr{};
      std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
      ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
      if (::ioctl(fd.get(), TUNSETIFF, &ifr) != 0) return Error::Errno("attach to TAP " + name);
      return Ok();
    });
    if (!s.ok()) return s.error();
    return fd;
  }

  static UniqueFd Udp(const NetnsHolder& ns, const char* ip, uint16_t port) {
    auto fd = UdpSocketIn(ns, ip, port);
    EXPECT_TRUE(fd.ok()) << fd.error().message();
    return fd.ok() ? std::move(*fd) : UniqueFd();
  }

  static void SendTo(int fd, const char* ip, uint16_t port, const std::string& data) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr = Ip(ip);
    ASSERT_EQ(::sendto(fd, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof(a)),
              static_cast<ssize_t>(data.size()));
  }

  static std::string Receive(int fd, std::chrono::milliseconds budget = std::chrono::seconds(5)) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(budget.count())) <= 0) return "";
    char buf[2048];
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }

  NetnsHolder outside_, alloc_;
};

TEST_F(TapRedirectTest, GuestTakesOverTheUplinkInBothDirections) {
  auto mac = MacOf(alloc_, "eth0");
  ASSERT_TRUE(mac.ok()) << mac.error().message();
  std::string eth0_mac = *mac;
  auto attached = AttachTap(alloc_.path(), "nfctest0");
  ASSERT_TRUE(attached.ok()) << attached.error().message();
  EXPECT_EQ(attached->uplink.name, "eth0");
  EXPECT_EQ(attached->uplink.mac, eth0_mac);
  EXPECT_EQ(attached->uplink.mtu, 1450u);
  EXPECT_EQ(attached->uplink.addresses, std::vector<std::string>{"10.77.0.2/24"});
  ASSERT_EQ(attached->routes.size(), 2u);
  bool saw_default = false, saw_extra = false;
  for (const auto& r : attached->routes) {
    EXPECT_EQ(r.gateway, "10.77.0.1");
    if (r.destination == "0.0.0.0/0") saw_default = true;
    if (r.destination == "192.0.2.0/24" && r.metric == 7) saw_extra = true;
  }
  EXPECT_TRUE(saw_default && saw_extra);

  auto tap = OpenTap("nfctest0");
  ASSERT_TRUE(tap.ok()) << tap.error().message();
  Mac guest = ParseMac(eth0_mac);

  // outside → guest: the peer's ARP request and then its datagram arrive on the TAP, not in the namespace.
  UniqueFd outside_sock = Udp(outside_, "10.77.0.1", 5555);
  SendTo(outside_sock.get(), "10.77.0.2", 7777, "to the guest");
  Frame arp;
  ASSERT_TRUE(ReadFrame(
      tap->get(),
      [](const Frame& f) {
        return f.size() >= 42 && Be16(f, 12) == 0x0806 && Be16(f, 20) == 1 && f[41] == 2;
      },
      &arp))
      << "no ARP request for 10.77.0.2 reached the TAP";
  ASSERT_EQ(::write(tap->get(), ArpReply(guest, arp).data(), 42), 42);
  Frame datagram;
  ASSERT_TRUE(ReadFrame(
      tap->get(),
      [](const Frame& f) {
        return f.size() >= 42 && Be16(f, 12) == 0x0800 && f[23] == 17 && Be16(f, 36) == 7777;
      },
      &datagram))
      << "the datagram did not reach the TAP";
  EXPECT_EQ(std::string(datagram.begin() + 42, datagram.end()), "to the guest");

  // guest → outside: a frame written to the TAP leaves through eth0.
  Mac vout{};
  std::memcpy(vout.data(), &arp[22], 6);
  Frame reply = UdpFrame(guest, vout, Ip("10.77.0.2"), Ip("10.77.0.1"), 5555, "from the guest");
  ASSERT_EQ(::write(tap->get(), reply.data(), reply.size()), static_cast<ssize_t>(reply.size()));
  EXPECT_EQ(Receive(outside_sock.get()), "from the guest");
}

TEST_F(TapRedirectTest, AttachIsIdempotentAndTheUplinkHasOneOwner) {
  ASSERT_TRUE(AttachTap(alloc_.path(), "nfctest0").ok());
  auto again = AttachTap(alloc_.path(), "nfctest0");
  EXPECT_TRUE(again.ok()) << again.error().message();
  auto other = AttachTap(alloc_.path(), "nfctest1");
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(other.error().message().find("already redirected"), std::string::npos) << other.error().message();
  EXPECT_FALSE(InterfaceExists(alloc_, "nfctest1")) << "a refused attach must not leave a TAP behind";
}

TEST_F(TapRedirectTest, DetachGivesTheNamespaceItsUplinkBack) {
  ASSERT_TRUE(AttachTap(alloc_.path(), "nfctest0").ok());
  ASSERT_TRUE(InterfaceExists(alloc_, "nfctest0"));
  Status s = DetachTap(alloc_.path(), "nfctest0");
  ASSERT_TRUE(s.ok()) << s.error().message();
  EXPECT_FALSE(InterfaceExists(alloc_, "nfctest0"));
  // Traffic reaches the namespace's own stack again.
  UniqueFd inside = Udp(alloc_, "10.77.0.2", 6000);
  UniqueFd outside_sock = Udp(outside_, "10.77.0.1", 5556);
  SendTo(outside_sock.get(), "10.77.0.2", 6000, "back home");
  EXPECT_EQ(Receive(inside.get()), "back home");
  // A second detach, and one after the namespace is gone, are harmless.
  EXPECT_TRUE(DetachTap(alloc_.path(), "nfctest0").ok());
  std::string gone = alloc_.path();
  alloc_.Kill();
  Status after = DetachTap(gone, "nfctest0");
  EXPECT_TRUE(after.ok()) << after.error().message();
}

TEST_F(TapRedirectTest, ReattachAfterDetachWorks) {
  ASSERT_TRUE(AttachTap(alloc_.path(), "nfctest0").ok());
  ASSERT_TRUE(DetachTap(alloc_.path(), "nfctest0").ok());
  auto again = AttachTap(alloc_.path(), "nfctest2");
  EXPECT_TRUE(again.ok()) << again.error().message();
  EXPECT_TRUE(DetachTap(alloc_.path(), "nfctest2").ok());
}

// `tc filter show` of a device's ingress in `ns`.
std::string IngressFilters(const NetnsHolder& ns, const std::string& dev) {
  std::string out;
  std::string cmd = "nsenter --net=" + ns.path() + " tc filter show dev " + dev + " ingress";
  if (FILE* f = ::popen(cmd.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    ::pclose(f);
  }
  return out;
}

TEST_F(TapRedirectTest, EgressGuardFiltersComeBeforeTheRedirectAndGoWithTheTap) {
  EgressGuard guard{true, {"169.254.0.0/16", "198.51.100.7"}, true};
  auto attached = AttachTap(alloc_.path(), "nfctest0", "", guard);
  ASSERT_TRUE(attached.ok()) << attached.error().message();
  std::string f = IngressFilters(alloc_, "nfctest0");
  // Priority 0xfc00 = 64512, before the redirect's 64513; destinations at offset 16 of the IP header.
  EXPECT_NE(f.find("pref 64512 u32"), std::string::npos) << f;
  EXPECT_NE(f.find("match a9fe0000/ffff0000 at 16"), std::string::npos) << f;  // 169.254.0.0/16
  EXPECT_NE(f.find("match c6336407/ffffffff at 16"), std::string::npos) << f;  // 198.51.100.7
  EXPECT_NE(f.find("match 0a4d0001/ffffffff at 16"), std::string::npos) << f;  // the gateway 10.77.0.1
  EXPECT_NE(f.find("match 00020000/00120000 at 32"), std::string::npos) << f;  // SYN without ACK
  EXPECT_NE(f.find("pref 64513 u32"), std::string::npos) << f;
  EXPECT_EQ(IngressFilters(alloc_, "eth0").find("pref 64512"), std::string::npos) << "the guard is the TAP's";
  ASSERT_TRUE(DetachTap(alloc_.path(), "nfctest0").ok());
  EXPECT_FALSE(InterfaceExists(alloc_, "nfctest0"));

  // Off: only the redirect.
  ASSERT_TRUE(AttachTap(alloc_.path(), "nfctest0", "", EgressGuard{false, {"169.254.0.0/16"}, true}).ok());
  EXPECT_EQ(IngressFilters(alloc_, "nfctest0").find("pref 64512"), std::string::npos);
  ASSERT_TRUE(DetachTap(alloc_.path(), "nfctest0").ok());

  // A CIDR the guard cannot parse fails the attach, names itself and leaves nothing.
  auto bad = AttachTap(alloc_.path(), "nfctest0", "", EgressGuard{true, {"169.254.0.0/40"}, false});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("169.254.0.0/40"), std::string::npos) << bad.error().message();
  EXPECT_FALSE(InterfaceExists(alloc_, "nfctest0"));
  EXPECT_EQ(IngressFilters(alloc_, "eth0").find("mirred"), std::string::npos);
}

TEST(TapRedirectErrors, NameTheProblem) {
  NFC_REQUIRE_OR_SKIP(::geteuid() == 0, "needs root to create network namespaces");
  auto missing = AttachTap("/nonexistent/netns", "nfctest0");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("/nonexistent/netns"), std::string::npos)
      << missing.error().message();

  auto not_ns = AttachTap("/etc/hostname", "nfctest0");
  ASSERT_FALSE(not_ns.ok());
  EXPECT_NE(not_ns.error().message().find("not a namespace"), std::string::npos) << not_ns.error().message();
  // What Nomad leaves after unmounting a namespace it destroyed: nothing to detach from.
  EXPECT_TRUE(DetachTap("/etc/hostname", "nfctest0").ok());
  EXPECT_TRUE(DetachTap("/nonexistent/netns", "nfctest0").ok());

  NetnsHolder empty;
  ASSERT_TRUE(empty.ok());
  auto no_route = AttachTap(empty.path(), "nfctest0");
  ASSERT_FALSE(no_route.ok());
  EXPECT_EQ(no_route.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(no_route.error().message().find("no IPv4 default route"), std::string::npos)
      << no_route.error().message();

  auto long_name = AttachTap(empty.path(), "a-name-longer-than-15");
  ASSERT_FALSE(long_name.ok());
  EXPECT_EQ(long_name.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(long_name.error().message().find("a-name-longer-than-15"), std::string::npos);
}

TEST(TapName, StableUniqueAndShort) {
  std::string a = TapNameForTask("5f4c0b7e-1111-2222-3333-444455556666/web/abcd1234");
  EXPECT_EQ(a, TapNameForTask("5f4c0b7e-1111-2222-3333-444455556666/web/abcd1234"));
  EXPECT_NE(a, TapNameForTask("5f4c0b7e-1111-2222-3333-444455556666/db/abcd1234"));
  EXPECT_LT(a.size(), static_cast<size_t>(IFNAMSIZ));
}

}  // namespace
}  // namespace nfc::network
