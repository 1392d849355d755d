// HTTP/1.1 responses on Firecracker's API socket (the VMM process answers; a compromised VMM may answer
// anything): the incremental parser, fed in pieces whose sizes the first input byte picks, then the end of
// the stream; a complete body is read as the API client reads one (fault_message, version members).
// Property: how the bytes are split never changes the result.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "fuzz_util.h"
#include "vmm/firecracker/api_client.h"
#include "vmm/firecracker/http_over_unix.h"
#include "vmm/json_fields.h"

namespace {

using nfc::vmm::firecracker::HttpResponseParser;

// The parse of `bytes` in pieces of `step` bytes: "" when it failed, else status and body.
std::string ParseInPieces(std::string_view bytes, size_t step, bool head) {
  HttpResponseParser p(head);
  size_t at = 0;
  while (at < bytes.size() && !p.complete()) {
    std::string_view piece = bytes.substr(at, step);
    auto used = p.Feed(piece);
    if (!used.ok()) return "";
    NFC_FUZZ_CHECK(*used <= piece.size());
    NFC_FUZZ_CHECK(*used == piece.size() || p.complete());
    at += *used;
  }
  if (!p.complete() && !p.FeedEof().ok()) return "";
  NFC_FUZZ_CHECK(p.complete());
  NFC_FUZZ_CHECK(p.response().body.size() <= HttpResponseParser::kMaxBodyBytes);
  return std::to_string(p.response().status) + " " + std::to_string(at) + "\n" + p.response().body;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t step = 1 + data[0] % 61;
  const bool head = (data[0] & 0x80) != 0;
  std::string_view bytes = nfc::fuzz::AsText(data + 1, size - 1);
  std::string whole = ParseInPieces(bytes, bytes.size() + 1, head);
  NFC_FUZZ_CHECK(ParseInPieces(bytes, step, head) == whole);
  if (whole.empty()) return 0;
  std::string body = whole.substr(whole.find('\n') + 1);
  (void)nfc::vmm::firecracker::FaultMessage(body);
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  auto version = nfc::vmm::firecracker::FirecrackerVersion::Parse(nfc::vmm::StringMember(j, "vmm_version"));
  if (version.ok()) NFC_FUZZ_CHECK(version->major >= 0 && version->minor >= 0);
  return 0;
}
