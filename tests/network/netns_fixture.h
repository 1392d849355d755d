// Network namespaces made by a test, shaped like Nomad's bridge mode: "outside" stands for the host's bridge
// side, "alloc" for an allocation's namespace with eth0 holding the allocation's address and a default route.
// Both namespaces belong to holder processes that die with the test (PDEATHSIG), taking every interface the
// test made with them; the host's own interfaces are never touched.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>

#include "base/error.h"
#include "base/unique_fd.h"

namespace nfc::network::testing {

class NetnsHolder {
 public:
  NetnsHolder();
  ~NetnsHolder();
  NetnsHolder(const NetnsHolder&) = delete;
  NetnsHolder& operator=(const NetnsHolder&) = delete;
  void Kill();
  bool ok() const { return pid_ > 0; }
  std::string pid() const { return std::to_string(pid_); }
  std::string path() const { return "/proc/" + pid() + "/ns/net"; }

 private:
  pid_t pid_ = -1;
};

// Runs `command` (a shell command line: chains and pipes stay inside) in the namespace; returns its exit
// code.
int RunIn(const NetnsHolder& ns, const std::string& command);

// outside: vout 10.<net>.0.1/24; alloc: eth0 10.<net>.0.2/24 with `mtu`, default route via .1, and
// 192.0.2.0/24 via .1 metric 7 (a second gateway route).
Status MakeBridgeLikePair(const NetnsHolder& outside, const NetnsHolder& alloc, int net, int mtu);

// A UDP socket bound in `ns`.
Result<UniqueFd> UdpSocketIn(const NetnsHolder& ns, const std::string& ip, uint16_t port);
// A TCP connection made from `ns`; retried until `budget` runs out (a guest still booting refuses).
Result<UniqueFd> ConnectFrom(const NetnsHolder& ns, const std::string& ip, uint16_t port,
                             std::chrono::milliseconds budget);
// The MAC of an interface in `ns`, "aa:bb:cc:dd:ee:ff".
Result<std::string> MacOf(const NetnsHolder& ns, const std::string& ifname);
// Whether an interface of that name exists in `ns`.
bool InterfaceExists(const NetnsHolder& ns, const std::string& name);

}  // namespace nfc::network::testing
