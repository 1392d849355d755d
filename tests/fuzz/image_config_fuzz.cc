// An image's config blob (untrusted: the image author writes it): both readers.
#include <cstdint>

#include "fuzz_util.h"
#include "image/image_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = nfc::fuzz::AsText(data, size);
  (void)nfc::image::ParseImageConfig(text);
  (void)nfc::image::ImageConfigFromJson(text);
  return 0;
}
