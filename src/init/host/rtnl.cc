#include "init/host/rtnl.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace nfc::init::host {
namespace {

struct Builder {
  alignas(NLMSG_ALIGNTO) char buf[512] = {};
  nlmsghdr* hdr() { return reinterpret_cast<nlmsghdr*>(buf); }
  void* Tail() { return buf + NLMSG_ALIGN(hdr()->nlmsg_len); }
  void Attr(unsigned short type, const void* data, size_t len) {
    auto* rta = static_cast<rtattr*>(Tail());
    rta->rta_type = type;
    rta->rta_len = static_cast<unsigned short>(RTA_LENGTH(len));
    std::memcpy(RTA_DATA(rta), data, len);
    hdr()->nlmsg_len = NLMSG_ALIGN(hdr()->nlmsg_len) + RTA_ALIGN(rta->rta_len);
  }
};

std::string ReadLine(const std::string& path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

}  // namespace

Result<Rtnl> Rtnl::Open() {
  UniqueFd fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd) return Error::Errno("socket(AF_NETLINK, NETLINK_ROUTE)");
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    return Error::Errno("bind netlink socket");
  return Rtnl(std::move(fd));
}

Status Rtnl::Request(void* msg, size_t len, const char* what) {
  auto* h = static_cast<nlmsghdr*>(msg);
  h->nlmsg_seq = seq_++;
  h->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd_.get(), msg, len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) {
    return Error::Errno(std::string("netlink send: ") + what);
  }
  alignas(NLMSG_ALIGNTO) char reply[4096];
  while (true) {
    ssize_t n = recv(fd_.get(), reply, sizeof reply, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::Errno(std::string("netlink receive: ") + what);
    }
    for (auto* r = reinterpret_cast<nlmsghdr*>(reply); NLMSG_OK(r, static_cast<unsigned>(n));
         r = NLMSG_NEXT(r, n)) {
      if (r->nlmsg_seq != h->nlmsg_seq) continue;
      if (r->nlmsg_type == NLMSG_ERROR) {
        auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(r));
        if (e->error == 0) return Ok();
        return Error::Sys(-e->error, what);
      }
    }
  }
}

Status Rtnl::SetLinkUp(int ifindex, std::optional<int> mtu) {
  Builder b;
  b.hdr()->nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg));
  b.hdr()->nlmsg_type = RTM_NEWLINK;
  auto* ifi = static_cast<ifinfomsg*>(NLMSG_DATA(b.hdr()));
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = ifindex;
  ifi->ifi_flags = IFF_UP;
  ifi->ifi_change = IFF_UP;
  if (mtu) {
    unsigned m = static_cast<unsigned>(*mtu);
    b.Attr(IFLA_MTU, &m, sizeof m);
  }
  return Request(b.buf, b.hdr()->nlmsg_len, "set link up");
}

Status Rtnl::AddAddress(int ifindex, in_addr addr, int prefix_len) {
  Builder b;
  b.hdr()->nlmsg_len = NLMSG_LENGTH(sizeof(ifaddrmsg));
  b.hdr()->nlmsg_type = RTM_NEWADDR;
  b.hdr()->nlmsg_flags = NLM_F_CREATE | NLM_F_REPLACE;
  auto* ifa = static_cast<ifaddrmsg*>(NLMSG_DATA(b.hdr()));
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = static_cast<unsigned char>(prefix_len);
  ifa->ifa_index = static_cast<unsigned>(ifindex);
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  b.Attr(IFA_LOCAL, &addr, sizeof addr);
  b.Attr(IFA_ADDRESS, &addr, sizeof addr);
  if (prefix_len < 31) {
    uint32_t mask = prefix_len == 0 ? 0 : htonl(~0u << (32 - prefix_len));
    in_addr brd{addr.s_addr | ~mask};
    b.Attr(IFA_BROADCAST, &brd, sizeof brd);
  }
  return Request(b.buf, b.hdr()->nlmsg_len, "add address");
}

Status Rtnl::DeleteAddress(int ifindex, in_addr addr, int prefix_len) {
  Builder b;
  b.hdr()->nlmsg_len = NLMSG_LENGTH(sizeof(ifaddrmsg));
  b.hdr()->nlmsg_type = RTM_DELADDR;
  auto* ifa = static_cast<ifaddrmsg*>(NLMSG_DATA(b.hdr()));
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = static_cast<unsigned char>(prefix_len);
  ifa->ifa_index = static_cast<unsigned>(ifindex);
  b.Attr(IFA_LOCAL, &addr, sizeof addr);
  return Request(b.buf, b.hdr()->nlmsg_len, "delete address");
}

Status Rtnl::AddRoute(in_addr dst, int prefix_len, in_addr gateway, int ifindex) {
  Builder b;
  b.hdr()->nlmsg_len = NLMSG_LENGTH(sizeof(rtmsg));
  b.hdr()->nlmsg_type = RTM_NEWROUTE;
  b.hdr()->nlmsg_flags = NLM_F_CREATE | NLM_F_REPLACE;
  auto* rt = static_cast<rtmsg*>(NLMSG_DATA(b.hdr()));
  rt->rtm_family = AF_INET;
  rt->rtm_dst_len = static_cast<unsigned char>(prefix_len);
  rt->rtm_table = RT_TABLE_MAIN;
  rt->rtm_protocol = RTPROT_DHCP;
  rt->rtm_scope = gateway.s_addr == 0 ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
  rt->rtm_type = RTN_UNICAST;
  if (prefix_len > 0) b.Attr(RTA_DST, &dst, sizeof dst);
  if (gateway.s_addr != 0) b.Attr(RTA_GATEWAY, &gateway, sizeof gateway);
  unsigned oif = static_cast<unsigned>(ifindex);
  b.Attr(RTA_OIF, &oif, sizeof oif);
  return Request(b.buf, b.hdr()->nlmsg_len, "add route");
}

std::vector<NetInterface> ListEthernetInterfaces(const std::string& sys_class_net) {
  std::vector<NetInterface> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(sys_class_net, ec)) {
    std::string dir = e.path().string();
    if (ReadLine(dir + "/type") != "1") continue;                 // ARPHRD_ETHER
    if (!std::filesystem::exists(dir + "/device", ec)) continue;  // bridges, veths, tun: not hardware
    NetInterface nic;
    nic.name = e.path().filename().string();
    nic.ifindex = std::atoi(ReadLine(dir + "/ifindex").c_str());
    nic.mac = ReadLine(dir + "/address");
    unsigned v[6];
    if (std::sscanf(nic.mac.c_str(), "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) == 6) {
      for (int i = 0; i < 6; i++) nic.mac_bytes[i] = static_cast<unsigned char>(v[i]);
    }
    out.push_back(std::move(nic));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.ifindex < b.ifindex; });
  return out;
}

Result<int> InterfaceIndex(const std::string& name) {
  unsigned idx = if_nametoindex(name.c_str());
  if (idx == 0) return Error::Errno("interface " + name);
  return static_cast<int>(idx);
}

}  // namespace nfc::init::host
