// The metadata service's answers reach NomadOS's PID 1 from the network (anything answering at
// 169.254.169.254): the HTTP response parser, the `#nomados-config` user-data parser and OpenStack's
// meta_data.json reader all see the same bytes. Properties: a parsed body never exceeds the limit, the status
// is 200..999, the answer at EOF is never "incomplete", a complete answer stays the same when more bytes
// follow; user-data file names pass SafeConfigFileName; an accepted hostname passes ValidHostname.
#include <cstdint>
#include <string_view>

#include "fuzz_util.h"
#include "init/host/http_client.h"
#include "init/host/metadata.h"

namespace host = nfc::init::host;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes = nfc::fuzz::AsText(data, size);
  constexpr size_t kLimit = 4096;
  auto at_eof = host::ParseHttpResponse(bytes, kLimit, true);
  if (at_eof.ok()) {
    NFC_FUZZ_CHECK(at_eof->has_value());
    NFC_FUZZ_CHECK((*at_eof)->body.size() <= kLimit);
    NFC_FUZZ_CHECK((*at_eof)->status >= 200 && (*at_eof)->status <= 999);
  }
  auto partial = host::ParseHttpResponse(bytes, kLimit, false);
  if (partial.ok() && *partial) {
    NFC_FUZZ_CHECK((*partial)->body.size() <= kLimit);
    auto longer = host::ParseHttpResponse(std::string(bytes) + "trailing", kLimit, false);
    NFC_FUZZ_CHECK(longer.ok() && *longer && (*longer)->body == (*partial)->body);
  }
  auto user = host::ParseUserData(bytes);
  if (user.ok() && *user) {
    for (const auto& [name, content] : (*user)->files) NFC_FUZZ_CHECK(host::SafeConfigFileName(name));
    NFC_FUZZ_CHECK((*user)->files.size() <= host::kAgentFileCount);
  }
  auto os = host::ParseOpenStackMetaData(bytes);
  if (os.ok() && !os->hostname.empty()) NFC_FUZZ_CHECK(host::ValidHostname(os->hostname));
  return 0;
}
