// A DHCPv4 client (RFC 2131/2132, client side) for PID 1 of NomadOS.
//
// Why our own: Debian's clients (isc-dhcp-client, busybox udhcpc, dhcpcd) hand the lease to a shell hook
// script for DNS, hostname and routes, so they would put a shell and its scripts into an image whose point is
// having none; systemd-networkd needs systemd. This client does what a Nomad host needs and nothing else:
// DISCOVER/ OFFER/REQUEST/ACK on a raw packet socket (no address yet), renewal at T1 and rebinding at T2,
// expiry, NAK, and the options subnet mask (1), routers (3), DNS (6), hostname (12), domain (15), MTU (26),
// lease/T1/T2 (51/58/59), server id (54) and classless static routes (121). No DHCPv6, no DECLINE after ARP
// probing.
//
// The client is a state machine driven by PID 1's event loop: it exposes an fd to poll and a deadline, and
// reports leases as events; it never blocks.
#pragma once

#include <netinet/in.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "init/host/interfaces.h"

namespace nfc::init::host {

using DhcpClock = std::chrono::steady_clock;

enum class DhcpType : uint8_t { kDiscover = 1, kOffer, kRequest, kDecline, kAck, kNak, kRelease, kInform };

struct DhcpRoute {
  in_addr dst{};
  int prefix_len = 0;
  in_addr gateway{};
};

struct DhcpLease {
  in_addr address{};
  int prefix_len = 24;
  in_addr server_id{};
  std::vector<in_addr> routers;
  std::vector<DhcpRoute> classless_routes;  // option 121: when present, routers are ignored (RFC 3442)
  std::vector<in_addr> dns;
  std::string domain;
  std::string hostname;
  int mtu = 0;  // 0: not given
  uint32_t lease_seconds = 0;
  uint32_t t1_seconds = 0;  // 0: not given (lease/2)
  uint32_t t2_seconds = 0;  // 0: not given (lease*7/8)
};

// One BOOTP/DHCP message as it travels in the UDP payload.
struct DhcpMessage {
  DhcpType type = DhcpType::kDiscover;
  uint8_t op = 1;  // 1 request, 2 reply
  uint32_t xid = 0;
  unsigned char chaddr[6] = {};
  in_addr ciaddr{};
  in_addr yiaddr{};
  bool broadcast = true;
  // Client fields (requests): option 50, 54, 12, 55.
  std::optional<in_addr> requested_address;
  std::optional<in_addr> server_id;
  std::string hostname;
  // Server fields (replies), decoded into a lease.
  DhcpLease lease;
};

std::vector<uint8_t> EncodeDhcp(const DhcpMessage& m);
Result<DhcpMessage> DecodeDhcp(std::span<const uint8_t> payload);

// IPv4 + UDP framing for the raw socket (the interface has no address yet, so the kernel cannot do it).
std::vector<uint8_t> WrapIpv4Udp(std::span<const uint8_t> payload, in_addr src, in_addr dst, uint16_t sport,
                                 uint16_t dport);
// The UDP payload of an IPv4 packet addressed to dport, or an error if it is something else.
Result<std::span<const uint8_t>> UnwrapIpv4Udp(std::span<const uint8_t> packet, uint16_t dport);

class DhcpClient {
 public:
  enum class State { kIdle, kSelecting, kRequesting, kBound, kRenewing, kRebinding };
  enum class EventKind { kBound, kRenewed, kLost };
  struct Event {
    EventKind kind;
    DhcpLease lease;
  };

  DhcpClient(NetInterface nic, std::string hostname) : nic_(std::move(nic)), hostname_(std::move(hostname)) {}

  // Opens the packet socket and sends the first DISCOVER.
  Status Start(DhcpClock::time_point now);
  int fd() const { return fd_.get(); }
  DhcpClock::time_point deadline() const { return deadline_; }
  State state() const { return state_; }

  std::optional<Event> OnReadable(DhcpClock::time_point now);
  std::optional<Event> OnDeadline(DhcpClock::time_point now);

 private:
  void SendDiscover(DhcpClock::time_point now);
  void SendRequest(DhcpClock::time_point now);
  void Send(const DhcpMessage& m);
  void EnterBound(DhcpClock::time_point now, const DhcpLease& lease);

  NetInterface nic_;
  std::string hostname_;
  UniqueFd fd_;
  State state_ = State::kIdle;
  uint32_t xid_ = 0;
  int attempts_ = 0;
  std::chrono::seconds backoff_{2};
  DhcpClock::time_point deadline_ = DhcpClock::time_point::max();
  DhcpClock::time_point bound_at_{};
  DhcpMessage offer_;
  std::optional<DhcpLease> lease_;
};

}  // namespace nfc::init::host
