// Interface configuration over rtnetlink: links up, MTU, IPv4/IPv6 addresses, routes. Written against the
// kernel's netlink ABI directly (a few hundred bytes of messages) instead of libnl/libmnl, to keep the static
// PID 1 small and free of further libraries.
#pragma once

#include <linux/rtnetlink.h>
#include <netinet/in.h>

#include <cstdint>
#include <string>

#include "base/error.h"
#include "base/unique_fd.h"

namespace nfc::init {

struct Cidr {
  int family = 0;  // AF_INET or AF_INET6
  unsigned char addr[16] = {};
  int prefix = 0;
};
// "10.0.0.2/24", "fd00::2/64"; a bare address gets /32 or /128. "default" is 0.0.0.0/0.
Result<Cidr> ParseCidr(const std::string& text);
Result<Cidr> ParseAddress(const std::string& text);  // no prefix allowed
// An IPv4 address with a prefix length (what DHCP leases carry).
Cidr Ipv4Cidr(in_addr address, int prefix);

struct AddressOptions {
  // IPv4 only: also set the subnet broadcast address (IFA_BROADCAST) for prefixes below /31, as a DHCP
  // client does for the lease it applies.
  bool broadcast = false;
};

class Netlink {
 public:
  static Result<Netlink> Open();

  Result<int> IndexByName(const std::string& name);
  // Finds the interface with this MAC ("aa:bb:cc:dd:ee:ff", case-insensitive) and returns its index and name.
  Result<std::pair<int, std::string>> FindByMac(const std::string& mac);
  Status Rename(int index, const std::string& name);
  Status SetMac(int index, const std::string& mac);
  Status SetUp(int index, uint32_t mtu);  // mtu 0: unchanged
  // Adds an address; IPv6 addresses skip duplicate address detection (IFA_F_NODAD), as the host assigned
  // them.
  Status AddAddress(int index, const Cidr& address, AddressOptions options = {});
  Status DeleteAddress(int index, const Cidr& address);
  // gateway.family 0: a connected route; index 0: the kernel picks the device from the gateway; metric 0:
  // none. protocol is the rtm_protocol the route is tagged with (RTPROT_STATIC, RTPROT_DHCP).
  Status AddRoute(const Cidr& destination, const Cidr& gateway, int index, uint32_t metric,
                  unsigned char protocol = RTPROT_STATIC);

 private:
  explicit Netlink(UniqueFd fd) : fd_(std::move(fd)) {}
  Status Request(void* msg, size_t len, const std::string& what);

  UniqueFd fd_;
  uint32_t seq_ = 1;
};

}  // namespace nfc::init
