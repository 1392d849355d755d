// Which network interfaces a NomadOS machine has: the hardware Ethernet devices in sysfs, for picking the one
// DHCP runs on. (Configuring them goes through init/common/netlink.h.)
#pragma once

#include <string>
#include <vector>

namespace nfc::init::host {

struct NetInterface {
  std::string name;
  int ifindex = 0;
  std::string mac;  // "52:54:00:12:34:56"
  unsigned char mac_bytes[6] = {};
};

// Ethernet interfaces (ARPHRD_ETHER, not virtual: has a device/ link in sysfs), sorted by ifindex.
std::vector<NetInterface> ListEthernetInterfaces(const std::string& sys_class_net = "/sys/class/net");

}  // namespace nfc::init::host
