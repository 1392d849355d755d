// The host-mode firewall (docs/networking.md, "Host mode"): one nftables table of ours, `ip
// nomad_firecracker`, in the current thread's network namespace (libnftables). Each VM's rules carry the
// comment "nfc:<tap>", so removing a VM removes exactly its rules; the table goes when the last VM's rules
// do. Callers serialize changes (AddressPool::LockDir): the "remove the empty table" step must not race
// another VM's additions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"

namespace nfc::network {

inline constexpr const char* kNatTable = "nomad_firecracker";  // family ip

struct PortForward {
  uint16_t port = 0;    // the host's port, and the guest's
  std::string host_ip;  // "" or "0.0.0.0": every local address of the host (loopback excluded)
};

struct VmNatRules {
  std::string tap;                 // the VM's TAP, and its rules' tag
  std::string guest_ip;            // "10.229.0.2"
  std::string pool;                // the host_network CIDR: traffic within it is not masqueraded
  std::vector<PortForward> ports;  // each forwarded for TCP and UDP
};

// The tag on every rule of `tap`.
std::string NatTag(const std::string& tap);

// Masquerade of the guest towards everything outside the pool, forward accepts (the guest's own source
// address only: a spoofed one is dropped), and DNAT of each port from the host (prerouting, and output for
// clients on the host itself) to the guest. Replaces the VM's earlier rules, in one nftables transaction.
Status AddVmNatRules(const VmNatRules& rules);

// Removes every rule tagged for `tap`; the table too once no VM has rules in it. Harmless when there are
// none.
Status RemoveVmNatRules(const std::string& tap);

// The table as `nft list table` prints it with handles, "" when it does not exist (tests, diagnostics).
Result<std::string> ListNatTable();

}  // namespace nfc::network
