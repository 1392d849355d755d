#include "init/common/netlink.h"

#include <arpa/inet.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <vector>

namespace nfc::init {
namespace {

// A netlink request under construction: header, family-specific struct, then attributes.
class Message {
 public:
  Message(uint16_t type, uint16_t flags, const void* body, size_t body_len) {
    buf_.resize(NLMSG_SPACE(body_len));
    auto* h = header();
    h->nlmsg_len = static_cast<uint32_t>(NLMSG_LENGTH(body_len));
    h->nlmsg_type = type;
    h->nlmsg_flags = flags | NLM_F_REQUEST | NLM_F_ACK;
    std::memcpy(NLMSG_DATA(h), body, body_len);
  }
  void Attr(uint16_t type, const void* data, size_t len) {
    size_t at = NLMSG_ALIGN(header()->nlmsg_len);
    buf_.resize(at + RTA_SPACE(len));
    auto* rta = reinterpret_cast<rtattr*>(buf_.data() + at);
    rta->rta_type = type;
    rta->rta_len = static_cast<uint16_t>(RTA_LENGTH(len));
    std::memcpy(RTA_DATA(rta), data, len);
    header()->nlmsg_len = static_cast<uint32_t>(at + RTA_LENGTH(len));
  }
  void U32(uint16_t type, uint32_t v) { Attr(type, &v, sizeof v); }
  nlmsghdr* header() { return reinterpret_cast<nlmsghdr*>(buf_.data()); }
  size_t size() { return header()->nlmsg_len; }

 private:
  std::vector<char> buf_;
};

Result<std::vector<unsigned char>> ParseMac(const std::string& mac) {
  std::vector<unsigned char> out;
  unsigned v[6];
  char tail;
  if (std::sscanf(mac.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                  &tail) != 6) {
    return Error::InvalidArgument("\"" + mac + "\" is not a MAC address");
  }
  for (unsigned x : v) out.push_back(static_cast<unsigned char>(x));
  return out;
}

std::string CidrText(const Cidr& c) {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(c.family, c.addr, text, sizeof text);
  return std::string(text) + "/" + std::to_string(c.prefix);
}

}  // namespace

Result<Cidr> ParseAddress(const std::string& text) {
  Cidr c;
  if (inet_pton(AF_INET, text.c_str(), c.addr) == 1) {
    c.family = AF_INET;
    c.prefix = 32;
  } else if (inet_pton(AF_INET6, text.c_str(), c.addr) == 1) {
    c.family = AF_INET6;
    c.prefix = 128;
  } else {
    return Error::InvalidArgument("\"" + text + "\" is not an IPv4 or IPv6 address");
  }
  return c;
}

Cidr Ipv4Cidr(in_addr address, int prefix) {
  Cidr c;
  c.family = AF_INET;
  std::memcpy(c.addr, &address, sizeof address);
  c.prefix = prefix;
  return c;
}

Result<Cidr> ParseCidr(const std::string& text) {
  if (text == "default") {
    Cidr c;
    c.family = AF_INET;
    return c;
  }
  size_t slash = text.find('/');
  NFC_ASSIGN_OR_RETURN(Cidr c, ParseAddress(text.substr(0, slash)));
  if (slash != std::string::npos) {
    std::string p = text.substr(slash + 1);
    char* end = nullptr;
    long prefix = std::strtol(p.c_str(), &end, 10);
    int max = c.family == AF_INET ? 32 : 128;
    if (p.empty() || *end != '\0' || prefix < 0 || prefix > max) {
      return Error::InvalidArgument("\"" + text + "\": prefix length must be 0.." + std::to_string(max));
    }
    c.prefix = static_cast<int>(prefix);
  }
  return c;
}

Result<Netlink> Netlink::Open() {
  int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return Error::Errno("netlink socket");
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return Error::Errno("bind netlink socket");
  }
  return Netlink(UniqueFd(fd));
}

Status Netlink::Request(void* msg, size_t len, const std::string& what) {
  auto* h = static_cast<nlmsghdr*>(msg);
  h->nlmsg_seq = seq_++;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd_.get(), msg, len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) {
    return Error::Errno(what + ": netlink send");
  }
  char buf[8192];
  for (;;) {
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::Errno(what + ": netlink recv");
    for (auto* r = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(r, static_cast<unsigned>(n));
         r = NLMSG_NEXT(r, n)) {
      if (r->nlmsg_seq != h->nlmsg_seq) continue;
      if (r->nlmsg_type == NLMSG_ERROR) {
        auto* err = static_cast<nlmsgerr*>(NLMSG_DATA(r));
        if (err->error == 0) return Ok();
        return Error::Sys(-err->error, what);
      }
    }
  }
}

Result<int> Netlink::IndexByName(const std::string& name) {
  unsigned idx = if_nametoindex(name.c_str());
  if (idx == 0) return Error::NotFound("network interface \"" + name + "\" does not exist");
  return static_cast<int>(idx);
}

