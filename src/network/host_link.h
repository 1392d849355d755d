// A VM's private link in Nomad's host network mode (docs/networking.md, "Host mode"), in the calling thread's
// network namespace (the plugin's: the host's): a TAP holding the host's side of a /30 from the plugin's
// pool, the guest's address on the other side, IPv4 forwarding on, masquerade of the guest towards everything
// outside the pool, and the task's ports DNAT'd from the host to the guest (network/nat.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "network/nat.h"
#include "network/tap_redirect.h"

namespace nfc::network {

struct HostLinkConfig {
  std::string pool_dir;  // the leases (network/address_pool.h)
  std::string cidr;      // the pool: host_network.cidr
  EgressGuard guard;     // its gateway rule applies to the host's side of the link
  uint32_t mtu = 1500;
};

struct HostLink {
  std::string tap;
  std::string block;              // "10.229.0.4/30": the lease
  std::string host_ip, guest_ip;  // .1 (the guest's gateway) and .2
  std::string mac;                // the guest's, locally administered, stable per TAP
  uint32_t mtu = 0;
};

// Leases a /30 to `owner` (the task directory), creates the TAP `tap` and the VM's rules. On an error nothing
// of it is left.
Result<HostLink> AttachHostLink(const HostLinkConfig& config, const std::string& tap,
                                const std::string& owner, const std::vector<PortForward>& ports);

// Removes the VM's rules and TAP and ends `owner`'s lease; harmless for what is already gone.
Status DetachHostLink(const std::string& pool_dir, const std::string& tap, const std::string& owner);

}  // namespace nfc::network
