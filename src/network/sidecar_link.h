// The sidecar link: a private IPv4 /30 between the allocation's network namespace and the microVM, over the
// same TAP that carries the guest's traffic to the uplink (docs/networking.md, "Sidecars"). The TAP gets the
// namespace's end (kSidecarNetnsAddress), the guest's eth0 a second address (kSidecarGuestAddress). Two u32
// filters on the TAP's ingress, evaluated before the egress guard and the redirect, let the guest's frames
// for the namespace's end (IPv4 to it, ARP asking for it or answering it) up the namespace's own stack
// instead of out through the uplink: a filter that matches and has no action passes the frame on.
//
// Over this link the task shim (in the namespace) and nomad-init (in the guest) relay ports
// (network/relay.h), so that a sidecar listening on 127.0.0.1 in the namespace (Consul Connect's Envoy) and
// the workload meet.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"

namespace nfc::network {

inline constexpr const char* kSidecarNetnsAddress = "169.254.254.1";
inline constexpr const char* kSidecarGuestAddress = "169.254.254.2";
inline constexpr int kSidecarPrefixLength = 30;
// tc priorities of the pass filters (IPv4, ARP): below the egress guard's, so evaluated first.
inline constexpr uint16_t kSidecarPassPriority = 0xfb00;
inline constexpr uint16_t kSidecarArpPassPriority = 0xfb01;

// tc priorities on the uplink (the interface of the namespace's IPv4 default route), before the redirect:
// ARP mirrored to the TAP and passed up the namespace's stack too (both answer for the allocation's address
// with the same MAC), and TCP/UDP to the namespace's own ports passed up instead of to the guest.
inline constexpr uint16_t kSidecarUplinkArpPriority = 0xfb10;
inline constexpr uint16_t kSidecarUplinkPortsPriority = 0xfb11;
// The namespace's ephemeral ports (its ip_local_port_range is set to them), so that replies to its own
// connections (Envoy's to other allocations) reach it: 61440-65535, one u32 mask. Guests' kernels use
// 32768-60999 by default.
inline constexpr uint16_t kSidecarNetnsEphemeralFirst = 61440;

// Gives the TAP in the namespace at `netns_path` the namespace's end of the link and installs the pass
// filters; on the uplink, the address is split by port: `netns_ports` (Envoy's listeners) and the namespace's
// ephemeral ports stay with the namespace, ARP goes to both. Idempotent. The TAP's address and filters go
// with it; the uplink's are removed by RemoveSidecarUplinkFilters (DetachTap calls it).
Status AttachSidecarLink(const std::string& netns_path, const std::string& tap,
                         const std::vector<uint16_t>& netns_ports = {});

// In the calling thread's namespace: removes the uplink filters of AttachSidecarLink from `ifindex`. Harmless
// when there are none.
Status RemoveSidecarUplinkFilters(int ifindex);

}  // namespace nfc::network
