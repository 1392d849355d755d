// Netlink against a real kernel: each test runs in a child process that first moves into a network
// namespace of its own, so nothing outside it (the machine's interfaces, other tests) is touched, and the
// namespace disappears with the child.
#include "init/common/netlink.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <ifaddrs.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <string>

#include "require.h"

namespace nfc::init {
namespace {

constexpr int kNoNamespace = 77;

// Runs body in a forked child inside a new network namespace; returns the child's exit code.
int InPrivateNetns(const std::function<int()>& body) {
  pid_t pid = fork();
  if (pid == 0) {
    if (unshare(CLONE_NEWNET) != 0) _exit(kNoNamespace);
    alarm(20);  // bounded: a hung netlink exchange kills the child, not the test run
    _exit(body());
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool HasIpv4(const std::string& ifname, const char* address) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return false;
  bool found = false;
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || ifname != i->ifa_name) continue;
    char text[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, text, sizeof text);
    if (std::strcmp(text, address) == 0) found = true;
  }
  freeifaddrs(list);
  return found;
}

// /proc/net/route lists destinations as host-order hex of the network-order address: 10.9.0.0 -> 0000090A.
bool HasIpv4Route(const std::string& destination_hex) {
  std::ifstream f("/proc/net/route");
  for (std::string line; std::getline(f, line);) {
    size_t a = line.find('\t') + 1;  // columns: Iface Destination Gateway ...
    if (a != 0 && line.substr(a, line.find('\t', a) - a) == destination_hex) return true;
  }
  return false;
}

TEST(Netlink, AddsAndDeletesIpv4AddressesAndDhcpRoutes) {
  int rc = InPrivateNetns([] {
    auto nl = Netlink::Open();
    if (!nl.ok()) return 2;
    auto lo = nl->IndexByName("lo");
    if (!lo.ok() || !nl->SetUp(*lo, 0).ok()) return 3;
    in_addr a{};
    inet_pton(AF_INET, "10.9.8.7", &a);
    if (!nl->AddAddress(*lo, Ipv4Cidr(a, 24), {.broadcast = true}).ok()) return 4;
    if (!HasIpv4("lo", "10.9.8.7")) return 5;
    in_addr net{};
    inet_pton(AF_INET, "10.9.0.0", &net);
    if (!nl->AddRoute(Ipv4Cidr(net, 16), Cidr{}, *lo, 0, RTPROT_DHCP).ok()) return 6;
    if (!HasIpv4Route("0000090A")) return 7;
    if (!nl->DeleteAddress(*lo, Ipv4Cidr(a, 24)).ok()) return 8;
    if (HasIpv4("lo", "10.9.8.7")) return 9;
    // Deleting what is not there names the address in the error.
    auto again = nl->DeleteAddress(*lo, Ipv4Cidr(a, 24));
    if (again.ok() || again.error().message().find("10.9.8.7/24") == std::string::npos) return 10;
    return 0;
  });
  NFC_REQUIRE_OR_SKIP(rc != kNoNamespace, "cannot create a network namespace (needs root)");
  EXPECT_EQ(rc, 0) << "failed at step " << rc;
}

// Warm start: a restored guest finds its interface by the template's MAC and gives it the task's.
TEST(Netlink, AnInterfaceFoundByItsMacTakesAnother) {
  int rc = InPrivateNetns([] {
    int tun = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (tun < 0) return 2;
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "mac0", IFNAMSIZ - 1);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    if (::ioctl(tun, TUNSETIFF, &ifr) != 0) return 3;  // lives as long as `tun`, in this namespace
    auto nl = Netlink::Open();
    if (!nl.ok()) return 4;
    auto index = nl->IndexByName("mac0");
    if (!index.ok() || !nl->SetMac(*index, "02:fc:00:00:00:00").ok()) return 5;
    auto found = nl->FindByMac("02:FC:00:00:00:00");
    if (!found.ok() || found->first != *index || found->second != "mac0") return 6;
    if (!nl->SetMac(found->first, "aa:bb:cc:dd:ee:01").ok()) return 7;
    auto moved = nl->FindByMac("aa:bb:cc:dd:ee:01");
    if (!moved.ok() || moved->first != *index) return 8;
    if (nl->FindByMac("02:fc:00:00:00:00").ok()) return 9;
    // A MAC that is not one is named.
    auto bad = nl->SetMac(*index, "aa:bb");
    if (bad.ok() || bad.error().message().find("aa:bb") == std::string::npos) return 10;
    return 0;
  });
  NFC_REQUIRE_OR_SKIP(rc != kNoNamespace, "cannot create a network namespace (needs root)");
  EXPECT_EQ(rc, 0) << "failed at step " << rc;
}

TEST(Netlink, Ipv4CidrKeepsNetworkByteOrder) {
  in_addr a{};
  inet_pton(AF_INET, "192.168.1.20", &a);
  Cidr c = Ipv4Cidr(a, 28);
  EXPECT_EQ(c.family, AF_INET);
  EXPECT_EQ(c.prefix, 28);
  EXPECT_EQ(c.addr[0], 192);
  EXPECT_EQ(c.addr[3], 20);
}

}  // namespace
}  // namespace nfc::init
