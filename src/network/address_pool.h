// The host-mode link addresses (docs/networking.md, "Host mode"): a /30 per VM out of the plugin's
// host_network CIDR, unique on the host across plugin processes and restarts.
//
// A lease is the file <pool_dir>/<block's first address> naming its owner (the task directory) and the TAP;
// every change happens under an exclusive flock of <pool_dir>/.lock. A lease whose owner directory is gone (a
// crash between a start and its cleanup) is free again, but only then: a running task's block is never handed
// out twice.
#pragma once

#include <cstdint>
#include <string>

#include "base/error.h"
#include "base/unique_fd.h"

namespace nfc::network {

// An IPv4 network "a.b.c.d/len", the address masked to the prefix.
struct Ipv4Net {
  uint32_t base = 0;  // host byte order
  int prefix = 0;
  // "10.229.0.0/16"; the error names `field` and the text.
  static Result<Ipv4Net> Parse(const std::string& text, const std::string& field);
  std::string ToString() const;
};

std::string Ipv4ToString(uint32_t host_order);

// One VM's /30: network, host side (.1), guest (.2), broadcast.
struct HostLease {
  std::string block;  // "10.229.0.4/30"
  std::string host_ip, guest_ip;
  // Acquire: the TAP of the dead owner this block was taken back from ("" when it was free), whose rules the
  // caller removes before the block carries a new VM.
  std::string reclaimed_tap;
  static constexpr int kPrefix = 30;
  // The lease of the /30 whose text is `block` ("10.229.0.4/30").
  static Result<HostLease> OfBlock(const std::string& block);
};

class AddressPool {
 public:
  AddressPool(std::string pool_dir, Ipv4Net range) : dir_(std::move(pool_dir)), range_(range) {}

  // The lowest free /30 of the range, leased to `owner` (an existing directory) for `tap`.
  // kResourceExhausted, naming the range, when every block is leased to a live owner.
  Result<HostLease> Acquire(const std::string& owner, const std::string& tap);
  // Ends `owner`'s leases (normally one); someone else's are left alone. Harmless when there is none.
  Status ReleaseOwnedBy(const std::string& owner);

  // The lock that serializes changes to the pool, held also around the firewall changes of a lease.
  static Result<UniqueFd> LockDir(const std::string& dir);

 private:
  std::string dir_;
  Ipv4Net range_;
};

}  // namespace nfc::network
