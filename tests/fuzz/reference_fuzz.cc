// Image references (a job author writes them). Property: a parsed reference's canonical form parses to the
// same reference.
#include <cstdint>

#include "fuzz_util.h"
#include "image/reference.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto ref = nfc::image::ParseReference(nfc::fuzz::AsText(data, size));
  if (!ref.ok()) return 0;
  auto again = nfc::image::ParseReference(ref->String());
  NFC_FUZZ_CHECK(again.ok());
  NFC_FUZZ_CHECK(again->registry == ref->registry && again->repository == ref->repository);
  NFC_FUZZ_CHECK(again->tag == ref->tag && again->digest == ref->digest);
  (void)ref->ApiHost();
  return 0;
}
