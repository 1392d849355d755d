// Connecting to the guest agent over whichever transport the backend set up.
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "vmm/vmm.h"

namespace nfc::vmm {
namespace {

using Clock = std::chrono::steady_clock;

Result<UniqueFd> ConnectUnix(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return Error::InvalidArgument("socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Error::Errno("socket(AF_UNIX)");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return Error::Errno("connect " + path);
  }
  return fd;
}

// Reads one '\n'-terminated line byte by byte (nothing after the newline may be consumed: it is the stream).
Result<std::string> ReadLine(int fd, Clock::time_point deadline, size_t max) {
  std::string line;
  while (line.size() < max) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return Error::Timeout("no answer to CONNECT");
    pollfd p{fd, POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::Errno("poll");
    if (n == 0) continue;
    char c;
    ssize_t r = ::read(fd, &c, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Error::Errno("read");
    if (r == 0)
      return Error::Unavailable("connection closed before OK (nobody listens on that guest port yet)");
    if (c == '\n') return line;
    line.push_back(c);
  }
  return Error::DataLoss("answer line longer than " + std::to_string(max) + " bytes: " + line);
}

// Firecracker hybrid vsock, host-initiated: "CONNECT <port>\n" -> "OK <host port>\n" (docs/vsock.md).
Result<UniqueFd> ConnectHybridOnce(const std::string& path, uint32_t port) {
  NFC_ASSIGN_OR_RETURN(UniqueFd fd, ConnectUnix(path));
  std::string req = "CONNECT " + std::to_string(port) + "\n";
  if (::send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    return Error::Errno("send CONNECT to " + path);
  }
  NFC_ASSIGN_OR_RETURN(std::string line, ReadLine(fd.get(), Clock::now() + std::chrono::seconds(1), 64));
  if (line.rfind("OK ", 0) != 0) {
    return Error::Unavailable("vsock " + path + " port " + std::to_string(port) + ": unexpected answer '" +
                              line + "'");
  }
  return fd;
}

Result<UniqueFd> ConnectAfVsockOnce(uint32_t cid, uint32_t port) {
  UniqueFd fd(::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Error::Errno("socket(AF_VSOCK)");
  sockaddr_vm addr{};
  addr.svm_family = AF_VSOCK;
  addr.svm_cid = cid;
  addr.svm_port = port;
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return Error::Errno("connect vsock cid " + std::to_string(cid) + " port " + std::to_string(port));
  }
  return fd;
}

}  // namespace

Result<UniqueFd> ConnectGuestEndpoint(const GuestEndpoint& endpoint, uint32_t port,
                                      std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  Error last = Error::Timeout("no attempt made");
  for (;;) {
    Result<UniqueFd> r = Error::Internal("unreachable");
    switch (endpoint.transport) {
      case GuestTransport::kFirecrackerVsock:
        r = ConnectHybridOnce(endpoint.socket_path, port);
        break;
      case GuestTransport::kAfVsock:
        r = ConnectAfVsockOnce(endpoint.guest_cid, port);
        break;
      case GuestTransport::kVirtioSerial:
        r = ConnectUnix(endpoint.socket_path);
        break;
    }
    if (r.ok()) return r;
    last = std::move(r).error();
    // Retry while the VMM or guest comes up: the socket may not exist yet, or the guest port is not
    // listening.
    if (Clock::now() + std::chrono::milliseconds(100) >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Error::Timeout(
      "connect to guest over " + std::string(GuestTransportName(endpoint.transport)) + " (" +
      (endpoint.socket_path.empty() ? "cid " + std::to_string(endpoint.guest_cid) : endpoint.socket_path) +
      ", port " + std::to_string(port) + "): gave up after " + std::to_string(timeout.count()) +
      " ms: " + last.message());
}

}  // namespace nfc::vmm
