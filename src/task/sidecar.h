// The sidecar bridge's ports for a group-mode task (docs/networking.md, "Sidecars"): which ports the task
// shim relays in the allocation's namespace and which nomad-init relays in the guest, over the sidecar link
// (network/sidecar_link.h). Pure: from the ports and the environment Nomad gives the task.
//
//  - inbound, each of the task's ports (resources.ports): the app listens on `to` inside (bridge mode), or on
//    the port's value when `to` is 0; the shim listens on 127.0.0.1:<that port> in the namespace and relays
//    to the guest's end of the link. Ports with `to` < 0 or labelled connect-proxy-* are Envoy's own
//    listeners (bound on 0.0.0.0 in the namespace): not relayed, a listener of ours would take them from
//    Envoy.
//  - outbound, each upstream Nomad names (NOMAD_UPSTREAM_ADDR_<name>=<ip>:<port>, or only
//    NOMAD_UPSTREAM_PORT_<name>): nomad-init listens on 127.0.0.1:<port> in the guest (the upstream's own
//    loopback address when it names one) and relays to the namespace's end of the link, where the shim
//    listens on <port> and relays to the upstream's address (Envoy's listener) in the namespace.
#pragma once

#include <vector>

#include "driver/task_manager.h"
#include "guest/task_spec.h"
#include "network/relay.h"
#include "task/network.h"

namespace nfc::task {

struct SidecarForwards {
  std::vector<network::Forward> shim;           // in the allocation's namespace
  std::vector<guest::PortForwardConfig> guest;  // in the guest (TCP and UDP each)
  std::vector<uint16_t> netns_ports;  // Envoy's listeners: their traffic on the uplink stays in the namespace
};

SidecarForwards SidecarForwardsFor(const driver::NomadTask& task);

// Group mode, after the TAP is attached: the sidecar link on it, the guest's end added to its eth0, and the
// ports both ends relay recorded in `net`. On failure the TAP is detached again.
Status AttachSidecar(const driver::NomadTask& task, TaskNetwork& net);

}  // namespace nfc::task
