#include "netns_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "network/netns.h"

namespace nfc::network::testing {

NetnsHolder::NetnsHolder() {
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return;
  pid_ = ::fork();
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    char ok = ::unshare(CLONE_NEWNET) == 0 ? '1' : '0';
    (void)!::write(ready[1], &ok, 1);
    for (;;) ::pause();
  }
  ::close(ready[1]);
  char ok = '0';
  if (pid_ < 0 || ::read(ready[0], &ok, 1) != 1 || ok != '1') Kill();
  ::close(ready[0]);
}

NetnsHolder::~NetnsHolder() {
  Kill();
}

void NetnsHolder::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

int RunIn(const NetnsHolder& ns, const std::string& command) {
  // The whole command runs in the namespace, chains and pipes included: a bare "a && b" after nsenter would
  // run b on the host.
  std::string quoted = "'";
  for (char c : command) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  quoted += "'";
  std::string line = "nsenter --net=" + ns.path() + " -- sh -c " + quoted + " >/dev/null";
  int rc = std::system(line.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

Status MakeBridgeLikePair(const NetnsHolder& outside, const NetnsHolder& alloc, int net, int mtu) {
  std::string p = "10." + std::to_string(net) + ".0.";
  const std::pair<const NetnsHolder*, std::string> steps[] = {
      {&outside, "ip link add name vout type veth peer name eth0 netns " + alloc.pid()},
      {&outside, "ip addr add " + p + "1/24 dev vout"},
      {&outside, "ip link set vout up"},
      {&alloc, "ip addr add " + p + "2/24 dev eth0"},
      {&alloc, "ip link set eth0 mtu " + std::to_string(mtu) + " up"},
      {&alloc, "ip route add default via " + p + "1"},
      {&alloc, "ip route add 192.0.2.0/24 via " + p + "1 metric 7"},
  };
  for (const auto& [ns, cmd] : steps) {
    if (RunIn(*ns, cmd) != 0) return Error::Internal("test network setup failed: " + cmd);
  }
  return Ok();
}

namespace {
sockaddr_in Address(const std::string& ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}
}  // namespace

Result<UniqueFd> UdpSocketIn(const NetnsHolder& ns, const std::string& ip, uint16_t port) {
  UniqueFd fd;
  NFC_RETURN_IF_ERROR(RunInNetns(ns.path(), [&]() -> Status {
    fd.Reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) return Error::Errno("socket");
    sockaddr_in a = Address(ip, port);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return Error::Errno("bind " + ip);
    return Ok();
  }));
  return fd;
}

Result<UniqueFd> ConnectFrom(const NetnsHolder& ns, const std::string& ip, uint16_t port,
                             std::chrono::milliseconds budget) {
  auto deadline = std::chrono::steady_clock::now() + budget;
  Error last = Error::Timeout("connect " + ip + ":" + std::to_string(port) + ": no attempt");
  while (std::chrono::steady_clock::now() < deadline) {
    UniqueFd fd;
    Status s = RunInNetns(ns.path(), [&]() -> Status {
      fd.Reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      if (!fd) return Error::Errno("socket");
      timeval tv{2, 0};
      ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
      ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      sockaddr_in a = Address(ip, port);
      if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
        return Error::Errno("connect " + ip + ":" + std::to_string(port));
      }
      return Ok();
    });
    if (s.ok()) return fd;
    last = s.error();
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return last;
}

Result<std::string> MacOf(const NetnsHolder& ns, const std::string& ifname) {
  std::string mac;
  // /sys/class/net shows the namespace sysfs was mounted in, not the thread's: ask the kernel directly.
  NFC_RETURN_IF_ERROR(RunInNetns(ns.path(), [&]() -> Status {
    UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!sock) return Error::Errno("socket");
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
    if (::ioctl(sock.get(), SIOCGIFHWADDR, &ifr) != 0) return Error::Errno("SIOCGIFHWADDR " + ifname);
    char text[18];
    auto* b = reinterpret_cast<unsigned char*>(ifr.ifr_hwaddr.sa_data);
    std::snprintf(text, sizeof(text), "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5]);
    mac = text;
    return Ok();
  }));
  return mac;
}

bool InterfaceExists(const NetnsHolder& ns, const std::string& name) {
  bool exists = false;
  Status s = RunInNetns(ns.path(), [&]() -> Status {
    exists = ::if_nametoindex(name.c_str()) != 0;
    return Ok();
  });
  return s.ok() && exists;
}

}  // namespace nfc::network::testing
