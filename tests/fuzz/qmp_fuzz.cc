// QMP as the shim reads it from QEMU (a compromised QEMU may write anything): the input is what the peer
// writes after connecting; the client runs the greeting and capabilities negotiation and one command, then
// takes what events arrived. Nothing may throw; a negotiated client reports a version of three numbers.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>

#include "fuzz_util.h"
#include "vmm/qemu/qmp_client.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > size_t{64} * 1024)
    return 0;  // fits a socket buffer: the peer writes it all before the client reads
  int sv[2];
  NFC_FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  nfc::UniqueFd peer(sv[1]);
  NFC_FUZZ_CHECK(::write(peer.get(), data, size) == static_cast<ssize_t>(size));
  NFC_FUZZ_CHECK(::shutdown(peer.get(), SHUT_WR) == 0);
  nfc::vmm::qemu::QmpClient client;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  if (client.Handshake(nfc::UniqueFd(sv[0]), deadline).ok()) {
    NFC_FUZZ_CHECK(client.version().empty() || client.version().find('.') != std::string::npos);
    (void)client.Execute("query-status", nullptr, std::chrono::milliseconds(200));
  }
  client.DrainEvents();
  (void)client.TakeEvents();
  return 0;
}
