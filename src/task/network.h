// A task's network, per Nomad's isolation mode:
//  - group ("bridge" in the job): the VM takes over the allocation namespace's uplink through a TAP
//    (network/tap_redirect.h); the guest gets its address, MAC, MTU, gateway routes and DNS;
//  - host: with the plugin's host_network on, a private link from the host (network/host_link.h): a /30 of
//    the pool, NAT out, the task's ports forwarded in; the guest gets its address, gateway, MTU and DNS;
//  - none (and host with host_network off): the VM has no network interface (see docs/networking.md).
#pragma once

#include <optional>
#include <string>

#include "base/error.h"
#include "driver/task_manager.h"
#include "guest/task_spec.h"
#include "network/relay.h"
#include "network/tap_redirect.h"
#include "vmm/vmm.h"

namespace nfc::task {

// What the plugin's options say about networks, for AttachTaskNetwork.
struct NetworkPolicy {
  network::EgressGuard guard;
  bool host_network = false;   // host mode gets a private link (host_network.enabled)
  std::string host_cidr;       // host_network.cidr
  std::string data_dir;        // the host-mode leases live below it (HostPoolDir)
  bool sidecar_bridge = true;  // group mode: the sidecar bridge (task/sidecar.h)
};

// Where the host-mode leases of a plugin data directory live.
std::string HostPoolDir(const std::string& data_dir);

struct TaskNetwork {
  std::string mode = "none";             // "group", "host" or "none": recorded in the driver state
  std::string netns_path, tap, address;  // address: the guest's first IPv4 address, without prefix
  std::string host_lease;                // host mode: the /30 leased from the pool ("10.229.0.4/30")
  std::optional<vmm::NetworkInterface> nic;
  guest::NetworkConfig guest;
  // Group mode: the sidecar ports the shim relays in the namespace (task/sidecar.h).
  std::vector<network::Forward> shim_relays;
};

// The TAP AttachTaskNetwork will create for this task, or "" when it creates none.
std::string PlannedTap(const driver::NomadTask& task, bool host_network);

// Attaches the task to its allocation's network (group mode) behind `policy.guard`, or in host mode (no
// isolation spec, or mode host) with policy.host_network to a private link owned by `task_dir`; a no-op
// returning mode "none" otherwise.
Result<TaskNetwork> AttachTaskNetwork(const driver::NomadTask& task, const NetworkPolicy& policy,
                                      const std::string& task_dir);

// Undoes AttachTaskNetwork; harmless when nothing was attached or the namespace is gone. A TAP without a
// namespace is a host-mode link: its rules, TAP and `task_dir`'s lease go.
Status DetachTaskNetwork(const std::string& netns_path, const std::string& tap, const std::string& task_dir);

// DNS for the guest: Nomad's dns block when the job has one; in group and host mode otherwise the host's
// resolv.conf (its text, read by the caller) without loopback servers (a guest cannot reach the host's local
// resolver); else nullopt (the image's own). Pure.
std::optional<guest::DnsConfig> GuestDns(const driver::NomadTask& task, const TaskNetwork& network,
                                         std::string_view host_resolv_conf);

}  // namespace nfc::task
