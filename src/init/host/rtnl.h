// The few rtnetlink requests the host role needs to bring interfaces up: link up + MTU, IPv4 address, IPv4
// route. (src/init/common may grow a shared netlink client; this one is kept to exactly what NomadOS uses.)
#pragma once

#include <netinet/in.h>

#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"

namespace nfc::init::host {

class Rtnl {
 public:
  static Result<Rtnl> Open();

  Status SetLinkUp(int ifindex, std::optional<int> mtu = std::nullopt);
  // Adds (or replaces) addr/prefix on ifindex, with the subnet broadcast address.
  Status AddAddress(int ifindex, in_addr addr, int prefix_len);
  Status DeleteAddress(int ifindex, in_addr addr, int prefix_len);
  // Adds (or replaces) a route; gateway 0.0.0.0 means on-link.
  Status AddRoute(in_addr dst, int prefix_len, in_addr gateway, int ifindex);

 private:
  explicit Rtnl(UniqueFd fd) : fd_(std::move(fd)) {}
  Status Request(void* msg, size_t len, const char* what);
  UniqueFd fd_;
  unsigned seq_ = 1;
};

struct NetInterface {
  std::string name;
  int ifindex = 0;
  std::string mac;  // "52:54:00:12:34:56"
  unsigned char mac_bytes[6] = {};
};

// Ethernet interfaces (ARPHRD_ETHER, not virtual: has a device/ link in sysfs), sorted by ifindex.
std::vector<NetInterface> ListEthernetInterfaces(const std::string& sys_class_net = "/sys/class/net");
Result<int> InterfaceIndex(const std::string& name);

}  // namespace nfc::init::host
