// A task's place on Nomad's group ("bridge") network: owns the TAP device the microVM uses inside the
// allocation's network namespace, and the tc redirect that joins it to the namespace's uplink.
//
// Nomad (its CNI bridge setup) gives the allocation a network namespace whose uplink (eth0) holds the
// allocation's address, a default route and the port mappings on the host. A VM cannot use that interface
// directly, so the guest takes over its identity: same MAC, addresses, MTU and gateway routes, while two tc
// filters move every frame between the uplink and the TAP (ingress of one → egress of the other). The
// namespace's own stack then sees no traffic on the uplink; the guest answers for the address. Port mappings,
// which Nomad sets up on the host towards the address, reach the guest unchanged.
//
// Limits (see docs/networking.md): one VM per allocation can own the uplink; processes of the namespace
// itself (e.g. a Consul Connect sidecar talking to 127.0.0.1) reach the guest only through the sidecar
// bridge (network/sidecar_link.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"

namespace nfc::network {

// The uplink as Nomad's CNI configuration left it.
struct UplinkIdentity {
  std::string name;  // "eth0"
  std::string mac;   // "aa:bb:cc:dd:ee:ff"
  uint32_t mtu = 0;
  std::vector<std::string> addresses;  // CIDR, global scope only: "172.26.64.5/20"
};

// A route the guest must install: a gateway route of the namespace through the uplink.
struct GatewayRoute {
  std::string destination;  // CIDR; "0.0.0.0/0" or "::/0" for the default routes
  std::string gateway;
  uint32_t metric = 0;
};

struct TapAttachment {
  std::string netns_path;
  std::string tap;
  UplinkIdentity uplink;
  std::vector<GatewayRoute> routes;
};

// tc priority of our two filters; fixed so that DetachTap finds exactly ours.
inline constexpr uint16_t kRedirectFilterPriority = 0xfc01;
// tc priority of the egress guard's drop filters on the TAP's ingress: evaluated before the redirect.
inline constexpr uint16_t kEgressGuardPriority = 0xfc00;

// What the guest may not send to (docs/networking.md, "Egress guard"). Enforced by u32 drop filters on the
// TAP's ingress, before the redirect to the uplink, so no firewall is needed in the namespace. IPv4 only.
struct EgressGuard {
  bool enabled = false;
  // Every IPv4 packet to these CIDRs is dropped ("169.254.0.0/16": link-local, the metadata address).
  std::vector<std::string> blocked_cidrs;
  // New TCP connections (SYN without ACK) to the uplink's IPv4 gateways, the host's side of the bridge where
  // agents bound to 0.0.0.0 listen, are dropped; so is every IPv4 packet with IP options to them (the SYN
  // match reads the TCP header at a fixed offset). Replies to connections the host opens still pass.
  bool block_gateway_connections = false;
};

// Creates the persistent TAP `tap` in the namespace at `netns_path`, brings it up with the uplink's MTU, and
// redirects the uplink's traffic to it and back. The uplink is `uplink_name`, or when empty the interface of
// the IPv4 default route. With `guard` enabled, the guest's traffic it names is dropped on the TAP.
// Idempotent for the same tap; refuses when another TAP already owns the uplink.
Result<TapAttachment> AttachTap(const std::string& netns_path, const std::string& tap,
                                const std::string& uplink_name = "", const EgressGuard& guard = {});

// Removes our redirect from the uplink and deletes the TAP. Harmless when either is already gone, including
// when Nomad has destroyed the namespace itself.
Status DetachTap(const std::string& netns_path, const std::string& tap);

// Host mode (network/host_link.h), in the calling thread's namespace: the persistent TAP `tap`, up with
// `mtu`, holding `address` ("10.229.0.1/30", the host's side of the VM's link), `guard` on its ingress with
// `gateway` (that host-side address) as the gateway whose new TCP connections are dropped. Idempotent.
Status CreateHostTap(const std::string& tap, uint32_t mtu, const std::string& address,
                     const EgressGuard& guard, const std::string& gateway);
// Deletes the TAP `tap` of the calling thread's namespace (its address and filters go with it); harmless when
// it is gone.
Status DeleteHostTap(const std::string& tap);

// A persistent TAP `tap`, down and attached to nothing, in the calling thread's namespace: the stand-in NIC
// of a warm-start template's VM, which is built in a namespace of its own (network/netns.h RunInNewNetns).
Status CreateDetachedTap(const std::string& tap);

// A TAP name for a task, unique per task ID, within the kernel's 15 characters.
std::string TapNameForTask(const std::string& task_id);

}  // namespace nfc::network
