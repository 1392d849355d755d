// DHCP replies as NomadOS's PID 1 receives them on a raw socket (anyone on the segment can send them): the
// IPv4/UDP unwrapping, then the DHCP decoder. Property: a decoded message encodes and decodes to the same
// type, xid and offered address.
#include <cstdint>
#include <span>

#include "fuzz_util.h"
#include "init/host/dhcp.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> packet(data, size);
  auto payload = nfc::init::host::UnwrapIpv4Udp(packet, 68);
  std::span<const uint8_t> dhcp = payload.ok() ? *payload : packet;
  auto m = nfc::init::host::DecodeDhcp(dhcp);
  if (!m.ok()) return 0;
  auto again = nfc::init::host::DecodeDhcp(nfc::init::host::EncodeDhcp(*m));
  NFC_FUZZ_CHECK(again.ok());
  NFC_FUZZ_CHECK(again->type == m->type && again->xid == m->xid);
  NFC_FUZZ_CHECK(again->yiaddr.s_addr == m->yiaddr.s_addr);
  return 0;
}