Result<std::pair<int, std::string>> Netlink::FindByMac(const std::string& mac) {
  NFC_ASSIGN_OR_RETURN(auto want, ParseMac(mac));
  // RTM_GETLINK dump; parse IFLA_ADDRESS and IFLA_IFNAME of each link.
  struct {
    nlmsghdr h;
    ifinfomsg i;
  } req{};
  req.h.nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg));
  req.h.nlmsg_type = RTM_GETLINK;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.h.nlmsg_seq = seq_++;
  req.i.ifi_family = AF_UNSPEC;
  if (::send(fd_.get(), &req, req.h.nlmsg_len, 0) < 0) return Error::Errno("netlink dump links");
  std::optional<std::pair<int, std::string>> found;
  char buf[16384];
  for (;;) {
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::Errno("netlink dump links");
    for (auto* r = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(r, static_cast<unsigned>(n));
         r = NLMSG_NEXT(r, n)) {
      if (r->nlmsg_type == NLMSG_DONE || r->nlmsg_type == NLMSG_ERROR) {
        if (found) return *found;
        return Error::NotFound("no network interface has MAC " + mac);
      }
      if (r->nlmsg_type != RTM_NEWLINK) continue;
      auto* info = static_cast<ifinfomsg*>(NLMSG_DATA(r));
      int len = static_cast<int>(IFLA_PAYLOAD(r));
      std::string name;
      bool match = false;
      for (auto* a = IFLA_RTA(info); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if (a->rta_type == IFLA_IFNAME) name = static_cast<const char*>(RTA_DATA(a));
        if (a->rta_type == IFLA_ADDRESS && RTA_PAYLOAD(a) == 6 &&
            std::memcmp(RTA_DATA(a), want.data(), 6) == 0) {
          match = true;
        }
      }
      if (match && !found) found = std::make_pair(info->ifi_index, name);
    }
  }
}

Status Netlink::Rename(int index, const std::string& name) {
  ifinfomsg info{};
  info.ifi_family = AF_UNSPEC;
  info.ifi_index = index;
  Message m(RTM_NEWLINK, 0, &info, sizeof info);
  m.Attr(IFLA_IFNAME, name.c_str(), name.size() + 1);
  return Request(m.header(), m.size(), "rename interface " + std::to_string(index) + " to " + name);
}

Status Netlink::SetMac(int index, const std::string& mac) {
  NFC_ASSIGN_OR_RETURN(auto address, ParseMac(mac));
  ifinfomsg info{};
  info.ifi_family = AF_UNSPEC;
  info.ifi_index = index;
  Message m(RTM_NEWLINK, 0, &info, sizeof info);
  m.Attr(IFLA_ADDRESS, address.data(), address.size());
  return Request(m.header(), m.size(), "set the MAC of interface " + std::to_string(index) + " to " + mac);
}

Status Netlink::SetUp(int index, uint32_t mtu) {
  ifinfomsg info{};
  info.ifi_family = AF_UNSPEC;
  info.ifi_index = index;
  info.ifi_flags = IFF_UP;
  info.ifi_change = IFF_UP;
  Message m(RTM_NEWLINK, 0, &info, sizeof info);
  if (mtu != 0) m.U32(IFLA_MTU, mtu);
  return Request(m.header(), m.size(),
                 "set interface " + std::to_string(index) + " up (mtu " + std::to_string(mtu) + ")");
}

Status Netlink::AddAddress(int index, const Cidr& a, AddressOptions options) {
  ifaddrmsg ifa{};
  ifa.ifa_family = static_cast<unsigned char>(a.family);
  ifa.ifa_prefixlen = static_cast<unsigned char>(a.prefix);
  ifa.ifa_index = static_cast<unsigned>(index);
  ifa.ifa_flags = a.family == AF_INET6 ? IFA_F_NODAD : 0;
  Message m(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, &ifa, sizeof ifa);
  size_t len = a.family == AF_INET ? 4 : 16;
  m.Attr(IFA_LOCAL, a.addr, len);
  m.Attr(IFA_ADDRESS, a.addr, len);
  if (a.family == AF_INET6) m.U32(IFA_FLAGS, IFA_F_NODAD);
  if (options.broadcast && a.family == AF_INET && a.prefix < 31) {
    uint32_t address;
    std::memcpy(&address, a.addr, sizeof address);
    uint32_t mask = a.prefix == 0 ? 0 : htonl(~0u << (32 - a.prefix));
    uint32_t broadcast = address | ~mask;
    m.Attr(IFA_BROADCAST, &broadcast, sizeof broadcast);
  }
  return Request(m.header(), m.size(),
                 "add address " + CidrText(a) + " to interface " + std::to_string(index));
}

Status Netlink::DeleteAddress(int index, const Cidr& a) {
  ifaddrmsg ifa{};
  ifa.ifa_family = static_cast<unsigned char>(a.family);
  ifa.ifa_prefixlen = static_cast<unsigned char>(a.prefix);
  ifa.ifa_index = static_cast<unsigned>(index);
  Message m(RTM_DELADDR, 0, &ifa, sizeof ifa);
  m.Attr(IFA_LOCAL, a.addr, a.family == AF_INET ? 4 : 16);
  return Request(m.header(), m.size(),
                 "delete address " + CidrText(a) + " from interface " + std::to_string(index));
}

Status Netlink::AddRoute(const Cidr& dst, const Cidr& gw, int index, uint32_t metric,
                         unsigned char protocol) {
  rtmsg rt{};
  rt.rtm_family = static_cast<unsigned char>(dst.family);
  rt.rtm_dst_len = static_cast<unsigned char>(dst.prefix);
  rt.rtm_table = RT_TABLE_MAIN;
  rt.rtm_protocol = protocol;
  rt.rtm_scope = gw.family == 0 ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
  rt.rtm_type = RTN_UNICAST;
  Message m(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, &rt, sizeof rt);
  size_t len = dst.family == AF_INET ? 4 : 16;
  if (dst.prefix > 0) m.Attr(RTA_DST, dst.addr, len);
  if (gw.family != 0) {
    if (gw.family != dst.family)
      return Error::InvalidArgument("route gateway and destination differ in address family");
    m.Attr(RTA_GATEWAY, gw.addr, len);
  }
  if (index > 0) m.U32(RTA_OIF, static_cast<uint32_t>(index));
  if (metric > 0) m.U32(RTA_PRIORITY, metric);
  return Request(m.header(), m.size(), "add route " + CidrText(dst));
}

}  // namespace nfc::init
