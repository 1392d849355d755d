// Connecting to the guest agent over whichever transport the backend set up.
#include <linux/vm_sockets.h>
#include <sys/socket.h>

#include <thread>

#include "base/unix_socket.h"
#include "vmm/vmm.h"

namespace nfc::vmm {
namespace {

using Clock = std::chrono::steady_clock;

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
        r = DialHybridVsock(endpoint.socket_path, port, std::chrono::seconds(1));
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
