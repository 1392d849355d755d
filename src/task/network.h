// A task's network, per Nomad's isolation mode:
//  - group ("bridge" in the job): the VM takes over the allocation namespace's uplink through a TAP
//    (network/tap_redirect.h); the guest gets its address, MAC, MTU, gateway routes and DNS;
//  - host and none: the VM has no network interface (a VM cannot share the host's stack; see
//    docs/networking.md).
#pragma once

#include <optional>
#include <string>

#include "base/error.h"
#include "driver/task_manager.h"
#include "guest/task_spec.h"
#include "network/tap_redirect.h"
#include "vmm/vmm.h"

namespace nfc::task {

struct TaskNetwork {
  std::string mode = "none";             // "group" or "none": recorded in the driver state
  std::string netns_path, tap, address;  // address: the guest's first IPv4 address, without prefix
  std::optional<vmm::NetworkInterface> nic;
  guest::NetworkConfig guest;
};

// The TAP AttachTaskNetwork will create for this task, or "" when it creates none.
std::string PlannedTap(const driver::NomadTask& task);

// Attaches the task to its allocation's network (group mode) behind `guard`; a no-op returning mode "none"
// otherwise.
Result<TaskNetwork> AttachTaskNetwork(const driver::NomadTask& task, const network::EgressGuard& guard);

// Undoes AttachTaskNetwork; harmless when nothing was attached or the namespace is gone.
Status DetachTaskNetwork(const std::string& netns_path, const std::string& tap);

// DNS for the guest: Nomad's dns block when the job has one; in group mode otherwise the host's resolv.conf
// (its text, read by the caller) without loopback servers (a guest cannot reach the host's local resolver);
// else nullopt (the image's own). Pure.
std::optional<guest::DnsConfig> GuestDns(const driver::NomadTask& task, const TaskNetwork& network,
                                         std::string_view host_resolv_conf);

}  // namespace nfc::task
