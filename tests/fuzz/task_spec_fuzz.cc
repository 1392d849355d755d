// task.json as nomad-init reads it inside the guest (the host writes it, but PID 1 must never abort on it):
// parse, then argv resolution. Property: a parsed spec serialises and parses to a spec that serialises the
// same.
#include <cstdint>

#include "fuzz_util.h"
#include "guest/task_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto spec = nfc::guest::ParseTaskSpec(nfc::fuzz::AsText(data, size));
  if (!spec.ok()) return 0;
  (void)nfc::guest::ResolveArgv(*spec);
  std::string once = nfc::guest::TaskSpecToJson(*spec);
  auto again = nfc::guest::ParseTaskSpec(once);
  NFC_FUZZ_CHECK(again.ok());
  NFC_FUZZ_CHECK(nfc::guest::TaskSpecToJson(*again) == once);
  return 0;
}
